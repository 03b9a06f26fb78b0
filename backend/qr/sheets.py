"""A printed sheet as a list of drawing operations, drawn twice from one layout: as a PDF page, and by Pillow.

A layout (``backend.qr.posters``) places text, shapes, codes and photos on a ``Canvas`` in
pixels at 300 dpi (y downwards). What it placed is kept as operations, never as a raster:

- ``Sheet.pdf_page()`` writes them as vectors (``backend.qr.pdf``): text in the embedded CJK
  font, codes as paths of modules, photos as the JPEG made for the box. A batch page is then a
  few kilobytes of drawing plus its photo, and no page raster (26 MB at 300 dpi) is ever made.
- ``Sheet.composite()`` draws them with Pillow at 300 dpi, and ``preview()`` halves that for
  the screen (A4 → 1240 px wide): the PNG preview and the tests' look at the ink.

Both measure text with the same advance widths (``backend.qr.fonts.FontProgram``), and Pillow
draws with basic layout (each glyph advancing by its width, no shaping), so lines break, centre
and end at the same places in both.

Text is fitted, never cut: wrapped at characters (or at the "·" of a minority name) and scaled
down until it fits its box.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from PIL import Image, ImageDraw, ImageOps

from backend.qr import fonts
from backend.qr.pdf import Content, PdfPage, jpeg_image
from backend.qr.render import QUIET_ZONE_MODULES, qr_modules

DPI = 300
MM = DPI / 25.4  # pixels per millimetre
PT_PER_PX = 72 / DPI
PREVIEW_REDUCTION = 2  # 300 → 150 dpi: A4 is 1240 px wide
# zlib's run-length strategy: on these white pages, smaller files than level 6 at the speed of level 1.
PNG_ENCODING = {"compress_level": 1, "compress_type": 3}
# Photos are printed at 200 dpi: as sharp as an office printer shows a photo 5 cm wide, and at
# a third of the bytes of 300 dpi (a real face at 48 × 64 mm: 25–40 KB).
PHOTO_DPI = 200
PHOTO_JPEG_QUALITY = 85

INK = (26, 26, 26)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)

LINE_SPACING = 1.3  # line pitch as a multiple of the font size
EM_ABOVE_BASELINE = 0.88  # a CJK em box: 880 of its 1,000 units above the baseline, 120 below
MIN_FONT_PX = 4  # below this nothing shrinks further (no field the database allows gets there)
# Punctuation that may not start a line (避头) or end one (避尾): kept with its neighbour.
NO_LINE_START = set("，。、；：？！）》」』”’〉】·…—,.;:?!)]}%")
NO_LINE_END = set("（《「『“‘〈【([{")
WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’._@/:-]*|\s+|.", re.DOTALL)

Colour = tuple[int, int, int]


def px(mm: float) -> int:
    """Millimetres at 300 dpi, in whole pixels."""
    return round(mm * MM)


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: left, top, right, bottom."""

    left: int
    top: int
    right: int
    bottom: int

    @classmethod
    def mm(cls, left: float, top: float, right: float, bottom: float) -> Box:
        """A box given in millimetres."""
        return cls(px(left), px(top), px(right), px(bottom))

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.right - self.left

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.bottom - self.top

    def as_tuple(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom)."""
        return (self.left, self.top, self.right, self.bottom)


# --- what a sheet is made of ---------------------------------------------------------------------


@dataclass(frozen=True)
class TextOp:
    """One line of text: its face, size in pixels, and where its baseline starts."""

    text: str
    weight: str
    size: int
    x: float
    baseline: float
    fill: Colour


@dataclass(frozen=True)
class RectOp:
    """A filled rectangle, its corners rounded by ``radius`` pixels."""

    box: Box
    fill: Colour
    radius: float = 0


@dataclass(frozen=True)
class LineOp:
    """A straight line, dashed when ``dash`` (the length of a dash, in pixels) is given."""

    x1: float
    y1: float
    x2: float
    y2: float
    width: float
    fill: Colour
    dash: float = 0


@dataclass(frozen=True)
class CodeOp:
    """A QR code: its modules, in a square box whose edge holds the 4-module quiet zone."""

    url: str
    modules: tuple[tuple[bool, ...], ...] = field(repr=False)
    box: Box

    @property
    def module(self) -> float:
        """The side of one module, in pixels."""
        return self.box.width / (len(self.modules) + 2 * QUIET_ZONE_MODULES)

    @property
    def symbol(self) -> Box:
        """The box of the modules alone, without the quiet zone."""
        quiet = round(self.module * QUIET_ZONE_MODULES)
        return Box(self.box.left + quiet, self.box.top + quiet, self.box.right - quiet, self.box.bottom - quiet)


@dataclass(frozen=True)
class PhotoOp:
    """A photo, encoded as a JPEG of ``size`` pixels for its box."""

    jpeg: bytes = field(repr=False)
    size: tuple[int, int]
    box: Box


@dataclass(frozen=True)
class TurnedOp:
    """Operations turned by 180° about the sheet's centre, landing inside ``area`` (a folded card's upper half)."""

    ops: tuple[object, ...] = field(repr=False)
    area: Box


@dataclass(frozen=True)
class PlacedText:
    """A line of text drawn on a sheet and the box of its em squares (for tests: nothing crosses the margins)."""

    text: str
    box: tuple[int, int, int, int]
    role: str
    size: int = 0  # font size in pixels


@dataclass(frozen=True)
class PlacedCode:
    """A QR code on a sheet: the URL it holds, its box including the quiet zone, and the modules' box."""

    url: str
    box: Box
    symbol: Box


