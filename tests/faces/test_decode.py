"""Decoding: every common format and pixel layout becomes 8-bit RGB; bad files get a reason."""

import io

import numpy as np
import pytest
from PIL import Image

from occface.faces.decode import INFO_KEYS, DecodeError, decode_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "PPM"])
def test_formats_decode_to_rgb_uint8(astronaut, fmt):
    crop = astronaut[37:37 + 101, 150:150 + 77]  # odd sizes on purpose
    data = _encode(Image.fromarray(crop), fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    rgb, info = decode_image(data)
    assert rgb.shape == (101, 77, 3) and rgb.dtype == np.uint8
    err = np.abs(rgb.astype(int) - crop)
    if fmt == "JPEG":  # lossy: small mean error only
        assert err.mean() < 4
    else:
        assert err.max() == 0
    assert info["format"] == fmt
    # the documented keys, on the fast JPEG path and on Pillow's alike
    assert tuple(info) == INFO_KEYS and info["size"] == [77, 101] and info["exif_orientation"] == 1


def test_pgm_grayscale_becomes_three_equal_channels(astronaut):
    gray = astronaut[..., 1][:63, :65]
    rgb, _ = decode_image(_encode(Image.fromarray(gray), "PPM"))  # Pillow writes P5 (PGM) for mode L
    assert rgb.shape == (63, 65, 3)
    assert (rgb[..., 0] == gray).all() and (rgb[..., 1] == gray).all() and (rgb[..., 2] == gray).all()


def test_sixteen_bit_is_rescaled_not_clipped():
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)  # 0..65520
    rgb, _ = decode_image(_encode(Image.fromarray(ramp), "PNG"))
    assert rgb.dtype == np.uint8
    assert rgb.max() >= 250 and rgb.min() == 0  # clipping would saturate almost everything at 255
    assert np.all(np.diff(rgb[..., 0].ravel().astype(int)) >= 0)  # monotone ramp survives


def test_alpha_is_dropped_and_cmyk_converted(astronaut):
    rgba = np.dstack([astronaut[:50, :50], np.full((50, 50), 7, np.uint8)])
    rgb, _ = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (rgb == astronaut[:50, :50]).all()
    cmyk = Image.fromarray(astronaut[:40, :40]).convert("CMYK")
    rgb, info = decode_image(_encode(cmyk, "JPEG", quality=98))
    assert rgb.shape == (40, 40, 3) and info["mode"] == "CMYK"
    assert np.abs(rgb.astype(int) - astronaut[:40, :40]).mean() < 12


def test_exif_orientation_is_applied(astronaut):
    img = Image.fromarray(astronaut[:30, :50])  # 50 wide, 30 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rgb, info = decode_image(_encode(img, "JPEG", exif=exif, quality=98))
    assert rgb.shape == (50, 30, 3) and info["exif_orientation"] == 6
    assert np.abs(rgb.astype(int) - np.rot90(astronaut[:30, :50], k=-1)).mean() < 8


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"this is a text file, not a photo\n" * 10, "not_an_image"),
    ],
)
def test_bad_bytes_get_reasons(data, reason):
    with pytest.raises(DecodeError) as err:
        decode_image(data)
    assert err.value.reason == reason


