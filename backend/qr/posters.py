"""Posters and table cards with the QR codes, as a print shop takes them.

Every sheet is laid out in millimetres and drawn by Pillow at 300 dpi with Noto Sans CJK SC
(``backend.qr.fonts``). A sheet is kept as the raster of its text and shapes plus overlays
kept as they were encoded: each code as the 1-bit PNG ``backend.qr.render.qr_png`` makes at
print size, each photo as a JPEG. The PNG preview pastes the overlays in and halves the
resolution (A4 → 1240 px wide). The PDF (``backend.qr.pdf``) embeds, on a page of exactly A4
(595.28 × 841.89 pt) or A5, only the inked strips of the raster, losslessly (PNG's deflate
stream: text stays sharp), then the overlays byte for byte (modules stay exact squares).

Why raster and not vector text: the PNG preview and the PDF are then the same drawing from
one layout, and no PDF library at hand can both embed Noto CJK (CFF outlines) and stream;
at 300 dpi the text prints as sharp as office printers resolve. See ``backend.qr.pdf``.

- Deputy poster (A4): title, photo (or the first character of the name), name, levels,
  constituency, station, reception days, an 11 cm code and what happens after scanning.
- Station poster (A4): the station's code large and every serving deputy's code in a grid
  that shrinks with their number (双码); past what one page holds at a scannable size, the
  grid goes on over more pages.
- Table card (桌牌, A5 folded across the middle): name and code on both halves, the upper
  half upside down so the folded card reads from both sides of the table.

Text is fitted, never cut: wrapped at characters (or at the "·" of a minority name) and
scaled down until it fits its box.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from flask import current_app
from PIL import Image, ImageDraw, ImageFont, ImageOps
from sqlalchemy import select

from backend.errors import UserError
from backend.extensions import db
from backend.models import Deputy, DeputyStatus, Region, Station
from backend.models.deputy import DEPUTY_STATUS_LABELS
from backend.qr import fonts
from backend.qr.codes import code_url, current_code
from backend.qr.pdf import EmbeddedImage, PdfPage, Placement, jpeg_image, png_image, stream_pdf
from backend.qr.render import qr_png
from backend.stations.calendar import describe_rule

DPI = 300
MM = DPI / 25.4  # pixels per millimetre
PT_PER_MM = 72 / 25.4
A4_MM = (210.0, 297.0)
A5_MM = (148.0, 210.0)
MARGIN_MM = 12.0  # clear of what office printers cannot reach (about 5 mm)
PREVIEW_REDUCTION = 2  # 300 → 150 dpi: A4 is 1240 px wide
# zlib's run-length strategy: on these white pages, smaller files than level 6 at the speed of level 1.
PNG_ENCODING = {"compress_level": 1, "compress_type": 3}
PHOTO_JPEG_QUALITY = 88

RED = (190, 22, 34)
PALE_RED = (251, 236, 236)
CREAM = (255, 232, 170)
INK = (26, 26, 26)
GREY = (95, 95, 95)
RULE = (200, 200, 200)
WHITE = (255, 255, 255)

TITLE = "人大代表联系群众二维码"
SUBTITLE = "扫码给代表留言"
SCAN_CALL = "微信扫一扫 · 给代表留言"
AFTER_SCAN = "扫码后填写意见建议，提交后获得留言编号，代表答复会通过微信通知您，也可凭编号查询办理进展。"
STATION_SUBTITLE = "人大代表联系群众二维码（双码）"
STATION_CODE_LABEL = "联络站码"
STATION_CODE_HINT = "扫码可给本站任一代表或当天值班代表留言"
DEPUTY_CODES_HEADING = "代表码 · 扫码直接给代表本人留言"
NO_DEPUTIES = "本站暂无在任代表，扫联络站码留言由联络站工作人员处理。"
NO_RECEPTION = "以联络站公告为准"
CARD_CALL = "扫码给我留言"

# Station grid: each deputy's code at least this wide (3 px a module at a phone photo of the whole poster).
CELL_QR_MIN_MM = 25.0
CELL_QR_MAX_MM = 45.0  # well below the station code (62 mm): the station code is the one that stands out
CELL_NAME_MM = 8.0
MAX_GRID_COLUMNS = 6

NAME_BREAKS = "·"  # a minority name breaks between its parts (阿卜杜热合曼·买买提依明)
SENTENCE_BREAKS = "，。；"
LINE_SPACING = 1.3  # line pitch as a multiple of the font size
# Text is measured at this size and scaled while a size is being chosen: every size of a face
# opened costs FreeType about 2.5 MB, so only the sizes finally drawn are opened.
REFERENCE_SIZE = 256
MIN_FONT_PX = 4  # below this nothing shrinks further (no field the database allows gets there)
# Punctuation that may not start a line (避头) or end one (避尾): kept with its neighbour.
NO_LINE_START = set("，。、；：？！）》」』”’〉】·…—,.;:?!)]}%")
NO_LINE_END = set("（《「『“‘〈【([{")
WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’._@/-]*|\s+|.", re.DOTALL)


def px(mm: float) -> int:
    """Millimetres at 300 dpi, in whole pixels."""
    return round(mm * MM)


# --- what a sheet shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeputySheet:
    """What a deputy's poster and table card show, read from the database once."""

    name: str
    levels: tuple[str, ...]
    constituency: str
    station_name: str
    station_address: str
    reception: str
    url: str
    slug: str
    photo_jpeg: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DeputyCode:
    """One deputy's name and code, for the station poster's grid."""

    name: str
    url: str


