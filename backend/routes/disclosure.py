"""公示 pages and their JSON: what a station or a region publishes to everyone, without a login.

The figures, the reception days and the resolved items whose residents agreed to publish them
(``backend.supervision.disclosure``). An unknown or closed station, an unknown region or one with
no active station answers a Chinese 404 page (JSON under /api/). The answers may be kept by a
browser or a proxy for a minute (``Cache-Control: public``): they hold nothing personal and change
slowly, and a poster scanned by a crowd should not recount the figures each time.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, make_response, render_template, url_for

from backend.api_schemas import describe
from backend.api_schemas import models as m
from backend.errors import UserError
from backend.supervision import disclosure

bp = Blueprint("disclosure", __name__)

PUBLIC_MAX_AGE = 60  # seconds


def _public(response):
    """Cacheable by anyone for ``PUBLIC_MAX_AGE``: nothing on these answers belongs to one visitor."""
    response.headers["Cache-Control"] = f"public, max-age={PUBLIC_MAX_AGE}"
    return response


def _station_or_404(station_id: int):
    station = disclosure.public_station(station_id)
    if station is None:
        raise UserError("unknown_station", "找不到这个联络站，或该联络站已停用。", 404)
    return station


@bp.get("/gongshi/stations/<int:station_id>")
def station_page(station_id: int):
    """A station's 公示: its figures, reception days and who is on duty, and the items residents agreed to publish."""
    station = _station_or_404(station_id)
    page = disclosure.station_disclosure(station)
    region_link = url_for("disclosure.region_page", code=station.region.code)
    return _public(
        make_response(
            render_template(
                "disclosure/page.html",
                page=page,
                station=station,
                region=station.region,
                region_link=region_link,
                definitions=disclosure.DEFINITIONS,
            )
        )
    )


@bp.get("/gongshi/regions/<code>")
def region_page(code: str):
    """A region's 公示: the figures of all its stations, links to each station's page, the published items."""
    region = disclosure.public_region(code)
    if region is None:
        raise UserError("unknown_region", "找不到这个地区的公示，请核对地区代码。", 404)
    page = disclosure.region_disclosure(region)
    return _public(
        make_response(
            render_template(
                "disclosure/page.html",
                page=page,
                station=None,
                region=region,
                region_link=None,
                definitions=disclosure.DEFINITIONS,
            )
        )
    )


@bp.get("/api/v1/public/stations/<int:station_id>")
@describe(tags=("群众",), responses={200: m.StationDisclosure, 404: m.ErrorResponse})
def station_json(station_id: int):
    """A station's 公示 as JSON: the same figures, reception days and published items as its page."""
    station = _station_or_404(station_id)
    return _public(jsonify(disclosure.disclosure_json(disclosure.station_disclosure(station), station)))