def test_truncated_and_corrupt_jpeg(astronaut):
    good = _encode(Image.fromarray(astronaut), "JPEG")
    with pytest.raises(DecodeError) as err:
        decode_image(good[: len(good) // 2])
    assert err.value.reason == "truncated"
    bad = bytearray(good)
    bad[200:4000] = b"\x00" * 3800  # wipe the tables and the start of the scan
    with pytest.raises(DecodeError):
        decode_image(bytes(bad))


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(DecodeError) as err:
        decode_image(str(tmp_path / "nope.jpg"))
    assert err.value.reason == "unreadable"


def test_exif_orientation_on_grayscale_jpeg(astronaut):
    gray = astronaut[:30, :50, 1]
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CCW to display"
    rgb, info = decode_image(_encode(Image.fromarray(gray), "JPEG", exif=exif, quality=98))
    assert rgb.shape == (50, 30, 3) and info["exif_orientation"] == 8 and info["mode"] == "L"
    assert np.abs(rgb[..., 0].astype(int) - np.rot90(gray, k=1)).mean() < 8


# ----------------------------------------------------------------------------- strictness

def _scan_damaged(jpeg: bytes) -> bytes:
    """The JPEG with 200 bytes in the middle of its entropy-coded scan scrambled (headers intact).

    (Damage whose bytes still form valid codes decodes without any warning and cannot be told
    from a real photo by any decoder; this damage is the kind libjpeg notices.)"""
    d = bytearray(jpeg)
    sos = d.find(b"\xff\xda")
    mid = sos + (len(d) - sos) // 2
    for i in range(mid, mid + 200):
        d[i] = (d[i] * 7 + 13) & 0xFF
    return bytes(d)


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_damaged_entropy_data_is_corrupt_not_a_face_with_garbage(astronaut, mode):
    img = Image.fromarray(astronaut).convert(mode)
    good = _encode(img, "JPEG", quality=90)
    decode_image(good)  # the intact file decodes
    with pytest.raises(DecodeError) as err:
        decode_image(_scan_damaged(good))
    assert err.value.reason == "corrupt"
    assert "Corrupt JPEG data" in err.value.detail  # libjpeg's own warning is the detail


def test_the_warning_capture_passes_other_stderr_text_through(capfd):
    import os

    from occface.faces import decode as D

    out, text = D._STDERR.run(lambda: os.write(2, b"hello from elsewhere\n") and 7)
    assert out == 7 and text == "hello from elsewhere\n"
    good = _encode(Image.fromarray(np.full((20, 20, 3), 90, np.uint8)), "JPEG")
    decode_image(good)
    assert capfd.readouterr().err == ""  # a clean decode prints nothing and leaves nothing behind


def _png_chunks(data: bytes):
    pos, out = 8, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        out.append((data[pos + 4:pos + 8], pos))
        pos += 12 + n
    return out


@pytest.mark.parametrize("chunk", [b"IHDR", b"IDAT"])
def test_png_with_a_bad_crc_is_corrupt(astronaut, chunk):
    data = bytearray(_encode(Image.fromarray(astronaut[:64, :64]), "PNG"))
    kind, pos = next(c for c in _png_chunks(bytes(data)) if c[0] == chunk)
    n = int.from_bytes(data[pos:pos + 4], "big")
    data[pos + 8 + n] ^= 0x01  # first CRC byte
    with pytest.raises(DecodeError) as err:
        decode_image(bytes(data))
    assert err.value.reason == "corrupt" and chunk.decode() in err.value.detail


def _png_header_only(w: int, h: int) -> bytes:
    import zlib

    def chunk(t, d):
        return len(d).to_bytes(4, "big") + t + d + zlib.crc32(t + d).to_bytes(4, "big")

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _jpeg_header_only(w: int, h: int) -> bytes:
    sof = b"\xff\xc0" + (11).to_bytes(2, "big") + b"\x08" + h.to_bytes(2, "big") + w.to_bytes(2, "big") + b"\x01\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


@pytest.mark.parametrize("make", [_png_header_only, _jpeg_header_only])
def test_one_size_limit_for_every_format(make):
    from occface.faces.decode import MAX_PIXELS

    # 95 MP is above Pillow's own bomb warning (89.5 MP) but below occface's limit: it is
    # decoded (and found truncated), not refused as too large
    with pytest.raises(DecodeError) as err:
        decode_image(make(10_000, 9_500))
    assert err.value.reason != "too_large"
    for w, h in ((10_001, 10_000), (20_000, 20_000)):  # just over; and over Pillow's hard limit
        assert w * h > MAX_PIXELS
        with pytest.raises(DecodeError) as err:
            decode_image(make(w, h))
        assert err.value.reason == "too_large", err.value


def test_a_damaged_header_of_a_known_format_is_corrupt_not_unknown():
    with pytest.raises(DecodeError) as err:
        decode_image(b"GIF89a" + b"\0" * 20)
    assert err.value.reason == "corrupt" and "GIF" in err.value.detail
