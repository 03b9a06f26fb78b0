"""Posters and table cards to print: PNG previews and print-ready PDFs, batches streamed page by page.

A batch too long to stream before the worker timeout is sent to a batch job instead
(``backend.admin.printing.poster_access``; the jobs' pages are in ``backend.routes.admin``).

Each view is small so that the staff login and scope checks can be added as decorators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, current_app
from sqlalchemy import select

from backend.admin.printing import batch_names, poster_access
from backend.downloads import download
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import MAX_ID
from backend.models import Deputy, Region, Station
from backend.qr import fonts, posters
from backend.stations import serving_deputies

bp = Blueprint("posters", __name__, url_prefix="/posters")


def require_fonts() -> None:
    """UserError (503) before anything is rendered when the CJK font is missing: never a poster in tofu."""
    try:
        fonts.poster_face("bold")
        fonts.poster_face("regular")
    except fonts.FontMissingError as exc:
        current_app.logger.error("%s", exc)
        raise UserError("poster_font_missing", fonts.FONT_MISSING_MESSAGE, 503) from exc


def _printable_or_404(model: type, owner_id: int, require: Callable[[Any], None]):
    """The poster's owner once the fonts are there: 404 when unknown, and ``require``'s 404 saying why it gets none."""
    require_fonts()
    owner = db.session.get(model, owner_id)
    if owner is None:
        abort(404)
    require(owner)
    return owner


def serving_deputy_or_404(deputy_id: int) -> Deputy:
    """The deputy, serving; 404 when unknown, 404 saying why for one who left office."""
    return _printable_or_404(Deputy, deputy_id, posters.require_serving)


def station_or_404(station_id: int) -> Station:
    """The station; 404 when unknown, 404 saying why when it has closed."""
    return _printable_or_404(Station, station_id, posters.require_active)


@bp.get(f"/deputy/<int(max={MAX_ID}):deputy_id>.pdf")
@poster_access("deputy")
def deputy_pdf(deputy_id: int):
    """A deputy's A4 poster, print-ready."""
    deputy = serving_deputy_or_404(deputy_id)
    sheet = posters.deputy_poster(posters.deputy_sheet(deputy))
    data = posters.pdf_bytes([sheet], title=f"{deputy.name} 代表码海报")
    return download(data, "application/pdf", f"{deputy.name}-代表码海报.pdf", f"deputy-{deputy.id}-poster.pdf")


@bp.get(f"/deputy/<int(max={MAX_ID}):deputy_id>.png")
@poster_access("deputy")
def deputy_png(deputy_id: int):
    """A deputy's poster as a 1240 px wide preview."""
    deputy = serving_deputy_or_404(deputy_id)
    data = posters.deputy_poster(posters.deputy_sheet(deputy)).preview_png()
    return download(data, "image/png", f"{deputy.name}-代表码海报.png", f"deputy-{deputy.id}-poster.png", inline=True)


@bp.get(f"/station/<int(max={MAX_ID}):station_id>.pdf")
@poster_access("station")
def station_pdf(station_id: int):
    """The station's poster, then one poster per serving deputy, streamed."""
    station = station_or_404(station_id)
    names = batch_names("station", station=station)
    chunks = posters.pdf_chunks(posters.station_batch(station), title=names.title)
    return download(chunks, "application/pdf", names.filename, names.ascii_filename)


@bp.get(f"/station/<int(max={MAX_ID}):station_id>/cards.pdf")
@poster_access("cards")
def station_cards_pdf(station_id: int):
    """A table card per serving deputy of the station, streamed."""
    station = station_or_404(station_id)
    if not serving_deputies(station):
        raise UserError("no_deputies", f"{station.name}暂无在任代表，没有可打印的桌牌。", 404)
    names = batch_names("cards", station=station)
    chunks = posters.pdf_chunks(posters.station_cards(station), title=names.title)
    return download(chunks, "application/pdf", names.filename, names.ascii_filename)


@bp.get("/region/<code>.pdf")
@poster_access("region")
def region_pdf(code: str):
    """A poster for every serving deputy of every station in the region and below it, streamed."""
    require_fonts()
    region = db.session.scalar(select(Region).where(Region.code == code))
    if region is None:
        abort(404)
    deputy_ids = posters.region_deputy_ids(region)
    if not deputy_ids:
        raise UserError("no_deputies", f"{region.name}暂无在任代表，没有可打印的海报。", 404)
    names = batch_names("region", region=region)
    chunks = posters.pdf_chunks(posters.deputy_posters(deputy_ids), title=names.title)
    return download(chunks, "application/pdf", names.filename, names.ascii_filename)
