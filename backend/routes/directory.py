"""The public directory (码上找代表): every active station and the deputies serving there.

Only what a poster already shows: names, levels, station addresses, codes. No phone number.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from flask import Blueprint, current_app, jsonify, render_template, url_for
from sqlalchemy import and_, select
from sqlalchemy.orm import selectinload

from backend.api_schemas import describe
from backend.api_schemas import models as m
from backend.extensions import db
from backend.models import Code, Deputy, DeputyStatus, Station
from backend.qr.codes import code_url

bp = Blueprint("directory", __name__)


@dataclass
class DirectoryDeputy:
    """A serving deputy as the directory shows them."""

    id: int
    name: str
    levels: list[str]
    code_url: str | None
    qr_path: str


@dataclass
class DirectoryStation:
    """An active station and its serving deputies."""

    id: int
    name: str
    address: str
    code_url: str | None
    qr_path: str
    deputies: list[DirectoryDeputy] = field(default_factory=list)


def directory() -> list[DirectoryStation]:
    """Active stations by id, each with its serving deputies by id; the query count does not grow per row."""
    # The current code is joined in (Code.is_current, as in backend.qr.codes.current_code):
    # calling current_code() per owner would be one query per deputy.
    station_rows = db.session.execute(
        select(Station, Code.slug)
        .outerjoin(Code, and_(Code.station_id == Station.id, Code.topic_id.is_(None), Code.is_current))
        .where(Station.is_active.is_(True))
        .order_by(Station.id)
    ).all()
    deputy_rows = db.session.execute(
        select(Deputy, Code.slug)
        .join(Station, Deputy.station_id == Station.id)
        .outerjoin(Code, and_(Code.deputy_id == Deputy.id, Code.is_current))
        .where(Station.is_active.is_(True), Deputy.status == DeputyStatus.SERVING)
        .order_by(Deputy.id)
        .options(selectinload(Deputy.levels))
    ).all()
    deputies_by_station: dict[int, list[DirectoryDeputy]] = defaultdict(list)
    for deputy, slug in deputy_rows:
        deputies_by_station[deputy.station_id].append(
            DirectoryDeputy(
                id=deputy.id,
                name=deputy.name,
                levels=deputy.level_labels,
                code_url=code_url(slug) if slug else None,
                qr_path=url_for("qr.deputy_png", deputy_id=deputy.id),
            )
        )
    return [
        DirectoryStation(
            id=station.id,
            name=station.name,
            address=station.address,
            code_url=code_url(slug) if slug else None,
            qr_path=url_for("qr.station_png", station_id=station.id),
            deputies=deputies_by_station.get(station.id, []),
        )
        for station, slug in station_rows
    ]


@bp.get("/api/v1/stations")
@describe(tags=("群众",), responses={200: m.Directory})
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


@bp.get("/stations")
def stations_page():
    """码上找代表: the directory as a page for a phone."""
    return render_template("directory.html", stations=directory())
