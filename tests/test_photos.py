"""Photo intake: only real JPEG/PNG content gets in, huge images are refused from their header,
and what is stored is an upright, bounded JPEG with no metadata left in it."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms

from backend.errors import UserError
from backend.items.photos import process_photo
from tests.helpers import run_to_end

# Photo intake is image processing: the database engine does not matter (tests/conftest.py: SQLite suite only).
pytestmark = pytest.mark.engine_independent(reason="image processing, nothing stored")

ROOT = Path(__file__).resolve().parent.parent
RED, BLUE = (220, 20, 20), (20, 20, 220)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def two_halves(size: tuple[int, int], mode: str = "RGB", left=RED, right=BLUE) -> Image.Image:
    """An image whose left half is ``left`` and right half ``right``."""
    image = Image.new(mode, size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def noise(size: tuple[int, int]) -> Image.Image:
    """Incompressible pixels, so that encoded files are realistically large."""
    return Image.frombytes("RGB", size, random.Random(7).randbytes(size[0] * size[1] * 3))


def near(pixel, colour, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def refused(data: bytes) -> UserError:
    with pytest.raises(UserError) as info:
        process_photo(data)
    assert info.value.status == 400
    assert info.value.field == "photos"
    assert info.value.message
    return info.value


def assert_clean_jpeg(jpeg: bytes) -> Image.Image:
    """The bytes are a baseline-free (progressive) RGB JPEG carrying no metadata at all."""
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    assert image.info.get("progressive") or image.info.get("progression")
    assert not set(image.info) & {"exif", "xmp", "icc_profile", "comment", "photoshop", "adobe"}
    assert len(image.getexif()) == 0
    assert b"Exif\x00\x00" not in jpeg
    assert b"http://ns.adobe.com/xap/1.0/" not in jpeg
    assert b"ICC_PROFILE" not in jpeg
    return image


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    """A 12000×9000 (108 megapixel) PNG: one bit per pixel compresses it to a few kilobytes."""
    path = tmp_path_factory.mktemp("photos") / "huge.png"
    Image.new("1", (12000, 9000)).save(path, "PNG", optimize=True)
    return path


# -- what comes out ---------------------------------------------------------------------------


def test_exif_orientation_is_applied_and_all_metadata_removed(app):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: turn 90° clockwise to show
    exif[ExifTags.Base.Make] = "Phone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (26.0, 29.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (113.0, 46.0, 12.0)
    source = encode(
        two_halves((20, 10)),
        "JPEG",
        quality=95,
        exif=exif,
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><tiff:Orientation>6</tiff:Orientation></x:xmpmeta>',
        comment=b"resident home address",
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    )
    original = Image.open(io.BytesIO(source))
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really carries GPS
    assert {"xmp", "comment", "icc_profile"} <= set(original.info)

    photo = process_photo(source)

    image = assert_clean_jpeg(photo.jpeg)
    assert (photo.width, photo.height) == image.size == (10, 20)
    rgb = image.convert("RGB")
    # Turned clockwise, the left (red) half is now on top.
    assert near(rgb.getpixel((5, 2)), RED)
    assert near(rgb.getpixel((5, 17)), BLUE)
    assert photo.sha256 == hashlib.sha256(photo.jpeg).hexdigest()


def test_png_transparency_is_flattened_on_white(app):
    image = two_halves((40, 20), "RGBA", left=(0, 0, 0, 0), right=(*BLUE, 255))
    photo = process_photo(encode(image, "PNG"))
    out = assert_clean_jpeg(photo.jpeg)
    assert out.size == (40, 20)
    assert near(out.getpixel((5, 10)), (255, 255, 255), 8)
    assert near(out.getpixel((35, 10)), BLUE)


def test_palette_png_with_transparent_index_is_flattened_on_white(app):
    image = two_halves((40, 20), "RGBA", left=(0, 0, 0, 0), right=(*RED, 255)).convert("P")
    source = encode(image, "PNG")
    assert Image.open(io.BytesIO(source)).mode == "P"
    out = assert_clean_jpeg(process_photo(source).jpeg)
    assert near(out.getpixel((5, 10)), (255, 255, 255), 8)
    assert near(out.getpixel((35, 10)), RED)


def test_cmyk_jpeg_becomes_rgb(app):
    photo = process_photo(encode(Image.new("CMYK", (30, 30), (0, 255, 255, 0)), "JPEG"))
    out = assert_clean_jpeg(photo.jpeg)
    assert near(out.getpixel((15, 15)), (237, 28, 36), 60)  # CMYK's pure red, roughly


@pytest.mark.parametrize(
    ("fmt", "size", "expected"),
    [("JPEG", (3000, 2000), (2048, 1365)), ("PNG", (2000, 3000), (1365, 2048)), ("JPEG", (1600, 1200), (1600, 1200))],
)
def test_large_photos_are_downscaled_to_the_longest_side_limit(app, fmt, size, expected):
    source = encode(two_halves(size), fmt, quality=90)
    photo = process_photo(source)
    out = assert_clean_jpeg(photo.jpeg)
    assert (photo.width, photo.height) == out.size == expected
    assert near(out.getpixel((10, 10)), RED)
    assert near(out.getpixel((expected[0] - 10, expected[1] - 10)), BLUE)


def test_a_large_sideways_jpeg_is_both_downscaled_and_turned_upright(app):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    photo = process_photo(encode(two_halves((4800, 3200)), "JPEG", quality=85, exif=exif))
    out = assert_clean_jpeg(photo.jpeg)
    assert out.size == (1365, 2048)
    assert near(out.getpixel((680, 10)), RED)
    assert near(out.getpixel((680, 2037)), BLUE)


def test_a_phone_sized_photo_is_reencoded_smaller_than_the_limit(app):
    source = encode(noise((2200, 1400)), "JPEG", quality=95)
    assert len(source) < app.config["PHOTO_MAX_BYTES"]
    photo = process_photo(source)
    assert (photo.width, photo.height) == (2048, 1303)
    assert len(photo.jpeg) < len(source)


# -- what is refused --------------------------------------------------------------------------


def gif_bytes() -> bytes:
    return encode(two_halves((20, 10)).convert("P"), "GIF")


def html_bytes() -> bytes:
    return "<!DOCTYPE html><html><head><script>alert(1)</script></head><body>照片</body></html>".encode()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("photo.jpg", encode(two_halves((20, 10)), "JPEG"))
    return out.getvalue()


def other_image_bytes(fmt: str) -> bytes:
    return encode(two_halves((20, 10)), fmt)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(gif_bytes, id="gif"),
        pytest.param(html_bytes, id="html"),
        pytest.param(zip_bytes, id="zip-containing-a-jpeg"),
        pytest.param(lambda: gzip.compress(encode(two_halves((20, 10)), "JPEG")), id="gzipped-jpeg"),
        pytest.param(lambda: other_image_bytes("BMP"), id="bmp"),
        pytest.param(lambda: other_image_bytes("TIFF"), id="tiff"),
        pytest.param(lambda: other_image_bytes("WEBP"), id="webp"),
        pytest.param(lambda: random.Random(3).randbytes(4096), id="random-bytes"),
        pytest.param(lambda: b"\xff\xd8\xff", id="jpeg-magic-only"),
        pytest.param(lambda: b"\x89PNG\r\n\x1a\n", id="png-signature-only"),
        pytest.param(lambda: b"", id="empty"),
    ],
)
def test_anything_but_jpeg_or_png_content_is_refused(app, make):
    assert refused(make()).code == "photo_bad_type"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_truncated_photo_is_refused(app, fmt):
    whole = encode(noise((400, 300)), fmt, quality=90)
    process_photo(whole)  # the whole file is fine
    assert refused(whole[: len(whole) * 6 // 10]).code == "photo_bad_type"


def test_over_the_byte_limit_is_refused_before_reading_the_content(app):
    limit = app.config["PHOTO_MAX_BYTES"]
    assert limit == 5 * 1024 * 1024
    error = refused(b"\x00" * (limit + 1))  # not even an image: the size is checked first
    assert error.code == "photo_too_large"
    assert "5 MB" in error.message


def test_a_real_photo_over_the_byte_limit_is_refused(app):
    source = encode(noise((1400, 1300)), "PNG")
    assert len(source) > app.config["PHOTO_MAX_BYTES"]
    assert refused(source).code == "photo_too_large"


def test_pixel_limit_is_inclusive(app):
    app.config["PHOTO_MAX_PIXELS"] = 100
    assert process_photo(encode(Image.new("RGB", (10, 10)), "PNG")).width == 10
    error = refused(encode(Image.new("RGB", (11, 10)), "PNG"))
    assert error.code == "photo_too_many_pixels"


def test_huge_png_is_refused_from_its_header_without_decoding(app, huge_png):
    source = huge_png.read_bytes()
    assert len(source) < app.config["PHOTO_MAX_BYTES"]
    tracemalloc.start()
    try:
        error = refused(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.code == "photo_too_many_pixels"
    assert "4000 万像素" in error.message
    assert peak < 50 * 1024 * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak resident size from Linux /proc")
def test_huge_png_refusal_keeps_process_memory_low(huge_png, tmp_path):
    """tracemalloc does not see Pillow's C buffers; the peak resident size of a fresh process does.

    The same process then decodes the file for real, to show the measurement would catch it.
    """
    script = textwrap.dedent(
        """
        import io, sys, warnings
        from PIL import Image
        from backend import create_app
        from backend.errors import UserError
        from backend.items.photos import process_photo

        def peak_mib():
            # VmHWM, unlike ru_maxrss, starts afresh at exec: it is this process's own peak.
            with open("/proc/self/status") as status:
                line = next(line for line in status if line.startswith("VmHWM:"))
            return int(line.split()[1]) // 1024

        data = open(sys.argv[1], "rb").read()
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
        with app.app_context():
            before = peak_mib()
            try:
                process_photo(data)
                print("accepted")
            except UserError as exc:
                print(exc.code)
            print(peak_mib() - before)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            before = peak_mib()
            Image.open(io.BytesIO(data)).load()
            print(peak_mib() - before)
        """
    )
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32}
    env.pop("DATABASE_URL", None)
    code, refusal_growth, decode_growth = run_to_end([sys.executable, "-c", script, str(huge_png)], env, ROOT).split()
    assert code == "photo_too_many_pixels"
    assert int(refusal_growth) < 50, f"refusing grew the process by {refusal_growth} MiB"
    assert int(decode_growth) > 90, "the probe cannot see a real decode; the check above proves nothing"


def test_pillow_bomb_guard_is_a_user_error_not_a_500(app, huge_png, monkeypatch):
    # Our own limit set above Pillow's: Pillow's DecompressionBombWarning (an error under pytest)…
    app.config["PHOTO_MAX_PIXELS"] = 10**9
    assert refused(huge_png.read_bytes()).code == "photo_too_many_pixels"
    # …and its DecompressionBombError (over twice its limit) both come out as our refusal.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    assert refused(encode(Image.new("RGB", (100, 50)), "PNG")).code == "photo_too_many_pixels"
