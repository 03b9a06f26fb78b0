"""Staff sessions and API tokens, kept server-side so that logout really logs out."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, UTCDateTime, enum_column, utcnow
from backend.models.staff import StaffUser


class SessionKind(enum.StrEnum):
    """Where a session is used."""

    WEB = "web"  # a cookie on the mobile pages
    API = "api"  # a bearer token for the mini-program


class StaffSession(Base):
    """One login. Only the SHA-256 of the secret is stored; revoking a row ends the session."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    kind: Mapped[SessionKind] = mapped_column(enum_column(SessionKind, 8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    address: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[StaffUser] = relationship()
