"""Items (民意件): what a resident submits, its photos, and its timeline of events."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, and_
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, LabeledStrEnum, UTCDateTime, enum_column, partial_index, utcnow
from backend.models.code import Code
from backend.models.deputy import Deputy
from backend.models.resident import Resident
from backend.models.station import Station


class ItemStatus(LabeledStrEnum):
    """Where an item stands in its lifecycle."""

    SUBMITTED = "submitted", "已提交"
    ACCEPTED = "accepted", "已受理"
    FORWARDED = "forwarded", "已交办"
    ANSWERED = "answered", "已答复"
    RESOLVED = "resolved", "已办结"
    DECLINED = "declined", "不予受理"
    DUPLICATE = "duplicate", "重复件"
    WITHDRAWN = "withdrawn", "已撤回"  # 群众撤回: the resident took it back before anyone answered (items.retention)

    @classmethod
    def open_statuses(cls) -> frozenset[ItemStatus]:
        """The statuses in which an item still waits for work and its deadline runs (not resolved, declined, duplicate,
        withdrawn)."""
        return _OPEN_STATUSES

    @property
    def is_open(self) -> bool:
        """True while an item in this status waits for work (one of ``open_statuses()``)."""
        return self in _OPEN_STATUSES


ITEM_STATUS_LABELS = ItemStatus.labels()  # {member: label} for templates and callers

_OPEN_STATUSES = frozenset({ItemStatus.SUBMITTED, ItemStatus.ACCEPTED, ItemStatus.FORWARDED, ItemStatus.ANSWERED})
# The same set in a partial index's WHERE (the migrations' text: "status IN ('submitted', …)").
OPEN_STATUS_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in ItemStatus if s in _OPEN_STATUSES))
# 公示: a resolved item whose resident agreed on the form to publish it (the partial index's WHERE).
PUBLISHED_SQL = "publish_consented_at IS NOT NULL AND status = 'resolved'"


class ItemChannel(LabeledStrEnum):
    """How an item reached the system."""

    QR_H5 = "qr_h5", "扫码留言"  # scanned a printed code, wrote in the browser form
    MINIPROGRAM = "miniprogram", "小程序留言"
    IN_PERSON = "in_person", "代表接待选民"  # entered by the deputy on a reception day


class ItemCategory(LabeledStrEnum):
    """What an item is about; residents pick one."""

    URBAN = "urban", "城乡建设"
    TRANSPORT = "transport", "交通出行"
    EDUCATION = "education", "教育"
    HEALTH = "health", "医疗卫生"
    SOCIAL_SECURITY = "social_security", "社会保障"
    ENVIRONMENT = "environment", "生态环境"
    RURAL = "rural", "农业农村"
    PUBLIC_SAFETY = "public_safety", "社会治安"
    OTHER = "other", "其他"


ITEM_CATEGORY_LABELS = ItemCategory.labels()  # {member: label} for templates and callers


class ItemOutcome(LabeledStrEnum):
    """How a resolved item ended."""

    SOLVED = "solved", "已解决"  # 解决
    PARTLY = "partly", "部分解决"
    UNSOLVED = "unsolved", "未能解决"


ITEM_OUTCOME_LABELS = ItemOutcome.labels()  # {member: label} for templates and callers


class Satisfaction(LabeledStrEnum):
    """The resident's verdict (满意度测评)."""

    SATISFIED = "satisfied", "满意"
    BASICALLY = "basically", "基本满意"
    UNSATISFIED = "unsatisfied", "不满意"


SATISFACTION_LABELS = Satisfaction.labels()  # {member: label} for templates and callers


class ScreeningResult(enum.StrEnum):
    """What WeChat's content check (msgSecCheck v2) said of an item."""

    UNSCREENED = "unscreened"  # no WeChat identity, or WeChat unreachable
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    REVIEW = "review"  # flagged; handled as usual
    RISKY = "risky"  # held for a station administrator's review; never deleted


