"""Posters and table cards with the QR codes, as a print shop takes them.

Every sheet is laid out in millimetres on a ``backend.qr.sheets.Canvas`` and kept as drawing
operations: the PDF gets them as vectors (text in Noto Sans CJK SC, subset-embedded; codes as
paths of modules; photos as JPEG at 200 dpi), the PNG preview as Pillow draws them. A county's
2,435 deputy posters are then a PDF of about 30 KB a page (a photo is most of it) rendered in
constant memory; see ``bench/posters.py``.

- Deputy poster (A4): title, photo (or the first character of the name), name, levels,
  constituency, station, reception days and hours, the station's phone, a 10.6 cm code, and
  what happens after scanning, promising WeChat notices only where the installation sends them
  (``notice_promise``).
- Station poster (A4): the station's code and every serving deputy's code (双码), laid out for
  their number (``plan_station_page``): the largest deputy codes that fit, the station's code
  larger still, and the spare height spread between the rows, so no part of the page is left
  empty. Up to 6 deputies, each deputy's modules are at least 5 cm wide; past what one page
  holds at a scannable size (2.5 cm with the quiet zone), the codes go on over more pages.
- Table card (桌牌, A5 folded across the middle): name and code on both halves, the upper
  half turned, so the folded card reads from both sides of the table.

A code's quiet zone is white paper and may lie in the page margin; its modules and all text
stay inside the 12 mm margin that office printers reach.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from flask import current_app
from sqlalchemy import select

from backend.errors import UserError
from backend.extensions import db
from backend.items.photo_store import read_deputy_photo
from backend.models import Deputy, DeputyStatus, Region, Station
from backend.models.deputy import DEPUTY_STATUS_LABELS
from backend.qr import fonts
from backend.qr.codes import code_url, current_code
from backend.qr.pdf import stream_pdf
from backend.qr.sheets import (
    DPI,
    MM,
    Box,
    Canvas,
    FittedText,
    LineOp,
    PlacedCode,
    PlacedText,
    Sheet,
    TurnedOp,
    lines_height,
    px,
    text_tokens,
    text_width,
    wrap_at,
)
from backend.stations import serving_deputies
from backend.stations.calendar import describe_rule

__all__ = ["DPI", "MM", "Box", "PlacedCode", "PlacedText", "Sheet", "px", "text_tokens"]

A4_MM = (210.0, 297.0)
A5_MM = (148.0, 210.0)
MARGIN_MM = 12.0  # clear of what office printers cannot reach (about 5 mm)
CONTENT_MM = A4_MM[0] - 2 * MARGIN_MM  # 186 mm across

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
# What happens after scanning: WeChat notices are promised only where they reach the resident.
AFTER_SCAN_WECHAT = (
    "扫码后填写意见建议，提交后获得留言编号和查询码。代表答复会通过微信通知您，也可凭查询码随时查看办理进展。"
)
AFTER_SCAN_LOOKUP = "扫码后填写意见建议，提交后获得留言编号和查询码，凭查询码随时查看办理进展。"
STATION_SUBTITLE = "人大代表联系群众二维码（双码）"
STATION_CODE_LABEL = "联络站码"
STATION_CODE_HINT = "扫码可给本站任一代表或当天值班代表留言"
DEPUTY_CODES_HEADING = "代表码 · 扫码直接给代表本人留言"
NO_DEPUTIES = "本站暂无在任代表，扫联络站码留言由联络站工作人员处理。"
NO_RECEPTION = "以联络站公告为准"
CARD_CALL = "扫码给我留言"

NAME_BREAKS = "·"  # a minority name breaks between its parts (阿卜杜热合曼·买买提依明)
SENTENCE_BREAKS = "，。；"

# Station poster geometry (mm). The band's bottom, the gap under it, the heading over the deputy
# codes, and the bottom of what may be printed.
STATION_BAND_BOTTOM_MM = 36.0
BLOCK_GAP_MM = 4.0
HEADING_MM = 11.0
PRINT_BOTTOM_MM = A4_MM[1] - MARGIN_MM
STATION_CODE_MAX_MM = 90.0  # the station's code, quiet zone included
STATION_CODE_MIN_MM = 50.0
STATION_CODE_LEAD_MM = 6.0  # the station's code is at least this much larger than a deputy's (双码: it stands out)
CELL_QR_MIN_MM = 25.0  # a deputy code at least this wide: 3 px a module in a phone photo of the whole poster
CELL_QR_MAX_MM = 80.0
MAX_GRID_COLUMNS = 6
ROW_GAP_MM = 2.0
SPREAD_MAX_MM = 22.0  # at most this much spare height between two blocks; what is left stays at the bottom
EMPTY_STATION_CODE_MM = 125.0  # a station without serving deputies: its own code, larger than a deputy poster's
NO_DEPUTIES_MM = 18.0  # the line saying so
# The quiet zone (4 modules) is at least this fraction of a code's box for any URL up to version 6
# (4 / 49): a code may reach this far into the margin with its modules still inside it.
QUIET_FRACTION = 4 / 49


def notice_promise() -> str:
    """What the poster promises after a scan: WeChat notices only where they reach a resident who scans it.

    A resident is told in WeChat through the mini-program's subscribe messages (``backend.outbox``),
    sent to the mini-program openid. A printed code is a URL: it opens the mini-program only when
    扫普通链接二维码打开小程序 is set up (``WECHAT_QR_VERIFY_FILENAME``, the console's verification
    file); otherwise it opens the web form, whose residents have no mini-program openid (the
    official account's silent OAuth gives another openid, to which nothing is sent). So the
    promise needs the real mini-program (``WECHAT_APPID``, ``WECHAT_SECRET``, not the sandbox),
    that rule, and a template for the answer (``WECHAT_TEMPLATES["item_answered"]``).
    """
    config = current_app.config
    answered = (config.get("WECHAT_TEMPLATES") or {}).get("item_answered") or {}
    reaches = (
        not config.get("WECHAT_SANDBOX")
        and config.get("WECHAT_APPID")
        and config.get("WECHAT_SECRET")
        and config.get("WECHAT_QR_VERIFY_FILENAME")
        and answered.get("id")
    )
    return AFTER_SCAN_WECHAT if reaches else AFTER_SCAN_LOOKUP


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
    station_phone: str = ""
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
    """The station's reception days and hours in words (每周三、每月20日 上午9:00—11:30), each rule once."""
    days = "、".join(dict.fromkeys(describe_rule(rule) for rule in station.reception_rules))
    hours = " ".join(station.reception_hours.split())
    return " ".join(part for part in (days, hours) if part)


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
    # Read from the photo store, not kept on the instance, so a batch does not keep every photo it printed.
    photo = read_deputy_photo(deputy) if deputy.has_photo else None
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
        station_phone=station.contact_phone,
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


# --- the deputy poster ---------------------------------------------------------------------------


def _field_block(canvas: Canvas, fields: list[tuple[str, str]], box: Box, max_mm: float) -> None:
    """Label–value rows ("选区：…") in one size that fits the box, values wrapped beside their labels."""
    labels = [label for label, _value in fields]
    tokens = [text_tokens(" ".join(value.split())) for _label, value in fields]
    size = px(max_mm)
    while True:
        label_width = math.ceil(max(text_width(label, "bold", size) for label in labels)) + px(1)
        value_width = box.width - label_width
        wrapped = [wrap_at(value, "regular", size, value_width) for value in tokens]
        heights = [lines_height(len(lines), size) for lines in wrapped]
        gap = round(size * 0.45)
        if sum(heights) + gap * (len(fields) - 1) <= box.height or size <= 4:
            break
        size = min(size - 1, int(size * 0.95))
    top = box.top
    for label, lines, height in zip(labels, wrapped, heights, strict=True):
        label_fit = FittedText(lines=(label,), weight="bold", size=size)
        canvas.lines(label_fit, Box(box.left, top, box.left + label_width, top + height), fill=GREY, role="label")
        value_fit = FittedText(lines=tuple(lines), weight="regular", size=size)
        canvas.lines(value_fit, Box(box.left + label_width, top, box.right, top + height), role="field")
        top += height + gap


def _font_faces() -> tuple[fonts.FontFace, fonts.FontFace]:
    return fonts.poster_face("bold"), fonts.poster_face("regular")


@lru_cache(maxsize=4)
def _deputy_poster_template(faces: tuple[fonts.FontFace, fonts.FontFace], promise: str) -> Sheet:
    """What every deputy poster has in common, fitted once per font and promise."""
    canvas = Canvas(A4_MM)
    m = MARGIN_MM
    right = A4_MM[0] - m
    canvas.band(Box.mm(m, m, right, 46), RED)
    canvas.text(TITLE, Box.mm(m + 6, 15, right - 6, 30), "bold", 13, 6, WHITE, "center", max_lines=1, role="title")
    canvas.text(SUBTITLE, Box.mm(m + 6, 33, right - 6, 43), "bold", 8, 4, CREAM, "center", max_lines=1)
    canvas.text(SCAN_CALL, Box.mm(m, 233, right, 242), "bold", 7.5, 4, RED, "center", max_lines=1)
    canvas.text(
        promise, Box.mm(m + 4, 244, right - 4, 259), "regular", 4.6, 2.5, INK, "center", breaks=SENTENCE_BREAKS,
        role="promise",
    )  # fmt: skip
    canvas.rule(m, right, 263, RULE)
    return canvas.sheet


def deputy_poster(sheet: DeputySheet) -> Sheet:
    """A deputy's A4 poster."""
    canvas = Canvas(A4_MM, _deputy_poster_template(_font_faces(), notice_promise()))
    m = MARGIN_MM
    right = A4_MM[0] - m
    canvas.photo(sheet.photo_jpeg, Box.mm(m, 52, m + 48, 116), sheet.name[:1], PALE_RED, RED)
    column = m + 56
    canvas.text(
        sheet.name, Box.mm(column, 52, right, 79), "bold", 18, 7, INK, max_lines=2, breaks=NAME_BREAKS, role="name"
    )
    levels = " · ".join(sheet.levels) or "人大代表"
    canvas.text(levels, Box.mm(column, 81, right, 88), "bold", 6, 3, RED, max_lines=1, role="levels")
    fields = [
        ("选区：", sheet.constituency),
        ("联络站：", sheet.station_name),
        ("接待时间：", sheet.reception or NO_RECEPTION),
        ("联系电话：", sheet.station_phone),
    ]
    _field_block(canvas, [(label, value) for label, value in fields if value], Box.mm(column, 90, right, 120), 5.5)

    canvas.code(sheet.url, Box.mm(52, 124, 158, 230))
    address = f"联络站地址：{sheet.station_address}" if sheet.station_address else sheet.station_name
    canvas.text(address, Box.mm(m, 266, right, 276), "regular", 3.8, 2, GREY, max_lines=2, role="address")
    canvas.text(f"码上联 · 代表码 {sheet.slug}", Box.mm(m, 279, right, 283), "regular", 2.8, 1.5, GREY)
    return canvas.sheet


# --- the topic poster (专题码) ---------------------------------------------------------------------


@dataclass(frozen=True)
class TopicSheet:
    """What a topic code's poster shows: the topic, what it asks, until when, and the station behind it."""

    title: str
    kind_label: str
    prompt: str
    closes_on: str
    station_name: str
    station_address: str
    url: str
    slug: str


def topic_poster(sheet: TopicSheet) -> Sheet:
    """A topic code's A4 poster: the deputy poster's layout with the topic's title, question and closing day."""
    canvas = Canvas(A4_MM)
    m = MARGIN_MM
    right = A4_MM[0] - m
    canvas.band(Box.mm(m, m, right, 46), RED)
    canvas.text(
        sheet.title, Box.mm(m + 6, 15, right - 6, 30), "bold", 13, 6, WHITE, "center", max_lines=1, role="title"
    )
    canvas.text(sheet.kind_label, Box.mm(m + 6, 33, right - 6, 43), "bold", 8, 4, CREAM, "center", max_lines=1)
    canvas.text(sheet.prompt, Box.mm(m, 52, right, 80), "bold", 8, 4, INK, "center", max_lines=3, role="prompt")
    canvas.text(
        f"征集截止：{sheet.closes_on}", Box.mm(m, 82, right, 92), "bold", 6, 3, RED, "center", max_lines=1,
        role="closes",
    )  # fmt: skip
    canvas.code(sheet.url, Box.mm(47, 96, 163, 212))
    canvas.text("微信扫一扫 · 发表您的意见", Box.mm(m, 216, right, 226), "bold", 7.5, 4, RED, "center", max_lines=1)
    canvas.text(
        AFTER_SCAN_LOOKUP, Box.mm(m + 4, 230, right - 4, 245), "regular", 4.6, 2.5, INK, "center",
        breaks=SENTENCE_BREAKS,
    )  # fmt: skip
    canvas.rule(m, right, 263, RULE)
    place = f"{sheet.station_name} {sheet.station_address}".strip()
    canvas.text(place, Box.mm(m, 266, right, 276), "regular", 3.8, 2, GREY, max_lines=2, role="address")
    canvas.text(f"码上联 · 专题码 {sheet.slug}", Box.mm(m, 279, right, 283), "regular", 2.8, 1.5, GREY)
    return canvas.sheet


# --- the station poster --------------------------------------------------------------------------


def name_font_mm(qr_mm: float) -> float:
    """The size of a deputy's name under a code ``qr_mm`` wide: bigger codes, bigger names."""
    return min(6.5, max(3.5, qr_mm * 0.11))


def row_pitch_mm(qr_mm: float) -> float:
    """The height of a row of deputy codes: the code, its name (room for two smaller lines), a gap."""
    return qr_mm + 0.5 + 1.8 * name_font_mm(qr_mm) + ROW_GAP_MM


@dataclass(frozen=True)
class Grid:
    """Deputy codes laid out in columns and rows, each code ``qr_mm`` wide (quiet zone included)."""

    columns: int
    rows: int
    qr_mm: float


def grid_for(count: int, width_mm: float, height_mm: float, max_mm: float = CELL_QR_MAX_MM) -> Grid | None:
    """The grid giving ``count`` codes the largest size in the area; None if they fit only below the minimum.

    Neighbouring codes are apart by their quiet zones at least, and the outer codes' quiet
    zones may lie in the margin, beyond ``width_mm``.
    """
    best: Grid | None = None
    for columns in range(1, min(count, MAX_GRID_COLUMNS) + 1):
        rows = math.ceil(count / columns)
        qr_mm = min(max_mm, width_mm / (columns - 2 * QUIET_FRACTION))
        while qr_mm >= CELL_QR_MIN_MM and rows * row_pitch_mm(qr_mm) > height_mm:
            qr_mm -= 0.25
        if qr_mm >= CELL_QR_MIN_MM and (best is None or qr_mm > best.qr_mm + 0.01):  # a tie: fewer columns
            best = Grid(columns, rows, round(qr_mm, 2))
    return best


@dataclass(frozen=True)
class StationPage:
    """A station poster page's plan: the station code's size (0 on the pages that go on), the grid, the spacing."""

    station_mm: float
    grid: Grid | None
    spread_mm: float  # spare height put between the blocks and the rows


def _spread(spare_mm: float, rows: int) -> float:
    """Spare height shared by the gaps: before the station block, before the heading, and half a gap around each row."""
    slots = rows + 2
    return max(0.0, min(SPREAD_MAX_MM, spare_mm / slots))


@lru_cache(maxsize=128)
def plan_station_page(count: int, first: bool) -> StationPage | None:
    """The layout of a station poster page with ``count`` deputy codes; None if they do not fit at the minimum size.

    The first page holds the station's code: among its sizes, the one leaving the largest deputy
    codes wins (then the larger station code), the station's staying the larger.
    """
    grid_top = STATION_BAND_BOTTOM_MM + BLOCK_GAP_MM
    if not first:
        height = PRINT_BOTTOM_MM - grid_top
        grid = grid_for(count, CONTENT_MM, height)
        if grid is None:
            return None
        return StationPage(0.0, grid, _spread(height - grid.rows * row_pitch_mm(grid.qr_mm), grid.rows))
    if count == 0:
        spare = PRINT_BOTTOM_MM - (grid_top + EMPTY_STATION_CODE_MM + BLOCK_GAP_MM + HEADING_MM + NO_DEPUTIES_MM)
        return StationPage(EMPTY_STATION_CODE_MM, None, spare / 3)
    best: StationPage | None = None
    station_mm = STATION_CODE_MAX_MM
    while station_mm >= STATION_CODE_MIN_MM:
        height = PRINT_BOTTOM_MM - (grid_top + station_mm + BLOCK_GAP_MM + HEADING_MM)
        grid = grid_for(count, CONTENT_MM, height, min(CELL_QR_MAX_MM, station_mm - STATION_CODE_LEAD_MM))
        if grid is not None and (best is None or grid.qr_mm > best.grid.qr_mm + 0.01):
            best = StationPage(station_mm, grid, _spread(height - grid.rows * row_pitch_mm(grid.qr_mm), grid.rows))
        station_mm -= 1
    return best


@lru_cache(maxsize=4)
def page_capacity(first: bool) -> int:
    """How many deputy codes a station poster page holds at the minimum size."""
    count = 1
    while plan_station_page(count + 1, first) is not None:
        count += 1
    return count


def station_poster_page_count(deputy_count: int) -> int:
    """How many pages ``station_posters`` draws for ``deputy_count`` deputy codes."""
    return 1 + -(-max(0, deputy_count - page_capacity(True)) // page_capacity(False))


def station_posters(sheet: StationSheet) -> list[Sheet]:
    """A station's A4 poster: its code and its deputies' codes; more pages when the deputies do not fit one."""
    return list(iter_station_posters(sheet))


def iter_station_posters(sheet: StationSheet) -> Iterator[Sheet]:
    """The pages of ``station_posters``, each drawn only when asked for (a batch holds one page at a time)."""
    m = MARGIN_MM
    right = A4_MM[0] - m
    first_capacity, more_capacity = page_capacity(True), page_capacity(False)
    chunks = [sheet.deputies[:first_capacity]]
    rest = sheet.deputies[first_capacity:]
    while rest:
        chunks.append(rest[:more_capacity])
        rest = rest[more_capacity:]

    for number, chunk in enumerate(chunks):
        plan = plan_station_page(len(chunk), number == 0)
        canvas = Canvas(A4_MM)
        canvas.band(Box.mm(m, m, right, STATION_BAND_BOTTOM_MM), RED)
        canvas.text(sheet.name, Box.mm(m + 6, 14.5, right - 6, 27), "bold", 10, 5, WHITE, "center", 1, role="title")
        subtitle = STATION_SUBTITLE if number == 0 else f"代表码（续 {number + 1}/{len(chunks)}）"
        canvas.text(subtitle, Box.mm(m + 6, 28.5, right - 6, 34), "bold", 5, 3, CREAM, "center", 1)
        top = STATION_BAND_BOTTOM_MM + BLOCK_GAP_MM + plan.spread_mm
        if number == 0:
            _station_block(canvas, sheet, top, plan.station_mm)
            top += plan.station_mm + BLOCK_GAP_MM + plan.spread_mm
            canvas.text(DEPUTY_CODES_HEADING, Box.mm(m, top, right, top + 8), "bold", 6, 3, RED, max_lines=1)
            canvas.rule(m, right, top + 9.5, RED, width_mm=0.5)
            top += HEADING_MM
        if chunk:
            _deputy_grid(canvas, chunk, plan, top + plan.spread_mm / 2)
        else:
            text_top = top + plan.spread_mm
            canvas.text(
                NO_DEPUTIES, Box.mm(m, text_top, right, text_top + NO_DEPUTIES_MM), "regular", 5, 3, GREY, "center"
            )
        yield canvas.sheet


def _station_block(canvas: Canvas, sheet: StationSheet, top: float, size_mm: float) -> None:
    """The station's code at the left margin, what it is for and the station's details beside it."""
    m = MARGIN_MM
    right = A4_MM[0] - m
    overhang = size_mm * QUIET_FRACTION
    canvas.code(sheet.url, Box.mm(m - overhang, top, m - overhang + size_mm, top + size_mm))
    column = m + size_mm - overhang + 2
    bottom = top + size_mm
    canvas.text(STATION_CODE_LABEL, Box.mm(column, top + 2, right, top + 11), "bold", 8, 4, RED, max_lines=1)
    canvas.text(STATION_CODE_HINT, Box.mm(column, top + 13, right, top + 24), "bold", 5, 3, INK, max_lines=2)
    fields = [
        ("地址：", sheet.address),
        ("接待时间：", sheet.reception or NO_RECEPTION),
        ("联系人：", sheet.contact),
    ]
    _field_block(
        canvas, [(label, value) for label, value in fields if value], Box.mm(column, top + 27, right, bottom - 6), 5
    )
    canvas.text(
        f"码上联 · 联络站码 {sheet.slug}", Box.mm(column, bottom - 4.5, right, bottom - 0.5), "regular", 2.8, 1.5, GREY
    )


def _deputy_grid(canvas: Canvas, deputies: tuple[DeputyCode, ...], plan: StationPage, top_mm: float) -> None:
    """Deputy codes with their names under them, rows centred and spread down the page."""
    grid = plan.grid
    assert grid is not None  # the caller paginates by page_capacity
    qr_mm = grid.qr_mm
    cell_mm = min((CONTENT_MM + 2 * qr_mm * QUIET_FRACTION) / grid.columns, qr_mm * 1.25)
    pitch = row_pitch_mm(qr_mm) + plan.spread_mm
    name_mm = name_font_mm(qr_mm)
    for number, deputy in enumerate(deputies):
        row, column = divmod(number, grid.columns)
        in_row = min(grid.columns, len(deputies) - row * grid.columns)
        left = A4_MM[0] / 2 - in_row * cell_mm / 2 + column * cell_mm
        top = top_mm + row * pitch
        qr_left = left + (cell_mm - qr_mm) / 2
        canvas.code(deputy.url, Box.mm(qr_left, top, qr_left + qr_mm, top + qr_mm))
        name_left, name_right = max(left, MARGIN_MM) + 1, min(left + cell_mm, A4_MM[0] - MARGIN_MM) - 1
        name_box = Box.mm(name_left, top + qr_mm + 0.5, name_right, top + qr_mm + 0.5 + 1.8 * name_mm)
        canvas.text(
            deputy.name, name_box, "bold", name_mm, 1.5, INK, "center", max_lines=2, breaks=NAME_BREAKS, role="name"
        )


# --- the table card ------------------------------------------------------------------------------


def _card_panel(canvas: Canvas, sheet: DeputySheet, top: float) -> None:
    """One half of the table card, its top at ``top`` mm (the fold)."""
    width_mm = A5_MM[0]
    m = 9.0
    right = width_mm - m
    canvas.text(TITLE, Box.mm(m, top + 8, right, top + 15), "bold", 5.5, 3, RED, "center", max_lines=1, role="title")
    canvas.rule(m, right, top + 17.5, RED, width_mm=0.4)
    canvas.code(sheet.url, Box.mm(m, top + 23, m + 62, top + 85))
    column = m + 68
    levels = " · ".join(sheet.levels) or "人大代表"
    canvas.text(levels, Box.mm(column, top + 27, right, top + 33), "bold", 4.5, 2, RED, max_lines=1, role="levels")
    canvas.text(
        sheet.name, Box.mm(column, top + 35, right, top + 63), "bold", 14, 5, INK, "left", "middle", 2, NAME_BREAKS,
        role="name",
    )  # fmt: skip
    canvas.text(CARD_CALL, Box.mm(column, top + 66, right, top + 73), "bold", 6, 3, RED, max_lines=1)
    canvas.text(sheet.station_name, Box.mm(column, top + 75.5, right, top + 85), "regular", 3.6, 2, GREY, max_lines=2)


def table_card(sheet: DeputySheet) -> Sheet:
    """A deputy's table card: A5 folded across the middle into a tent, the upper half turned.

    Each half is read with its top at the fold, so the folded card reads the same from both sides.
    """
    fold_mm = A5_MM[1] / 2
    card = Canvas(A5_MM)
    _card_panel(card, sheet, fold_mm)
    lower = card.sheet
    page_w, page_h = lower.size_px
    upper_area = Box(0, 0, page_w, px(fold_mm))
    turned = TurnedOp(tuple(lower.ops), upper_area)

    def turn(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        left, top, right, bottom = box
        return (page_w - right, page_h - bottom, page_w - left, page_h - top)

    texts = [PlacedText(t.text, turn(t.box), t.role, t.size) for t in lower.texts]
    codes = [PlacedCode(c.url, Box(*turn(c.box.as_tuple())), Box(*turn(c.symbol.as_tuple()))) for c in lower.codes]
    fold = px(fold_mm)
    dash = LineOp(0, fold, page_w, fold, px(0.2), RULE, dash=px(3))
    return Sheet(A5_MM, ops=[turned, *lower.ops, dash], texts=texts + lower.texts, codes=codes + lower.codes)


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
