"""What a training image really is: JPEG-sourced or clean, noisy or not, edge-rich or smooth.

Why: a net trained on JPEG-compressed photos learns to smooth blocky detail, and the shipped x2
net generalises worst exactly on sharp, structured content (issue 28). Before choosing data for a
training leg, measure each image instead of trusting its folder's name or suffix:

* ``jpeg_quality`` -- read from a JPEG file's own luma quantisation table (IJG scaling: 100 = no
  quantisation, 75 = the libjpeg default); None for other files.
* ``blockiness`` -- JPEG's 8x8 grid left in the pixels, found even after a JPEG was saved as PNG or
  cropped: the mean luma step across the columns (rows) of the strongest of the eight grid phases
  divided by that of the phase 4 px away, the larger of the two directions. About 1.0 for clean
  images, clearly above for JPEG at the qualities photo collections use.
  A JPEG that was resized afterwards loses its grid, so this misses it: say so rather than guess.
* ``noise_sigma`` -- Immerkaer's fast estimate (1996) of Gaussian noise, in 8-bit levels: the mean
  absolute response of a Laplacian difference kernel that cancels smooth ramps. Fine texture raises
  it too, so it ranks images rather than measures sensors.
* ``edge_density`` -- the share of pixels on strong edges (Sobel magnitude above 1/4 of the full
  range), high for text, line art, architecture and regular patterns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from repsr.data.images import hr_folder, list_images

BLOCKY = 1.10  # above: JPEG-sourced. Clean images of >= 192x256 px score <= 1.04, JPEG q <= 85 >= 1.2 (tests)
STRONG_EDGE = 0.25  # Sobel magnitude (fraction of full range) of an edge that counts in edge_density

# The IJG (libjpeg) standard luminance quantisation table at quality 50, the reference of jpeg_quality.
_IJG_LUMA_SUM = sum((16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
                     56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
                     104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99))


@dataclass(frozen=True)
class ImageAudit:
    """The measurements of one image (see the module's docstring for what each means)."""

    path: str
    width: int
    height: int
    jpeg_quality: int | None
    blockiness: float
    noise_sigma: float
    edge_density: float

    @property
    def jpeg_sourced(self) -> bool:
        """A JPEG file, or pixels that still carry a JPEG grid."""
        return self.jpeg_quality is not None or self.blockiness > BLOCKY


@dataclass(frozen=True)
class FolderAudit:
    """A folder's images and their summary: how many and how much of the pixels are JPEG-sourced."""

    folder: str
    images: list[ImageAudit]

    @property
    def megapixels(self) -> float:
        return sum(a.width * a.height for a in self.images) / 1e6

    @property
    def jpeg_share(self) -> float:
        """Share of the folder's pixels that are JPEG-sourced."""
        total = sum(a.width * a.height for a in self.images)
        return sum(a.width * a.height for a in self.images if a.jpeg_sourced) / max(total, 1)

    def median(self, field: str) -> float:
        return float(np.median([getattr(a, field) for a in self.images])) if self.images else math.nan


def jpeg_quality(image: Image.Image) -> int | None:
    """IJG quality of a JPEG's luma table (1..100), or None for an image that is not a JPEG file."""
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables:
        return None
    scale = 100 * sum(tables[min(tables)]) / _IJG_LUMA_SUM  # percent of the q50 table (order-free sum)
    quality = 5000 / scale if scale > 100 else (200 - scale) / 2
    return int(round(min(max(quality, 1), 100)))


def luma(image: Image.Image) -> np.ndarray:
    """BT.601 luma in [0, 1] (float64) of any mode Pillow opens; 16-bit images keep their precision."""
    if image.mode.startswith("I"):  # 16-bit (or 32-bit integer) gray
        gray = np.asarray(image, dtype=np.float64)
        return gray / (65535.0 if gray.max() > 255 else 255.0)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    y: np.ndarray = rgb @ np.array([0.299, 0.587, 0.114])
    return y


def blockiness(y: np.ndarray) -> float:
    """How much one 8-px grid phase's luma steps stand out from their neighbours', the larger of the two
    directions (1.0 = not at all).

    Each column's step (mean absolute difference to the next column) is divided by the mean of its two
    neighbours' steps, which cancels the content's large-scale variation; the log ratios are averaged per
    phase (column index mod 8), and the strongest phase is compared with the phase 4 px away, so 2- and
    4-periodic patterns (demosaicing, chroma subsampling, dithering), which lift both, score about 1.
    """
    ratios = []
    for steps in (np.abs(np.diff(y, axis=1)).mean(axis=0), np.abs(np.diff(y, axis=0)).mean(axis=1)):
        if steps.size < 18:
            continue
        local = np.log((steps[1:-1] + 1e-6) / ((steps[:-2] + steps[2:]) / 2 + 1e-6))  # step j+1 vs j and j+2
        n = local.size - local.size % 8
        phases = local[:n].reshape(-1, 8).mean(axis=0)
        k = int(phases.argmax())
        ratios.append(float(np.exp(phases[k] - phases[(k + 4) % 8])))
    return max(ratios, default=1.0)


def noise_sigma(y: np.ndarray) -> float:
    """Immerkaer's noise estimate of ``y`` (values in [0, 1]) in 8-bit levels."""
    if min(y.shape) < 3:
        return 0.0
    c = y[1:-1, 1:-1]
    response = (y[:-2, :-2] + y[:-2, 2:] + y[2:, :-2] + y[2:, 2:]
                - 2 * (y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]) + 4 * c)
    return float(255 * math.sqrt(math.pi / 2) * np.abs(response).mean() / 6)


def edge_density(y: np.ndarray) -> float:
    """Share of pixels whose Sobel gradient magnitude exceeds :data:`STRONG_EDGE` (of full range)."""
    if min(y.shape) < 3:
        return 0.0
    gx = (y[:-2, 2:] + 2 * y[1:-1, 2:] + y[2:, 2:]) - (y[:-2, :-2] + 2 * y[1:-1, :-2] + y[2:, :-2])
    gy = (y[2:, :-2] + 2 * y[2:, 1:-1] + y[2:, 2:]) - (y[:-2, :-2] + 2 * y[:-2, 1:-1] + y[:-2, 2:])
    return float((np.hypot(gx, gy) / 4 > STRONG_EDGE).mean())


def audit_image(path: str | Path) -> ImageAudit:
    """Measure one image file (its first frame)."""
    with Image.open(path) as image:
        quality = jpeg_quality(image)
        y = luma(image)
    return ImageAudit(str(path), y.shape[1], y.shape[0], quality, blockiness(y), noise_sigma(y), edge_density(y))


def audit_folder(folder: str | Path) -> FolderAudit:
    """Measure every image of ``folder``'s HR images (its ``HR/`` or ``GT/`` subfolder, else itself), sorted."""
    return FolderAudit(str(folder), [audit_image(p) for p in list_images(hr_folder(Path(folder)))])


__all__ = ["BLOCKY", "FolderAudit", "ImageAudit", "audit_folder", "audit_image", "blockiness", "edge_density",
           "jpeg_quality", "noise_sigma"]
