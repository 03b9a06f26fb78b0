"""The staff side of the JSON API (v1) for the mini-program: inbox, one item, departments, item actions, and a
deputy's own 签到 state and 联系群众 (走访, 座谈, 电话).

Bearer tokens only (``api_auth_required``), no cookies, so no CSRF. Errors are JSON
``{"error": {"code", "message", "field"?}}``: 400 with the field, 403 for an action the
role may not take, 404 for an item the user may not see (the same body as an unknown
reference, and an audit row), 409 ``transition_not_allowed`` with the reason.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from backend import api_schemas, pagination
from backend.access import can_see_item
from backend.api_schemas import STAFF, describe
from backend.api_schemas import models as m
from backend.auth.sessions import api_auth_required, current_staff
from backend.errors import UserError
from backend.extensions import csrf, db
from backend.items import inbox as inbox_query
from backend.items.contact import revealed_contact
from backend.items.lifecycle import (
    decide_extension,
    department_answer,
    department_pass_on,
    department_request_extension,
    department_return,
    forward_link_token,
    live_forward_of_department,
    perform_action,
)
from backend.items.presenters import departments_for_region, item_context, staff_event_label, user_region
from backend.items.refs import format_ref
from backend.items.validation import clean_id, parse_id
from backend.models import ContactKind, Item, ItemEvent, ItemForward, StaffRole, StaffUser, Station
from backend.models.item import ITEM_CATEGORY_LABELS, ITEM_STATUS_LABELS
from backend.routes.deputy import HANDLERS, department_link, item_or_404, photo_response
from backend.stations import contacts, presence
from backend.stations.calendar import describe_rule, today_in_china
from backend.timefmt import iso_or_none

bp = Blueprint("api_staff", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens in headers; a browser's cookie is never accepted here

ACTION_KEYS = ("text", "department_id", "due", "deputy_id", "duplicate_of", "outcome")
# Every staff view: 401 without a valid token; 404 for another role (audited) and for an item out of sight.
STAFF_ERRORS = {401: m.ErrorResponse, 404: m.ErrorResponse}
CONTACTS_PER_ANSWER = 20  # GET /contacts without ?limit=: the latest, as the contacts page lists them


def inbox_row_json(row: inbox_query.InboxRow, now, user: StaffUser | None = None) -> dict:
    """One inbox line: reference, state, category, first line of the message, age, due date."""
    item: Item = row.item
    return {
        "ref": item.ref,
        "ref_display": format_ref(item.ref),
        "group": row.group,
        "status": item.status.value,
        "status_label": ITEM_STATUS_LABELS[item.status],
        "is_overdue": row.is_overdue,
        "mark": row.mark,
        "category": item.category.value,
        "category_label": ITEM_CATEGORY_LABELS[item.category],
        "first_line": inbox_query.row_text(item, user),
        "created_at": item.created_at.isoformat(),
        "age": inbox_query.age_label(item.created_at, now),
        "due_at": iso_or_none(item.due_at),
        "reopen_count": item.reopen_count,
        "deputy": {"id": item.deputy.id, "name": item.deputy.name} if item.deputy else None,
    }


@bp.get("/inbox")
@api_auth_required(*HANDLERS, StaffRole.DEPARTMENT)
@describe(tags=("员工",), security=STAFF, query=m.InboxQuery, responses={200: m.InboxAnswer, **STAFF_ERRORS})
def inbox():
    """``?state=todo|overdue|reopened|new|in_progress|resolved|closed&q=&page=&per_page=`` → counts and one page."""
    user = current_staff()
    query: m.InboxQuery = api_schemas.args()
    page = inbox_query.inbox_page(
        user,
        state=query.state or "todo",
        query=query.q or "",
        page=query.page or 1,
        per_page=query.per_page or pagination.DEFAULT_PER_PAGE,
    )
    return jsonify(
        counts=page.counts,
        state=page.state,
        query=page.query,
        page=page.page,
        per_page=page.per_page,
        pages=page.pages,
        total=page.total,
        has_next=page.has_next,
        items=[inbox_row_json(row, page.now, user) for row in page.rows],
    )


def item_detail_json(item: Item, user: StaffUser) -> dict:
    """Everything the deputy's phone shows of one item — what the web item page shows (``item_context``) —
    as JSON: the message, the contact (masked), photos, forwards, the whole timeline (internal steps
    marked), and the actions ``user`` may take now with what they need."""
    page = item_context(item, user)
    return {
        "item": {
            "ref": item.ref,
            "ref_display": page["ref_display"],
            "status": item.status.value,
            "status_label": page["status_label"],
            "category": item.category.value,
            "category_label": page["category_label"],
            "channel": item.channel.value,
            "channel_label": page["channel_label"],
            "body": item.body,
            "created_at": item.created_at.isoformat(),
            "due_at": iso_or_none(item.due_at),
            "is_overdue": page["is_overdue"],
            "overdue_label": page["overdue_label"],
            "is_paused": item.paused_at is not None,
            "first_answered_at": iso_or_none(item.first_answered_at),
            "resolved_at": iso_or_none(item.resolved_at),
            "outcome": item.outcome.value if item.outcome else None,
            "outcome_label": page["outcome_labels"].get(item.outcome, "") if item.outcome else "",
            "outcome_reason": item.outcome_reason,
            "satisfaction": item.satisfaction.value if item.satisfaction else None,
            "satisfaction_label": page["satisfaction_label"],
            "reopen_count": item.reopen_count,
            "reopen_reason": page["reopen_reason"],
            "needs_review": item.needs_review,
            "review_reason": item.review_reason,
            "deputy": {"id": item.deputy.id, "name": item.deputy.name} if item.deputy else None,
            "station": {"id": item.station.id, "name": item.station.name},
        },
        "contact": {
            **page["masked"],
            "has_contact": item.has_contact,
            "reveal_url": url_for("api_staff.reveal_contact", ref=item.ref),
        },
        "photos": [
            {
                "position": photo.position,
                "width": photo.width,
                "height": photo.height,
                "url": url_for("api_staff.item_photo", ref=item.ref, position=photo.position),
            }
            for photo in item.photos
        ],
        "forwards": [
            {
                "id": forward.id,
                "department": forward.department.name,
                "instructions": forward.instructions,
                "created_at": forward.created_at.isoformat(),
                "due_at": forward.due_at.isoformat(),
                "answered_at": iso_or_none(forward.answered_at),
                "answer": forward.answer,
                "promised_by": forward.promised_by.isoformat() if forward.promised_by else None,
                "revoked_at": iso_or_none(forward.revoked_at),
            }
            for forward in page["forwards"]
        ],
        "timeline": [
            event_json(row["event"]) | {"actor": row["actor"], "detail": row["detail"]} for row in page["timeline"]
        ],
        "actions": [{"action": name, "label": page["action_labels"][name]} for name in page["allowed"]],
        "departments": [department_json(d) for d in page["departments"]],  # those it may be forwarded to
        "station_deputies": [{"id": d.id, "name": d.name} for d in page["station_deputies"]],
        "templates": [{"id": t.id, "title": t.title, "body": t.body} for t in page["templates"]],
    }


def department_json(department) -> dict:
    """A department items may be forwarded to."""
    return {
        "id": department.id,
        "name": department.name,
        "region": department.region.name,
        "region_code": department.region.code,
    }


@bp.get("/inbox/<ref>")
@api_auth_required(*HANDLERS)
@describe(tags=("员工",), security=STAFF, responses={200: m.StaffItemAnswer, **STAFF_ERRORS})
def inbox_item(ref: str):
    """One item of the user's inbox in full (``item_detail_json``); 404 like an unknown reference for anyone else's."""
    user = current_staff()
    return jsonify(item_detail_json(item_or_404(user, ref), user))


@bp.get("/inbox/<ref>/photos/<int:position>.jpg")
@api_auth_required(*HANDLERS)
@describe(tags=("员工",), security=STAFF, responses={200: None, **STAFF_ERRORS})  # a JPEG (api_schemas.document)
def item_photo(ref: str, position: int):
    """A photo of the item, for the mini-program's bearer token; a sandboxed JPEG, never cached."""
    return photo_response(item_or_404(current_staff(), ref), position)


