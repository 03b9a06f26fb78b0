"""Liaison stations (代表联络站) and their reception calendar (接待日)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, LabeledStrEnum, UTCDateTime, enum_column, utcnow
from backend.models.region import Region

if TYPE_CHECKING:
    from backend.models.deputy import Deputy


class Station(Base):
    """A physical liaison station (and its online twin) where deputies meet residents."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    contact_name: Mapped[str] = mapped_column(String(50), default="")
    contact_phone: Mapped[str] = mapped_column(String(30), default="")
    # When the reception days are held (上午9:00—11:30), in the station's own words; printed on posters.
    reception_hours: Mapped[str] = mapped_column(String(50), default="")
    # The most days one extension a department asks for may add (None: DEPARTMENT_EXTENSION_MAX_DAYS).
    department_extension_max_days: Mapped[int | None] = mapped_column(SmallInteger)
    is_active: Mapped[bool] = mapped_column(default=True)
    # A station merged into another (admin/regions.py): closed, and its printed code leads there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region] = relationship()
    merged_into: Mapped[Station | None] = relationship(remote_side=[id])
    deputies: Mapped[list[Deputy]] = relationship(back_populates="station", order_by="Deputy.id")
    reception_rules: Mapped[list[ReceptionRule]] = relationship(
        back_populates="station", cascade="all, delete-orphan", order_by="ReceptionRule.id"
    )


class ReceptionRuleKind(LabeledStrEnum):
    """How a reception day recurs."""

    WEEKLY = "weekly", "每周"  # day = ISO weekday, 1 = Monday … 7 = Sunday (每周三)
    MONTHLY = "monthly", "每月"  # day = day of the month, 1–31 (每月20日)
    XUN = "xun", "逢N（每旬）"  # day = 0–9: the 6th, 16th, 26th for 6 (逢六); 0 means 10th, 20th, 30th


class ReceptionRule(Base):
    """One recurring reception day of a station, optionally with the deputy on duty (值班代表)."""

    __tablename__ = "reception_rules"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'weekly' AND day BETWEEN 1 AND 7)"
            " OR (kind = 'monthly' AND day BETWEEN 1 AND 31)"
            " OR (kind = 'xun' AND day BETWEEN 0 AND 9)",
            name="day_in_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    kind: Mapped[ReceptionRuleKind] = mapped_column(enum_column(ReceptionRuleKind, 10))
    day: Mapped[int] = mapped_column(SmallInteger)
    deputy_id: Mapped[int | None] = mapped_column(ForeignKey("deputies.id"), index=True)
    note: Mapped[str] = mapped_column(String(100), default="")

    station: Mapped[Station] = relationship(back_populates="reception_rules")
    deputy: Mapped[Deputy | None] = relationship()
