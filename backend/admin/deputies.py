"""Deputy operations: create, edit, photo, assignment to a station, status in office, code rotation.

Each function validates first and writes nothing when it refuses (``UserError`` naming the
field), then writes, records audit rows and flushes; the caller commits.

A deputy who leaves office (辞职 / 罢免 / 任期届满) keeps their code: ``resolve_slug`` sends a
resident who scans it to the deputy's station. Their open items are handed to another
serving deputy of the station through the item lifecycle (``perform_action("reassign")``),
so that every handover is an event on the item and an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from backend.access import can_manage_station
from backend.admin import clean_phone, rotate_owner_code
from backend.admin.stations import clean_rotate_reason
from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items import photo_store
from backend.items.lifecycle import allowed_actions, perform_action
from backend.items.operations import deputy_staff_users
from backend.items.photos import process_photo
from backend.items.refs import format_ref
from backend.items.validation import check_date_window, clean_text, parse_id
from backend.models import (
    AuditEntry,
    CongressLevel,
    Deputy,
    DeputyLevel,
    DeputyStatus,
    Item,
    ItemStatus,
    StaffUser,
    Station,
    utcnow,
)
from backend.models.deputy import CONGRESS_LEVEL_LABELS, DEPUTY_STATUS_LABELS
from backend.qr.codes import issue_code
from backend.stations import serving_deputies

NAME_MAX_CHARS = 50  # Deputy.name
CONSTITUENCY_MAX_CHARS = 200  # Deputy.constituency, DeputyLevel.constituency
OCCUPATION_MAX_CHARS = 100  # Deputy.occupation
STATUS_REASON_MAX_CHARS = 500

# What the status form offers and how the page words each change.
STATUS_CHOICES = {
    DeputyStatus.RESIGNED: "辞职",
    DeputyStatus.RECALLED: "罢免",
    DeputyStatus.TERM_ENDED: "任期届满",
    DeputyStatus.SERVING: "恢复在任（更正误操作）",
}
CODE_KEEPS_ROUTING = "其代表码继续有效：群众扫码后会转到{station}，可给本站其他代表或值班代表留言。"
DEPUTY_FIELDS = ("name", "constituency", "occupation", "phone", "term_start", "term_end")


@dataclass(frozen=True)
class DeputyInput:
    """A deputy's details as checked from a form or an import row."""

    name: str
    levels: dict[CongressLevel, str]  # level → constituency there
    constituency: str
    occupation: str
    phone: str
    term_start: date | None
    term_end: date | None


def clean_name(value: object, field: str = "name") -> str:
    """A deputy's name: required, at most 50 characters."""
    return clean_text(value, field, "姓名", max_chars=NAME_MAX_CHARS, required=True)


def clean_constituency(value: object, field: str = "constituency", label: str = "选区") -> str:
    """A constituency (选区), at most 200 characters."""
    return clean_text(value, field, label, max_chars=CONSTITUENCY_MAX_CHARS)


def clean_occupation(value: object, field: str = "occupation") -> str:
    """Occupation and workplace (职业), at most 100 characters."""
    return clean_text(value, field, "职业", max_chars=OCCUPATION_MAX_CHARS)


def check_term(term_start: date | None, term_end: date | None, field: str = "term_end") -> None:
    """The term must end after it starts."""
    if term_start and term_end and term_end < term_start:
        raise UserError("invalid_term", "任期结束日期不能早于开始日期。", 400, field=field)


def _form_date(value: object, field: str, label: str) -> date | None:
    text = clean_text(value, field, label, max_chars=10)
    if not text:
        return None
    message = f"{label}格式不正确，请选择日期（如2021-12-01）。"
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"invalid_{field}", message, 400, field=field) from None
    return check_date_window(day, field, message)  # 0001-01-01 and 9999-12-31 are slips, not terms


