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
