"""Deputies (人大代表), the levels they sit at, and their status in office."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, LabeledStrEnum, UTCDateTime, enum_column, utcnow
from backend.models.station import Station


class CongressLevel(LabeledStrEnum):
    """The five levels of people's congress."""

    NATIONAL = "national", "全国人大代表"
    PROVINCE = "province", "省人大代表"
    CITY = "city", "市人大代表"
    COUNTY = "county", "县人大代表"
    TOWNSHIP = "township", "乡镇人大代表"


CONGRESS_LEVEL_LABELS = CongressLevel.labels()  # {member: label} for templates and callers


class DeputyStatus(LabeledStrEnum):
    """Whether a deputy still serves, and if not, why."""

    SERVING = "serving", "在任"
    RESIGNED = "resigned", "已辞去代表职务"  # 辞职
    RECALLED = "recalled", "已被罢免"  # 罢免
    TERM_ENDED = "term_ended", "任期已届满"  # 任期届满


DEPUTY_STATUS_LABELS = DeputyStatus.labels()  # {member: label} for templates and callers


class Deputy(Base):
    """A deputy, assigned to one station (进站)."""

    __tablename__ = "deputies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    constituency: Mapped[str] = mapped_column(String(200), default="")
    occupation: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    term_start: Mapped[date | None] = mapped_column(Date)
    term_end: Mapped[date | None] = mapped_column(Date)
    status: Mapped[DeputyStatus] = mapped_column(enum_column(DeputyStatus, 12), default=DeputyStatus.SERVING)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The portrait's key in the photo store (backend/items/photo_store.py); photo_version is in its URL.
    photo_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    photo_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    station: Mapped[Station] = relationship(back_populates="deputies")
    levels: Mapped[list[DeputyLevel]] = relationship(
        back_populates="deputy", cascade="all, delete-orphan", order_by="DeputyLevel.id"
    )

    @property
    def is_serving(self) -> bool:
        """True while the deputy is in office."""
        return self.status == DeputyStatus.SERVING

    @property
    def has_photo(self) -> bool:
        """True when a photo was uploaded."""
        return self.photo_version > 0

    @property
    def level_labels(self) -> list[str]:
        """The levels this deputy sits at, as shown to residents (highest first)."""
        order = list(CongressLevel)
        return [CONGRESS_LEVEL_LABELS[lv.level] for lv in sorted(self.levels, key=lambda x: order.index(x.level))]


class DeputyLevel(Base):
    """One seat of a deputy: a congress level, and the constituency they were elected in there."""

    __tablename__ = "deputy_levels"
    __table_args__ = (UniqueConstraint("deputy_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deputy_id: Mapped[int] = mapped_column(ForeignKey("deputies.id"), index=True)
    level: Mapped[CongressLevel] = mapped_column(enum_column(CongressLevel, 10))
    constituency: Mapped[str] = mapped_column(String(200), default="")

    deputy: Mapped[Deputy] = relationship(back_populates="levels")