@dataclass(frozen=True)
class StationSheet:
    """What a station's poster shows."""

    name: str
    address: str
    contact: str
    reception: str
    url: str
    slug: str
    deputies: tuple[DeputyCode, ...]


def reception_text(station: Station) -> str:
    """The station's reception days in words (每周三、逢六（每月6日、16日、26日）), each rule once."""
    return "、".join(dict.fromkeys(describe_rule(rule) for rule in station.reception_rules))


def require_serving(deputy: Deputy) -> None:
    """UserError (404) saying why a deputy who left office gets no poster and where their code leads."""
    if deputy.status != DeputyStatus.SERVING:
        raise UserError(
            "deputy_not_serving",
            f"{deputy.name}{DEPUTY_STATUS_LABELS[DeputyStatus(deputy.status)]}，不再制作代表码海报和桌牌。"
            "已张贴的代表码仍然有效，群众扫码后会转到其所在联络站留言。",
            404,
        )


def deputy_sheet(deputy: Deputy) -> DeputySheet:
    """The sheet of a serving deputy (UserError 404 for one who left office or has no code)."""
    require_serving(deputy)
    code = current_code(deputy)
    if code is None:
        raise UserError("no_code", f"{deputy.name}还没有代表码，请先生成代表码。", 404)
    photo = None
    if deputy.has_photo:
        # Read apart from the instance, so a batch does not keep every photo it printed.
        photo = db.session.scalar(select(Deputy.photo_jpeg).where(Deputy.id == deputy.id))
    station = deputy.station
    return DeputySheet(
        name=deputy.name,
        levels=tuple(deputy.level_labels),
        constituency=deputy.constituency,
        station_name=station.name,
        station_address=station.address,
        reception=reception_text(station),
        url=code_url(code.slug),
        slug=code.slug,
        photo_jpeg=photo,
    )


def require_active(station: Station) -> None:
    """UserError (404) for a station that has closed."""
    if not station.is_active:
        raise UserError("station_inactive", f"{station.name}已停用，不再制作联络站海报和桌牌。", 404)


def station_sheet(station: Station) -> StationSheet:
    """The sheet of an active station with the codes of its serving deputies (UserError 404 otherwise)."""
    require_active(station)
    code = current_code(station)
    if code is None:
        raise UserError("no_code", f"{station.name}还没有联络站码，请先生成。", 404)
    deputies = []
    for deputy in serving_deputies(station):
        deputy_code = current_code(deputy)
        if deputy_code is not None:
            deputies.append(DeputyCode(name=deputy.name, url=code_url(deputy_code.slug)))
    contact = " ".join(part for part in (station.contact_name, station.contact_phone) if part)
    return StationSheet(
        name=station.name,
        address=station.address,
        contact=contact,
        reception=reception_text(station),
        url=code_url(code.slug),
        slug=code.slug,
        deputies=tuple(deputies),
    )


def serving_deputies(station: Station) -> list[Deputy]:
    """The station's serving deputies, in the order they joined."""
    return list(
        db.session.scalars(
            select(Deputy)
            .where(Deputy.station_id == station.id, Deputy.status == DeputyStatus.SERVING)
            .order_by(Deputy.id)
        )
    )