def deputy_input_from_form(form) -> DeputyInput:
    """Read and check the deputy form: name, levels (with a constituency each), constituency, occupation, phone, term."""
    name = clean_name(form.get("name"))
    constituency = clean_constituency(form.get("constituency"))
    chosen = set(form.getlist("level")) if hasattr(form, "getlist") else set(form.get("level") or [])
    levels: dict[CongressLevel, str] = {}
    for level in CongressLevel:
        if level.value in chosen:
            label = f"{CONGRESS_LEVEL_LABELS[level]}的选区"
            where = clean_constituency(form.get(f"constituency_{level.value}"), f"constituency_{level.value}", label)
            levels[level] = where or constituency
    if not levels:
        raise UserError("required", "请至少选择一个代表层级。", 400, field="level")
    occupation = clean_occupation(form.get("occupation"))
    phone = clean_phone(form.get("phone"), "phone", "联系电话")
    term_start = _form_date(form.get("term_start"), "term_start", "任期开始日期")
    term_end = _form_date(form.get("term_end"), "term_end", "任期结束日期")
    check_term(term_start, term_end)
    return DeputyInput(name, levels, constituency, occupation, phone, term_start, term_end)


def _same_name_serving(station: Station, name: str, except_id: int | None = None) -> Deputy | None:
    return db.session.scalar(
        select(Deputy).where(
            Deputy.station_id == station.id,
            Deputy.name == name,
            Deputy.status == DeputyStatus.SERVING,
            Deputy.id != (except_id or 0),
        )
    )


def _snapshot(deputy: Deputy) -> dict:
    """The audited view of a deputy's details."""
    return {
        "name": deputy.name,
        "levels": {lv.level.value: lv.constituency for lv in deputy.levels},
        "constituency": deputy.constituency,
        "occupation": deputy.occupation,
        "phone": deputy.phone,
        "term_start": deputy.term_start.isoformat() if deputy.term_start else None,
        "term_end": deputy.term_end.isoformat() if deputy.term_end else None,
    }


def apply_input(deputy: Deputy, data: DeputyInput) -> None:
    """Write checked details onto a deputy (levels replaced: kept, added, removed by level)."""
    deputy.name = data.name
    deputy.constituency = data.constituency
    deputy.occupation = data.occupation
    deputy.phone = data.phone
    deputy.term_start = data.term_start
    deputy.term_end = data.term_end
    existing = {lv.level: lv for lv in deputy.levels}
    for level, where in data.levels.items():
        if level in existing:
            existing[level].constituency = where
        else:
            deputy.levels.append(DeputyLevel(level=level, constituency=where))
    for level, row in existing.items():
        if level not in data.levels:
            deputy.levels.remove(row)


def create_deputy(user: StaffUser, station: Station, data: DeputyInput, *, source: str = "form") -> Deputy:
    """A new serving deputy at ``station`` with a code of their own."""
    if _same_name_serving(station, data.name) is not None:
        raise UserError("duplicate_name", f"{station.name}已有在任代表{data.name}，请勿重复添加。", 400, field="name")
    deputy = Deputy(station=station, status=DeputyStatus.SERVING)
    apply_input(deputy, data)
    db.session.add(deputy)
    db.session.flush()
    code = issue_code(deputy)
    record_audit(
        "deputy_created",
        user=user,
        object_type="deputy",
        object_id=deputy.id,
        data={"station_id": station.id, "code_id": code.id, "source": source, "after": _snapshot(deputy)},
    )
    return deputy


def update_deputy(user: StaffUser, deputy: Deputy, data: DeputyInput, *, source: str = "form") -> list[str]:
    """Change a deputy's details; return the names of what changed (nothing is written when nothing did)."""
    if data.name != deputy.name and _same_name_serving(deputy.station, data.name, deputy.id) is not None:
        raise UserError(
            "duplicate_name", f"{deputy.station.name}已有在任代表{data.name}，请核对姓名。", 400, field="name"
        )
    diff = apply_changes(deputy, data)
    db.session.flush()
    if diff:
        record_audit(
            "deputy_updated",
            user=user,
            object_type="deputy",
            object_id=deputy.id,
            data={"source": source, "before": diff["before"], "after": diff["after"]},
        )
    return list(diff.get("after", {}))


def apply_changes(deputy: Deputy, data: DeputyInput) -> dict:
    """Write ``data`` onto ``deputy`` without flushing; return ``{"before": …, "after": …}`` of what changed, or {}."""
    before = _snapshot(deputy)
    apply_input(deputy, data)
    after = _snapshot(deputy)
    changed = [key for key in before if before[key] != after[key]]
    if not changed:
        return {}
    return {"before": {k: before[k] for k in changed}, "after": {k: after[k] for k in changed}}


