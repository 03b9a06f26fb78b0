"""The audit log as a supervisor reads it: the rows of their region, filtered, a page at a time or exported.

A row belongs to a supervisor's region when its actor works there (a staff user whose region,
station, deputy's station or department lies in the region) or when its object does (an item,
station, deputy, department or staff account of the region). So a deputy's reveal of a
resident's contact shows to the supervisors above that deputy's station, and a refusal of
someone from elsewhere who tried to open an item of this region shows here too. Rows with
neither (a failed login for a username that does not exist) belong to no region and show to
nobody on this page: they stay in the table for whoever runs the server.

Filters: the actor's username (part of it), one action, one item's reference, and a range of
China dates, both ends included. Pages go backwards by id (``before``), so a page never shifts
while new rows arrive at the top.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, String, cast, false, or_, select

from backend.access import region_subtree
from backend.admin.accounts import region_staff
from backend.errors import UserError
from backend.extensions import db
from backend.items.lifecycle import TRANSITIONS
from backend.items.validation import parse_day
from backend.models import AuditEntry, Department, Deputy, Item, StaffRole, StaffUser, Station
from backend.supervision.export import is_formula_like
from backend.timefmt import CHINA, china_time

PAGE_SIZE = 100
EXPORT_MAX_ROWS = 100_000  # a county's year is ~30,000 rows of staff actions; more is a sign of a wrong filter
ACTOR_MAX = 50
ITEM_REF_MAX = 16

ACTION_LABELS: dict[str, str] = {
    "login": "登录",
    "login_failed": "登录失败",
    "logout": "退出登录",
    "password_reset": "重设密码",
    "password_changed": "修改自己的密码",
    "password_change_refused": "修改密码时当前密码错误",
    "session_ended": "结束自己的一个登录",
    "sessions_ended": "结束自己的其他登录",
    "staff_user_created": "创建账号",
    "staff_user_disabled": "停用账号",
    "staff_user_enabled": "启用账号",
    "activation_created": "生成激活链接",
    "activation_sheet_printed": "打印联络站账号激活单",
    "account_activated": "本人激活账号",
    "reveal_contact": "查看群众联系方式",
    "item_access_denied": "打开无权查看的留言（已拒绝）",
    "admin_access_denied": "打开无权管理的页面（已拒绝）",
    "stats_access_denied": "查看无权查看的统计（已拒绝）",
    "presence_checked_in": "代表进站签到",
    "presence_checked_out": "代表签退",
    "presence_refused": "为他人或在他站签到（已拒绝）",
    "contact_logged": "记录联系群众（走访、座谈、电话）",
    "forward_link_denied": "承办单位链接被拒绝",
    "forbidden": "无权操作（已拒绝）",
    "item_entered_in_person": "代为登记当面反映的意见",
    "item_claimed": "群众认领当面登记的意见",
    "claim_refused": "认领被拒绝",
    "receipt_reissued": "重新打印回执",
    "item_rated": "评价",
    "rating_refused_staff": "工作人员评价被拒绝",
    "item_withdrawn": "群众撤回留言",
    "item_contact_erased": "群众删除联系方式",
    "retention_run": "按保存期限删除个人信息",
    "item_released": "放行待审核的留言",
    "forward_answered": "承办单位最终答复",
    "forward_progress": "承办单位报告进展",
    "forward_returned": "承办单位退回",
    "forward_passed_on": "承办单位转交下属单位",
    "forward_extension_requested": "承办单位申请延期",
    "forward_extension_granted": "同意承办单位延期",
    "forward_extension_refused": "不同意承办单位延期",
    "forward_link_renewed": "重新开通交办链接",
    "forward_revoked": "收回交办",
    "answer_refused_staff": "工作人员代群众补充或追问（已拒绝）",
    "erasure_refused_staff": "工作人员代群众撤回或删除（已拒绝）",
    "outbox_retry": "重发微信通知",
    "stats_exported": "导出统计",
    "audit_exported": "导出操作日志",
    "code_rotated": "更换二维码",
    "region_created": "新增地区",
    "region_renamed": "地区改名",
    "station_created": "新建联络站",
    "station_updated": "修改联络站信息",
    "station_renamed": "联络站改名",
    "station_closed": "撤销联络站",
    "station_reopened": "恢复联络站",
    "station_merged": "合并联络站",
    "poster_batch_requested": "批量生成海报",
    "deputies_imported": "批量导入代表和账号",
    "deputy_created": "新增代表",
    "deputy_updated": "修改代表信息",
    "deputy_photo_updated": "更换代表照片",
    "deputy_station_changed": "调整代表所在联络站",
    "deputy_status_changed": "调整代表履职状态",
    "department_created": "新增承办单位",
    "department_updated": "修改承办单位信息",
    "department_activated": "启用承办单位",
    "department_deactivated": "停用承办单位",
    "reception_rule_added": "新增接待日",
    "reception_rule_removed": "删除接待日",
    "reply_template_added": "新增常用答复",
    "reply_template_deleted": "删除常用答复",
    "wechat_binding_code_created": "生成微信绑定码",
    "wechat_bound": "绑定微信",
    "wechat_unbound": "解除微信绑定",
    "wechat_bind_refused": "微信绑定被拒绝",
    "work_calendar_saved": "保存节假日安排",
    "work_calendar_deleted": "删除节假日安排",
    "proposal_drafted": "起草代表建议",
    "proposal_submit": "提交代表建议",  # proposals.perform: proposal_<action> of its table
    "proposal_answer": "记录代表建议的答复",
    "proposal_item_withdrawn": "群众撤回留言，移出代表建议草稿",
    "proposal_access_denied": "打开不在范围内的代表建议（已拒绝）",
    "report_downloaded": "下载月度专报",
    "topic_created": "设立专题码",
    "topic_exported": "导出专题留言",
}
# Each action on an item is audited as item_<action> (``lifecycle.perform_action``): its label is the table's.
ACTION_LABELS.update({f"item_{name}": f"留言：{row.label}" for name, row in TRANSITIONS.items()})

OBJECT_LABELS = {
    "item": "留言",
    "item_ref": "留言编号",
    "item_forward": "转办",
    "item_receipt": "回执",
    "retention": "保存期限（按日）",
    "station": "联络站",
    "region": "地区",
    "deputy": "代表",
    "department": "承办单位",
    "staff_user": "账号",
    "staff_session": "登录会话",
    "poster_batch": "批量海报",
    "reply_template": "常用答复",
    "outbox_message": "微信通知",
    "wechat_binding_code": "微信绑定码",
    "work_calendar_year": "节假日安排",
    "import": "导入",
    "path": "页面",
    "proposal": "代表建议",
    "topic": "专题码",
}

# The keys of ``data`` most rows carry, in Chinese; other keys and every value show as recorded.
DATA_LABELS = {
    "ref": "留言编号",
    "reason": "原因",
    "kind": "方式",
    "username": "用户名",
    "text": "内容",
    "station_id": "联络站",
    "action": "操作",
    "via": "途径",
    "path": "页面",
    "method": "请求方式",
    "month": "月份",
    "name": "姓名",
    "satisfaction": "评价",
    "due": "期限",
    "department_id": "承办单位",
    "before": "修改前",
    "after": "修改后",
}


def action_label(action: str) -> str:
    """The action in Chinese; an action without a label shows as recorded, so nothing is hidden."""
    return ACTION_LABELS.get(action, action)


@dataclass(frozen=True)
class AuditFilter:
    """What the supervisor asked for; empty strings and None mean "any"."""

    actor: str = ""
    action: str = ""
    item_ref: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_args(self) -> dict[str, str]:
        """The filter as query arguments (for the next page's and the export's links)."""
        args = {"actor": self.actor, "action": self.action, "item": self.item_ref}
        args["from"] = self.date_from.isoformat() if self.date_from else ""
        args["to"] = self.date_to.isoformat() if self.date_to else ""
        return {key: value for key, value in args.items() if value}


def parse_filter(args) -> AuditFilter:
    """The filter from query arguments; a 400 ``UserError`` naming the field for anything malformed."""
    actor = _text_arg(args, "actor", ACTOR_MAX, "操作人")
    action = _text_arg(args, "action", 50, "操作")
    if action and action not in ACTION_LABELS:
        raise UserError("invalid_action", "没有这种操作，请从列表中选择。", 400, field="action")
    item_ref = _text_arg(args, "item", ITEM_REF_MAX, "留言编号").upper()
    raw_from, raw_to = args.get("from", ""), args.get("to", "")
    date_from = parse_day(raw_from, "from", "开始日期") if raw_from.strip() else None
    date_to = parse_day(raw_to, "to", "结束日期") if raw_to.strip() else None
    if date_from and date_to and date_from > date_to:
        raise UserError("invalid_range", "开始日期晚于结束日期，请调换。", 400, field="from")
    return AuditFilter(actor, action, item_ref, date_from, date_to)


def _text_arg(args, name: str, limit: int, label: str) -> str:
    value = args.get(name, "").strip()
    if len(value) > limit:
        raise UserError(f"invalid_{name}", f"{label}不能超过{limit}个字。", 400, field=name)
    return value


def _ids(query: Select) -> Select:
    """Integer ids as the audit table stores object ids (text), for ``IN`` on ``object_id``."""
    return query.with_only_columns(cast(query.selected_columns[0], String(64)))


def region_entries(user: StaffUser) -> Select:
    """``select(AuditEntry)`` limited to the rows of the supervisor's region (see the module's docstring)."""
    query = select(AuditEntry)
    if user is None or not user.is_active or user.role != StaffRole.SUPERVISOR or user.region_id is None:
        return query.where(false())
    regions = region_subtree(user.region_id).scalar_subquery()
    stations = select(Station.id).where(Station.region_id.in_(regions))
    deputies = select(Deputy.id).where(Deputy.station_id.in_(stations))
    departments = select(Department.id).where(Department.region_id.in_(regions))
    staff = region_staff(user.region_id, regions)
    items = select(Item.id).where(Item.station_id.in_(stations))
    objects = {"item": items, "station": stations, "deputy": deputies, "department": departments, "staff_user": staff}
    return query.where(
        or_(
            AuditEntry.staff_user_id.in_(staff),
            *((AuditEntry.object_type == kind) & AuditEntry.object_id.in_(_ids(ids)) for kind, ids in objects.items()),
            (AuditEntry.object_type == "item_ref") & AuditEntry.object_id.in_(items.with_only_columns(Item.ref)),
        )
    )


def _china_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=CHINA)


def filtered(user: StaffUser, wanted: AuditFilter) -> Select:
    """The supervisor's rows that match ``wanted``, newest first."""
    query = region_entries(user)
    if wanted.actor:
        pattern = "%" + wanted.actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            AuditEntry.staff_user_id.in_(select(StaffUser.id).where(StaffUser.username.ilike(pattern, escape="\\")))
        )
    if wanted.action:
        query = query.where(AuditEntry.action == wanted.action)
    if wanted.item_ref:
        item_id = select(cast(Item.id, String(64))).where(Item.ref == wanted.item_ref).scalar_subquery()
        query = query.where(
            or_(
                (AuditEntry.object_type == "item") & (AuditEntry.object_id == item_id),
                (AuditEntry.object_type == "item_ref") & (AuditEntry.object_id == wanted.item_ref),
            )
        )
    if wanted.date_from:
        query = query.where(AuditEntry.created_at >= _china_midnight(wanted.date_from))
    if wanted.date_to:
        query = query.where(AuditEntry.created_at < _china_midnight(wanted.date_to + timedelta(days=1)))
    return query.order_by(AuditEntry.id.desc())


