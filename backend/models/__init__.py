"""All models, imported here so that metadata (and Alembic) sees every table."""

from backend.models.audit import AuditEntry
from backend.models.base import Base, utcnow
from backend.models.code import Code
from backend.models.department import Department
from backend.models.deputy import CongressLevel, Deputy, DeputyLevel, DeputyStatus
from backend.models.item import (
    ActorKind,
    Item,
    ItemCategory,
    ItemChannel,
    ItemEvent,
    ItemEventKind,
    ItemPhoto,
    ItemStatus,
)
from backend.models.outbox import OutboxMessage, OutboxStatus
from backend.models.region import Region, RegionLevel
from backend.models.resident import Resident
from backend.models.staff import StaffRole, StaffUser
from backend.models.station import ReceptionRule, ReceptionRuleKind, Station
from backend.models.throttle import ThrottleCounter

__all__ = [
    "ActorKind",
    "AuditEntry",
    "Base",
    "Code",
    "CongressLevel",
    "Department",
    "Deputy",
    "DeputyLevel",
    "DeputyStatus",
    "Item",
    "ItemCategory",
    "ItemChannel",
    "ItemEvent",
    "ItemEventKind",
    "ItemPhoto",
    "ItemStatus",
    "OutboxMessage",
    "OutboxStatus",
    "ReceptionRule",
    "ReceptionRuleKind",
    "Region",
    "RegionLevel",
    "Resident",
    "StaffRole",
    "StaffUser",
    "Station",
    "ThrottleCounter",
    "utcnow",
]
