"""Fixed-window counters for throttling, shared by every worker through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime


class ThrottleCounter(Base):
    """How many times ``key`` was hit in the window that ends at ``expires_at``."""

    __tablename__ = "throttle_counters"
    # Written twice by every submission: on SQLite the rows live in the key's b-tree (no rowid).
    __table_args__ = ({"sqlite_with_rowid": False},)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # no index: only the periodic purge reads it