def set_photo(user: StaffUser, deputy: Deputy, data: bytes) -> None:
    """Store a new photo (re-encoded by ``process_photo``) and bump ``photo_version`` so every page shows it."""
    photo = process_photo(data)
    photo_store.replace_deputy_photo(deputy, photo.jpeg)
    deputy.photo_version = (deputy.photo_version or 0) + 1
    db.session.flush()
    record_audit(
        "deputy_photo_updated",
        user=user,
        object_type="deputy",
        object_id=deputy.id,
        data={"photo_version": deputy.photo_version, "sha256": photo.sha256, "size": [photo.width, photo.height]},
    )


def assign_station(user: StaffUser, deputy: Deputy, station_id: object) -> Station:
    """Move a deputy to another station the user manages (进站); their code, same slug, follows them.

    The deputy's duty days at the old station end; their items stay with them.
    """
    message = "请选择您管理的另一个联络站。"
    target_id = parse_id(station_id)
    target = db.session.get(Station, target_id) if target_id is not None else None
    if target is None or not can_manage_station(user, target) or not target.is_active:
        raise UserError("invalid_station_id", message, 400, field="station_id")
    if target.id == deputy.station_id:
        raise UserError("same_station", f"{deputy.name}已在{target.name}。", 400, field="station_id")
    if deputy.is_serving and _same_name_serving(target, deputy.name) is not None:
        raise UserError(
            "duplicate_name", f"{target.name}已有在任代表{deputy.name}，不能再调入同名代表。", 400, field="station_id"
        )
    old = deputy.station
    cleared = _clear_duty(deputy, old)
    deputy.station = target
    db.session.flush()
    record_audit(
        "deputy_station_changed",
        user=user,
        object_type="deputy",
        object_id=deputy.id,
        data={"from_station_id": old.id, "to_station_id": target.id, "duty_rules_cleared": cleared},
    )
    return target


def _clear_duty(deputy: Deputy, station: Station) -> list[int]:
    """Take the deputy off the station's duty rota (the days stay); return the rule ids changed."""
    cleared = []
    for rule in station.reception_rules:
        if rule.deputy_id == deputy.id:
            rule.deputy = None
            cleared.append(rule.id)
    return cleared


def open_items(deputy: Deputy) -> list[Item]:
    """The deputy's items still being handled (submitted, accepted, forwarded, answered), oldest first."""
    return list(
        db.session.scalars(
            select(Item)
            .where(Item.deputy_id == deputy.id, Item.status.in_(ItemStatus.open_statuses()))
            .order_by(Item.id)
        )
    )


@dataclass
class StatusChange:
    """What a status change did: the items handed over, those the lifecycle keeps, the accounts stopped."""

    deputy: Deputy
    status: DeputyStatus
    successor: Deputy | None = None
    handed_over: list[str] = field(default_factory=list)  # refs
    kept: list[str] = field(default_factory=list)  # refs the lifecycle does not let be reassigned now
    accounts_stopped: list[str] = field(default_factory=list)
    accounts_restarted: list[str] = field(default_factory=list)
    duty_rules_cleared: list[int] = field(default_factory=list)


