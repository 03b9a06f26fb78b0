"""Staff users: deputies, station administrators, county supervisors, department contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, LabeledStrEnum, UTCDateTime, enum_column, utcnow
from backend.models.department import Department
from backend.models.deputy import Deputy
from backend.models.region import Region
from backend.models.station import Station


class StaffRole(LabeledStrEnum):
    """What a staff user does; the scope columns say where."""

    DEPUTY = "deputy", "人大代表"
    STATION_ADMIN = "station_admin", "联络站管理员"
    SUPERVISOR = "supervisor", "人大常委会工作人员"
    DEPARTMENT = "department", "承办单位"


class StaffUser(Base):
    """A person who logs in; scoped to a deputy, a station, a region, or a department."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(50), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[StaffRole] = mapped_column(enum_column(StaffRole, 16))
    deputy_id: Mapped[int | None] = mapped_column(ForeignKey("deputies.id"), index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    wechat_openid: Mapped[str | None] = mapped_column(String(64), unique=True)  # bound by scanning a binding code
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deputy: Mapped[Deputy | None] = relationship()
    station: Mapped[Station | None] = relationship()
    region: Mapped[Region | None] = relationship()
    department: Mapped[Department | None] = relationship()

    @classmethod
    def accounts_of_deputy(cls, deputy_id) -> tuple:
        """The conditions selecting a deputy's active deputy accounts (``deputy_id``: a value or an expression)."""
        return (cls.deputy_id == deputy_id, cls.role == StaffRole.DEPUTY, cls.is_active.is_(True))


class ActivationLink(Base):
    """A one-time link that lets a person set their own password (a new account, or a reset one).

    Only the token's SHA-256 is kept. A link is good once, until it expires, and only while the
    account is active; a newer link for the same account ends the older ones.
    """

    __tablename__ = "activation_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    staff_user: Mapped[StaffUser] = relationship(foreign_keys=[staff_user_id])
