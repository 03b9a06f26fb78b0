"""Issuing, rotating and resolving code slugs.

A slug is opaque (72 random bits, 12 URL-safe characters), never a database id and
never a signed payload: revoking one is a row update, and a retired slug stays in the
table so that it can never be issued again.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from backend.extensions import db
from backend.models import Code, Deputy, Station, utcnow

SLUG_BYTES = 9  # 72 bits → 12 characters of URL-safe base64
SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{12}$")


def new_slug() -> str:
    """A fresh random slug."""
    return secrets.token_urlsafe(SLUG_BYTES)


def code_url(slug: str) -> str:
    """The URL a printed code points at."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/c/{slug}"


def issue_code(owner: Deputy | Station) -> Code:
    """Give a deputy or a station its first code (flushes; the caller commits)."""
    code = Code(slug=_unused_slug())
    if isinstance(owner, Deputy):
        code.deputy = owner
    else:
        code.station = owner
    db.session.add(code)
    db.session.flush()
    return code


def current_code(owner: Deputy | Station) -> Code | None:
    """The slug currently printed for ``owner``."""
    column = Code.deputy_id if isinstance(owner, Deputy) else Code.station_id
    return db.session.scalar(select(Code).where(column == owner.id, Code.retired_at.is_(None)))


def rotate_code(owner: Deputy | Station, reason: str) -> Code:
    """Retire the owner's current code and issue a new one (a defaced or tampered poster)."""
    old = current_code(owner)
    if old is not None:
        old.retired_at = utcnow()
        old.retired_reason = reason[:200]
        db.session.flush()
    return issue_code(owner)


def _unused_slug() -> str:
    for _ in range(5):
        slug = new_slug()
        if db.session.scalar(select(Code.id).where(Code.slug == slug)) is None:
            return slug
    raise RuntimeError("could not draw an unused slug")  # 2^72 space: never in practice


@dataclass(frozen=True)
class ResolvedCode:
    """What a scanned slug leads to."""

    code: Code
    deputy: Deputy | None
    station: Station

    @property
    def is_retired(self) -> bool:
        """True when this slug was replaced by a newer one."""
        return self.code.retired_at is not None

    @property
    def routes_to_station(self) -> bool:
        """True when the resident chooses among a station's deputies (station code, or a deputy no longer serving)."""
        return self.deputy is None or not self.deputy.is_serving


def resolve_slug(slug: str) -> ResolvedCode | None:
    """Look a slug up; None for a malformed or unknown slug."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        return None
    code = db.session.scalar(select(Code).where(Code.slug == slug))
    if code is None:
        return None
    if code.deputy is not None:
        return ResolvedCode(code=code, deputy=code.deputy, station=code.deputy.station)
    return ResolvedCode(code=code, deputy=None, station=code.station)
