"""Who may print which poster, and how many pages a batch will have (for the page's progress bar).

``poster_access(kind)`` goes in front of each view of ``backend.routes.posters``:

| poster                    | station_admin     | supervisor                      | deputy          |
|---------------------------|-------------------|---------------------------------|-----------------|
| a deputy's (PDF, PNG)     | their station's   | of stations in their region     | their own only  |
| a station's batch, cards  | their station     | stations in their region        | —               |
| a region's batch          | —                 | their region or one under it    | —               |

Logged out: the login page. A department user: 404 and an audit row (``login_required``).
Something that exists out of scope: 404 and an ``admin_access_denied`` row, the same answer as
something unknown; unknown ids reach the view, which answers 404 as before.

Batch PDFs are streamed; the response says up front how many pages it will hold
(``X-Poster-Pages``). A batch longer than ``POSTER_STREAM_MAX_PAGES`` would not end within
gunicorn's worker timeout: its direct address answers 303 to the page that queues it as a batch
job instead (``backend.batches``: rendered by ``flask posters run``, with progress on the page).
The same scope rules (``print_target``) decide who may queue, watch and download a batch job.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, redirect, url_for
from sqlalchemy import func, select

from backend.access import can_manage_region, can_manage_station, deny
from backend.auth.sessions import current_staff, login_required
from backend.extensions import db
from backend.models import Code, Deputy, DeputyStatus, Region, StaffRole, StaffUser, Station
from backend.qr import posters

PAGES_HEADER = "X-Poster-Pages"
POSTER_KINDS = ("deputy", "station", "cards", "region")


def can_print_deputy(user: StaffUser, deputy: Deputy) -> bool:
    """True when ``user`` may print ``deputy``'s poster: the deputy themself, or whoever manages their station."""
    if user.role == StaffRole.DEPUTY:
        return user.is_active and user.deputy_id is not None and user.deputy_id == deputy.id
    return can_manage_station(user, deputy.station)


def _with_codes(query):
    """Restrict a deputy query to deputies that have a current code (the batches skip the others)."""
    return query.join(Code, (Code.deputy_id == Deputy.id) & Code.is_current)


def printable_count(station: Station) -> int:
    """Serving deputies of the station with a current code: one poster or card each."""
    query = select(func.count(Deputy.id)).where(Deputy.station_id == station.id, Deputy.status == DeputyStatus.SERVING)
    return db.session.scalar(_with_codes(query)) or 0


def station_batch_pages(station: Station) -> int:
    """Pages of ``GET /posters/station/<id>.pdf``: the station poster, then one page per deputy."""
    count = printable_count(station)
    return posters.station_poster_page_count(count) + count


def region_batch_pages(region: Region) -> int:
    """Pages of ``GET /posters/region/<code>.pdf``: one per serving deputy with a code."""
    ids = posters.region_deputy_ids(region)
    if not ids:
        return 0
    query = select(func.count(Deputy.id)).where(Deputy.id.in_(ids))
    return db.session.scalar(_with_codes(query)) or 0


@dataclass(frozen=True)
class PrintTarget:
    """What a poster view or a batch job prints, found and checked against the user's scope, and its page count."""

    kind: str
    pages: int
    deputy: Deputy | None = None
    station: Station | None = None
    region: Region | None = None


def print_target(user: StaffUser | None, kind: str, key: int | str) -> PrintTarget | None:
    """The deputy (``kind`` deputy), station (station, cards) or region (region) named by ``key``, if ``user`` may print it.

    Unknown: None (the caller answers 404 as before). Known but out of scope: 404 and an
    ``admin_access_denied`` row (``deny``), the same answer as unknown.
    """
    if kind not in POSTER_KINDS:
        raise ValueError(f"unknown poster kind {kind!r}")
    if kind == "deputy":
        deputy = db.session.get(Deputy, key)
        if deputy is None:
            return None
        if not can_print_deputy(user, deputy):
            deny(user, "deputy", deputy.id)
        return PrintTarget(kind, 1, deputy=deputy)
    if kind in ("station", "cards"):
        station = db.session.get(Station, key)
        if station is None:
            return None
        if not can_manage_station(user, station):
            deny(user, "station", station.id)
        pages = station_batch_pages(station) if kind == "station" else printable_count(station)
        return PrintTarget(kind, pages, station=station)
    region = db.session.scalar(select(Region).where(Region.code == key))
    if region is None:
        return None
    if not can_manage_region(user, region):
        deny(user, "region", region.code)
    return PrintTarget(kind, region_batch_pages(region), region=region)


def fits_a_stream(pages: int) -> bool:
    """True when a batch of ``pages`` pages can be streamed in one response before the worker timeout."""
    return pages <= current_app.config["POSTER_STREAM_MAX_PAGES"]


def batch_job_url(target: PrintTarget) -> str:
    """The page that offers to queue ``target`` as a batch job (``admin.poster_batch_new``)."""
    if target.region is not None:
        return url_for("admin.poster_batch_new", kind=target.kind, region=target.region.code)
    return url_for("admin.poster_batch_new", kind=target.kind, station_id=target.station.id)


@dataclass(frozen=True)
class BatchNames:
    """How a batch PDF is named: its title inside the file, and the download's name in Chinese and in ASCII."""

    title: str
    filename: str
    ascii_filename: str


def batch_names(kind: str, station: Station | None = None, region: Region | None = None) -> BatchNames:
    """The names of the station batch, the cards or the region batch (the same for a stream and a job's file)."""
    if kind == "station":
        return BatchNames(
            f"{station.name} 二维码海报", f"{station.name}-二维码海报.pdf", f"station-{station.id}-posters.pdf"
        )
    if kind == "cards":
        return BatchNames(f"{station.name} 代表桌牌", f"{station.name}-代表桌牌.pdf", f"station-{station.id}-cards.pdf")
    if kind == "region":
        return BatchNames(
            f"{region.name} 代表码海报", f"{region.name}-代表码海报.pdf", f"region-{region.code}-posters.pdf"
        )
    raise ValueError(f"no batch of kind {kind!r}")


def poster_access(kind: str) -> Callable[[Callable], Callable]:
    """Decorator for a poster view (``kind``: deputy, station, cards, region): login, scope, page count.

    A batch too long for one response is not started: 303 to the page that queues it as a job.
    """
    if kind not in POSTER_KINDS:
        raise ValueError(f"unknown poster kind {kind!r}")
    key_name = {"deputy": "deputy_id", "station": "station_id", "cards": "station_id", "region": "code"}[kind]

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(**kwargs):
            target = print_target(current_staff(), kind, kwargs[key_name])
            if target is not None and kind != "deputy" and not fits_a_stream(target.pages):
                return redirect(batch_job_url(target), 303)
            response = view(**kwargs)
            if target is not None and response.mimetype == "application/pdf":
                response.headers[PAGES_HEADER] = str(target.pages)
            return response

        return login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN, StaffRole.SUPERVISOR)(checked)

    return decorate