class Item(Base):
    """A resident's message, tracked from submission to rating."""

    __tablename__ = "items"
    # Every index here is maintained by each submission: add one only for a query that needs it.
    __table_args__ = (
        # A deputy's inbox: counts by status, closed items newest first.
        Index("ix_items_deputy_status_created", "deputy_id", "status", "created_at"),
        # A deputy's latest items (the near-duplicate check) and a deputy's figures over a range.
        Index("ix_items_deputy_created", "deputy_id", "created_at"),
        # A deputy's open items by due date: the inbox's open groups, counted and listed from the index alone
        # (PostgreSQL: every column they filter and sort on is in it; the page's rows are then read by id).
        partial_index(
            "ix_items_deputy_open_groups",
            "deputy_id",
            "due_at",
            postgresql_include=["id", "status", "paused_at", "is_held", "reopen_count", "created_at"],
            where=OPEN_STATUS_SQL,
        ),
        # A station's or region's items over a range: the supervision figures read every column they
        # count from the index alone (PostgreSQL), and the station inbox lists closed items from it.
        Index(
            "ix_items_station_created",
            "station_id",
            "created_at",
            postgresql_include=[
                "status",
                "is_held",
                "first_answered_at",
                "resolved_at",
                "satisfaction",
                "channel",
                "deputy_id",
                "rated_at",
                "claimed_at",
            ],
        ),
        # Open items of a station by due date: the overdue count and list of a station or region, and the
        # station's and supervisor's inbox open groups, counted and listed from the index alone (PostgreSQL).
        partial_index(
            "ix_items_station_open_groups",
            "station_id",
            "due_at",
            postgresql_include=["id", "paused_at", "is_held", "deputy_id", "status", "reopen_count", "created_at"],
            where=OPEN_STATUS_SQL,
        ),
        # 公示: a station's resolved items whose residents agreed to publish them, latest first.
        partial_index("ix_items_station_published", "station_id", "resolved_at", where=PUBLISHED_SQL),
        # The items marked as duplicates of an item; most items are none, so only those are indexed.
        partial_index("ix_items_duplicate_of_id", "duplicate_of_id", where="duplicate_of_id IS NOT NULL"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    access_key: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    deputy_id: Mapped[int | None] = mapped_column(ForeignKey("deputies.id"))
    code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    channel: Mapped[ItemChannel] = mapped_column(enum_column(ItemChannel, 12))
    category: Mapped[ItemCategory] = mapped_column(enum_column(ItemCategory, 20))
    body: Mapped[str] = mapped_column(Text)
    contact_name: Mapped[str] = mapped_column(String(50), default="")
    contact_phone: Mapped[str] = mapped_column(String(20), default="")
    consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 公示: when the resident ticked "同意公开" on the form (None: not agreed, or agreed and since withdrawn,
    # erased or anonymised: ``retention._scrub`` clears it). Only such items, once resolved, are published.
    publish_consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[ItemStatus] = mapped_column(enum_column(ItemStatus, 12), default=ItemStatus.SUBMITTED)
    # The lifecycle, kept on the row so the inbox and the rates need no scan of events.
    # Each is written by the same operation that writes the event it mirrors.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[ItemOutcome | None] = mapped_column(enum_column(ItemOutcome, 10))
    outcome_reason: Mapped[str] = mapped_column(Text, default="")
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # waiting for the resident: the clock stops
    satisfaction: Mapped[Satisfaction | None] = mapped_column(enum_column(Satisfaction, 12))
    is_solved_per_resident: Mapped[bool | None] = mapped_column()
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An item a deputy entered in person (代表接待选民) has no working access key until the resident
    # claims it with the receipt's link on their own phone (``ItemReceipt``, ``items.claims``): until
    # then nobody can look it up or rate it. Written with the CLAIMED event it mirrors.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(default=0)
    screening: Mapped[ScreeningResult] = mapped_column(
        enum_column(ScreeningResult, 10), default=ScreeningResult.UNSCREENED
    )
    screening_label: Mapped[int | None] = mapped_column()
    is_held: Mapped[bool] = mapped_column(default=False)  # held for review: not in the deputy's inbox yet
    needs_review: Mapped[bool] = mapped_column(default=False)
    review_reason: Mapped[str] = mapped_column(String(200), default="")
    body_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    station: Mapped[Station] = relationship()
    deputy: Mapped[Deputy | None] = relationship()
    code: Mapped[Code | None] = relationship()
    resident: Mapped[Resident | None] = relationship()
    events: Mapped[list[ItemEvent]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="ItemEvent.id"
    )
    photos: Mapped[list[ItemPhoto]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="ItemPhoto.position"
    )

    @property
    def has_contact(self) -> bool:
        """True when the resident left a name or a number."""
        return bool(self.contact_name or self.contact_phone)

    @hybrid_property
    def is_reopened(self) -> bool:
        """True while an item the resident sent back (不满意) waits for new work: pages say 重新办理, not 已受理."""
        return self.status == ItemStatus.ACCEPTED and self.reopen_count > 0

    @is_reopened.inplace.expression
    @classmethod
    def _is_reopened_expression(cls):
        return and_(cls.status == ItemStatus.ACCEPTED, cls.reopen_count > 0)

    @property
    def awaits_claim(self) -> bool:
        """True for an item a deputy entered in person that the resident has not claimed yet: nobody may rate it."""
        return self.channel == ItemChannel.IN_PERSON and self.claimed_at is None


class ItemEventKind(enum.StrEnum):
    """What happened to an item; each event is one line on its timeline."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    NOTE = "note"
    FORWARDED = "forwarded"
    DEPARTMENT_REPLIED = "department_replied"
    REASSIGNED = "reassigned"
    DUPLICATE = "duplicate"
    DECLINED = "declined"
    RESOLVED = "resolved"
    RATED = "rated"
    REOPENED = "reopened"
    SUPERVISED = "supervised"
    EXTENDED = "extended"
    FLAGGED = "flagged"
    CLAIMED = "claimed"  # the resident claimed an in-person item on their own phone
    WITHDRAWN = "withdrawn"  # the resident withdrew the item (items.retention)
    CONTACT_ERASED = "contact_erased"  # the resident erased their contact details (items.retention)
    ANONYMISED = "anonymised"  # the retention period ran out: contact, numbers and photos gone (items.retention)
    RESIDENT_REPLIED = "resident_replied"  # the resident answered a request for more (等待群众补充)
    FOLLOWED_UP = "followed_up"  # the resident's 追问 on an open item
    DEPARTMENT_RETURNED = "department_returned"  # 退回: the department gave the item back, with its reason
    EXTENSION_REQUESTED = "extension_requested"  # the department asked the deputy for more time
    SUB_FORWARDED = "sub_forwarded"  # a second hop: the department passed the item on to one of its units
    PROPOSAL_INCLUDED = "proposal_included"  # drawn into a 代表建议 that was submitted (backend.proposals)
    PROPOSAL_ANSWERED = "proposal_answered"  # the 代表建议 it stands behind was answered


class ActorKind(enum.StrEnum):
    """Who caused an event."""

    RESIDENT = "resident"
    STAFF = "staff"
    DEPARTMENT = "department"
    SYSTEM = "system"


class ItemEvent(Base):
    """One step on an item's timeline; ``is_public`` steps are shown to (and sent to) the resident."""

    __tablename__ = "item_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    kind: Mapped[ItemEventKind] = mapped_column(enum_column(ItemEventKind, 20))
    actor_kind: Mapped[ActorKind] = mapped_column(enum_column(ActorKind, 10))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    is_public: Mapped[bool] = mapped_column(default=False)
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    item: Mapped[Item] = relationship(back_populates="events")


class ItemPhoto(Base):
    """A photo attached to an item, re-encoded as JPEG with no EXIF data. The bytes are in the photo store
    (``backend.items.photo_store``) under ``storage_key``, a random key that says nothing about the item."""

    __tablename__ = "item_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    position: Mapped[int] = mapped_column()
    width: Mapped[int] = mapped_column()
    height: Mapped[int] = mapped_column()
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    size: Mapped[int] = mapped_column()
    content_type: Mapped[str] = mapped_column(String(40), default="image/jpeg")
    sha256: Mapped[str] = mapped_column(String(64))

    item: Mapped[Item] = relationship(back_populates="photos")
