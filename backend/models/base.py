"""Declarative base, constraint naming, and the UTC time type shared by every model."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from sqlalchemy import DateTime, Enum, Index, MetaData, text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_clock_at: ContextVar[datetime | None] = ContextVar("clock_at", default=None)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC; inside ``clock_at(moment)``, that moment."""
    moment = _clock_at.get()
    return datetime.now(UTC) if moment is None else moment


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Run the real operations as at an earlier ``moment`` (aware): every ``utcnow()`` inside answers it.

    For writing a past that happened the way the code would have written it (the demo county's
    twelve months of history), instead of a second set of writers that set timestamps by hand.
    Nothing that serves a request uses it.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; pass an aware datetime")
    token = _clock_at.set(moment.astimezone(UTC))
    try:
        yield
    finally:
        _clock_at.reset(token)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every engine (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Refuse naive datetimes and store everything as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use backend.models.base.utcnow()")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        """Return aware UTC datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base class of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def enum_column(enum_cls: type, length: int) -> Enum:
    """A VARCHAR column holding a StrEnum's values (not its member names); no native DB enum."""
    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def partial_index(name: str, *columns: str, where: str, **options) -> Index:
    """An index over the rows ``where`` holds (SQL), the same on SQLite and PostgreSQL: each engine takes the
    condition under its own keyword, and the two must never drift apart."""
    return Index(name, *columns, **options, sqlite_where=text(where), postgresql_where=text(where))


class LabeledStrEnum(enum.StrEnum):
    """A StrEnum whose members carry their Chinese label: ``SUBMITTED = "submitted", "已提交"``.

    The label is what every page, export and notice shows for the member (``status.label``);
    ``labels()`` gives ``{member: label}`` for templates and forms that list the choices.
    """

    label: str

    def __new__(cls, value: str, label: str):
        """A member whose value is ``value`` (what the database stores) and whose label is ``label``."""
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    @classmethod
    def labels(cls) -> dict:
        """``{member: label}`` in definition order (a new dict: callers may not change the enum's)."""
        return {member: member.label for member in cls}
