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
(``X-Poster-Pages``), so that the page can show "已生成 k / N 页" while it reads the stream.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlalchemy import func, select

from backend.admin.scope import can_manage_region, can_manage_station, deny
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
    return query.join(Code, (Code.deputy_id == Deputy.id) & Code.retired_at.is_(None))


def printable_count(station: Station) -> int:
    """Serving deputies of the station with a current code: one poster or card each."""
    query = select(func.count(Deputy.id)).where(Deputy.station_id == station.id, Deputy.status == DeputyStatus.SERVING)
    return db.session.scalar(_with_codes(query)) or 0


def station_poster_pages(deputy_count: int) -> int:
    """Pages of the station poster itself for ``deputy_count`` deputy codes (the grid goes on over more pages).

    The same areas as ``posters.station_posters``: the grid below the station's block on the
    first page, below the heading on the others.
    """
    m = posters.MARGIN_MM
    right, bottom = posters.A4_MM[0] - m, posters.A4_MM[1] - m
    first = posters.Box.mm(m, 128, right, bottom)
    more = posters.Box.mm(m, 50, right, bottom)
    first_capacity = posters.grid_capacity(first.width / posters.MM, first.height / posters.MM)
    more_capacity = posters.grid_capacity(more.width / posters.MM, more.height / posters.MM)
    rest = max(0, deputy_count - first_capacity)
    return 1 + -(-rest // more_capacity)


def station_batch_pages(station: Station) -> int:
    """Pages of ``GET /posters/station/<id>.pdf``: the station poster, then one page per deputy."""
    count = printable_count(station)
    return station_poster_pages(count) + count


def region_batch_pages(region: Region) -> int:
    """Pages of ``GET /posters/region/<code>.pdf``: one per serving deputy with a code."""
    ids = posters.region_deputy_ids(region)
    if not ids:
        return 0
    query = select(func.count(Deputy.id)).where(Deputy.id.in_(ids))
    return db.session.scalar(_with_codes(query)) or 0


def poster_access(kind: str) -> Callable[[Callable], Callable]:
    """Decorator for a poster view (``kind``: deputy, station, cards, region): login, scope, page count."""
    if kind not in POSTER_KINDS:
        raise ValueError(f"unknown poster kind {kind!r}")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(**kwargs):
            user = current_staff()
            pages = None
            if kind == "deputy":
                deputy = db.session.get(Deputy, kwargs["deputy_id"])
                if deputy is not None and not can_print_deputy(user, deputy):
                    deny(user, "deputy", deputy.id)
                pages = 1
            elif kind in ("station", "cards"):
                station = db.session.get(Station, kwargs["station_id"])
                if station is not None:
                    if not can_manage_station(user, station):
                        deny(user, "station", station.id)
                    pages = station_batch_pages(station) if kind == "station" else printable_count(station)
            else:
                region = db.session.scalar(select(Region).where(Region.code == kwargs["code"]))
                if region is not None:
                    if not can_manage_region(user, region):
                        deny(user, "region", region.code)
                    pages = region_batch_pages(region)
            response = view(**kwargs)
            if pages is not None and response.mimetype == "application/pdf":
                response.headers[PAGES_HEADER] = str(pages)
            return response

        return login_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN, StaffRole.SUPERVISOR)(checked)

    return decorate