@bp.post("/inbox/<ref>/reveal")
@api_auth_required(*HANDLERS)
@describe(tags=("员工",), security=STAFF, responses={200: m.RevealedContact, **STAFF_ERRORS})
def reveal_contact(ref: str):
    """The resident's full name and number (``{"name", "phone"}``), after an audit row records who saw them."""
    user = current_staff()
    return jsonify(revealed_contact(item_or_404(user, ref), user))


@bp.get("/departments")
@api_auth_required(*HANDLERS)
@describe(
    tags=("员工",), security=STAFF, query=m.DepartmentsQuery, responses={200: m.DepartmentsAnswer, **STAFF_ERRORS}
)
def departments():
    """Departments items may be forwarded to: of ``?ref=``'s region and above, or of the user's own region."""
    user = current_staff()
    ref = api_schemas.args().ref
    region = item_or_404(user, ref).station.region if ref else user_region(user)
    return jsonify(departments=[department_json(d) for d in departments_for_region(region)])


def event_json(event: ItemEvent) -> dict:
    """An event as staff see it (``is_public`` says whether the resident sees it too)."""
    return {
        "id": event.id,
        "kind": event.kind.value,
        "label": staff_event_label(event),
        "is_public": event.is_public,
        "body": event.body,
        "created_at": event.created_at.isoformat(),
    }


