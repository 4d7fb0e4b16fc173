"""Reading and writing the images users actually have, without surprises.

Handles 8- and 16-bit PNG/TIFF, JPEG, WebP, GIF, grayscale, alpha, palette images and EXIF orientation.
Colour is returned as float32 RGB in [0, 1]; alpha separately (it is upscaled on its own, never
through the network); a grayscale source is remembered so it can be written back as grayscale.
Pillow silently truncates 16-bit colour PNGs to 8 bits, so those are read with OpenCV instead.
A conversion that changes colours or values (CMYK, CIELAB, 32-bit gray) is kept in
:attr:`LoadedImage.note` for the caller to say. Animated GIF, APNG and WebP are read a frame at a
time (:func:`read_frames`) and written with Pillow (:func:`write_animation`): OpenCV writes no
animation, no GIF and no gray + alpha. Every failure becomes a one-line :class:`ImageError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from repsr.atomic import atomic_write
from repsr.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
ANIMATED_SUFFIXES = (".gif", ".png", ".webp")  # formats that hold an animation (.png as APNG)
GRAY_ALPHA_SUFFIXES = (".png", ".tif", ".tiff")  # formats that store 8-bit gray + alpha as such
_PILLOW_FORMATS = {".gif": "GIF", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
Image.MAX_IMAGE_PIXELS = 40000 * 40000  # still a guard against decompression bombs, but for real photos


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image, kept in its own integer pixels; float views are made on demand.

    ``pixels`` is uint8 or uint16 (H, W, C) with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or
    4 (RGBA), as decoded. Float copies are four times larger than uint8, so a huge image is never
    converted as a whole by the upscaler: it asks for windows with :meth:`colour`.
    """

    pixels: np.ndarray
    note: str = ""  # what decoding changed beyond the layout (CMYK -> RGB, ...), for the caller to say

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


def _png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR; (8, -1) for anything else. Colour type 4 is gray + alpha."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 26:
        return head[24], head[25]
    return 8, -1


def _read_with_opencv(path: Path, gray_alpha: bool) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{path}: cannot decode image")
    if gray_alpha and img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, [0, 3]])  # OpenCV expands gray + alpha to BGRA; keep it gray
    if img.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
        img = cv2.cvtColor(img, code)
    return img


def _pillow_pixels(im: Image.Image) -> tuple[np.ndarray, str]:
    """A decoded Pillow image as uint8/uint16 gray, gray + alpha, RGB or RGBA, and what that changed.

    Palette, 1-bit, PA, RGBX, YCbCr and HSV images keep their colours (only the layout changes).
    CMYK and CIELAB have no exact RGB without colour management, and 32-bit gray no 8/16-bit form
    without clipping: those are converted and the returned note says so.
    """
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(im), ""
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im, dtype=np.uint32).astype(np.uint16), ""
    if mode == "I":
        values = np.asarray(im)
        clipped = bool(values.min() < 0 or values.max() > 65535)
        return np.clip(values, 0, 65535).astype(np.uint16), "32-bit integer gray clipped to 16 bits" if clipped else ""
    if mode == "F":
        return np.asarray(im.convert("L")), "32-bit float gray rounded to 8-bit gray (values outside 0-255 clipped)"
    if mode in ("CMYK", "LAB"):
        name = "CMYK" if mode == "CMYK" else "CIELAB"
        return np.asarray(im.convert("RGB")), f"{name} converted to RGB without colour management (colours may shift)"
    if mode == "1":
        return np.asarray(im.convert("L")), ""
    if mode in ("P", "PA"):
        return np.asarray(im.convert("RGBA" if im.has_transparency_data else "RGB")), ""
    if mode in ("YCbCr", "HSV", "RGBX"):
        return np.asarray(im.convert("RGB")), ""
    return np.asarray(im.convert("RGBA" if im.has_transparency_data else "RGB")), f"{mode} converted to RGB"


