"""代表建议 pages (deputies on their phone, supervisors at their desk): find items, draft a 建议 from several,
submit it, record its answer; and the monthly 专报 as a Word document for supervisors.

Deputies and supervisors only (``login_required``: others get 404 and an audit row); a proposal
is opened through ``proposals.find_proposal`` (out of sight: 404 like unknown, audited). Every POST
carries a CSRF token; a refused form is shown again with its reasons and what was typed, and
nothing is written. The rules live in ``backend.proposals``.
"""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from backend.access import PROPOSAL_DRAFTERS
from backend.audit import record_audit
from backend.auth.sessions import current_staff, login_required
from backend.downloads import download
from backend.errors import FieldErrors, UserError
from backend.extensions import db
from backend.items.inbox import first_line
from backend.items.refs import format_ref
from backend.items.validation import parse_day
from backend.models import StaffRole
from backend.models.item import ITEM_CATEGORY_LABELS, ITEM_STATUS_LABELS
from backend.proposals import membership, report
from backend.proposals import operations as proposals
from backend.stations.calendar import today_in_china
from backend.supervision import stats

bp = Blueprint("proposals", __name__, url_prefix="/staff/proposals")

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
NOTICES = {
    "drafted": "建议已保存为草稿。核对无误后点“提交”。",
    "submitted": "已提交。每件留言的查询页都会显示已写入这件建议。",
    "answered": "答复已记录，已通知这件建议背后的每一位群众。",
}


def _page(template: str, status: int = 200, **context):
    return make_response(render_template(template, user=current_staff(), **context), status)


def _search_args() -> dict[str, str]:
    return {name: request.values.get(name, "")[:40] for name in ("category", "station", "q")}


def _new_page(status: int = 200, errors: dict | None = None, values: dict | None = None):
    """The search and the draft form: items found by category, place and words, each with a box to tick."""
    user = current_staff()
    args = _search_args()
    search_error = None
    try:
        found = proposals.search_items(user, category=args["category"], station_id=args["station"], words=args["q"])
    except UserError as exc:
        db.session.rollback()
        found, search_error = [], exc.message
    values = values or {"title": "", "body": "", "department_id": "", "item_refs": []}
    chosen = set(values["item_refs"])
    return _page(
        "staff/proposal_new.html",
        status,
        args=args,
        found=found,
        search_error=search_error,
        chosen=chosen,
        errors=errors or {},
        values=values,
        categories=list(ITEM_CATEGORY_LABELS.items()),
        stations=proposals.stations_for(user),
        departments=proposals.departments_for(user),
        status_labels=ITEM_STATUS_LABELS,
        category_labels=ITEM_CATEGORY_LABELS,
        format_ref=format_ref,
        first_line=first_line,
        title_max=proposals.TITLE_MAX_CHARS,
    )


@bp.get("/")
@login_required(*PROPOSAL_DRAFTERS)
def index():
    """The 建议 the user drafted (a deputy) or that were drafted in their region (a supervisor), newest first."""
    user = current_staff()
    rows = proposals.proposals_of(user)
    last_month = today_in_china().replace(day=1)
    return _page(
        "staff/proposals.html",
        proposals=rows,
        counts=proposals.item_counts(rows),
        is_supervisor=user.role == StaffRole.SUPERVISOR,
        report_month=f"{last_month:%Y-%m}",
    )


@bp.get("/new")
@login_required(*PROPOSAL_DRAFTERS)
def new():
    """Find items (category, place, words) and draft a 建议 from those ticked."""
    return _new_page()


@bp.post("/")
@login_required(*PROPOSAL_DRAFTERS)
def create():
    """Draft the 建议: shown again with every reason when refused (nothing written), else its page."""
    user = current_staff()
    values = {
        "title": request.form.get("title", ""),
        "body": request.form.get("body", ""),
        "department_id": request.form.get("department_id", ""),
        "item_refs": request.form.getlist("item_refs")[: proposals.MAX_ITEMS + 1],
    }
    try:
        proposal = proposals.draft_proposal(
            user,
            title=values["title"],
            body=values["body"],
            item_refs=values["item_refs"],
            department_id=values["department_id"],
        )
    except UserError as exc:
        db.session.rollback()
        errors = dict(exc.fields) if isinstance(exc, FieldErrors) else {exc.field or "form": exc.message}
        return _new_page(exc.status, errors=errors, values=values)
    return redirect(url_for("proposals.show", proposal_id=proposal.id, done="drafted"), 303)


@bp.get("/<int:proposal_id>")
@login_required(*PROPOSAL_DRAFTERS)
def show(proposal_id: int):
    """One 建议: its text, the items behind it, where it stands, its history, and what may be done next."""
    return _show(proposal_id)


def _show(proposal_id: int, status: int = 200, error: str | None = None, answer: str = ""):
    proposal = proposals.find_proposal(current_staff(), proposal_id)
    return _page(
        "staff/proposal.html",
        status,
        proposal=proposal,
        actions=proposals.allowed_actions(proposal),
        history=membership.history(proposal),
        notice=NOTICES.get(request.args.get("done", ""), ""),
        error=error,
        answer=answer,
        format_ref=format_ref,
        first_line=first_line,
        category_labels=ITEM_CATEGORY_LABELS,
        status_labels=ITEM_STATUS_LABELS,
    )


@bp.post("/<int:proposal_id>/submit")
@login_required(*PROPOSAL_DRAFTERS)
def submit(proposal_id: int):
    """Submit a drafted 建议."""
    return _act(proposal_id, "submit", "submitted")


@bp.post("/<int:proposal_id>/answer")
@login_required(*PROPOSAL_DRAFTERS)
def answer(proposal_id: int):
    """Record the department's answer; every resident behind the 建议 is told."""
    return _act(proposal_id, "answer", "answered")


def _act(proposal_id: int, action: str, done: str):
    user = current_staff()
    proposal = proposals.find_proposal(user, proposal_id)
    text = request.form.get("text", "")
    try:
        proposals.perform(proposal, user, action, text)
    except UserError as exc:
        if exc.status not in (400, 409):
            raise
        db.session.rollback()
        return _show(proposal_id, exc.status, error=exc.message, answer=text)
    return redirect(url_for("proposals.show", proposal_id=proposal_id, done=done), 303)


@bp.get("/report.docx")
@login_required(StaffRole.SUPERVISOR)
def month_report():
    """The month's 专报 (``month=YYYY-MM``) of the supervisor's region, as a Word document; the download is audited."""
    user = current_staff()
    scope = stats.resolve_scope(user, {"region": request.args["region"]} if request.args.get("region") else {})
    raw = request.args.get("month", "")
    month = parse_day(f"{raw}-01", "month", "专报月份") if len(raw) == 7 else None
    if month is None:
        raise UserError("invalid_month", "请选择专报的月份，例如2026-03。", 400, field="month")
    data = report.write_report(scope, month)
    record_audit("report_downloaded", user=user, object_type=scope.kind, object_id=scope.key, data={"month": raw})
    name = f"{report.month_title(scope, month)}.docx"
    return download(data, DOCX, name, f"report-{month:%Y-%m}.docx")