@bp.post("/items/<ref>/actions")
@api_auth_required(*HANDLERS)
@describe(
    tags=("员工",),
    security=STAFF,
    json=m.ActionRequest,
    responses={
        200: m.ActionAnswer,
        403: m.ErrorResponse,
        409: m.ErrorResponse,
        **STAFF_ERRORS,
    },
)
def item_action(ref: str):
    """``{"action", "text", "department_id", "due", "deputy_id", "duplicate_of", "outcome"}`` → the new status and the event.

    A forward also answers ``department_link``, the department's no-account link, once.
    There is no action by which staff rate an item: ``"rate"`` is an unknown action (400).
    """
    user = current_staff()
    item = item_or_404(user, ref)
    data: m.ActionRequest = api_schemas.body()
    arguments = {key: getattr(data, key) for key in ACTION_KEYS}
    arguments["text"] = arguments["text"] or ""
    event = perform_action(item, user, data.action, **arguments)
    token = forward_link_token(event)
    body = {
        "item": {
            "ref": item.ref,
            "ref_display": format_ref(item.ref),
            "status": item.status.value,
            "status_label": ITEM_STATUS_LABELS[item.status],
            "due_at": iso_or_none(item.due_at),
            "visible_to_you": can_see_item(user, item),  # false after a deputy reassigns it away
        },
        "event": event_json(event),
    }
    if token is not None:
        body["department_link"] = department_link(token)
    return jsonify(body)


# --- departments in the chain ------------------------------------------------------------------


def forward_json(forward: ItemForward) -> dict:
    """A forward's state after a step: due date, final answer, 退回, a pending request for more time."""
    return {
        "id": forward.id,
        "department": forward.department.name,
        "due_at": forward.due_at.isoformat(),
        "answered_at": iso_or_none(forward.answered_at),
        "returned_at": iso_or_none(forward.returned_at),
        "extension_due_at": iso_or_none(forward.extension_due_at),
    }


def _forward_answer(item: Item, forward: ItemForward):
    return jsonify(
        ref=item.ref,
        status=item.status.value,
        status_label=ITEM_STATUS_LABELS[item.status],
        forward=forward_json(forward),
    )


@bp.post("/inbox/<ref>/department")
@api_auth_required(StaffRole.DEPARTMENT)
@describe(
    tags=("员工",),
    security=STAFF,
    json=m.DepartmentActionRequest,
    responses={200: m.DepartmentActionAnswer, 409: m.ErrorResponse, **STAFF_ERRORS},
)
def department_action(ref: str):
    """A department's account acts on an item forwarded to it: ``{"action": "progress"|"answer"|"extension"|"return"|
    "pass_on", "text", "promised_by", "due", "reason", "department_id"}`` — the same steps as on its link page
    (``/d/<token>``).

    404 for an item not (or no longer) in the department's hands; 409 after its final answer or its 退回.
    """
    user = current_staff()
    item = item_or_404(user, ref)
    forward = live_forward_of_department(item, user.department_id)
    data: m.DepartmentActionRequest = api_schemas.body()
    if data.action in ("progress", "answer"):
        department_answer(forward, data.text or "", data.promised_by or None, final=data.action == "answer")
    elif data.action == "extension":
        department_request_extension(forward, data.due, data.text)
    elif data.action == "return":
        department_return(forward, data.reason)
    elif data.action == "pass_on":
        department_pass_on(forward, data.department_id, data.due, data.text)
    else:
        raise UserError("invalid_action", "不支持的操作。", 400, field="action")
    return _forward_answer(item, forward)


@bp.post("/items/<ref>/forwards/<int:forward_id>/extension")
@api_auth_required(StaffRole.DEPUTY, StaffRole.STATION_ADMIN)
@describe(
    tags=("员工",),
    security=STAFF,
    json=m.ExtensionDecisionRequest,
    responses={200: m.DepartmentActionAnswer, 409: m.ErrorResponse, **STAFF_ERRORS},
)
def extension_decision(ref: str, forward_id: int):
    """``{"decision": "grant"|"refuse", "text"}``: the deputy's answer to a department's request for more time."""
    user = current_staff()
    item = item_or_404(user, ref)
    forward = db.session.get(ItemForward, forward_id)
    if forward is None or forward.item_id != item.id:
        raise UserError("unknown_forward", "找不到该交办记录。", 404)
    data: m.ExtensionDecisionRequest = api_schemas.body()
    decide_extension(forward, user, data.decision, data.text or "")
    return _forward_answer(item, forward)


