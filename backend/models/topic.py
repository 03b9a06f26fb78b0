"""Topic codes (监测点 / 立法联系点 / 民生实事): a station's code collecting opinions on one topic until a closing date."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, LabeledStrEnum, UTCDateTime, enum_column, utcnow
from backend.models.station import Station


class TopicKind(LabeledStrEnum):
    """What a topic collects opinions for."""

    MONITORING = "monitoring", "营商环境监测点"
    DRAFT_LAW = "draft_law", "立法联系点征求意见"
    POLL = "poll", "民生实事征集"


TOPIC_KIND_LABELS = TopicKind.labels()  # {member: label} for templates and callers


class Topic(Base):
    """A topic a station collects opinions on: its own short form (a prompt, optional choices) and a closing date.

    Its messages are ordinary items of the station (no deputy: the station's administrators handle
    them), reached through the topic's code (``Code.topic_id``); ``closes_at`` is the end of the
    closing day, China time.
    """

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    kind: Mapped[TopicKind] = mapped_column(enum_column(TopicKind, 12))
    title: Mapped[str] = mapped_column(String(60))
    prompt: Mapped[str] = mapped_column(String(200))
    choices: Mapped[list] = mapped_column(JSON, default=list)  # [] or the answers a resident picks one of
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    station: Mapped[Station] = relationship()

    def is_closed(self, now: datetime) -> bool:
        """True once the closing day has ended: the code then opens a page saying so, and submissions are refused."""
        return now >= self.closes_at