# --- fitting text --------------------------------------------------------------------------------


def text_width(text: str, weight: str, size: float) -> float:
    """How wide ``text`` is set at ``size`` pixels: the sum of its advance widths, as both drawings place it."""
    return fonts.font_program(weight).width(text, size)


@dataclass(frozen=True)
class FittedText:
    """Text broken into lines at one font size."""

    lines: tuple[str, ...]
    weight: str
    size: int

    @property
    def pitch(self) -> int:
        """Distance from one baseline to the next."""
        return round(self.size * LINE_SPACING)

    @property
    def height(self) -> int:
        """Height the lines take."""
        return lines_height(len(self.lines), self.size)


def text_tokens(text: str, breaks: str = "") -> list[str]:
    """Pieces a line may break between: characters, Latin words, punctuation kept with its neighbour.

    With ``breaks``, lines break only after those characters while the pieces fit: a name
    breaks at its "·" (阿卜杜热合曼· | 买买提依明), a sentence at its commas.
    """
    if breaks and any(ch in text for ch in breaks):
        return [part for part in re.split(f"(?<=[{re.escape(breaks)}])", text) if part]
    tokens: list[str] = []
    glue_next = False
    for piece in WORD_RE.findall(text):
        if tokens and (glue_next or piece[0] in NO_LINE_START):
            tokens[-1] += piece
        else:
            tokens.append(piece)
        glue_next = piece[-1] in NO_LINE_END
    return tokens


def wrap(tokens: list[str], measure: Callable[[str], float], width: float) -> list[str]:
    """Greedy line breaking of ``tokens`` into lines at most ``width`` wide (a piece too wide is split into characters)."""
    lines: list[str] = []
    line = ""
    for token in tokens:
        pieces = [token] if measure(token) <= width else list(token)
        for piece in pieces:
            candidate = line + piece
            if not line or measure(candidate) <= width:
                line = candidate
            else:
                lines.append(line.rstrip())
                line = piece.lstrip()
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


def wrap_at(tokens: list[str], weight: str, size: int, width: float) -> list[str]:
    """``wrap`` with the face of ``weight`` at ``size`` pixels."""
    program = fonts.font_program(weight)
    return wrap(tokens, lambda text: program.width(text, size), width)


def lines_height(count: int, size: int) -> int:
    """Height ``count`` lines at ``size`` take: full pitches, then the last line's em box and room for descenders."""
    return (count - 1) * round(size * LINE_SPACING) + round(size * 1.12)


def fit_text(
    text: str,
    width: int,
    height: int,
    weight: str,
    max_size: int,
    min_size: int,
    max_lines: int | None = None,
    breaks: str = "",
) -> FittedText:
    """The largest size at which ``text`` fits ``width × height`` in at most ``max_lines`` lines.

    Below ``min_size`` the line limit is dropped and the size keeps shrinking: text is made
    smaller rather than cut or let out of its box.
    """
    text = " ".join(text.split())
    tokens = text_tokens(text, breaks)
    size = max_size
    while True:
        lines = wrap_at(tokens, weight, size, width)
        limit = max_lines if size >= min_size else None
        fits = (limit is None or len(lines) <= limit) and lines_height(len(lines), size) <= height
        if fits or size <= MIN_FONT_PX:
            return FittedText(lines=tuple(lines), weight=weight, size=size)
        size = min(size - 1, int(size * 0.95))


# --- a sheet and its two drawings ----------------------------------------------------------------


