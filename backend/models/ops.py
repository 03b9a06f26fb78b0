"""Operations data: the working-day calendar a supervisor extends, and the workers' heartbeats."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, UTCDateTime, utcnow
from backend.models.staff import StaffUser


class WorkCalendarYear(Base):
    """A year's arrangement of holidays and 调休 working days, as a supervisor entered it from the State Council's
    notice; it replaces the bundled library's data for that year (``backend.items.workcalendar``)."""

    __tablename__ = "work_calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(200), default="")  # e.g. 国办发明电〔2026〕X号
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    entered_by: Mapped[StaffUser | None] = relationship()
    days: Mapped[list[WorkCalendarDay]] = relationship(
        back_populates="calendar_year", cascade="all, delete-orphan", order_by="WorkCalendarDay.day"
    )


class WorkCalendarDay(Base):
    """One day that differs from Monday–Friday: a day off (放假) or a weekend day worked (调休上班)."""

    __tablename__ = "work_calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("work_calendar_years.year", ondelete="CASCADE"), index=True)
    is_working_day: Mapped[bool]
    name: Mapped[str] = mapped_column(String(40), default="")  # 春节, 国庆节 …

    calendar_year: Mapped[WorkCalendarYear] = relationship(back_populates="days")


class WorkerHeartbeat(Base):
    """A background worker process (``flask outbox run``, ``flask posters run``) and when it was last seen alive."""

    __tablename__ = "worker_heartbeats"
    __table_args__ = (
        UniqueConstraint("kind", "host", "pid"),
        Index("ix_worker_heartbeats_kind_last_seen_at", "kind", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "outbox" | "posters"
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set when the worker stopped cleanly
