"""The public directory (码上找代表): the page, its search, and the JSON the mini-program reads.

Only what a poster already shows: names, levels, station addresses, codes. No phone number.
The lists and the search live in the stations area (``backend.stations.directory``).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request

from backend import api_schemas, pagination, replica
from backend.api_schemas import describe
from backend.api_schemas import models as m
from backend.stations.directory import directory, search_deputies

bp = Blueprint("directory", __name__)


@bp.get("/api/v1/stations")
@describe(tags=("群众",), responses={200: m.Directory})
@replica.reads_from_replica()
def stations_json():
    """The directory as JSON, with absolute URLs for the QR images."""
    base = current_app.config["PUBLIC_BASE_URL"]
    return jsonify(
        stations=[
            {
                "id": station.id,
                "name": station.name,
                "address": station.address,
                "code_url": station.code_url,
                "qr_png_url": base + station.qr_path,
                "deputies": [
                    {
                        "id": deputy.id,
                        "name": deputy.name,
                        "levels": deputy.levels,
                        "code_url": deputy.code_url,
                        "qr_png_url": base + deputy.qr_path,
                    }
                    for deputy in station.deputies
                ],
            }
            for station in directory()
        ]
    )


@bp.get("/api/v1/deputies")
@describe(tags=("群众",), query=m.DeputySearchQuery, responses={200: m.DeputySearch})
def deputies_json():
    """码上找代表's search: ``?q=`` (name, station or township), ``?page=&per_page=``; each match with its
    station and its code."""
    query: m.DeputySearchQuery = api_schemas.args()
    found = search_deputies(query.q, query.page or 1, query.per_page or pagination.DEFAULT_PER_PAGE)
    base = current_app.config["PUBLIC_BASE_URL"]
    return jsonify(
        q=found.query,
        deputies=[
            {
                "id": match.deputy.id,
                "name": match.deputy.name,
                "levels": match.deputy.levels,
                "code_url": match.deputy.code_url,
                "qr_png_url": base + match.deputy.qr_path,
                "station": {
                    "id": match.station.id,
                    "name": match.station.name,
                    "township": match.station.township,
                    "code_url": match.station.code_url,
                },
            }
            for match in found.found
        ],
        page=found.page,
        per_page=found.per_page,
        total=found.total,
        pages=found.pages,
        has_next=found.has_next,
    )


@bp.get("/stations")
@replica.reads_from_replica()
def stations_page():
    """码上找代表: search the county's deputies by name, station or township, a page at a time, for a phone."""
    found = search_deputies(request.args.get("q"), pagination.page_number(request.args.get("page")))
    return render_template("directory.html", found=found)
