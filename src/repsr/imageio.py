"""Reading and writing the images users actually have, without surprises.

Handles 8- and 16-bit PNG/TIFF, JPEG, WebP, grayscale, alpha, palette images and EXIF orientation.
Colour is returned as float32 RGB in [0, 1]; alpha separately (it is upscaled on its own, never
through the network); a grayscale source is remembered so it can be written back as grayscale.
Pillow silently truncates 16-bit colour PNGs to 8 bits, so those are read with OpenCV instead.
Every failure becomes a one-line :class:`ImageError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from repsr.atomic import atomic_write
from repsr.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
Image.MAX_IMAGE_PIXELS = 40000 * 40000  # still a guard against decompression bombs, but for real photos


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image, kept in its own integer pixels; float views are made on demand.

    ``pixels`` is uint8 or uint16 (H, W, C) with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or
    4 (RGBA), as decoded. Float copies are four times larger than uint8, so a huge image is never
    converted as a whole by the upscaler: it asks for windows with :meth:`colour`.
    """

    pixels: np.ndarray

    @property
    def gray(self) -> bool:
        """The source had a single colour channel (written back as gray)."""
        return self.pixels.shape[2] in (1, 2)

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] in (2, 4)

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    def colour(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """Float32 RGB in [0, 1], (h, w, 3), of a window (gray repeated into three channels)."""
        window = self.pixels[rows, cols, :1 if self.gray else 3].astype(np.float32)
        window /= 65535.0 if self.bit_depth == 16 else 255.0
        return np.repeat(window, 3, axis=2) if self.gray else window

    @property
    def rgb(self) -> np.ndarray:
        """The whole image as float32 RGB (H, W, 3) in [0, 1]; a new array on every access."""
        return self.colour()

    def uint8(self, rgb: bool = False) -> np.ndarray:
        """The colour as uint8 without alpha: (H, W) for a gray source unless ``rgb``, else (H, W, 3) RGB.

        8-bit pixels are copied as they are; 16-bit ones rounded to the nearest 8-bit value. Always a
        new, writable array (decoded pixels may be read-only). This is how training, evaluation and
        pruning see an image (the field scores uint8 pixels).
        """
        if self.bit_depth == 16:
            colour = np.rint(self.colour() * 255.0).astype(np.uint8)
            return colour if rgb or not self.gray else np.ascontiguousarray(colour[:, :, 0])
        if self.gray:
            return np.repeat(self.pixels[:, :, :1], 3, axis=2) if rgb else self.pixels[:, :, 0].copy()
        return self.pixels[:, :, :3].copy()

    @property
    def alpha(self) -> np.ndarray | None:
        """Float32 alpha (H, W) in [0, 1], or None."""
        if not self.has_alpha:
            return None
        return self.pixels[:, :, -1].astype(np.float32) / (65535.0 if self.bit_depth == 16 else 255.0)


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 25:
        return head[24]
    return 8


def _read_with_opencv(path: Path) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{path}: cannot decode image")
    if img.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
        img = cv2.cvtColor(img, code)
    return img


def _read_with_pillow(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(im, dtype=np.uint32).astype(np.uint16)
        elif im.mode == "1":
            im = im.convert("L")
        elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV", "F", "PA", "RGBX"):
            im = im.convert("RGBA" if im.mode == "PA" else "RGB")
        return np.asarray(im)


def read_image(path: str | Path) -> LoadedImage:
    """Read an image file into a :class:`LoadedImage`; raises :class:`ImageError` on any failure."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        sixteen = path.suffix.lower() == ".png" and _png_bit_depth(path) == 16
        arr = _read_with_opencv(path) if sixteen else _read_with_pillow(path)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        limit = (Image.MAX_IMAGE_PIXELS or 0) * 2 / 1e9
        raise ImageError(f"{path}: its header claims more than {limit:.1f} gigapixels (a decompression bomb or a "
                         "corrupt header); refused before decoding") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "not an image or corrupt" if isinstance(exc, UnidentifiedImageError) else str(exc).split("\n")[0]
        raise ImageError(f"{path}: cannot read image ({reason})") from None
    return from_array(arr, str(path))


def read_uint8(path: str | Path, rgb: bool = False) -> np.ndarray:
    """A user's image as uint8 (see :meth:`LoadedImage.uint8`): the one uint8 reader."""
    return read_image(path).uint8(rgb)


def from_array(arr: np.ndarray, name: str = "<array>") -> LoadedImage:
    """Wrap a uint8/uint16 array of shape (H, W) or (H, W, 1|2|3|4) without copying it."""
    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{name}: unsupported pixel type {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or min(arr.shape[:2]) < 1:
        raise ImageError(f"{name}: unsupported image shape {arr.shape}")
    return LoadedImage(arr)


def quantize(x: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float in [0, 1] -> uint8/uint16 by rounding to nearest (values outside are clipped)."""
    peak, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    y = np.multiply(x, peak, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    np.rint(y, out=y)  # one temporary, not three: this runs on whole network outputs
    np.clip(y, 0, peak, out=y)
    return y.astype(dtype)


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float (H, W[, C]) to ``size`` = (W, H): area filter down, bicubic up, clipped to [0, 1]."""
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    smaller = size[0] < image.shape[1]
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0)


def resize_pixels(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8/uint16 (H, W[, C]) to ``size`` = (W, H) -> (H', W', C); same filters as :func:`resize_to`.

    Works on the integers directly (OpenCV saturates): no float copy of a large image.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    smaller = size[0] < image.shape[1]
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC)
    return out.reshape(size[1], size[0], image.shape[2])


def _to_bgr(image: np.ndarray, in_place: bool) -> np.ndarray:
    """RGB(A) -> BGR(A) for OpenCV; gray + alpha -> BGRA (OpenCV encodes 1, 3 or 4 channels).

    ``in_place`` swaps the channels of ``image`` itself, a band of rows at a time: OpenCV's own
    in-place conversion still allocates a full-size temporary, which for a 24000x16000 output
    is 1.15 GB.
    """
    if image.ndim == 2 or image.shape[2] == 1:
        return image
    if image.shape[2] == 2:
        return np.concatenate([image[:, :, :1]] * 3 + [image[:, :, 1:]], axis=2)
    code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
    if not (in_place and image.flags.c_contiguous):
        return cv2.cvtColor(image, code)
    band = max(1, (16 << 20) // max(1, image[0].nbytes))  # ~16 MB of rows at a time
    for top in range(0, image.shape[0], band):
        rows = image[top:top + band]
        cv2.cvtColor(rows, code, dst=rows)
    return image


def write_image(path: str | Path, image: np.ndarray, quality: int = 95, reuse: bool = False) -> None:
    """Write a uint8/uint16 (H, W[, C]) gray/gray+alpha/RGB/RGBA array; 16-bit needs PNG or TIFF.

    OpenCV's encoder streams rows straight to the file (``imencode`` would hold the whole
    compressed image in memory, twice). It wants BGR: ``reuse=True`` lets it reorder ``image``'s
    channels in place instead of copying an output-sized array, for callers done with ``image``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unsupported output format '{suffix}'")
    if image.dtype == np.uint16 and suffix not in (".png", ".tif", ".tiff"):
        raise ImageError(f"{path}: 16-bit output needs .png or .tif")
    bgr = _to_bgr(image, in_place=reuse)
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]

    def write(tmp: str) -> None:
        try:
            ok = cv2.imwrite(tmp, bgr, params)
        except cv2.error as exc:
            raise ImageError(f"{path}: cannot encode image as {suffix} ({str(exc).strip().splitlines()[-1]})") from None
        if not ok:
            raise ImageError(f"{path}: cannot encode image as {suffix}")

    atomic_write(path, write, suffix=f".tmp{suffix}")