def change_status(user: StaffUser, deputy: Deputy, form) -> StatusChange:
    """Record that a deputy left office (or, to correct a mistake, serves again); hand their open items over.

    ``form``: ``status``, ``reason`` (required), ``successor_id`` (a serving deputy of the same
    station; required when the deputy has open items that can be handed over). Each open item
    the lifecycle lets this user reassign is handed over with ``perform_action("reassign")``;
    items it does not (already forwarded or answered) stay, listed in the result and the audit
    row. A user whose role may not reassign items at all is refused while items are open.
    The deputy's staff accounts are stopped and their duty days cleared.
    """
    try:
        status = DeputyStatus(form.get("status", ""))
    except ValueError:
        raise UserError("invalid_status", "请选择状态变更：辞职、罢免或任期届满。", 400, field="status") from None
    if status == deputy.status:
        raise UserError("same_status", f"{deputy.name}当前已是“{DEPUTY_STATUS_LABELS[status]}”。", 400, field="status")
    reason = clean_text(form.get("reason"), "reason", "变更原因", max_chars=STATUS_REASON_MAX_CHARS, required=True)
    result = StatusChange(deputy=deputy, status=status)

    if status != DeputyStatus.SERVING:
        items = open_items(deputy)
        # Items the lifecycle lets anyone reassign now, to a deputy of the station they were left at.
        by_state = [
            item for item in items if item.station_id == deputy.station_id and "reassign" in allowed_actions(item)
        ]
        if by_state and not any("reassign" in allowed_actions(item, user) for item in by_state):
            raise UserError(
                "handover_not_permitted",
                f"{deputy.name}还有{len(items)}件在办留言，需要转交给本站其他代表。按留言办理规则，"
                "转交留言由联络站管理员操作，请联系本站管理员办理状态变更。",
                403,
                field="successor_id",
            )
        if by_state:
            result.successor = _successor(deputy, form.get("successor_id"), len(by_state))
        for item in items:
            if item in by_state:
                perform_action(
                    item,
                    user,
                    "reassign",
                    deputy_id=result.successor.id,
                    text=f"{deputy.name}代表{STATUS_CHOICES[status]}（{reason}），在办留言转交{result.successor.name}代表。",
                )
                result.handed_over.append(item.ref)
            else:
                result.kept.append(item.ref)
        result.duty_rules_cleared = _clear_duty(deputy, deputy.station)
        for account in deputy_staff_users(deputy.id):
            account.is_active = False  # a former deputy no longer sees residents' details
            result.accounts_stopped.append(account.username)
    elif deputy.status != DeputyStatus.SERVING:
        result.accounts_restarted = _restart_accounts(deputy)

    before = deputy.status
    deputy.status = status
    deputy.status_changed_at = utcnow()
    db.session.flush()
    record_audit(
        "deputy_status_changed",
        user=user,
        object_type="deputy",
        object_id=deputy.id,
        data={
            "from": before.value,
            "to": status.value,
            "reason": reason,
            "successor_id": result.successor.id if result.successor else None,
            "handed_over": result.handed_over,
            "kept": result.kept,
            "accounts_stopped": result.accounts_stopped,
            "accounts_restarted": result.accounts_restarted,
            "duty_rules_cleared": result.duty_rules_cleared,
        },
    )
    return result


def _restart_accounts(deputy: Deputy) -> list[str]:
    """Undo a mistaken departure: reopen the deputy accounts its status change stopped (and only those)."""
    last = db.session.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.action == "deputy_status_changed",
            AuditEntry.object_type == "deputy",
            AuditEntry.object_id == str(deputy.id),
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    stopped = (last.data or {}).get("accounts_stopped", []) if last is not None else []
    restarted = []
    for account in db.session.scalars(
        select(StaffUser).where(StaffUser.deputy_id == deputy.id, StaffUser.username.in_(stopped or [""]))
    ):
        if not account.is_active:
            account.is_active = True
            restarted.append(account.username)
    return restarted


def _successor(deputy: Deputy, value: object, count: int) -> Deputy:
    message = f"{deputy.name}还有{count}件在办留言，请选择接手的本站在任代表。"
    if value in (None, ""):
        raise UserError("required", message, 400, field="successor_id")
    successor_id = parse_id(value)
    successor = next((d for d in serving_deputies(deputy.station) if d.id == successor_id and d.id != deputy.id), None)
    if successor is None:
        raise UserError("invalid_successor_id", message, 400, field="successor_id")
    return successor


def status_sentence(change: StatusChange) -> str:
    """What the page says after a status change: the handover, what stayed, and where the code now leads."""
    deputy = change.deputy
    parts = [f"已将{deputy.name}的状态改为“{DEPUTY_STATUS_LABELS[change.status]}”。"]
    if change.status == DeputyStatus.SERVING:
        if change.accounts_restarted:
            parts.append("其代表登录账号已恢复。")
        return "".join(parts)
    if change.handed_over:
        parts.append(f"{len(change.handed_over)}件在办留言已转交{change.successor.name}代表。")
    if change.kept:
        refs = "、".join(format_ref(ref) for ref in change.kept)
        parts.append(
            f"{len(change.kept)}件留言（{refs}）已交办或已答复，按办理规则不能转交，仍在原联络站，请联络站管理员跟进办结。"
        )
    if change.accounts_stopped:
        parts.append("其代表登录账号已停用。")
    parts.append(CODE_KEEPS_ROUTING.format(station=deputy.station.name))
    return "".join(parts)


def rotate_deputy_code(user: StaffUser, deputy: Deputy, reason_value: object):
    """Retire the deputy's code and issue a new one (a defaced or tampered poster); audited with the reason."""
    return rotate_owner_code(user, deputy, clean_rotate_reason(reason_value))