def _read_with_pillow(path: Path) -> tuple[np.ndarray, str]:
    with Image.open(path) as im:
        im.load()
        return _pillow_pixels(ImageOps.exif_transpose(im))


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turn what the decoders raise for a bad file into one :class:`ImageError` line naming ``path``.

    Anything else (a bug) passes through with its traceback.
    """
    try:
        yield
    except ImageError:
        raise
    except Image.DecompressionBombError:
        limit = (Image.MAX_IMAGE_PIXELS or 0) * 2 / 1e9
        raise ImageError(f"{path}: its header claims more than {limit:.1f} gigapixels (a decompression bomb or a "
                         "corrupt header); refused before decoding") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "not an image or corrupt" if isinstance(exc, UnidentifiedImageError) else str(exc).split("\n")[0]
        raise ImageError(f"{path}: cannot read image ({reason or type(exc).__name__})") from None


def read_image(path: str | Path) -> LoadedImage:
    """Read an image file into a :class:`LoadedImage`; raises :class:`ImageError` on any failure.

    An animated file gives its first frame (:func:`read_frames` gives them all).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    with _decoding(path):
        depth, colour_type = _png_header(path) if path.suffix.lower() == ".png" else (8, -1)
        arr, note = (_read_with_opencv(path, colour_type == 4), "") if depth == 16 else _read_with_pillow(path)
    return LoadedImage(from_array(arr, str(path)).pixels, note)


@dataclass(frozen=True)
class Animation:
    """What an animated GIF/APNG/WebP says about its frames, read in one pass over them (no frame kept).

    ``durations`` are milliseconds per frame; ``loop`` is the file's loop count as Pillow reads it
    (0: forever) or None when the file states none (a GIF without one plays once); ``alpha`` is
    whether any frame has transparency (then every frame is read as RGBA, so all have one layout).
    """

    path: Path
    size: tuple[int, int]
    durations: tuple[float, ...]
    loop: int | None
    alpha: bool

    @property
    def frames(self) -> int:
        return len(self.durations)


def count_frames(path: str | Path) -> int:
    """Frames in an animated GIF/APNG/WebP from its header; 1 for a still image or a file Pillow cannot open
    (its reader reports that when the file's turn comes)."""
    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1)) if im.format in ("GIF", "PNG", "WEBP") else 1
    except Exception:  # any header Pillow cannot parse counts as "not an animation" here
        return 1


def read_animation(path: str | Path) -> Animation:
    """Durations, loop count and transparency of every frame of ``path`` (decoded one at a time, then dropped)."""
    path = Path(path)
    with _decoding(path), Image.open(path) as im:
        durations, alpha = [], False
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            im.load()  # WebP sets a frame's duration when it is decoded
            durations.append(float(im.info.get("duration", 0) or 0))
            alpha = alpha or im.has_transparency_data
        im.seek(0)
        return Animation(path, im.size, tuple(durations), im.info.get("loop"), alpha)


def read_frames(animation: Animation) -> Iterator[LoadedImage]:
    """Every frame of ``animation`` as a whole 8-bit RGB or RGBA picture (what the viewer shows), one at a time."""
    mode = "RGBA" if animation.alpha else "RGB"
    with _decoding(animation.path), Image.open(animation.path) as im:
        for index in range(animation.frames):
            im.seek(index)
            yield LoadedImage(np.asarray(im.convert(mode)))


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
    y: np.ndarray = np.multiply(x, peak, dtype=np.float32 if x.dtype == np.float32 else np.float64)
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


