"""Robust image decoding: any common file in, 8-bit RGB out, or a clear reason why not.

Accepts JPEG, PNG, BMP, TIFF, PGM/PPM (anything Pillow reads).  EXIF
orientation is applied.  Grayscale, palette, alpha, 16-bit, 32-bit and CMYK
images are converted to (H, W, 3) uint8 RGB: alpha is dropped (composited on
black would invent a background colour; dropping keeps the stored pixels),
16-bit and float data are rescaled to 0..255 rather than clipped.

Strict: a file the decoder can only partly make sense of is refused, never
half-used.  A libjpeg warning about corrupt data (damaged entropy-coded bytes
decode to a band of garbage pixels), a PNG chunk whose CRC does not match, or
a Pillow warning about corrupt or truncated data is the reason ``corrupt``
with the decoder's message as the detail.  One size limit,
:data:`MAX_PIXELS`, holds for every format (Pillow's own, lower bomb limit is
not used).
"""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Refuse decompression bombs loudly instead of allocating gigabytes; the same limit for every format.
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


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _exif_orientation(app1: bytes) -> int | None:
    """Orientation tag (0x0112) from an APP1 Exif payload; 1 if absent; None if unparsable."""
    if app1[:6] != b"Exif\x00\x00":
        return 1
    tiff = app1[6:]
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return None
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return None
    for k in range(int.from_bytes(tiff[ifd : ifd + 2], order)):
        e = ifd + 2 + 12 * k
        if e + 12 > len(tiff):
            return None
        if int.from_bytes(tiff[e : e + 2], order) == 0x0112:
            return int.from_bytes(tiff[e + 8 : e + 10], order)
    return 1


def _jpeg_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(components, width, height, EXIF orientation) from the JPEG markers, or None when unsure."""
    pos, orientation = 2, 1
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        seg = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and seg[:4] == b"Exif":
            orientation = _exif_orientation(seg)
            if orientation is None:
                return None
        elif marker in _SOF:
            if len(seg) < 6:
                return None
            height, width = int.from_bytes(seg[1:3], "big"), int.from_bytes(seg[3:5], "big")
            return seg[5], width, height, orientation
        elif marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        pos += 2 + length
    return None


# ----------------------------------------------------------------------------- strictness

class _Stderr:
    """Collects what C code writes to file descriptor 2 while a decode runs.

    OpenCV's JPEG reader leaves libjpeg's warnings ("Corrupt JPEG data: premature end of
    data segment", ...) on libjpeg's default handler, which prints them and returns the
    image with the damaged part filled in; printing is the only sign of the damage.  So
    fd 2 is pointed at a private memory file for the duration of the call (five system
    calls, a few microseconds) and read back.  Text that is not a libjpeg warning is
    written on to the real stderr, so nothing another part of the program prints is lost.
    One capture file per process (a forked worker must not share the parent's offset).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._fd = -1

    def _capture_fd(self) -> int:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            if hasattr(os, "memfd_create"):
                self._fd = os.memfd_create("occface-decode-stderr", 0)
            else:  # pragma: no cover - non-Linux
                import tempfile

                self._fd = os.dup(tempfile.TemporaryFile().fileno())
        return self._fd

    def run(self, fn, *args):
        """``(fn(*args), text written to fd 2 meanwhile)``."""
        with self._lock:
            try:
                cap = self._capture_fd()
                saved = os.dup(2)
            except OSError:  # no usable fd 2 (a daemon): decode without the check
                return fn(*args), ""
            os.dup2(cap, 2)
            try:
                out = fn(*args)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            n = os.lseek(cap, 0, os.SEEK_CUR)
            if not n:
                return out, ""
            os.lseek(cap, 0, os.SEEK_SET)
            text = os.read(cap, n).decode("utf-8", "replace")
            os.lseek(cap, 0, os.SEEK_SET)
            os.ftruncate(cap, 0)
        return out, text


_STDERR = _Stderr()
# libjpeg's warning texts (jerror.h: JWRN_*) that mean the pixels are not what was encoded.
_JPEG_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file", "Invalid SOS parameters",
                "Inconsistent progression sequence", "Application transferred too few scanlines")


def imdecode_strict(data: bytes, flag: int):
    """``cv2.imdecode`` that raises :class:`DecodeError` ``corrupt`` when libjpeg warned about the data."""
    import cv2

    raw, text = _STDERR.run(cv2.imdecode, np.frombuffer(data, np.uint8), flag)
    damage, other = [], []
    for line in text.splitlines():
        (damage if any(m in line for m in _JPEG_DAMAGE) else other).append(line)
    if other:  # not ours: pass it on
        os.write(2, ("\n".join(other) + "\n").encode("utf-8", "replace"))
    if damage:
        raise DecodeError("corrupt", damage[0].strip())
    return raw


def _png_chunk_problem(data: bytes) -> str | None:
    """The first PNG chunk whose CRC-32 does not match (zlib's crc32 runs at memory speed), or None."""
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            return None  # truncated: Pillow reports it
        if zlib.crc32(data[pos + 4 : end]) != int.from_bytes(data[end : end + 4], "big"):
            return f"broken PNG file: bad CRC in the {kind.decode('latin-1')!r} chunk at byte {pos}"
        if kind == b"IEND":
            return None
        pos = end + 4
    return None


# File signatures of the formats Pillow decodes here: a file that starts with one but that
# Pillow cannot open is a damaged image ("corrupt"), not "not an image".
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"),
)


