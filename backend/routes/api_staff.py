"""The staff side of the JSON API (v1) for the mini-program: inbox, one item, departments, item actions.

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
from backend.models import Item, ItemEvent, ItemForward, StaffRole, StaffUser
from backend.models.item import ITEM_CATEGORY_LABELS, ITEM_STATUS_LABELS
from backend.routes.deputy import HANDLERS, department_link, item_or_404, photo_response

bp = Blueprint("api_staff", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens in headers; a browser's cookie is never accepted here

ACTION_KEYS = ("text", "department_id", "due", "deputy_id", "duplicate_of", "outcome")
# Every staff view: 401 without a valid token; 404 for another role (audited) and for an item out of sight.
STAFF_ERRORS = {401: m.ErrorResponse, 404: m.ErrorResponse}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


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
        "due_at": _iso(item.due_at),
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
            "due_at": _iso(item.due_at),
            "is_overdue": page["is_overdue"],
            "overdue_label": page["overdue_label"],
            "is_paused": item.paused_at is not None,
            "first_answered_at": _iso(item.first_answered_at),
            "resolved_at": _iso(item.resolved_at),
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
                "answered_at": _iso(forward.answered_at),
                "answer": forward.answer,
                "promised_by": forward.promised_by.isoformat() if forward.promised_by else None,
                "revoked_at": _iso(forward.revoked_at),
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
            "due_at": _iso(item.due_at),
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
        "answered_at": _iso(forward.answered_at),
        "returned_at": _iso(forward.returned_at),
        "extension_due_at": _iso(forward.extension_due_at),
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
