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

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from repsr.atomic import atomic_write
from repsr.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
Image.MAX_IMAGE_PIXELS = 40000 * 40000  # still a guard against decompression bombs, but for real photos


@dataclass
class LoadedImage:
    """An image split into what the network sees and what is carried around it."""

    rgb: np.ndarray  # float32, (H, W, 3), RGB in [0, 1]
    alpha: np.ndarray | None  # float32, (H, W) in [0, 1], or None
    gray: bool  # the source had a single colour channel
    bit_depth: int  # 8 or 16

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 25:
        return head[24]
    return 8


def _read_with_opencv(path: Path) -> np.ndarray:
    import cv2

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
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "not an image or corrupt" if isinstance(exc, UnidentifiedImageError) else str(exc).split("\n")[0]
        raise ImageError(f"{path}: cannot read image ({reason})") from None
    return from_array(arr, str(path))


def from_array(arr: np.ndarray, name: str = "<array>") -> LoadedImage:
    """Split a uint8/uint16 array of shape (H, W), (H, W, 1|2|3|4) into colour and alpha."""
    if arr.dtype == np.uint8:
        depth, peak = 8, 255.0
    elif arr.dtype == np.uint16:
        depth, peak = 16, 65535.0
    else:
        raise ImageError(f"{name}: unsupported pixel type {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or min(arr.shape[:2]) < 1:
        raise ImageError(f"{name}: unsupported image shape {arr.shape}")
    x = arr.astype(np.float32) / peak
    channels = x.shape[2]
    gray = channels in (1, 2)
    colour = np.repeat(x[:, :, :1], 3, axis=2) if gray else x[:, :, :3]
    alpha = x[:, :, -1] if channels in (2, 4) else None
    return LoadedImage(np.ascontiguousarray(colour), alpha, gray, depth)


def to_array(rgb: np.ndarray, alpha: np.ndarray | None, gray: bool, bit_depth: int) -> np.ndarray:
    """Quantise float RGB (+ alpha) in [0, 1] back to uint8/uint16, gray when the source was."""
    peak, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    colour = rgb.mean(axis=2, keepdims=True) if gray else rgb
    planes = [colour] if alpha is None else [colour, alpha[:, :, None]]
    x = np.concatenate(planes, axis=2)
    out = np.clip(np.rint(x * peak), 0, peak).astype(dtype)
    return out[:, :, 0] if out.shape[2] == 1 else out


def write_image(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Write a uint8/uint16 (H, W[, C]) RGB(A)/gray array; 16-bit needs PNG or TIFF."""
    import cv2

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unsupported output format '{suffix}'")
    if image.dtype == np.uint16 and suffix not in (".png", ".tif", ".tiff"):
        raise ImageError(f"{path}: 16-bit output needs .png or .tif")
    bgr = image
    if image.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        bgr = cv2.cvtColor(image, code)
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]
    ok, buf = cv2.imencode(suffix, bgr, params)
    if not ok:
        raise ImageError(f"{path}: cannot encode image as {suffix}")
    try:
        atomic_write(path, buf.tofile)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror})") from None
