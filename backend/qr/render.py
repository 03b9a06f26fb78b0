"""QR code images of a code URL: PNG for screens and SVG for print."""

from __future__ import annotations

import io

import qrcode
import qrcode.constants
import qrcode.image.svg
from PIL import Image

QUIET_ZONE_MODULES = 4  # the width ISO/IEC 18004 requires around the symbol


def _qr(url: str, box_size: int) -> qrcode.QRCode:
    """The smallest symbol holding ``url`` at error correction M, with a 4-module quiet zone."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=QUIET_ZONE_MODULES)
    qr.add_data(url)
    qr.make(fit=True)
    return qr


def qr_modules(url: str) -> tuple[tuple[bool, ...], ...]:
    """The symbol of ``url`` as rows of modules (True: dark), without the quiet zone: posters draw it as vectors."""
    qr = _qr(url, box_size=1)
    qr.border = 0
    return tuple(tuple(bool(dark) for dark in row) for row in qr.get_matrix())


def qr_png(url: str, size: int) -> bytes:
    """A black-on-white PNG of ``url``, ``size`` pixels square, modules scaled without blurring."""
    # One pixel per module, then nearest-neighbour to the size asked: modules stay sharp black
    # and white (no grey edges); at a non-integer ratio they differ by at most one pixel.
    image = _qr(url, box_size=1).make_image(fill_color="black", back_color="white").get_image().convert("1")
    image = image.resize((size, size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def qr_svg(url: str, size: int) -> bytes:
    """A standalone SVG of ``url`` (one path, white background), displayed ``size`` pixels square."""
    # The fill variant of SvgPathImage: a transparent background would lose the quiet zone on a coloured poster.
    # box_size 10 is one SVG user unit per module: whole-number coordinates, no seams between modules.
    image = _qr(url, box_size=10).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    # qrcode sizes SVGs in millimetres; the viewBox keeps it scalable, width/height give the display size.
    root = image.get_image()
    root.set("width", str(size))
    root.set("height", str(size))
    return image.to_string(encoding="UTF-8", xml_declaration=True)