def region_deputy_ids(region: Region) -> list[int]:
    """Ids of the serving deputies of every active station in ``region`` and the regions under it."""
    region_ids = [region.id]
    frontier = [region.id]
    while frontier:
        frontier = list(db.session.scalars(select(Region.id).where(Region.parent_id.in_(frontier))))
        region_ids += frontier
    return list(
        db.session.scalars(
            select(Deputy.id)
            .join(Station, Deputy.station_id == Station.id)
            .where(Station.region_id.in_(region_ids), Station.is_active, Deputy.status == DeputyStatus.SERVING)
            .order_by(Station.id, Deputy.id)
        )
    )


# --- fitting text --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FittedText:
    """Text broken into lines at one font size."""

    lines: tuple[str, ...]
    font: ImageFont.FreeTypeFont
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


def wrap(tokens: list[str], font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Greedy line breaking of ``tokens`` into lines at most ``width`` wide (a piece too wide is split into characters)."""
    lines: list[str] = []
    line = ""
    for token in tokens:
        pieces = [token] if font.getlength(token) <= width else list(token)
        for piece in pieces:
            candidate = line + piece
            if not line or font.getlength(candidate) <= width:
                line = candidate
            else:
                lines.append(line.rstrip())
                line = piece.lstrip()
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


def lines_height(count: int, size: int) -> int:
    """Height ``count`` lines at ``size`` take: full pitches, then the last line's em box and room for descenders."""
    return (count - 1) * round(size * LINE_SPACING) + round(size * 1.12)


def wrap_at(tokens: list[str], weight: str, size: int, width: float) -> list[str]:
    """``wrap`` at ``size``, measured on the reference size scaled: no font of ``size`` is opened for trying it."""
    return wrap(tokens, fonts.poster_font(weight, REFERENCE_SIZE), width * REFERENCE_SIZE / size)


def fits_width(lines: list[str] | tuple[str, ...], font: ImageFont.FreeTypeFont, width: float) -> bool:
    """True when every line, measured at the font's own size (hinting included), is at most ``width`` wide."""
    return all(font.getlength(line) <= width for line in lines)


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
            font = fonts.poster_font(weight, size)
            if size <= MIN_FONT_PX or fits_width(lines, font, width):
                return FittedText(lines=tuple(lines), font=font, size=size)
        size = min(size - 1, int(size * 0.95))


# --- drawing -----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Overlay:
    """An image kept encoded and laid over the raster: a photo as JPEG, a code as the 1-bit PNG ``qr_png`` made."""

    kind: str  # "jpeg" or "png"
    data: bytes = field(repr=False)
    box: Box


@dataclass(frozen=True)
class PlacedText:
    """A line of text drawn on a sheet and the box its ink takes (for tests: nothing crosses the margins)."""

    text: str
    box: tuple[int, int, int, int]
    role: str
    size: int = 0  # font size in pixels


@dataclass(frozen=True)
class PlacedCode:
    """A QR code on a sheet: the URL it holds and its box including the quiet zone."""

    url: str
    box: Box


@dataclass
class Sheet:
    """One printed page at 300 dpi: the raster of text and shapes, the overlays, and what was placed where.

    ``ink`` lists every box the raster was drawn in: the PDF embeds those strips only (a poster
    is half white paper, and encoding is most of the time a page takes), and each overlay as
    it was encoded. A code is a 1-bit image at print resolution, drawn without smoothing.
    """

    image: Image.Image
    size_mm: tuple[float, float]
    overlays: list[Overlay] = field(default_factory=list)
    ink: list[Box] = field(default_factory=list)
    texts: list[PlacedText] = field(default_factory=list)
    codes: list[PlacedCode] = field(default_factory=list)

    def composite(self) -> Image.Image:
        """The page as printed: the raster with the overlays pasted in."""
        image = self.image.copy()
        for overlay in self.overlays:
            with Image.open(io.BytesIO(overlay.data)) as picture:
                image.paste(picture.convert("RGB"), (overlay.box.left, overlay.box.top))
        return image

    def preview(self) -> Image.Image:
        """The page at 150 dpi (A4: 1240 × 1754 px), for the screen."""
        return self.composite().reduce(PREVIEW_REDUCTION)

    def preview_png(self) -> bytes:
        """The preview as PNG bytes."""
        out = io.BytesIO()
        self.preview().save(out, format="PNG", **PNG_ENCODING)
        return out.getvalue()

    def strips(self) -> list[Box]:
        """The raster's inked areas as few boxes: ink boxes merged where they overlap vertically, padded by 1 mm."""
        pad = px(1)
        width, height = self.image.size
        strips: list[list[int]] = []
        for box in sorted(self.ink, key=lambda b: b.top):
            left, top = max(0, box.left - pad), max(0, box.top - pad)
            right, bottom = min(width, box.right + pad), min(height, box.bottom + pad)
            if strips and top <= strips[-1][3]:
                last = strips[-1]
                last[0], last[2], last[3] = min(last[0], left), max(last[2], right), max(last[3], bottom)
            else:
                strips.append([left, top, right, bottom])
        return [Box(*strip) for strip in strips if strip[2] > strip[0] and strip[3] > strip[1]]

    def pdf_page(self) -> PdfPage:
        """The page for the PDF writer at the true paper size: inked strips losslessly, overlays as encoded."""
        width_pt = round(self.size_mm[0] * PT_PER_MM, 2)
        height_pt = round(self.size_mm[1] * PT_PER_MM, 2)
        scale_x = width_pt / self.image.width
        scale_y = height_pt / self.image.height

        def placed(image: EmbeddedImage, box: Box) -> Placement:
            return Placement(
                image,
                x=box.left * scale_x,
                y=height_pt - box.bottom * scale_y,
                width=box.width * scale_x,
                height=box.height * scale_y,
            )

        placements = []
        for strip in self.strips():
            out = io.BytesIO()
            self.image.crop(strip.as_tuple()).save(out, format="PNG", **PNG_ENCODING)
            placements.append(placed(png_image(out.getvalue()), strip))
        for overlay in self.overlays:
            if overlay.kind == "jpeg":
                image = jpeg_image(overlay.data, overlay.box.width, overlay.box.height, "RGB")
            else:
                image = png_image(overlay.data)
            placements.append(placed(image, overlay.box))
        return PdfPage(width=width_pt, height=height_pt, placements=tuple(placements))


@dataclass(frozen=True)
class Template:
    """What every sheet of a kind has in common, kept as its inked pieces (a few MB, not a whole page)."""

    sheet: Sheet
    pieces: tuple[tuple[Box, Image.Image], ...]

    @classmethod
    def of(cls, sheet: Sheet) -> Template:
        """The template of a sheet drawn with the common parts only (text and shapes: no overlays)."""
        assert not sheet.overlays and not sheet.codes
        pieces = tuple((box, sheet.image.crop(box.as_tuple())) for box in sheet.strips())
        return cls(Sheet(Image.new("RGB", (1, 1), WHITE), sheet.size_mm, ink=sheet.ink, texts=sheet.texts), pieces)


class Canvas:
    """Draws on a new sheet (or a copy of a template) and records what went where."""

    def __init__(self, size_mm: tuple[float, float], template: Template | None = None) -> None:
        self.sheet = Sheet(Image.new("RGB", (px(size_mm[0]), px(size_mm[1])), WHITE), size_mm)
        if template is not None:
            for box, piece in template.pieces:
                self.sheet.image.paste(piece, (box.left, box.top))
            self.sheet.ink += template.sheet.ink
            self.sheet.texts += template.sheet.texts
        self.draw = ImageDraw.Draw(self.sheet.image)

    def text(
        self,
        text: str,
        box: Box,
        weight: str = "regular",
        max_mm: float = 5.0,
        min_mm: float = 2.5,
        fill: tuple[int, int, int] = INK,
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
        fill: tuple[int, int, int] = INK,
        align: str = "left",
        valign: str = "top",
        role: str = "text",
    ) -> None:
        """Draw fitted lines in ``box``: each line's CJK em box sits on the line, 0.88 of it above the baseline."""
        top = box.top
        if valign == "middle":
            top = box.top + (box.height - fitted.height) // 2
        for number, line in enumerate(fitted.lines):
            baseline = top + number * fitted.pitch + round(fitted.size * 0.88)
            if align == "center":
                x, anchor = box.left + box.width // 2, "ms"
            else:
                x, anchor = box.left, "ls"
            self.draw.text((x, baseline), line, font=fitted.font, fill=fill, anchor=anchor)
            ink = self.draw.textbbox((x, baseline), line, font=fitted.font, anchor=anchor)
            self.sheet.texts.append(PlacedText(text=line, box=ink, role=role, size=fitted.size))
            self.sheet.ink.append(Box(*ink))

    def code(self, url: str, box: Box) -> None:
        """The QR code of ``url`` in the square ``box`` (its quiet zone included), as ``qr_png`` renders it."""
        size = min(box.width, box.height)
        square = Box(box.left, box.top, box.left + size, box.top + size)
        self.sheet.overlays.append(Overlay("png", qr_png(url, size), square))
        self.sheet.codes.append(PlacedCode(url=url, box=square))

    def photo(self, jpeg: bytes | None, box: Box, initial: str) -> None:
        """The deputy's photo cropped to ``box``, or a pale panel with the first character of the name."""
        picture = _fitted_photo(jpeg, box) if jpeg else None
        if picture is not None:
            self.sheet.overlays.append(Overlay("jpeg", picture, box))
            return
        self.draw.rectangle(box.as_tuple(), fill=PALE_RED)
        self.sheet.ink.append(box)
        if initial:
            fitted = fit_text(initial, box.width, box.height, "bold", box.width * 6 // 10, 10, 1)
            self.lines(fitted, box, fill=RED, align="center", valign="middle", role="initial")

    def band(self, box: Box, fill: tuple[int, int, int] = RED) -> None:
        """A filled band with rounded corners."""
        self.draw.rounded_rectangle(box.as_tuple(), radius=px(3), fill=fill)
        self.sheet.ink.append(box)

    def rule(self, left_mm: float, right_mm: float, y_mm: float, fill=RULE, width_mm: float = 0.3) -> None:
        """A horizontal line."""
        width = max(1, px(width_mm))
        self.draw.line([(px(left_mm), px(y_mm)), (px(right_mm), px(y_mm))], fill=fill, width=width)
        self.sheet.ink.append(Box(px(left_mm), px(y_mm) - width, px(right_mm), px(y_mm) + width))


def _fitted_photo(jpeg: bytes, box: Box) -> bytes | None:
    """The photo cropped to the box's shape (faces sit high), as a JPEG at print size; None if unreadable."""
    try:
        with Image.open(io.BytesIO(jpeg)) as original:
            original.draft("RGB", (box.width, box.height))  # let the JPEG decoder scale down: faster
            picture = ImageOps.exif_transpose(original).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        current_app.logger.warning("unreadable deputy photo; printing the placeholder")
        return None
    picture = ImageOps.fit(picture, (box.width, box.height), Image.Resampling.LANCZOS, centering=(0.5, 0.35))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=PHOTO_JPEG_QUALITY, subsampling=0)
    return out.getvalue()


def _field_block(canvas: Canvas, fields: list[tuple[str, str]], box: Box, max_mm: float) -> None:
    """Label–value rows ("选区：…") in one size that fits the box, values wrapped beside their labels."""
    labels = [label for label, _value in fields]
    tokens = [text_tokens(" ".join(value.split())) for _label, value in fields]
    reference = fonts.poster_font("bold", REFERENCE_SIZE)
    size = px(max_mm)
    while True:
        label_width = math.ceil(max(reference.getlength(label) for label in labels) * size / REFERENCE_SIZE) + px(1)
        value_width = box.width - label_width
        wrapped = [wrap_at(value, "regular", size, value_width) for value in tokens]
        heights = [lines_height(len(lines), size) for lines in wrapped]
        gap = round(size * 0.45)
        if sum(heights) + gap * (len(fields) - 1) <= box.height or size <= MIN_FONT_PX:
            label_font = fonts.poster_font("bold", size)
            value_font = fonts.poster_font("regular", size)
            fits = fits_width(labels, label_font, label_width) and all(
                fits_width(lines, value_font, value_width) for lines in wrapped
            )
            if fits or size <= MIN_FONT_PX:
                break
        size = min(size - 1, int(size * 0.95))
    top = box.top
    for label, lines, height in zip(labels, wrapped, heights, strict=True):
        label_fit = FittedText(lines=(label,), font=label_font, size=size)
        canvas.lines(label_fit, Box(box.left, top, box.left + label_width, top + height), fill=GREY, role="label")
        value_fit = FittedText(lines=tuple(lines), font=value_font, size=size)
        canvas.lines(value_fit, Box(box.left + label_width, top, box.right, top + height), role="field")
        top += height + gap


# --- the sheets ----------------------------------------------------------------------------------


def _font_faces() -> tuple[fonts.FontFace, fonts.FontFace]:
    return fonts.poster_face("bold"), fonts.poster_face("regular")


@lru_cache(maxsize=4)
def _deputy_poster_template(faces: tuple[fonts.FontFace, fonts.FontFace]) -> Template:
    """What every deputy poster has in common, drawn once per font (pasting it is faster than drawing it)."""
    canvas = Canvas(A4_MM)
    m = MARGIN_MM
    right = A4_MM[0] - m
    canvas.band(Box.mm(m, m, right, 50))
    canvas.text(TITLE, Box.mm(m + 6, 16, right - 6, 32), "bold", 13, 6, WHITE, "center", max_lines=1, role="title")
    canvas.text(SUBTITLE, Box.mm(m + 6, 36, right - 6, 46), "bold", 8, 4, CREAM, "center", max_lines=1)
    canvas.text(SCAN_CALL, Box.mm(m, 242, right, 251), "bold", 7.5, 4, RED, "center", max_lines=1)
    canvas.text(
        AFTER_SCAN, Box.mm(m + 8, 253, right - 8, 267), "regular", 4.6, 2.5, INK, "center", breaks=SENTENCE_BREAKS
    )
    canvas.rule(m, right, 271)
    return Template.of(canvas.sheet)


def deputy_poster(sheet: DeputySheet) -> Sheet:
    """A deputy's A4 poster."""
    canvas = Canvas(A4_MM, _deputy_poster_template(_font_faces()))
    m = MARGIN_MM
    right = A4_MM[0] - m
    canvas.photo(sheet.photo_jpeg, Box.mm(m, 58, m + 48, 122), sheet.name[:1])
    column = m + 56
    canvas.text(
        sheet.name, Box.mm(column, 58, right, 87), "bold", 18, 7, INK, max_lines=2, breaks=NAME_BREAKS, role="name"
    )
    levels = " · ".join(sheet.levels) or "人大代表"
    canvas.text(levels, Box.mm(column, 89, right, 97), "bold", 6, 3, RED, max_lines=1, role="levels")
    fields = [
        ("选区：", sheet.constituency),
        ("联络站：", sheet.station_name),
        ("接待日：", sheet.reception or NO_RECEPTION),
    ]
    _field_block(canvas, [(label, value) for label, value in fields if value], Box.mm(column, 100, right, 123), 5.5)

    canvas.code(sheet.url, Box.mm(50, 129, 160, 239))
    address = f"联络站地址：{sheet.station_address}" if sheet.station_address else sheet.station_name
    canvas.text(address, Box.mm(m, 273, right, 281), "regular", 3.8, 2, GREY, max_lines=2, role="address")
    canvas.text(f"码上联 · 代表码 {sheet.slug}", Box.mm(m, 281.5, right, 285), "regular", 2.8, 1.5, GREY)
    return canvas.sheet


@dataclass(frozen=True)
class Grid:
    """Deputy codes laid out in columns and rows, each code ``qr_mm`` wide."""

    columns: int
    rows: int
    qr_mm: float


def grid_for(count: int, width_mm: float, height_mm: float) -> Grid | None:
    """The grid giving ``count`` codes the largest size in the area; None if they fit only below the minimum."""
    best: Grid | None = None
    for columns in range(1, min(count, MAX_GRID_COLUMNS) + 1):
        rows = math.ceil(count / columns)
        cell_w = width_mm / columns
        cell_h = height_mm / rows
        qr_mm = min(cell_w - 6, cell_h - CELL_NAME_MM - 4, CELL_QR_MAX_MM)
        if qr_mm >= CELL_QR_MIN_MM and (best is None or qr_mm >= best.qr_mm):  # a tie: fewer rows
            best = Grid(columns, rows, qr_mm)
    return best


def grid_capacity(width_mm: float, height_mm: float) -> int:
    """How many deputy codes fit in the area at the minimum size."""
    count = 1
    while grid_for(count + 1, width_mm, height_mm) is not None:
        count += 1
    return count


def _deputy_grid(canvas: Canvas, deputies: tuple[DeputyCode, ...], area: Box) -> None:
    """Deputy codes with their names under them, rows centred."""
    width_mm, height_mm = area.width / MM, area.height / MM
    grid = grid_for(len(deputies), width_mm, height_mm)
    assert grid is not None  # the caller paginates by grid_capacity
    cell_w = width_mm / grid.columns
    pitch = min(height_mm / grid.rows, grid.qr_mm + CELL_NAME_MM + 8)
    name_mm = min(6.0, grid.qr_mm * 0.15)  # bigger codes, bigger names
    for number, deputy in enumerate(deputies):
        row, column = divmod(number, grid.columns)
        in_row = min(grid.columns, len(deputies) - row * grid.columns)
        left = area.left / MM + (width_mm - in_row * cell_w) / 2 + column * cell_w
        top = area.top / MM + row * pitch
        qr_left = left + (cell_w - grid.qr_mm) / 2
        canvas.code(deputy.url, Box.mm(qr_left, top, qr_left + grid.qr_mm, top + grid.qr_mm))
        name_box = Box.mm(left + 1, top + grid.qr_mm + 0.5, left + cell_w - 1, top + grid.qr_mm + 0.5 + CELL_NAME_MM)
        canvas.text(
            deputy.name, name_box, "bold", name_mm, 2, INK, "center", max_lines=2, breaks=NAME_BREAKS, role="name"
        )


def station_posters(sheet: StationSheet) -> list[Sheet]:
    """A station's A4 poster: its code and its deputies' codes; more pages when the deputies do not fit one."""
    return list(iter_station_posters(sheet))


def _station_grid_areas() -> tuple[Box, Box, int, int]:
    """Where a station poster's deputy codes go: below the station's block on the first page, below the
    heading on the others; with how many codes fit in each."""
    m = MARGIN_MM
    right, bottom = A4_MM[0] - m, A4_MM[1] - m
    first_area, more_area = Box.mm(m, 128, right, bottom), Box.mm(m, 50, right, bottom)
    return (
        first_area,
        more_area,
        grid_capacity(first_area.width / MM, first_area.height / MM),
        grid_capacity(more_area.width / MM, more_area.height / MM),
    )


def station_poster_page_count(deputy_count: int) -> int:
    """How many pages ``station_posters`` draws for ``deputy_count`` deputy codes."""
    _, _, first_capacity, more_capacity = _station_grid_areas()
    return 1 + -(-max(0, deputy_count - first_capacity) // more_capacity)


def iter_station_posters(sheet: StationSheet) -> Iterator[Sheet]:
    """The pages of ``station_posters``, each drawn only when asked for (a batch holds one page at a time)."""
    m = MARGIN_MM
    right = A4_MM[0] - m
    first_area, more_area, first_capacity, more_capacity = _station_grid_areas()
    chunks = [sheet.deputies[:first_capacity]]
    rest = sheet.deputies[first_capacity:]
    while rest:
        chunks.append(rest[:more_capacity])
        rest = rest[more_capacity:]

    for number, chunk in enumerate(chunks):
        canvas = Canvas(A4_MM)
        canvas.band(Box.mm(m, m, right, 40))
        canvas.text(sheet.name, Box.mm(m + 6, 15, right - 6, 28), "bold", 11, 5, WHITE, "center", 1, role="title")
        subtitle = STATION_SUBTITLE if number == 0 else f"代表码（续 {number + 1}/{len(chunks)}）"
        canvas.text(subtitle, Box.mm(m + 6, 30, right - 6, 37), "bold", 5.5, 3, CREAM, "center", 1)
        if number == 0:
            _station_block(canvas, sheet)
            canvas.text(DEPUTY_CODES_HEADING, Box.mm(m, 113, right, 121), "bold", 6, 3, RED, max_lines=1)
            canvas.rule(m, right, 123, fill=RED, width_mm=0.5)
            area = first_area
        else:
            area = more_area
        if chunk:
            _deputy_grid(canvas, chunk, area)
        else:
            canvas.text(NO_DEPUTIES, Box.mm(m, 132, right, 150), "regular", 5, 3, GREY, "center")
        yield canvas.sheet


def _station_block(canvas: Canvas, sheet: StationSheet) -> None:
    m = MARGIN_MM
    right = A4_MM[0] - m
    canvas.code(sheet.url, Box.mm(m, 45, m + 62, 107))
    column = m + 68
    canvas.text(STATION_CODE_LABEL, Box.mm(column, 47, right, 56), "bold", 8, 4, RED, max_lines=1)
    canvas.text(STATION_CODE_HINT, Box.mm(column, 58, right, 70), "bold", 5, 3, INK, max_lines=2)
    fields = [
        ("地址：", sheet.address),
        ("接待日：", sheet.reception or NO_RECEPTION),
        ("联系人：", sheet.contact),
    ]
    _field_block(canvas, [(label, value) for label, value in fields if value], Box.mm(column, 73, right, 100), 5)
    canvas.text(f"码上联 · 联络站码 {sheet.slug}", Box.mm(column, 102, right, 106), "regular", 2.8, 1.5, GREY)


def table_card(sheet: DeputySheet) -> Sheet:
    """A deputy's table card: A5 folded across the middle into a tent, the upper half upside down.

    Each half is read with its top at the fold, so the folded card reads the same from both sides.
    """
    width_mm, height_mm = A5_MM
    half_mm = height_mm / 2
    panel = Canvas((width_mm, half_mm))
    m = 9.0
    right = width_mm - m
    panel.text(TITLE, Box.mm(m, 8, right, 15), "bold", 5.5, 3, RED, "center", max_lines=1, role="title")
    panel.rule(m, right, 17.5, fill=RED, width_mm=0.4)
    panel.code(sheet.url, Box.mm(m, 23, m + 62, 85))
    column = m + 68
    levels = " · ".join(sheet.levels) or "人大代表"
    panel.text(levels, Box.mm(column, 27, right, 33), "bold", 4.5, 2, RED, max_lines=1, role="levels")
    panel.text(
        sheet.name, Box.mm(column, 35, right, 63), "bold", 14, 5, INK, "left", "middle", 2, NAME_BREAKS, role="name"
    )
    panel.text(CARD_CALL, Box.mm(column, 66, right, 73), "bold", 6, 3, RED, max_lines=1)
    panel.text(sheet.station_name, Box.mm(column, 75.5, right, 85), "regular", 3.6, 2, GREY, max_lines=2)

    # The halves are one raster, codes included: the upper one is the lower one turned.
    card = Canvas(A5_MM)
    flat = panel.sheet.composite()
    fold = flat.height
    card.sheet.image.paste(flat.rotate(180), (0, 0))
    card.sheet.image.paste(flat, (0, fold))
    dash = px(3)
    for x in range(0, flat.width, dash * 2):
        card.draw.line([(x, fold), (x + dash, fold)], fill=RULE, width=px(0.2))
    card.sheet.ink.append(Box(0, fold - px(0.2), flat.width, fold + px(0.2)))

    page_w = card.sheet.image.width

    def upper(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        left, top, right, bottom = box
        return (page_w - right, fold - bottom, page_w - left, fold - top)

    def lower(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        left, top, right, bottom = box
        return (left, top + fold, right, bottom + fold)

    for place in (upper, lower):
        card.sheet.codes += [PlacedCode(c.url, Box(*place(c.box.as_tuple()))) for c in panel.sheet.codes]
        card.sheet.texts += [PlacedText(t.text, place(t.box), t.role, t.size) for t in panel.sheet.texts]
        card.sheet.ink += [Box(*place(b.as_tuple())) for b in panel.sheet.ink]
        card.sheet.ink += [Box(*place(c.box.as_tuple())) for c in panel.sheet.codes]
    return card.sheet


# --- batches -------------------------------------------------------------------------------------


def deputy_posters(deputy_ids: Iterable[int]) -> Iterator[Sheet]:
    """One poster per deputy, rendered only when asked for (a batch holds one page at a time)."""
    for deputy_id in deputy_ids:
        deputy = db.session.get(Deputy, deputy_id)
        if deputy is None or not deputy.is_serving or current_code(deputy) is None:
            continue  # left office or lost since the batch started
        yield deputy_poster(deputy_sheet(deputy))


def station_batch(station: Station) -> Iterator[Sheet]:
    """The station's poster, then one poster per serving deputy (the station's sheet is read now: errors come first)."""
    sheet = station_sheet(station)
    deputy_ids = [deputy.id for deputy in serving_deputies(station)]
    return itertools.chain(iter_station_posters(sheet), deputy_posters(deputy_ids))


def station_cards(station: Station) -> Iterator[Sheet]:
    """A table card per serving deputy of the station, rendered only when asked for."""
    for deputy_id in [deputy.id for deputy in serving_deputies(station)]:
        deputy = db.session.get(Deputy, deputy_id)
        if deputy is not None and deputy.is_serving and current_code(deputy) is not None:
            yield table_card(deputy_sheet(deputy))


def pdf_chunks(sheets: Iterable[Sheet], title: str = "") -> Iterator[bytes]:
    """The PDF of ``sheets`` as it is written: one chunk per page, each page rendered just before."""
    return stream_pdf((sheet.pdf_page() for sheet in sheets), title)


def pdf_bytes(sheets: Iterable[Sheet], title: str = "") -> bytes:
    """The whole PDF of a few sheets at once."""
    return b"".join(pdf_chunks(sheets, title))
