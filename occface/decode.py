"""Robust image decoding: any common file in, 8-bit RGB out, or a clear reason why not.

Accepts JPEG, PNG, BMP, TIFF, PGM/PPM (anything Pillow reads).  EXIF
orientation is applied.  Grayscale, palette, alpha, 16-bit, 32-bit and CMYK
images are converted to (H, W, 3) uint8 RGB: alpha is dropped (composited on
black would invent a background colour; dropping keeps the stored pixels),
16-bit and float data are rescaled to 0..255 rather than clipped.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Refuse decompression bombs loudly instead of allocating gigabytes.
MAX_PIXELS = 100_000_000


class DecodeError(ValueError):
    """The file is not a usable image.  ``reason`` is a short stable code, ``detail`` the message."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        # 16-bit sources: scale by the type's range when values use it, else by 16-bit anyway
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return np.clip(np.rint(arr.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    arr = arr.astype(np.float64)
    hi = 1.0 if arr.max(initial=0) <= 1.0 else arr.max()
    return np.clip(np.rint(arr / hi * 255.0), 0, 255).astype(np.uint8)


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Convert any Pillow image to (H, W, 3) uint8 RGB."""
    mode = img.mode
    if mode in ("RGB",):
        return np.asarray(img, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = _to_uint8(np.asarray(img))
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA" if mode != "LA" else "LA")
        arr = np.asarray(img)
        if arr.ndim == 3 and arr.shape[2] == 2:  # LA
            return np.repeat(arr[..., :1], 3, axis=2).copy()
        return arr[..., :3].copy()
    if mode == "P":
        return np.asarray(img.convert("RGBA"))[..., :3].copy()
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _decode_plain_jpeg(data: bytes):
    """Fast path for complete 8-bit RGB / grayscale JPEGs (most face photos): OpenCV's decoder is
    ~3x faster than Pillow's here.  Pillow still parses the header (cheap, lazy) to rule out CMYK and
    to read the EXIF orientation, which OpenCV applies itself.  Anything else returns None and takes
    the general Pillow path, which also reports truncation."""
    if data[:3] != b"\xff\xd8\xff" or data.rstrip(b"\x00\r\n ")[-2:] != b"\xff\xd9":
        return None
    import cv2

    try:
        img = Image.open(io.BytesIO(data))
        if img.format != "JPEG" or img.mode not in ("RGB", "L") or img.width * img.height > MAX_PIXELS:
            return None
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        mode = img.mode
    except Exception:  # noqa: BLE001 - let the general path classify it
        return None
    # A grayscale JPEG decoded as grayscale skips the colour conversion inside libjpeg; both flags
    # apply the EXIF orientation (IMREAD_UNCHANGED would not).
    flag = cv2.IMREAD_GRAYSCALE if mode == "L" else cv2.IMREAD_COLOR
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if raw is None:
        return None
    if raw.ndim == 2 and mode == "L":
        rgb = cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
    elif raw.ndim == 3 and raw.shape[2] == 3 and mode == "RGB":
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    else:
        return None
    info = {"format": "JPEG", "mode": mode, "size": [rgb.shape[1], rgb.shape[0]], "exif_orientation": orientation}
    return rgb, info


def decode_image(source) -> tuple[np.ndarray, dict]:
    """Decode a path or bytes to ``(rgb, info)``.

    ``rgb``: (H, W, 3) uint8.  ``info``: ``{"format", "mode", "size", "exif_transposed"}``.
    Raises :class:`DecodeError` with a reason code (``empty``, ``not_an_image``,
    ``truncated``, ``too_large``, ``unreadable``).
    """
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise DecodeError("unreadable", str(exc)) from exc
    if not data:
        raise DecodeError("empty", "zero-byte file")
    fast = _decode_plain_jpeg(data)
    if fast is not None:
        return fast
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > MAX_PIXELS:
                raise DecodeError("too_large", f"{img.width}x{img.height} exceeds {MAX_PIXELS} pixels")
            fmt = img.format
            img.load()
            orientation = int(img.getexif().get(0x0112, 1) or 1)
            if orientation != 1:
                img = ImageOps.exif_transpose(img)
            info = {
                "format": fmt,
                "mode": img.mode,
                "size": [img.width, img.height],
                "exif_orientation": orientation,
            }
            rgb = pil_to_rgb(img)
    except DecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise DecodeError("not_an_image", "cannot identify image format") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError("too_large", str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        reason = "truncated" if "truncat" in msg.lower() or isinstance(exc, EOFError) else "corrupt"
        raise DecodeError(reason, msg or type(exc).__name__) from exc
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise DecodeError("corrupt", f"unexpected decoded shape {rgb.shape}")
    return np.ascontiguousarray(rgb), info