# --- the deputy's own: 进站签到 state and 联系群众 ---------------------------------------------------------


def _own_deputy_only(user: StaffUser, deputy_id: object, field: str) -> None:
    """A deputy's token acts for that deputy only: naming another deputy is refused (403), never quietly ignored."""
    if deputy_id in (None, ""):
        return
    if parse_id(deputy_id) != user.deputy_id:
        raise UserError("not_yourself", "代表只能查看和记录自己的联系群众。", 403, field=field)


@bp.get("/presence")
@api_auth_required(StaffRole.DEPUTY)
@describe(
    tags=("员工",),
    security=STAFF,
    query=m.PresenceStateQuery,
    responses={200: m.PresenceState, 409: m.ErrorResponse, **STAFF_ERRORS},
)
def presence_state():
    """``?station_id=`` → the deputy's 签到 screen at that station (their own): the open visit, whether today is their
    reception day, and which button to show (``next_action``: ``in`` 签到 or ``out`` 签退; POST /presence acts).

    404 ``not_your_station`` for a station that is not the deputy's own, as for an unknown one (a resident's
    screen is shown instead); 409 for a deputy no longer serving.
    """
    user = current_staff()
    query: m.PresenceStateQuery = api_schemas.args()
    station_id = clean_id(query.station_id, "station_id", "请指定联络站。")
    deputy_ = user.deputy
    station = db.session.get(Station, station_id)
    if deputy_ is None or station is None or not presence.may_record(user, deputy_, station):
        raise UserError("not_your_station", "这不是您所在的联络站。", 404)
    if not deputy_.is_serving:
        raise UserError("deputy_not_serving", "您已不在任，不能签到。", 409)
    visit = presence.open_visit(deputy_)
    today = today_in_china()
    return jsonify(
        station={"id": station.id, "name": station.name},
        deputy={"id": deputy_.id, "name": deputy_.name},
        visit=presence.visit_json(visit) if visit else None,
        minutes_in=presence.visit_minutes(visit) if visit else None,
        is_reception_day=presence.is_reception_day_of(deputy_, station, today),
        reception_days=[describe_rule(rule) for rule in presence.reception_rules_of(deputy_, station)],
        next_action="out" if visit else "in",
    )


@bp.get("/contacts")
@api_auth_required(StaffRole.DEPUTY)
@describe(
    tags=("员工",),
    security=STAFF,
    query=m.ContactsQuery,
    responses={200: m.ContactsAnswer, 403: m.ErrorResponse, **STAFF_ERRORS},
)
def contact_list():
    """The deputy's own 走访, 座谈 and phone calls, newest first (``?limit=``, default 20), with the kinds to choose.

    A deputy's token lists only that deputy's contacts: ``?deputy=`` naming another deputy is refused (403).
    """
    user = current_staff()
    query: m.ContactsQuery = api_schemas.args()
    _own_deputy_only(user, query.deputy, "deputy")
    logs = contacts.recent_contacts(user, limit=query.limit or CONTACTS_PER_ANSWER)
    return jsonify(
        contacts=[contacts.contact_json(log) for log in logs],
        kinds=[{"value": kind.value, "label": kind.label} for kind in ContactKind],
    )


@bp.post("/contacts")
@api_auth_required(StaffRole.DEPUTY)
@describe(
    tags=("员工",),
    security=STAFF,
    json=m.ContactRequest,
    responses={201: m.ContactAnswer, 403: m.ErrorResponse, 409: m.ErrorResponse, **STAFF_ERRORS},
)
def contact_create():
    """``{"kind", "held_on", "place", "people", "summary"}`` → 201 and the contact, logged for the token's deputy.

    Each bad input is a 400 naming its field, nothing written: no or an unknown ``kind``, a ``held_on`` after
    today or more than 92 days back, ``people`` outside 1–10000, an empty ``summary``. ``deputy_id`` naming another
    deputy: 403 ``not_yourself``; a deputy no longer serving: 409.
    """
    user = current_staff()
    data: m.ContactRequest = api_schemas.body()
    _own_deputy_only(user, data.deputy_id, "deputy_id")
    log = contacts.log_contact(
        user,
        kind=data.kind,
        held_on=data.held_on if data.held_on is not None else today_in_china().isoformat(),
        place=data.place or "",
        people=data.people,
        summary=data.summary,
    )
    return jsonify(contact=contacts.contact_json(log), message="已记录这次联系群众。"), 201
