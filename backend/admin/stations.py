"""Station operations: address and contact, the reception calendar, the station's code.

Each function validates first and writes nothing when it refuses (``UserError`` naming the
field), then writes, records an audit row and flushes; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from backend.admin import apply_changes, clean_phone, rotate_owner_code
from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import clean_text, parse_id
from backend.models import Deputy, ReceptionRule, ReceptionRuleKind, StaffUser, Station
from backend.stations import serving_deputies
from backend.stations.calendar import (
    WEEKDAY_NAMES,
    XUN_NAMES,
    deputies_on_duty,
    describe_rule,
    next_reception_days,
    xun_days,
)

ADDRESS_MAX_CHARS = 200  # Station.address
CONTACT_NAME_MAX_CHARS = 50  # Station.contact_name
RECEPTION_HOURS_MAX_CHARS = 50  # Station.reception_hours
RULE_NOTE_MAX_CHARS = 100  # ReceptionRule.note
ROTATE_REASON_MAX_CHARS = 200  # Code.retired_reason
NEXT_DAYS_SHOWN = 5

RULE_KIND_LABELS = ReceptionRuleKind.labels()  # {member: label} for the rule form
# What each kind's day selector offers: (value, label).
RULE_DAY_CHOICES = {
    ReceptionRuleKind.WEEKLY: [(day, f"星期{name}") for day, name in WEEKDAY_NAMES.items()],
    ReceptionRuleKind.MONTHLY: [(day, f"{day}日") for day in range(1, 32)],
    ReceptionRuleKind.XUN: [
        (digit, f"逢{XUN_NAMES[digit]}（{'、'.join(f'{d}日' for d in xun_days(digit))}）") for digit in range(10)
    ],
}
DAY_RANGES = {ReceptionRuleKind.WEEKLY: (1, 7), ReceptionRuleKind.MONTHLY: (1, 31), ReceptionRuleKind.XUN: (0, 9)}

OLD_CODE_FATE = "旧二维码将显示已更换，不能再留言；请重新打印海报。"


def update_station(user: StaffUser, station: Station, form) -> list[str]:
    """Change the address, the contact person and number and the reception hours; return the fields that changed.

    A form without ``reception_hours`` leaves the hours as they are.
    """
    values = {
        "address": clean_text(form.get("address"), "address", "地址", max_chars=ADDRESS_MAX_CHARS),
        "contact_name": clean_text(
            form.get("contact_name"), "contact_name", "联系人", max_chars=CONTACT_NAME_MAX_CHARS
        ),
        "contact_phone": clean_phone(form.get("contact_phone"), "contact_phone", "联系电话"),
    }
    if "reception_hours" in form:
        values["reception_hours"] = clean_text(
            form.get("reception_hours"), "reception_hours", "接待时间", max_chars=RECEPTION_HOURS_MAX_CHARS
        )
    return apply_changes(user, station, values, "station_updated", "station")


def _as_int(value: object, field: str, message: str) -> int:
    if isinstance(value, bool):
        raise UserError(f"invalid_{field}", message, 400, field=field)
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise UserError(f"invalid_{field}", message, 400, field=field) from None


def add_rule(user: StaffUser, station: Station, form) -> ReceptionRule:
    """Add a reception day (每周X / 每月N日 / 逢N) with an optional deputy on duty from the station's serving deputies."""
    try:
        kind = ReceptionRuleKind(form.get("kind", ""))
    except ValueError:
        raise UserError("invalid_kind", "请选择接待日的类型：每周、每月或逢N。", 400, field="kind") from None
    day_field = f"day_{kind.value}"
    raw_day = form.get(day_field) if form.get(day_field) not in (None, "") else form.get("day")
    low, high = DAY_RANGES[kind]
    day_message = {
        ReceptionRuleKind.WEEKLY: "请选择星期几（星期一到星期日）。",
        ReceptionRuleKind.MONTHLY: "请选择每月的哪一天（1日到31日）。",
        ReceptionRuleKind.XUN: "请选择逢几（逢一到逢十）。",
    }[kind]
    if raw_day in (None, ""):
        raise UserError("required", day_message, 400, field=day_field)
    day = _as_int(raw_day, day_field, day_message)
    if not low <= day <= high:
        raise UserError(f"invalid_{day_field}", day_message, 400, field=day_field)

    deputy = None
    raw_deputy = form.get("deputy_id", "")
    if raw_deputy not in (None, ""):
        deputy_id = parse_id(raw_deputy)
        deputy = next((d for d in serving_deputies(station) if d.id == deputy_id), None)
        if deputy is None:
            raise UserError("invalid_deputy_id", "请从本站在任代表中选择值班代表。", 400, field="deputy_id")
    note = clean_text(form.get("note"), "note", "备注", max_chars=RULE_NOTE_MAX_CHARS)

    for rule in station.reception_rules:
        if rule.kind == kind and rule.day == day and rule.deputy_id == (deputy.id if deputy else None):
            raise UserError("duplicate_rule", f"已有相同的接待日安排：{describe_rule(rule)}。", 400, field=day_field)
    rule = ReceptionRule(kind=kind, day=day, deputy=deputy, note=note)
    station.reception_rules.append(rule)
    db.session.flush()
    record_audit(
        "reception_rule_added",
        user=user,
        object_type="station",
        object_id=station.id,
        data=_rule_data(rule) | {"note": note},
    )
    return rule


