"""Handling departments (承办单位): government bodies items are forwarded to."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base
from backend.models.region import Region


class Department(Base):
    """A government department in a region that can receive forwarded items (交办)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    contact_name: Mapped[str] = mapped_column(String(50), default="")
    contact_phone: Mapped[str] = mapped_column(String(30), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    # The department this one is a unit of (a town's office under a county bureau): a department may pass
    # an item forwarded to it on to one of its own units (a second hop, ``lifecycle.department_pass_on``).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)

    region: Mapped[Region] = relationship()