def _damaged_format(data: bytes) -> tuple[str, str] | None:
    """(format, the format plugin's own error) when ``data`` has an image signature but does not open."""
    fmt = next((f for sig, f in _SIGNATURES if data.startswith(sig)), None)
    if fmt is None and data[:1] == b"P" and data[1:2] in b"123456" and len(data) > 2:
        fmt = "PPM"
    if fmt is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        fmt = "WEBP"
    if fmt is None:
        return None
    from PIL import Image as _I

    _I.init()
    factory = _I.OPEN.get(fmt, (None,))[0]
    if factory is None:
        return fmt, "cannot open it"
    try:
        factory(io.BytesIO(data)).close()
    except Exception as exc:  # noqa: BLE001 - the plugin's message is the detail
        return fmt, str(exc) or type(exc).__name__
    return fmt, "cannot open it"


def _corrupt_warning(caught) -> str | None:
    for w in caught:
        msg = str(w.message)
        if "corrupt" in msg.lower() or "truncat" in msg.lower():
            return msg
    return None


# ----------------------------------------------------------------------------- decoding

def _decode_plain_jpeg(data: bytes):
    """Fast path for complete 8-bit grayscale / 3-component JPEGs (most face photos).

    OpenCV's decoder is ~3x faster than Pillow's here, and a few lines of marker parsing replace
    Pillow's header parse: the frame header gives the component count (CMYK/YCCK and anything odd
    return None and take the general Pillow path, which also reports truncation), and the EXIF
    orientation is read for the record (OpenCV applies it itself).
    """
    if data[:3] != b"\xff\xd8\xff" or data.rstrip(b"\x00\r\n ")[-2:] != b"\xff\xd9":
        return None
    head = _jpeg_header(data)
    if head is None:
        return None
    components, width, height, orientation = head
    if components not in (1, 3) or not 0 < width * height <= MAX_PIXELS:
        return None
    import cv2

    # A grayscale JPEG decoded as grayscale skips the colour conversion inside libjpeg; both flags
    # apply the EXIF orientation (IMREAD_UNCHANGED would not).
    flag = cv2.IMREAD_GRAYSCALE if components == 1 else cv2.IMREAD_COLOR
    raw = imdecode_strict(data, flag)
    if raw is None:
        return None
    if raw.ndim == 2:
        rgb = cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
    elif raw.ndim == 3 and raw.shape[2] == 3:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    else:
        return None
    info = {"format": "JPEG", "mode": "L" if components == 1 else "RGB", "size": [rgb.shape[1], rgb.shape[0]],
            "exif_orientation": orientation}
    return rgb, info


#: The keys of :func:`decode_image`'s ``info`` dict.
INFO_KEYS = ("format", "mode", "size", "exif_orientation")


def decode_image(source) -> tuple[np.ndarray, dict]:
    """Decode a path or bytes to ``(rgb, info)``.

    ``rgb``: (H, W, 3) uint8 RGB, upright.  ``info`` (:data:`INFO_KEYS`): ``"format"`` (``"JPEG"``,
    ``"PNG"``, ...), ``"mode"`` (the file's Pillow mode: ``"L"``, ``"RGB"``, ``"CMYK"``, ...),
    ``"size"`` ([width, height] of ``rgb``) and ``"exif_orientation"`` (the EXIF orientation tag,
    1..8, 1 when absent; any other value has been applied, so ``rgb`` is upright).
    Raises :class:`DecodeError` with a reason code (``empty``, ``not_an_image``,
    ``truncated``, ``corrupt``, ``too_large``, ``unreadable``).
    """
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise DecodeError("unreadable", exc.strerror or str(exc)) from exc
    if not data:
        raise DecodeError("empty", "zero-byte file")
    fast = _decode_plain_jpeg(data)
    if fast is not None:
        return fast
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        bad = _png_chunk_problem(data)
        if bad:
            raise DecodeError("corrupt", bad)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # occface's limit (MAX_PIXELS, below) is the one that counts, the same for every format;
            # Pillow still raises DecompressionBombError far above it, reported as too_large too.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
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
        warned = _corrupt_warning(caught)
        if warned:
            raise DecodeError("corrupt", warned)
        if fmt == "JPEG":  # Pillow drops libjpeg's warnings: ask libjpeg through OpenCV (rare path: CMYK, odd JPEGs)
            import cv2

            imdecode_strict(data, cv2.IMREAD_UNCHANGED)
    except DecodeError:
        raise
    except UnidentifiedImageError as exc:
        damaged = _damaged_format(data)
        if damaged:
            raise DecodeError("corrupt", f"{damaged[0]} signature, but {damaged[1]}") from exc
        raise DecodeError("not_an_image", "cannot identify image format") from exc
    except Image.DecompressionBombError as exc:
        n = re.search(r"\((\d+) pixels\)", str(exc))
        raise DecodeError("too_large", f"{n.group(1) if n else 'more than ' + str(MAX_PIXELS)} pixels exceed "
                                       f"{MAX_PIXELS} pixels") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError, struct.error) as exc:
        msg = str(exc)
        reason = "truncated" if "truncat" in msg.lower() or isinstance(exc, EOFError) else "corrupt"
        raise DecodeError(reason, msg or type(exc).__name__) from exc
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise DecodeError("corrupt", f"unexpected decoded shape {rgb.shape}")
    return np.ascontiguousarray(rgb), info
