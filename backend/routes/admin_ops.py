"""Administration pages for running the service: the working-day calendar and the audit log (supervisors),
and the workers' status.

They belong to the administration blueprint (``admin.bp``: the same audience, the same
login and refusal rules) and live in a module of their own so that the station pages and
these grow apart. ``/admin/workdays``: supervisors only (anyone else: 404 and an audit row,
as ``require_supervisor`` does everywhere); ``/admin/workers``: supervisors and station
administrators (the poster worker prints their batches); ``/admin/audit``: supervisors only, the rows
of their region (``backend.admin.audit_log``).
"""

from __future__ import annotations

from flask import Response, request, stream_with_context

from backend.access import ADMIN_ROLES, require_supervisor
from backend.admin import audit_log
from backend.audit import record_audit
from backend.auth.sessions import current_staff, login_required
from backend.errors import UserError
from backend.items import workcalendar
from backend.models import utcnow
from backend.ops import health, heartbeat
from backend.routes.admin import _done, _page, _refused_page, bp
from backend.stations.calendar import today_in_china

SOURCE_LABELS = {"entered": "管理员录入", "library": "内置数据", "unknown": "未录入"}


def _workdays_context(selected: int | None = None) -> dict:
    today = today_in_china()
    calendar = workcalendar.current()
    years = sorted({today.year - 1, today.year, today.year + 1} | set(calendar.entered_years))
    views = [workcalendar.year_view(year) for year in years]
    missing = [v.year for v in views if v.source == "unknown" and v.year >= today.year]
    if selected is None:
        selected = missing[0] if missing else today.year + 1
    chosen = workcalendar.year_view(selected)
    return {
        "views": views,
        "missing": missing,
        "selected": selected,
        "source_labels": SOURCE_LABELS,
        "library": workcalendar.library_label(),
        "prefill": {
            "year": str(selected),
            "holidays": "\n".join(line.text() for line in chosen.holidays),
            "workdays": "\n".join(line.text() for line in chosen.workdays),
            "source": chosen.entry.source if chosen.entry is not None else "",
        },
    }


@bp.get("/workdays")
@login_required(*ADMIN_ROLES)
def workdays():
    """The holidays and 调休 working days the deadlines count, per year, and the form to enter a year."""
    require_supervisor(current_staff())
    selected = request.args.get("year", type=int)
    if selected is not None and not workcalendar.MIN_YEAR <= selected <= workcalendar.MAX_YEAR:
        selected = None
    return _page("admin/workdays.html", **_workdays_context(selected))


@bp.post("/workdays")
@login_required(*ADMIN_ROLES)
def workdays_save():
    """Enter or replace a year's arrangement (from the State Council's notice)."""
    user = current_staff()
    require_supervisor(user)
    form = request.form
    try:
        year = workcalendar.save_year(
            user, form.get("year"), form.get("holidays"), form.get("workdays"), form.get("source")
        )
    except UserError as exc:
        return _refused_page(
            "admin/workdays.html", exc, lambda: _workdays_context(request.form.get("year", type=int)), "workdays"
        )
    return _done(f"已保存{year}年的节假日安排；此后计算的办理期限按新安排。", "admin.workdays", year=year)


@bp.post("/workdays/<int(min=2000, max=2100):year>/delete")
@login_required(*ADMIN_ROLES)
def workdays_delete(year: int):
    """Remove a year entered here (the bundled data for it, if any, applies again)."""
    user = current_staff()
    require_supervisor(user)
    if not workcalendar.delete_year(user, year):
        return _done(f"{year}年没有录入过安排。", "admin.workdays")
    return _done(f"已删除录入的{year}年节假日安排。", "admin.workdays", year=year)


@bp.get("/workers")
@login_required(*ADMIN_ROLES)
def workers():
    """The background workers' last heartbeat and the oldest WeChat notice still waiting."""
    now = utcnow()
    return _page(
        "admin/workers.html",
        now=now,
        states=heartbeat.states(now),
        processes=heartbeat.recent_processes(now),
        backlog=health.outbox_backlog(),
        alive_seconds=f"{heartbeat.alive_seconds():g}",
    )


def _audit_filter_or_error() -> tuple[audit_log.AuditFilter, UserError | None]:
    try:
        return audit_log.parse_filter(request.args), None
    except UserError as exc:
        return audit_log.AuditFilter(), exc


@bp.get("/audit")
@login_required(*ADMIN_ROLES)
def audit():
    """The audit log of the supervisor's region, newest first, filtered by actor, action, item and dates.

    A malformed filter shows the page unfiltered with the reason above it (400), never an error page.
    """
    user = current_staff()
    require_supervisor(user)
    wanted, error = _audit_filter_or_error()
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 18 else None
    result = audit_log.page(user, wanted, before_id)
    return _page(
        "admin/audit.html",
        400 if error else 200,
        result=result,
        wanted=wanted,
        values=dict(request.args) if error else wanted.as_args(),
        error=error.message if error else None,
        error_field=error.field if error else None,
        actions=sorted(audit_log.ACTION_LABELS.items(), key=lambda pair: pair[1]),
    )


@bp.get("/audit.csv")
@login_required(*ADMIN_ROLES)
def audit_export():
    """The filtered audit log as CSV; the export itself is audited (it carries addresses and who looked at what)."""
    user = current_staff()
    require_supervisor(user)
    wanted, error = _audit_filter_or_error()
    if error is not None:
        raise error
    record_audit("audit_exported", user=user, object_type="region", object_id=user.region_id, data=wanted.as_args())
    today = utcnow().astimezone(audit_log.CHINA).strftime("%Y%m%d")
    return Response(
        stream_with_context(audit_log.export_csv(user, wanted)),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename=audit-{today}.csv"},
    )


@bp.context_processor
def _public_address_warning() -> dict:
    """``public_address_warning`` for the pages that print codes (admin/_address_banner.html)."""
    from flask import current_app

    from backend.ops.doctor import public_address_warning

    return {"public_address_warning": public_address_warning(current_app.config["PUBLIC_BASE_URL"])}
