"""进站签到 and 联系群众: the deputy's pages (sign in and out, log a contact), the station administrator's
page for deputies without a phone, and ``POST /api/v1/presence``.

Pages are added to the deputy's blueprint (``/staff``) and the administrator's (``/admin``), the
API to the staff API's, as admin_accounts.py adds to admin.bp. The rules (who may record, what a
second check-in does, 见面率) are ``backend.stations.presence``'s; contacts are
``backend.stations.contacts``'s.
"""

from __future__ import annotations

from flask import jsonify, make_response, redirect, render_template, request, url_for

from backend import api_schemas
from backend.access import ADMIN_ROLES, require_deputy, require_station
from backend.api_schemas import STAFF, describe
from backend.api_schemas import models as m
from backend.auth.sessions import api_auth_required, current_staff, login_required
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import clean_id
from backend.models import ContactKind, Deputy, DeputyStatus, PresenceSource, StaffRole, StaffUser, Station
from backend.routes import admin, api_staff, deputy
from backend.stations import contacts, presence
from backend.stations.calendar import describe_rule, next_reception_days, today_in_china

DONE = {
    "checked_in": "已签到。",
    "checked_out": "已签退。",
    "repeated": "刚刚已签到，无需重复签到。",
    "contact_logged": "已记录这次联系群众。",
}
CONTACT_FIELDS = ("kind", "held_on", "place", "people", "summary")


def _page(template: str, status: int = 200, **context):
    return make_response(render_template(template, **context), status)


def presence_page(user: StaffUser, *, source: PresenceSource, slug: str = "", status: int = 200, message: str = ""):
    """The deputy's 签到/签退 page at their own station (also what their scan of the station code opens)."""
    deputy_ = user.deputy
    station = deputy_.station
    today = today_in_china()
    rules = presence.reception_rules_of(deputy_, station)
    return _page(
        "staff/presence.html",
        status,
        user=user,
        deputy=deputy_,
        station=station,
        source=source.value,
        slug=slug,
        visit=presence.open_visit(deputy_),
        is_reception_day=presence.is_reception_day_of(deputy_, station, today),
        rules=[describe_rule(rule) for rule in rules],
        next_days=next_reception_days(rules, today, count=3),
        visits=presence.recent_visits(deputy_, limit=5),
        visit_minutes=presence.visit_minutes,
        message=message or DONE.get(request.args.get("done", ""), ""),
        today=today,
    )


@deputy.bp.get("/presence")
@login_required(StaffRole.DEPUTY)
def presence_home():
    """签到/签退 by a tap, for a deputy at their station (the same as scanning its code)."""
    user = current_staff()
    return presence_page(user, source=PresenceSource.TAP)


@deputy.bp.post("/presence")
@login_required(StaffRole.DEPUTY)
def presence_submit():
    """Check in, or out with a visit open; the page says which, and whether today is a reception day."""
    user = current_staff()
    source = PresenceSource.SCAN if request.form.get("source") == PresenceSource.SCAN.value else PresenceSource.TAP
    intent = request.form.get("intent")
    if intent not in ("in", "out"):
        raise UserError("invalid_intent", "请点“签到”或“签退”按钮。", 400)
    try:
        result = presence.check_in_or_out(user, user.deputy, user.deputy.station, source, intent=intent)
    except UserError as exc:
        if exc.code != "no_open_visit":
            raise
        db.session.rollback()
        return presence_page(user, source=source, status=exc.status, message=exc.message)
    return presence_page(user, source=source, message=result.message)


# --- 联系群众 -----------------------------------------------------------------------------------------


def _contacts_page(user: StaffUser, status: int = 200, **extra):
    context = {
        "user": user,
        "kinds": list(ContactKind),
        "values": {"kind": ContactKind.VISIT.value, "held_on": today_in_china().isoformat(), "people": "1"},
        "error": None,
        "error_field": None,
        "contacts": contacts.recent_contacts(user),
        "notice": DONE.get(request.args.get("done", ""), ""),
        "limits": {"place": contacts.PLACE_MAX_CHARS, "summary": contacts.SUMMARY_MAX_CHARS},
    }
    context.update(extra)
    return _page("staff/contacts.html", status, **context)


@deputy.bp.route("/contacts", methods=["GET", "POST"])
@login_required(StaffRole.DEPUTY)
def contact_log():
    """Log a 走访, 座谈 or phone call in three taps (how, what was raised, save; the date and count prefilled)."""
    user = current_staff()
    if request.method == "GET":
        return _contacts_page(user)
    values = {name: request.form.get(name, "") for name in CONTACT_FIELDS}
    try:
        contacts.log_contact(user, **values)
    except UserError as exc:
        if exc.status != 400:
            raise
        db.session.rollback()
        return _contacts_page(user, exc.status, values=values, error=exc.message, error_field=exc.field)
    return redirect(url_for("deputy.contact_log", done="contact_logged"), 303)


