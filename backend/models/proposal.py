"""代表建议 (proposals): a deputy's or supervisor's formal suggestion drawn from several residents' items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, LabeledStrEnum, UTCDateTime, enum_column, utcnow
from backend.models.department import Department
from backend.models.deputy import Deputy
from backend.models.item import Item
from backend.models.region import Region
from backend.models.staff import StaffUser


class ProposalStatus(LabeledStrEnum):
    """Where a 建议 stands: drafted (拟稿), submitted to the congress (已提交), answered by its department (已答复)."""

    DRAFTED = "drafted", "拟稿中"
    SUBMITTED = "submitted", "已提交"
    ANSWERED = "answered", "已答复"

    @property
    def holds_its_items(self) -> bool:
        """True once the 建议 has left its drafter (submitted or answered): the items behind it stay behind it, so a
        resident can no longer withdraw one (``proposals.membership``); a draft lets them go."""
        return self is not ProposalStatus.DRAFTED


PROPOSAL_STATUS_LABELS = ProposalStatus.labels()  # {member: label} for templates and callers


class Proposal(Base):
    """A 代表建议: a title, its text, the department that answers it, and the items it was drawn from."""

    __tablename__ = "proposals"
    # The 专报 lists a region's proposals drafted in a month.
    __table_args__ = (Index("ix_proposals_region_created", "region_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ProposalStatus] = mapped_column(enum_column(ProposalStatus, 10), default=ProposalStatus.DRAFTED)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    # Where it was drafted: the deputy's station's region, or the supervisor's (who may see it: backend.access).
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    drafted_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    deputy_id: Mapped[int | None] = mapped_column(ForeignKey("deputies.id"), index=True)  # a deputy's own 建议
    answer: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    department: Mapped[Department] = relationship()
    region: Mapped[Region] = relationship()
    drafted_by: Mapped[StaffUser] = relationship()
    deputy: Mapped[Deputy | None] = relationship()
    links: Mapped[list[ProposalItem]] = relationship(
        back_populates="proposal", cascade="all, delete-orphan", order_by="ProposalItem.id"
    )

    @property
    def items(self) -> list[Item]:
        """The residents' items behind the proposal, in the order they were chosen."""
        return [link.item for link in self.links]


class ProposalItem(Base):
    """One item a proposal was drawn from (an item may stand behind several proposals)."""

    __tablename__ = "proposal_items"
    __table_args__ = (UniqueConstraint("proposal_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)

    proposal: Mapped[Proposal] = relationship(back_populates="links")
    item: Mapped[Item] = relationship()