def gif_frame(image: np.ndarray) -> Image.Image:
    """uint8 gray/gray+alpha/RGB/RGBA (H, W[, C]) -> the palette image a GIF stores.

    GIF holds at most 256 colours and 1-bit transparency: colours are reduced by median cut
    (Pillow's default for RGB, no dithering), and with alpha, pixels below half opacity take the
    palette's last index, which is marked transparent (255 colours are left for the rest).
    """
    if image.ndim == 2:
        image = image[:, :, None]
    colour = image[:, :, :3] if image.shape[2] >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
    alpha = image[:, :, -1] if image.shape[2] in (2, 4) else None
    frame = Image.fromarray(np.ascontiguousarray(colour)).quantize(256 if alpha is None else 255)
    if alpha is not None:
        palette = frame.getpalette() or []
        frame.putpalette(palette[:255 * 3] + [0] * (256 * 3 - min(len(palette), 255 * 3)))
        frame.paste(255, mask=Image.fromarray(np.where(alpha < 128, 255, 0).astype(np.uint8)))
        frame.info["transparency"] = 255
    return frame


def _save_with_pillow(path: Path, first: Image.Image, **params: object) -> None:
    """Encode with Pillow into a temporary file renamed onto ``path`` (see :func:`~repsr.atomic.atomic_write`)."""
    suffix = path.suffix.lower()

    def write(tmp: str) -> None:
        try:
            first.save(tmp, format=_PILLOW_FORMATS[suffix], **params)
        except OSError as exc:
            if exc.errno is not None:
                raise  # the storage's failure: atomic_write names it
            raise ImageError(f"{path}: cannot encode image as {suffix} ({exc})") from None
        except (ValueError, TypeError) as exc:
            raise ImageError(f"{path}: cannot encode image as {suffix} ({exc})") from None

    atomic_write(path, write, suffix=f".tmp{suffix}")


def write_animation(path: str | Path, frames: list[Image.Image], durations: tuple[float, ...], loop: int | None,
                    quality: int = 95) -> None:
    """Write Pillow frames (palette images from :func:`gif_frame` for .gif) as an animated GIF, APNG or WebP.

    Each frame is a whole picture: GIF frames are disposed to the background before the next
    (a transparent pixel must not show the frame before it), APNG frames replace the canvas.
    ``loop`` None (a GIF that states none, which plays once) is one play in APNG and WebP,
    whose encoders would otherwise loop forever. The encoders take every frame before the
    first byte is written: memory is the frames, in 8 bits (one byte per pixel for GIF).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATED_SUFFIXES:
        raise ImageError(f"{path}: {suffix} cannot hold an animation (use {', '.join(ANIMATED_SUFFIXES)})")
    params: dict[str, object] = {"save_all": True, "append_images": frames[1:],
                                 "duration": [round(d) for d in durations]}
    if loop is not None or suffix != ".gif":
        params["loop"] = 1 if loop is None else loop
    if suffix == ".gif":
        params["disposal"] = 2
    elif suffix == ".webp":
        params["quality"] = quality
    _save_with_pillow(path, frames[0], **params)


def write_image(path: str | Path, image: np.ndarray, quality: int = 95, reuse: bool = False) -> None:
    """Write a uint8/uint16 (H, W[, C]) gray/gray+alpha/RGB/RGBA array; 16-bit needs PNG or TIFF.

    OpenCV's encoder streams rows straight to the file (``imencode`` would hold the whole
    compressed image in memory, twice). It wants BGR: ``reuse=True`` lets it reorder ``image``'s
    channels in place instead of copying an output-sized array, for callers done with ``image``.
    OpenCV writes neither GIF nor gray + alpha: those go through Pillow (a GIF as :func:`gif_frame`;
    8-bit gray + alpha as such in PNG and TIFF, as RGBA with equal colour channels elsewhere).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unsupported output format '{suffix}'")
    if image.dtype == np.uint16 and suffix not in (".png", ".tif", ".tiff"):
        raise ImageError(f"{path}: 16-bit output needs .png or .tif")
    if suffix == ".gif":
        _save_with_pillow(path, gif_frame(image))
        return
    if image.ndim == 3 and image.shape[2] == 2 and image.dtype == np.uint8 and suffix in GRAY_ALPHA_SUFFIXES:
        _save_with_pillow(path, Image.fromarray(image), **({"compression": "tiff_lzw"} if suffix != ".png" else {}))
        return
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
