"""进站签到 (a deputy's recorded presence at a station) and 走访/座谈 (contacts with residents that are not items)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, LabeledStrEnum, UTCDateTime, enum_column, partial_index, utcnow
from backend.models.deputy import Deputy
from backend.models.station import Station


class PresenceSource(LabeledStrEnum):
    """How a visit was recorded: by the deputy's own phone, or by the station's administrator for them."""

    SCAN = "scan", "扫联络站码签到"
    TAP = "tap", "在手机页面签到"
    API = "api", "小程序签到"
    BY_ADMIN = "by_admin", "联络站管理员代为登记"


class StationVisit(Base):
    """One visit of a deputy to a station (进站): checked in, then checked out by a second scan or tap.

    At most one open visit per deputy (a unique partial index): two check-ins sent at once make one visit.
    ``day`` is the China date of the check-in, the unit of 见面率; ``is_reception_day`` says whether the
    station's calendar gave the deputy that day (a visit on another day is kept, and marked).
    """

    __tablename__ = "station_visits"
    __table_args__ = (
        partial_index("uq_station_visits_open_deputy", "deputy_id", unique=True, where="checked_out_at IS NULL"),
        Index("ix_station_visits_station_day", "station_id", "day"),
        Index("ix_station_visits_deputy_day", "deputy_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deputy_id: Mapped[int] = mapped_column(ForeignKey("deputies.id"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    day: Mapped[date] = mapped_column(Date)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_reception_day: Mapped[bool] = mapped_column()
    source: Mapped[PresenceSource] = mapped_column(enum_column(PresenceSource, 10))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    deputy: Mapped[Deputy] = relationship()
    station: Mapped[Station] = relationship()

    @property
    def is_open(self) -> bool:
        """True until the deputy checks out."""
        return self.checked_out_at is None


class ContactKind(LabeledStrEnum):
    """The kinds of contact a deputy logs (联系群众) that are not a resident's message."""

    VISIT = "visit", "走访"
    MEETING = "meeting", "座谈"
    PHONE = "phone", "电话"


class ContactLog(Base):
    """A contact with residents a deputy logged: when, where, how many people, a line of what was raised.

    It may become an item later (``item_id``: the in-person item it was turned into).
    """

    __tablename__ = "contact_logs"
    __table_args__ = (
        CheckConstraint("people BETWEEN 1 AND 10000", name="people_in_range"),
        Index("ix_contact_logs_deputy_held", "deputy_id", "held_on"),
        Index("ix_contact_logs_station_held", "station_id", "held_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deputy_id: Mapped[int] = mapped_column(ForeignKey("deputies.id"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    kind: Mapped[ContactKind] = mapped_column(enum_column(ContactKind, 10))
    held_on: Mapped[date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(100), default="")
    people: Mapped[int] = mapped_column(SmallInteger)
    summary: Mapped[str] = mapped_column(String(200))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), unique=True)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deputy: Mapped[Deputy] = relationship()
    station: Mapped[Station] = relationship()
