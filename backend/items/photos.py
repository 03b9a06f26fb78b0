"""Photo intake: accept a resident's JPEG or PNG and keep a clean, bounded JPEG of it.

Whatever the phone sent, what is stored is a fresh JPEG: recognised by its content (never by
file name or declared type), turned upright, flattened onto white, at most PHOTO_MAX_SIDE on
its longest side, and without EXIF (GPS!), XMP, ICC profile or comments.

Decoding is the costly part (a 40 MP PNG of 120 KB takes a second or two and a few hundred MB),
so each process decodes at most ``PHOTO_DECODES_PER_PROCESS`` photos at once; the others wait
for a turn up to ``PHOTO_DECODE_WAIT_SECONDS`` and are then refused (503). Submissions decode
after the throttle's check and outside any transaction (``backend.items.operations``).
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from backend.errors import UserError

# MPO is what Pillow calls a JPEG with extra frames (many phones write them); it is a JPEG.
JPEG_FORMATS = ("JPEG", "MPO")
ACCEPTED_FORMATS = ("JPEG", "PNG")
JPEG_QUALITY = 82

# What Pillow's decoders raise on damaged or hostile input.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error, zlib.error)

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class ProcessedPhoto:
    """A photo ready to store: re-encoded JPEG bytes, their size in pixels, and their SHA-256."""

    jpeg: bytes
    width: int
    height: int
    sha256: str


def photo_error(code: str, message: str, status: int = 400) -> UserError:
    """A refused photo, shown at the form's photo field (``photos``) wherever the photo came in."""
    return UserError(code, message, status, field="photos")


def too_many_photos(status: int = 400) -> UserError:
    """More photos than one message may carry (``ITEM_MAX_PHOTOS``): 400 with a form, 409 for one more later."""
    return photo_error("too_many_photos", f"最多上传{current_app.config['ITEM_MAX_PHOTOS']}张照片。", status)


def _bad_type(message: str = "只能上传 JPG 或 PNG 格式的照片，这个文件无法识别为照片。") -> UserError:
    return photo_error("photo_bad_type", message)


def _too_many_pixels(max_pixels: int) -> UserError:
    return photo_error(
        "photo_too_many_pixels", f"照片尺寸过大（超过 {max_pixels / 10_000:g} 万像素），请换一张较小的照片。"
    )


def check_photo_size(data: bytes) -> None:
    """Refuse an empty or oversized photo: the checks that need no decoding, so they come with the text's."""
    max_bytes = current_app.config["PHOTO_MAX_BYTES"]
    if not data:
        raise _bad_type("照片文件是空的，请重新选择。")
    if len(data) > max_bytes:
        raise photo_error(
            "photo_too_large", f"照片太大（超过 {max_bytes / 1024 / 1024:g} MB），请换一张或压缩后再上传。"
        )


def process_photo(data: bytes) -> ProcessedPhoto:
    """Check an uploaded photo and return it re-encoded as a clean JPEG; raise ``UserError`` if unusable."""
    config = current_app.config
    max_pixels, max_side = config["PHOTO_MAX_PIXELS"], config["PHOTO_MAX_SIDE"]
    check_photo_size(data)
    try:
        # Image.open reads the header only: the pixels are not decoded (nor allocated) yet.
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise _too_many_pixels(max_pixels)
            with decoding_turn():
                return _reencode(image, max_side)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, raised from Image.open (the warning is an error under pytest).
        raise _too_many_pixels(max_pixels) from None
    except UnidentifiedImageError:
        raise _bad_type() from None
    except DECODE_ERRORS:
        current_app.logger.info("photo refused as damaged", exc_info=True)
        raise _bad_type("照片文件不完整或已损坏，请重新选择。") from None


@contextmanager
def decoding_turn() -> Iterator[None]:
    """Hold one of this process's ``PHOTO_DECODES_PER_PROCESS`` decoding turns (503 ``busy`` when none comes
    free within ``PHOTO_DECODE_WAIT_SECONDS``): photos decoded at once cannot take a worker's memory."""
    config = current_app.config
    turns = current_app.extensions.get("photo_decoding")
    if turns is None:  # setdefault: two threads racing here end up sharing one
        turns = threading.BoundedSemaphore(max(1, config["PHOTO_DECODES_PER_PROCESS"]))
        turns = current_app.extensions.setdefault("photo_decoding", turns)
    if not turns.acquire(timeout=config["PHOTO_DECODE_WAIT_SECONDS"]):
        raise UserError("busy", "现在提交照片的人很多，请稍等一分钟后再提交。", 503, retry_after=60)
    try:
        yield
    finally:
        turns.release()


def _reencode(image: Image.Image, max_side: int) -> ProcessedPhoto:
    """Decode, turn upright, convert to sRGB on white, downscale and encode as JPEG without metadata."""
    box = (max_side, max_side)  # square, so it fits the same before and after turning upright
    # First of all: a JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg (Image.draft); any other
    # image is decoded whole once, then scaled down before the copies below (40 MP: 160 MB each).
    image.thumbnail(box)
    upright = ImageOps.exif_transpose(image)
    rgb = _to_srgb_on_white(upright)
    rgb.thumbnail(box, Image.Resampling.LANCZOS)
    rgb.info = {}  # JPEG save would otherwise carry over a comment (and future keys) from the source
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    jpeg = out.getvalue()
    return ProcessedPhoto(jpeg=jpeg, width=rgb.width, height=rgb.height, sha256=hashlib.sha256(jpeg).hexdigest())


def _to_srgb_on_white(image: Image.Image) -> Image.Image:
    """An RGB image: colours converted from an embedded ICC profile to sRGB, transparency on white."""
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "CMYK"):
        # A phone's Display P3 photo would look dull if its profile were merely dropped.
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or mismatched profile: keep the pixels as they are
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")