@dataclass(frozen=True)
class AuditRow:
    """One row as the page and the export show it."""

    id: int
    at: datetime
    actor: str
    action: str
    action_label: str
    target: str
    item_ref: str
    address: str
    details: str


_COLUMNS = (
    AuditEntry.id,
    AuditEntry.created_at,
    AuditEntry.staff_user_id,
    AuditEntry.action,
    AuditEntry.object_type,
    AuditEntry.object_id,
    AuditEntry.address,
    AuditEntry.data,
)


def _describe(entries: list) -> list[AuditRow]:
    """Rows with their actors' names and their items' references, in two queries for the whole page."""
    user_ids = {e.staff_user_id for e in entries if e.staff_user_id is not None}
    users = {u.id: u for u in db.session.scalars(select(StaffUser).where(StaffUser.id.in_(user_ids)))}
    item_ids = {int(e.object_id) for e in entries if e.object_type == "item" and e.object_id.isdigit()}
    refs = {row.id: row.ref for row in db.session.execute(select(Item.id, Item.ref).where(Item.id.in_(item_ids)))}
    rows = []
    for entry in entries:
        user = users.get(entry.staff_user_id)
        actor = f"{user.display_name or user.username}（{user.username}）" if user else "（未登录）"
        ref = ""
        if entry.object_type == "item" and entry.object_id.isdigit():
            ref = refs.get(int(entry.object_id), "")
        elif entry.object_type == "item_ref":
            ref = entry.object_id
        target = OBJECT_LABELS.get(entry.object_type, entry.object_type)
        if entry.object_id and entry.object_type not in ("item", "item_ref"):
            target = f"{target} {entry.object_id}"
        details = "；".join(
            f"{DATA_LABELS.get(key, key)}：{value}" for key, value in sorted((entry.data or {}).items())
        )
        rows.append(
            AuditRow(
                entry.id,
                entry.created_at,
                actor,
                entry.action,
                action_label(entry.action),
                target if entry.object_type else "",
                ref,
                entry.address,
                details,
            )
        )
    return rows


