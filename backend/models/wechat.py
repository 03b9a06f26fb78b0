"""WeChat state kept by the backend: access tokens, subscription credits, resident sessions, deputy binding."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from backend.models.base import Base, UTCDateTime, utcnow


class WechatAccessToken(Base):
    """The access token of one app id, shared by every process (a per-process cache would refetch)."""

    __tablename__ = "wechat_access_tokens"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscriptionCredit(Base):
    """How many one-time subscribe messages a WeChat user has allowed for a template.

    WeChat gives no API to ask: each ``accept`` of ``wx.requestSubscribeMessage`` allows
    exactly one message, so the backend counts acceptances and spends one per send.
    """

    __tablename__ = "subscription_credits"
    __table_args__ = (UniqueConstraint("openid", "template_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    template_id: Mapped[str] = mapped_column(String(128))
    credits: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ResidentSession(Base):
    """A resident's API token after ``wx.login``; only its SHA-256 is stored."""

    __tablename__ = "resident_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    session_key: Mapped[str] = mapped_column(String(128), default="")  # WeChat's; never leaves the server
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WechatBindingCode(Base):
    """A one-time code a deputy scans to tie their WeChat to their account (10 minutes, single use)."""

    __tablename__ = "wechat_binding_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MiniProgramCode(Base):
    """A mini-program code (getwxacodeunlimit) fetched once for a QR slug and kept."""

    __tablename__ = "miniprogram_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id"), unique=True)
    scene: Mapped[str] = mapped_column(String(32))
    png: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