@dataclass
class Sheet:
    """One printed page: its paper size, the operations that draw it, and what was placed where."""

    size_mm: tuple[float, float]
    ops: list[object] = field(default_factory=list)
    texts: list[PlacedText] = field(default_factory=list)
    codes: list[PlacedCode] = field(default_factory=list)

    @property
    def size_px(self) -> tuple[int, int]:
        """The page at 300 dpi, in whole pixels (A4: 2480 × 3508)."""
        return (px(self.size_mm[0]), px(self.size_mm[1]))

    def composite(self) -> Image.Image:
        """The page drawn by Pillow at 300 dpi, as it prints."""
        image = Image.new("RGB", self.size_px, WHITE)
        _draw_ops(image, self.ops)
        return image

    def preview(self) -> Image.Image:
        """The page at 150 dpi (A4: 1240 × 1754 px), for the screen."""
        return self.composite().reduce(PREVIEW_REDUCTION)

    def preview_png(self) -> bytes:
        """The preview as PNG bytes."""
        out = io.BytesIO()
        self.preview().save(out, format="PNG", **PNG_ENCODING)
        return out.getvalue()

    def pdf_page(self) -> PdfPage:
        """The page as vectors, at the true paper size (A4: 595.28 × 841.89 pt)."""
        width_pt = round(self.size_mm[0] * 72 / 25.4, 2)
        height_pt = round(self.size_mm[1] * 72 / 25.4, 2)
        content = Content(width_pt, height_pt, width_pt / self.size_px[0])
        _pdf_ops(content, self.ops, self.size_px)
        return content.page()


def _draw_ops(image: Image.Image, ops: list[object] | tuple[object, ...]) -> None:
    """Draw ``ops`` on ``image`` (300 dpi) with Pillow."""
    draw = ImageDraw.Draw(image)
    for op in ops:
        if isinstance(op, TextOp):
            font = fonts.poster_font(op.weight, op.size)
            draw.text((op.x, op.baseline), op.text, font=font, fill=op.fill, anchor="ls")
        elif isinstance(op, RectOp):
            if op.radius:
                draw.rounded_rectangle(op.box.as_tuple(), radius=round(op.radius), fill=op.fill)
            else:
                draw.rectangle((op.box.left, op.box.top, op.box.right - 1, op.box.bottom - 1), fill=op.fill)
        elif isinstance(op, LineOp):
            width = max(1, round(op.width))
            if op.dash:
                x = op.x1
                while x < op.x2:
                    draw.line([(x, op.y1), (min(x + op.dash, op.x2), op.y2)], fill=op.fill, width=width)
                    x += 2 * op.dash
            else:
                draw.line([(op.x1, op.y1), (op.x2, op.y2)], fill=op.fill, width=width)
        elif isinstance(op, CodeOp):
            image.paste(_code_image(op), (op.box.left, op.box.top))
        elif isinstance(op, PhotoOp):
            with Image.open(io.BytesIO(op.jpeg)) as photo:
                image.paste(photo.convert("RGB").resize((op.box.width, op.box.height)), (op.box.left, op.box.top))
        elif isinstance(op, TurnedOp):
            turned = Image.new("RGB", image.size, WHITE)
            _draw_ops(turned, op.ops)
            turned = turned.rotate(180)
            image.paste(turned.crop(op.area.as_tuple()), (op.area.left, op.area.top))
            draw = ImageDraw.Draw(image)
        else:
            raise TypeError(f"unknown drawing operation {op!r}")


def _code_image(op: CodeOp) -> Image.Image:
    """The code at its box's size: one pixel a module, then scaled without smoothing (sharp black and white)."""
    count = len(op.modules) + 2 * QUIET_ZONE_MODULES
    symbol = Image.new("1", (count, count), 1)
    pixels = symbol.load()
    for row, cells in enumerate(op.modules):
        for column, dark in enumerate(cells):
            if dark:
                pixels[column + QUIET_ZONE_MODULES, row + QUIET_ZONE_MODULES] = 0
    return symbol.resize((op.box.width, op.box.height), Image.Resampling.NEAREST).convert("RGB")


def _pdf_ops(content: Content, ops: list[object] | tuple[object, ...], size_px: tuple[int, int]) -> None:
    """Write ``ops`` into a page's content stream, in the sheet's pixel coordinates."""
    for op in ops:
        if isinstance(op, TextOp):
            content.text(fonts.font_program(op.weight), op.size, op.x, op.baseline, op.text, op.fill)
        elif isinstance(op, RectOp):
            box = op.box
            if op.radius:
                content.rounded_rect(box.left, box.top, box.width, box.height, op.radius, op.fill)
            else:
                content.rect(box.left, box.top, box.width, box.height, op.fill)
        elif isinstance(op, LineOp):
            content.line(op.x1, op.y1, op.x2, op.y2, op.width, op.fill, op.dash)
        elif isinstance(op, CodeOp):
            module = op.module
            quiet = module * QUIET_ZONE_MODULES
            content.modules(op.modules, op.box.left + quiet, op.box.top + quiet, module, BLACK)
        elif isinstance(op, PhotoOp):
            image = jpeg_image(op.jpeg, op.size[0], op.size[1], "RGB")
            content.image(image, op.box.left, op.box.top, op.box.width, op.box.height)
        elif isinstance(op, TurnedOp):
            content.save()
            content.turn_half(size_px[0] / 2, size_px[1] / 2)
            _pdf_ops(content, op.ops, size_px)
            content.restore()
        else:
            raise TypeError(f"unknown drawing operation {op!r}")