@dataclass(frozen=True)
class AuditPage:
    """One page of rows, and the id to continue from (None on the last page)."""

    rows: list[AuditRow]
    next_before: int | None


def page(user: StaffUser, wanted: AuditFilter, before: int | None = None) -> AuditPage:
    """Up to ``PAGE_SIZE`` rows older than the id ``before`` (the newest when None)."""
    query = filtered(user, wanted)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    # Columns, not entities: an export's hundred thousand rows never sit in the session's identity map.
    entries = db.session.execute(query.with_only_columns(*_COLUMNS).limit(PAGE_SIZE + 1)).all()
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return AuditPage(_describe(entries), entries[-1].id if more else None)


CSV_HEADER = ("编号", "时间", "操作人", "操作", "操作代码", "对象", "留言编号", "来源地址", "详情")


def _cell(value: str) -> str:
    """A value a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if is_formula_like(value) else value


def export_csv(user: StaffUser, wanted: AuditFilter) -> Iterator[str]:
    """The matching rows as CSV text (UTF-8 with a BOM, so Excel reads the Chinese), a chunk of rows at a time.

    Read in pages of ids as the page does, so memory stays flat whatever the range; at most
    ``EXPORT_MAX_ROWS`` rows, and the last line says so when the filter matched more.
    """
    yield "\ufeff"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    written, before = 0, None
    while True:
        chunk = page(user, wanted, before)
        for row in chunk.rows:
            writer.writerow(
                [
                    str(row.id),
                    china_time(row.at, "%Y-%m-%d %H:%M:%S"),
                    *(
                        _cell(v)
                        for v in (
                            row.actor,
                            row.action_label,
                            row.action,
                            row.target,
                            row.item_ref,
                            row.address,
                            row.details,
                        )
                    ),
                ]
            )
        written += len(chunk.rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if chunk.next_before is None:
            return
        if written >= EXPORT_MAX_ROWS:
            writer.writerow([f"只导出了最近的{EXPORT_MAX_ROWS}条，请缩小日期范围后分次导出。"])
            yield buffer.getvalue()
            return
        before = chunk.next_before
