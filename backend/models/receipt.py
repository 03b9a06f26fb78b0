"""Receipts (回执) for items a deputy entered in person: a one-time claim link the resident scans."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, utcnow


class ItemReceipt(Base):
    """One receipt of an in-person item: the claim link the deputy handed the resident, on paper or on screen.

    Only the link token's SHA-256 is stored. At most one receipt of an item is live (neither
    voided nor used): issuing another voids the earlier ones. Claiming with it (``claimed_at``)
    gives the item a fresh access key, shown only on the resident's phone, and binds the
    resident's WeChat identity when the claiming browser has one (``resident_id``).
    """

    __tablename__ = "item_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
