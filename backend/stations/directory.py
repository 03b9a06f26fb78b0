"""The public directory (码上找代表): active stations, their serving deputies, and a search through them.

Only what a poster already shows: names, levels, stations, townships, codes. No phone number.

A county has 769–2,435 deputies (PRODUCT.md), so the page never lists them all: it searches by
name, station or township and shows one page at a time, grouped by township and station, each
deputy's code behind a tap. The search is a substring match (``LIKE '%…%'``): a name is two to
four characters typed in the middle as often as at the start, so no B-tree index serves it, and
none is needed at a county's size — a search over 2,435 deputies scans a few thousand short rows:
20–100 ms a page on SQLite and PostgreSQL alike (the browser test's county, on a busy 2-core machine,
2026-12-03). A province-wide directory would want PostgreSQL's pg_trgm; no county page needs it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from flask import url_for
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from backend import pagination
from backend.extensions import db
from backend.items.inbox import clean_query
from backend.models import Code, Deputy, DeputyStatus, Region, Station
from backend.qr.codes import code_url


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
    township: str = ""
    deputies: list[DirectoryDeputy] = field(default_factory=list)


@dataclass
class FoundDeputy:
    """One match of a search: the deputy and the station (and township) they serve at."""

    deputy: DirectoryDeputy
    station: DirectoryStation


@dataclass
class TownshipGroup:
    """The matches of one page under one township, station by station."""

    township: str
    stations: list[DirectoryStation]


@dataclass
class DirectoryPage:
    """One page of matches (``found``), and the same grouped by township and station for the page."""

    query: str
    found: list[FoundDeputy]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the matches make."""
        return pagination.page_count(self.total, self.per_page)

    @property
    def has_next(self) -> bool:
        """Whether a page follows this one."""
        return self.page * self.per_page < self.total

    @property
    def groups(self) -> list[TownshipGroup]:
        """The page's deputies under their township and station, in the page's order."""
        groups: dict[str, dict[int, DirectoryStation]] = defaultdict(dict)
        for match in self.found:
            stations = groups[match.station.township]
            station = stations.setdefault(match.station.id, match.station)
            station.deputies.append(match.deputy)
        return [TownshipGroup(township, list(stations.values())) for township, stations in groups.items()]


def _deputy(deputy: Deputy, slug: str | None) -> DirectoryDeputy:
    return DirectoryDeputy(
        id=deputy.id,
        name=deputy.name,
        levels=deputy.level_labels,
        code_url=code_url(slug) if slug else None,
        qr_path=url_for("qr.image", owner="deputy", owner_id=deputy.id, fmt="png"),
    )


def _station(station: Station, slug: str | None, township: str = "") -> DirectoryStation:
    return DirectoryStation(
        id=station.id,
        name=station.name,
        address=station.address,
        code_url=code_url(slug) if slug else None,
        qr_path=url_for("qr.image", owner="station", owner_id=station.id, fmt="png"),
        township=township,
    )


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
        deputies_by_station[deputy.station_id].append(_deputy(deputy, slug))
    stations = []
    for station, slug in station_rows:
        listed = _station(station, slug)
        listed.deputies = deputies_by_station.get(station.id, [])
        stations.append(listed)
    return stations


def search_deputies(query: object, page: int = 1, per_page: int = pagination.DEFAULT_PER_PAGE) -> DirectoryPage:
    """One page of the serving deputies of active stations whose name, station or township contains ``query``
    (every one when it is empty), by township (its division code), station and deputy; four queries whatever
    the page holds (three for an empty page)."""
    text = clean_query(query)
    matches = (
        select(Deputy.id)
        .join(Station, Deputy.station_id == Station.id)
        .join(Region, Station.region_id == Region.id)
        .where(Station.is_active.is_(True), Deputy.status == DeputyStatus.SERVING)
    )
    if text:
        matches = matches.where(
            or_(
                func.lower(Deputy.name).contains(text.lower(), autoescape=True),
                func.lower(Station.name).contains(text.lower(), autoescape=True),
                func.lower(Region.name).contains(text.lower(), autoescape=True),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(matches.subquery())) or 0
    # The page's ids first, then their rows with the codes joined in: on fresh tables (a roster just imported,
    # before PostgreSQL has statistics) one statement doing both took 2.6 s for 2,435 deputies, the two < 0.1 s.
    page_ids = db.session.scalars(
        matches.order_by(Region.code, Station.id, Deputy.id).offset(pagination.offset(page, per_page)).limit(per_page)
    ).all()
    station_code = aliased(Code)
    rows = (
        db.session.execute(
            select(Deputy, Code.slug, Station, Region.name, station_code.slug)
            .join(Station, Deputy.station_id == Station.id)
            .join(Region, Station.region_id == Region.id)
            .outerjoin(Code, and_(Code.deputy_id == Deputy.id, Code.is_current))
            .outerjoin(
                station_code,
                and_(station_code.station_id == Station.id, station_code.topic_id.is_(None), station_code.is_current),
            )
            .where(Deputy.id.in_(page_ids))
            .order_by(Region.code, Station.id, Deputy.id)
            .options(selectinload(Deputy.levels))
        ).all()
        if page_ids
        else []
    )
    stations: dict[int, DirectoryStation] = {}
    found = []
    for deputy, slug, station, township, station_slug in rows:
        if station.id not in stations:
            stations[station.id] = _station(station, station_slug, township)
        found.append(FoundDeputy(deputy=_deputy(deputy, slug), station=stations[station.id]))
    return DirectoryPage(query=text, found=found, page=page, per_page=per_page, total=total)
