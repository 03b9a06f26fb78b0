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
from backend.models import Code, Deputy, Station, Topic, utcnow

SLUG_BYTES = 9  # 72 bits → 12 characters of URL-safe base64
SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{12}$")


def new_slug() -> str:
    """A fresh random slug."""
    return secrets.token_urlsafe(SLUG_BYTES)


def code_url(slug: str) -> str:
    """The URL a printed code points at."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/c/{slug}"


def issue_code(owner: Deputy | Station | Topic) -> Code:
    """Give a deputy, a station or a topic its first code (flushes; the caller commits)."""
    return issue_codes([owner])[0]


def issue_codes(owners: list[Deputy | Station | Topic]) -> list[Code]:
    """A first code for each deputy, station or topic, in one flush, with slugs never issued before.

    Drawn in bulk and checked against every slug ever issued (a 72-bit space: a clash is never
    seen in practice, and drawn again if it is).
    """
    if not owners:
        return []
    slugs: set[str] = set()
    while len(slugs) < len(owners):
        drawn = list({new_slug() for _ in range(len(owners) - len(slugs))} - slugs)
        taken: set[str] = set()
        for start in range(0, len(drawn), 1000):
            taken |= set(db.session.scalars(select(Code.slug).where(Code.slug.in_(drawn[start : start + 1000]))))
        slugs |= set(drawn) - taken
    codes = [_new_code(slug, owner) for slug, owner in zip(sorted(slugs), owners, strict=True)]
    db.session.add_all(codes)
    db.session.flush()
    return codes


def _new_code(slug: str, owner: Deputy | Station | Topic) -> Code:
    """An unsaved code row for ``owner``: a topic's code belongs to the topic's station as well."""
    if isinstance(owner, Deputy):
        return Code(slug=slug, deputy=owner)
    if isinstance(owner, Topic):
        return Code(slug=slug, station=owner.station, topic=owner)
    return Code(slug=slug, station=owner)


def current_code(owner: Deputy | Station | Topic) -> Code | None:
    """The slug currently printed for ``owner`` (a station's own code, never one of its topic codes)."""
    if isinstance(owner, Topic):
        return db.session.scalar(select(Code).where(Code.topic_id == owner.id, Code.is_current))
    if isinstance(owner, Deputy):
        return db.session.scalar(select(Code).where(Code.deputy_id == owner.id, Code.is_current))
    return db.session.scalar(select(Code).where(Code.station_id == owner.id, Code.topic_id.is_(None), Code.is_current))


def rotate_code(owner: Deputy | Station, reason: str) -> Code:
    """Retire the owner's current code and issue a new one (a defaced or tampered poster)."""
    old = current_code(owner)
    if old is not None:
        old.retired_at = utcnow()
        old.retired_reason = reason[:200]
        db.session.flush()
    return issue_code(owner)


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
    def topic(self) -> Topic | None:
        """The topic a topic code (专题码) collects opinions on; None for a deputy's or a station's own code."""
        return self.code.topic

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
    # A merged station's posters stay on walls: its code leads to the station it was merged into.
    return ResolvedCode(code=code, deputy=None, station=code.station.merged_into or code.station)