def _rule_data(rule: ReceptionRule) -> dict:
    """What the audit log keeps of a reception day added or removed: enough to read it back after it is gone."""
    return {
        "rule_id": rule.id,
        "kind": rule.kind.value,
        "day": rule.day,
        "deputy_id": rule.deputy_id,
        "rule": describe_rule(rule),
    }


def remove_rule(user: StaffUser, station: Station, rule_id: int) -> ReceptionRule:
    """Remove one of the station's reception days (UserError 404 when it is not this station's)."""
    rule = db.session.get(ReceptionRule, rule_id)
    if rule is None or rule.station_id != station.id:
        raise UserError("unknown_rule", "找不到该接待日安排，可能已被删除。", 404)
    record_audit(
        "reception_rule_removed",
        user=user,
        object_type="station",
        object_id=station.id,
        data=_rule_data(rule),
    )
    station.reception_rules.remove(rule)
    db.session.flush()
    return rule


@dataclass(frozen=True)
class RuleRow:
    """A reception day as the calendar editor lists it."""

    rule: ReceptionRule
    description: str
    deputy_name: str
    deputy_is_current: bool


def calendar_rows(station: Station) -> list[RuleRow]:
    """The station's rules in words, with the deputy on duty (flagged when no longer serving here)."""
    rows = []
    for rule in station.reception_rules:
        deputy = rule.deputy
        current = deputy is not None and deputy.is_serving and deputy.station_id == station.id
        rows.append(RuleRow(rule, describe_rule(rule), deputy.name if deputy else "", current))
    return rows


def upcoming_days(station: Station, today: date) -> list[tuple[date, list[Deputy]]]:
    """The next reception days from ``today`` (inclusive), each with the deputies on duty that day."""
    days = next_reception_days(station.reception_rules, today, count=NEXT_DAYS_SHOWN)
    return [(day, deputies_on_duty(station, day)) for day in days]


def clean_rotate_reason(value: object) -> str:
    """Why a code is replaced (a defaced or torn-down poster); required."""
    return clean_text(value, "reason", "更换原因", max_chars=ROTATE_REASON_MAX_CHARS, required=True)


def rotate_station_code(user: StaffUser, station: Station, reason_value: object):
    """Retire the station's code and issue a new one; audited with the reason."""
    return rotate_owner_code(user, station, clean_rotate_reason(reason_value))