# --- drawing on a sheet --------------------------------------------------------------------------


class Canvas:
    """Lays out a new sheet (starting from a template's operations) and records what went where."""

    def __init__(self, size_mm: tuple[float, float], template: Sheet | None = None) -> None:
        self.sheet = Sheet(size_mm)
        if template is not None:
            self.sheet.ops += template.ops
            self.sheet.texts += template.texts
            self.sheet.codes += template.codes

    def text(
        self,
        text: str,
        box: Box,
        weight: str = "regular",
        max_mm: float = 5.0,
        min_mm: float = 2.5,
        fill: Colour = INK,
        align: str = "left",
        valign: str = "top",
        max_lines: int | None = None,
        breaks: str = "",
        role: str = "text",
    ) -> FittedText:
        """Fit ``text`` into ``box`` and draw it; returns the fitting."""
        fitted = fit_text(text, box.width, box.height, weight, px(max_mm), px(min_mm), max_lines, breaks)
        self.lines(fitted, box, fill=fill, align=align, valign=valign, role=role)
        return fitted

    def lines(
        self,
        fitted: FittedText,
        box: Box,
        fill: Colour = INK,
        align: str = "left",
        valign: str = "top",
        role: str = "text",
    ) -> None:
        """Draw fitted lines in ``box``: each line's CJK em box sits on the line, 0.88 of it above the baseline."""
        top = box.top
        if valign == "middle":
            top = box.top + (box.height - fitted.height) // 2
        for number, line in enumerate(fitted.lines):
            baseline = top + number * fitted.pitch + round(fitted.size * EM_ABOVE_BASELINE)
            width = text_width(line, fitted.weight, fitted.size)
            x = box.left + (box.width - width) / 2 if align == "center" else box.left
            self.sheet.ops.append(TextOp(line, fitted.weight, fitted.size, x, baseline, fill))
            em_top = baseline - round(fitted.size * EM_ABOVE_BASELINE)
            em_box = (int(x), em_top, int(x + width + 0.999), em_top + fitted.size)
            self.sheet.texts.append(PlacedText(text=line, box=em_box, role=role, size=fitted.size))

    def code(self, url: str, box: Box) -> CodeOp:
        """The QR code of ``url`` in the square ``box`` (its quiet zone included)."""
        size = min(box.width, box.height)
        op = CodeOp(url=url, modules=qr_modules(url), box=Box(box.left, box.top, box.left + size, box.top + size))
        self.sheet.ops.append(op)
        self.sheet.codes.append(PlacedCode(url=url, box=op.box, symbol=op.symbol))
        return op

    def photo(self, jpeg: bytes | None, box: Box, initial: str, panel: Colour, ink: Colour) -> None:
        """The deputy's photo cropped to ``box``, or a pale panel with the first character of the name."""
        fitted = fitted_photo(jpeg, box) if jpeg else None
        if fitted is not None:
            data, size = fitted
            self.sheet.ops.append(PhotoOp(data, size, box))
            return
        self.sheet.ops.append(RectOp(box, panel))
        if initial:
            letter = fit_text(initial, box.width, box.height, "bold", box.width * 6 // 10, 10, 1)
            self.lines(letter, box, fill=ink, align="center", valign="middle", role="initial")

    def band(self, box: Box, fill: Colour) -> None:
        """A filled band with rounded corners."""
        self.sheet.ops.append(RectOp(box, fill, radius=px(3)))

    def rule(self, left_mm: float, right_mm: float, y_mm: float, fill: Colour, width_mm: float = 0.3) -> None:
        """A horizontal line."""
        self.sheet.ops.append(LineOp(px(left_mm), px(y_mm), px(right_mm), px(y_mm), max(1, px(width_mm)), fill))


def fitted_photo(jpeg: bytes, box: Box) -> tuple[bytes, tuple[int, int]] | None:
    """The photo cropped to the box's shape (faces sit high), as a JPEG at ``PHOTO_DPI``; None if unreadable."""
    size = (round(box.width * PHOTO_DPI / DPI), round(box.height * PHOTO_DPI / DPI))
    try:
        with Image.open(io.BytesIO(jpeg)) as original:
            original.draft("RGB", size)  # let the JPEG decoder scale down: faster
            picture = ImageOps.exif_transpose(original).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        current_app.logger.warning("unreadable deputy photo; printing the placeholder")
        return None
    picture = ImageOps.fit(picture, size, Image.Resampling.LANCZOS, centering=(0.5, 0.35))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=PHOTO_JPEG_QUALITY, optimize=True)
    return out.getvalue(), size