# --- the administrator records for a deputy without a phone ---------------------------------------------


@admin.bp.get("/stations/<int:station_id>/presence")
@login_required(*ADMIN_ROLES)
def station_presence(station_id: int):
    """The station's deputies with their open visits: 代为签到/签退 for those without a phone."""
    user = current_staff()
    station = require_station(user, station_id)
    return _station_presence_page(user, station)


def _station_presence_page(user: StaffUser, station: Station, status: int = 200, message: str = ""):
    today = today_in_china()
    serving = [d for d in station.deputies if d.status == DeputyStatus.SERVING]
    return _page(
        "admin/station_presence.html",
        status,
        user=user,
        station=station,
        rows=[
            {
                "deputy": d,
                "visit": presence.open_visit(d),
                "is_reception_day": presence.is_reception_day_of(d, station, today),
            }
            for d in serving
        ],
        today=today,
        message=message,
    )


@admin.bp.post("/stations/<int:station_id>/presence")
@login_required(StaffRole.STATION_ADMIN)
def station_presence_record(station_id: int):
    """代为签到/签退 for one deputy of the station (marked as recorded by the administrator)."""
    user = current_staff()
    station = require_station(user, station_id)
    deputy_id = clean_id(request.form.get("deputy_id"), "deputy_id", "请选择本站的一位代表。")
    deputy_ = require_deputy(user, deputy_id)
    intent = request.form.get("intent")
    if intent not in ("in", "out"):
        raise UserError("invalid_intent", "请点“代为签到”或“代为签退”按钮。", 400)
    try:
        result = presence.check_in_or_out(user, deputy_, station, PresenceSource.BY_ADMIN, intent=intent)
    except UserError as exc:
        if exc.code != "no_open_visit":
            raise
        db.session.rollback()
        return _station_presence_page(user, station, exc.status, message=f"{deputy_.name}：{exc.message}")
    return _station_presence_page(user, station, message=f"{deputy_.name}：{result.message}")


# --- the API -----------------------------------------------------------------------------------------------


@api_staff.bp.post("/presence")
@api_auth_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
@describe(
    tags=("员工",),
    security=STAFF,
    json=m.PresenceRequest,
    responses={200: m.PresenceAnswer, 201: m.PresenceAnswer, 409: m.ErrorResponse, **api_staff.STAFF_ERRORS},
)
def presence_api():
    """``{"station_id"}`` with a deputy's token → 201 and the visit opened; with a visit open, 200 and it closed.

    A station administrator adds ``deputy_id`` (a deputy of their station without a phone; the visit is
    marked as recorded by them). The same check-in sent twice at once makes one visit (the second
    answers 200 ``repeated``). ``intent`` says what a button meant, as on the page: ``"in"`` never closes a
    visit, ``"out"`` closes the open one at once (409 ``no_open_visit`` when there is none). 404 for a station
    that is not the deputy's own (or the administrator's), as for an unknown one; a day the calendar did not
    give is allowed and marked ``is_reception_day: false``.
    """
    user = current_staff()
    data: m.PresenceRequest = api_schemas.body()
    station_id = clean_id(data.station_id, "station_id", "请指定联络站。")
    station = db.session.get(Station, station_id)
    if station is None:
        raise UserError("not_your_station", "找不到这个联络站。", 404)
    if user.role == StaffRole.DEPUTY:
        if data.deputy_id is not None and clean_id(data.deputy_id, "deputy_id", "代表编号不正确。") != user.deputy_id:
            raise UserError("not_yourself", "代表只能为自己签到。", 403, field="deputy_id")
        deputy_ = user.deputy
        source = PresenceSource.API
    else:
        deputy_id = clean_id(data.deputy_id, "deputy_id", "请指定本站的一位代表。")
        deputy_ = db.session.get(Deputy, deputy_id)
        if deputy_ is None:
            raise UserError("unknown_deputy", "找不到这位代表。", 404, field="deputy_id")
        source = PresenceSource.BY_ADMIN
    result = presence.check_in_or_out(user, deputy_, station, source, intent=data.intent)
    body = {"action": result.action, "visit": presence.visit_json(result.visit), "message": result.message}
    return jsonify(body), 201 if result.action == "checked_in" else 200
