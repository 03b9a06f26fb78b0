"""QR codes (代表码 / 联络站码 / 专题码): opaque slugs that can be rotated but never reused."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, SmallInteger, String
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, UTCDateTime, partial_index, utcnow
from backend.models.deputy import Deputy
from backend.models.station import Station
from backend.models.topic import Topic


class Code(Base):
    """One slug ever issued for a deputy or a station; retired rows are kept so a slug is never reused.

    A topic code (专题码, ``topic_id``) belongs to its station too (``station_id``): its messages are the
    station's items. It is not the station's own code, so "one current code per station" leaves it out.
    """

    __tablename__ = "codes"
    __table_args__ = (
        CheckConstraint("(deputy_id IS NULL) <> (station_id IS NULL)", name="one_owner"),
        # At most one current code per owner.
        partial_index("uq_codes_current_deputy", "deputy_id", unique=True, where="retired_at IS NULL"),
        partial_index(
            "uq_codes_current_station",
            "station_id",
            unique=True,
            where="retired_at IS NULL AND topic_id IS NULL",
        ),
        partial_index(
            "uq_codes_current_topic",
            "topic_id",
            unique=True,
            where="retired_at IS NULL AND topic_id IS NOT NULL",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    deputy_id: Mapped[int | None] = mapped_column(ForeignKey("deputies.id"), index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_reason: Mapped[str] = mapped_column(String(200), default="")

    deputy: Mapped[Deputy | None] = relationship()
    station: Mapped[Station | None] = relationship()
    topic: Mapped[Topic | None] = relationship()

    @hybrid_property
    def is_current(self) -> bool:
        """True while this slug is the one printed for its owner (in a query: ``retired_at IS NULL``)."""
        return self.retired_at is None

    @is_current.inplace.expression
    @classmethod
    def _is_current_expression(cls):
        return cls.retired_at.is_(None)


class CodeScanDay(Base):
    """Scans of one code on one China date, spread over a few rows (``shard``) so that no single row is hot.

    Each scan adds one to a row picked at random among ``backend.qr.scans.SHARDS`` of its code and day, in
    the request's own transaction (nothing is counted that is not committed, nothing committed is lost);
    a day's scans are the sum of its rows. One source of truth: codes keep no count of their own.
    """

    __tablename__ = "code_scan_days"

    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    scans: Mapped[int] = mapped_column(default=0)


class CodeScanFold(Base):
    """A batch of scans counted in Redis and added to ``code_scan_days`` (its Redis key): recorded in the same
    transaction as the addition, so that a fold repeated after a crash adds nothing twice."""

    __tablename__ = "code_scan_folds"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    folded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
