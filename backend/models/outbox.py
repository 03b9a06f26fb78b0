"""The notification outbox: a row per message, written in the transaction that causes it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow


class OutboxStatus(enum.StrEnum):
    """Delivery state of one outbox message."""

    PENDING = "pending"  # waiting for a worker (or for next_attempt_at)
    SENT = "sent"
    HELD = "held"  # waiting for a quota reset
    FAILED = "failed"  # permanent failure, not retried
    DEAD = "dead"  # retry budget spent; an administrator may retry it
    SKIPPED = "skipped"  # no channel for this recipient: the tracking page is the channel
    MERGED = "merged"  # told in another row's message (a deputy's digest: that row's payload "also")


class OutboxMessage(Base):
    """A notification to send after commit: to a resident, a deputy or a department contact."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_status_next", "status", "next_attempt_at"),
        # An account's recent notices (backend.outbox.queue._LAST_NOTICES), read for every new item to a deputy
        # with an account, inside the submission's write transaction: without it, the whole outbox is read.
        Index("ix_outbox_messages_account_kind_created", "staff_user_id", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # e.g. item_received, item_answered, deputy_new_item
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus, 10), default=OutboxStatus.PENDING)
    # The worker's accounting (backend/outbox/worker.py). ``attempts``: sends, i.e. calls to WeChat, which
    # OUTBOX_MAX_ATTEMPTS bounds. ``lease_token``: claims, each one's token guarding its writes. A claim
    # ends in a send, a hold (``quota_holds``: given back unsent, or sent and met 45009), a release
    # (``releases``: given back unsent, no time left or the worker stopping), or its lease running out.
    # The columns below start at the database's default only: the submission's INSERT … SELECT (in a
    # CTE on PostgreSQL, items/operations.py) names the columns it fills and must not gain any.
    attempts: Mapped[int] = mapped_column(default=0)
    lease_token: Mapped[int] = mapped_column(server_default="0")
    quota_holds: Mapped[int] = mapped_column(server_default="0")
    releases: Mapped[int] = mapped_column(server_default="0")
    # A subscription credit is set aside for this message (taken at its first claim, kept across retries
    # and take-overs, spent by the send, given back when it fails or dies).
    has_reserved_credit: Mapped[bool] = mapped_column(server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
