"""Forwarding an item to a department (交办), with the department's no-account link."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, UTCDateTime, enum_column, partial_index, utcnow
from backend.models.department import Department
from backend.models.item import Satisfaction

# A forward still in the department's hands and unanswered (the partial index's WHERE).
OPEN_FORWARD_SQL = "answered_at IS NULL AND returned_at IS NULL AND revoked_at IS NULL"


class ItemForward(Base):
    """One forward of an item to a department, and the state of the department's no-account link.

    The link's token is not stored: it is derived from the forward's id and ``link_version`` with an
    HMAC of the secret key (``lifecycle.department_link_token``), so it can be shown again, and a
    renewal (``link_version + 1``) makes every earlier one stop working. ``token_hash`` is kept only
    for links handed out before that (random tokens, stored as their SHA-256) until they are renewed.
    """

    __tablename__ = "item_forwards"
    __table_args__ = (
        # The departments' figures (``supervision.departments``): a region's forwards over a range, every
        # column they count read from the index alone (PostgreSQL).
        Index(
            "ix_item_forwards_department_created",
            "department_id",
            "created_at",
            postgresql_include=[
                "due_at",
                "answered_at",
                "returned_at",
                "revoked_at",
                "parent_forward_id",
                "verdict",
            ],
        ),
        # Forwards still waiting for the department's answer, by due date: the overdue count of the
        # departments' figures and the 台账 (few rows: most forwards are answered or given back).
        partial_index(
            "ix_item_forwards_department_open_due",
            "department_id",
            "due_at",
            postgresql_include=["item_id"],
            where=OPEN_FORWARD_SQL,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_version: Mapped[int] = mapped_column(default=1, server_default="1")
    link_renewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    forwarded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    instructions: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    share_contact: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[str] = mapped_column(Text, default="")
    promised_by: Mapped[date | None] = mapped_column(Date)
    # 退回: the department gave the item back to the deputy, with its reason; the forward is closed.
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    return_reason: Mapped[str] = mapped_column(Text, default="")
    # The department asked for more time: the due date it asks for, why, and when; cleared when the
    # deputy grants or refuses (the answer is an event on the timeline).
    extension_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extension_reason: Mapped[str] = mapped_column(Text, default="")
    extension_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A second hop: the forward of the department that passed the item on to this one, its own unit.
    parent_forward_id: Mapped[int | None] = mapped_column(ForeignKey("item_forwards.id"), index=True)
    # The resident's verdict (满意度测评) on this forward's answer: set when the resident rates an item whose
    # latest answer came from this department (``lifecycle.judged_forward``); the departments' 满意率 reads it.
    verdict: Mapped[Satisfaction | None] = mapped_column(enum_column(Satisfaction, 12))
    verdict_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department] = relationship()

    @property
    def is_live(self) -> bool:
        """True while the department still holds the item: neither revoked by the deputy nor returned (退回)."""
        return self.revoked_at is None and self.returned_at is None

    @classmethod
    def live_conditions(cls) -> tuple:
        """``is_live`` in SQL."""
        return (cls.revoked_at.is_(None), cls.returned_at.is_(None))


class ReplyTemplate(Base):
    """A reusable reply of a station (常用答复)."""

    __tablename__ = "reply_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    title: Mapped[str] = mapped_column(String(50))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
