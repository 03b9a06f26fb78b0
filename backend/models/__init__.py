"""All models, imported here so that metadata (and Alembic) sees every table."""

from backend.models.audit import AuditEntry
from backend.models.base import Base, utcnow
from backend.models.code import Code, CodeScanDay, CodeScanFold
from backend.models.department import Department
from backend.models.deputy import CongressLevel, Deputy, DeputyLevel, DeputyStatus
from backend.models.forward import ItemForward, ReplyTemplate
from backend.models.item import (
    ActorKind,
    Item,
    ItemCategory,
    ItemChannel,
    ItemEvent,
    ItemEventKind,
    ItemOutcome,
    ItemPhoto,
    ItemStatus,
    Satisfaction,
    ScreeningResult,
)
from backend.models.ops import WorkCalendarDay, WorkCalendarYear, WorkerHeartbeat
from backend.models.outbox import OutboxMessage, OutboxStatus
from backend.models.poster_batch import PosterBatch, PosterBatchKind, PosterBatchStatus
from backend.models.presence import ContactKind, ContactLog, PresenceSource, StationVisit
from backend.models.proposal import Proposal, ProposalItem, ProposalStatus
from backend.models.receipt import ItemReceipt
from backend.models.region import Region, RegionLevel
from backend.models.resident import Resident
from backend.models.session import SessionKind, StaffSession
from backend.models.staff import ActivationLink, StaffRole, StaffUser
from backend.models.station import ReceptionRule, ReceptionRuleKind, Station
from backend.models.throttle import ThrottleCounter
from backend.models.topic import Topic, TopicKind
from backend.models.wechat import (
    MiniProgramCode,
    ResidentSession,
    SubscriptionCredit,
    WechatAccessToken,
    WechatBindingCode,
)

__all__ = [
    "ActivationLink",
    "ActorKind",
    "AuditEntry",
    "Base",
    "Code",
    "CodeScanDay",
    "CodeScanFold",
    "CongressLevel",
    "ContactKind",
    "ContactLog",
    "Department",
    "Deputy",
    "DeputyLevel",
    "DeputyStatus",
    "Item",
    "ItemCategory",
    "ItemChannel",
    "ItemEvent",
    "ItemEventKind",
    "ItemForward",
    "ItemOutcome",
    "ItemPhoto",
    "ItemReceipt",
    "ItemStatus",
    "MiniProgramCode",
    "OutboxMessage",
    "OutboxStatus",
    "PosterBatch",
    "PosterBatchKind",
    "PosterBatchStatus",
    "PresenceSource",
    "Proposal",
    "ProposalItem",
    "ProposalStatus",
    "ReceptionRule",
    "ReceptionRuleKind",
    "Region",
    "RegionLevel",
    "ReplyTemplate",
    "Resident",
    "ResidentSession",
    "Satisfaction",
    "ScreeningResult",
    "SessionKind",
    "StaffRole",
    "StaffSession",
    "StaffUser",
    "Station",
    "StationVisit",
    "SubscriptionCredit",
    "ThrottleCounter",
    "Topic",
    "TopicKind",
    "WechatAccessToken",
    "WechatBindingCode",
    "WorkCalendarDay",
    "WorkCalendarYear",
    "WorkerHeartbeat",
    "utcnow",
]
