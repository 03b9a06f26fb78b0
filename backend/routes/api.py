"""The JSON API (v1) for the mini-program. Errors are JSON ``{"error": {"code", "message", "field"?}}``.

Every view under /api/ is described (``backend.api_schemas.describe``); the description is
served here, at ``GET /api/v1/openapi.json``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, url_for

from backend import api_schemas
from backend.api_schemas import ANYONE, RESIDENT, describe
from backend.api_schemas import models as m
from backend.errors import UserError
from backend.extensions import csrf
from backend.items import timeline
from backend.items.lifecycle import can_follow_up, waiting_question
from backend.items.lookup import find_item_by_phone
from backend.items.operations import Submission, find_item_for_resident, resolve_code_for_form, submit_item
from backend.items.refs import format_ref
from backend.models import Deputy, DeputyStatus, Item, ItemChannel, ItemEvent, Station
from backend.models.deputy import DEPUTY_STATUS_LABELS
from backend.models.item import ITEM_CATEGORY_LABELS
from backend.qr.codes import code_url
from backend.routes.resident import UNKNOWN_BY_KEY
from backend.security import client_address
from backend.stations import topics
from backend.stations.calendar import describe_rule, duty_assignment, next_reception_days, today_in_china
from backend.wechat.identity import current_resident

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # the API takes no cookies; tokens come in headers


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of every JSON endpoint, built from the schemas that validate their requests."""
    return jsonify(api_schemas.document())


def deputy_json(deputy: Deputy) -> dict:
    """A deputy as the mini-program shows them (no phone number)."""
    return {
        "id": deputy.id,
        "name": deputy.name,
        "levels": deputy.level_labels,
        "constituency": deputy.constituency,
        "occupation": deputy.occupation,
        "status": deputy.status.value,
        "status_label": DEPUTY_STATUS_LABELS[deputy.status],
        "photo_url": url_for("resident.deputy_photo", deputy_id=deputy.id, version=deputy.photo_version)
        if deputy.has_photo
        else None,
    }


def station_json(station: Station) -> dict:
    """A station with its reception calendar and serving deputies."""
    today = today_in_china()
    return {
        "id": station.id,
        "name": station.name,
        "address": station.address,
        "contact_phone": station.contact_phone,
        "reception_days": [describe_rule(r) for r in station.reception_rules],
        "next_reception_days": [d.isoformat() for d in next_reception_days(station.reception_rules, today, count=3)],
        "deputies": [deputy_json(d) for d in station.deputies if d.status == DeputyStatus.SERVING],
    }


@bp.get("/codes/<slug>")
@describe(tags=("群众",), responses={200: m.CodeInfo, 404: m.ErrorResponse, 410: m.ErrorResponse})
def get_code(slug: str):
    """What a scanned code leads to: the deputy or the station, and how the form is to be filled."""
    resolved = resolve_code_for_form(slug)
    duty = duty_assignment(resolved.station, today_in_china()) if resolved.routes_to_station else None
    config = current_app.config
    return jsonify(
        code={"slug": resolved.code.slug, "url": code_url(resolved.code.slug)},
        kind="deputy" if resolved.deputy is not None else ("topic" if resolved.topic is not None else "station"),
        deputy=deputy_json(resolved.deputy) if resolved.deputy is not None else None,
        routes_to_station=resolved.routes_to_station,
        station=station_json(resolved.station),
        on_duty={
            "deputy": deputy_json(duty.deputy) if duty and duty.deputy else None,
            "reason": duty.reason,
        }
        if duty
        else None,
        categories=[{"value": k.value, "label": v} for k, v in ITEM_CATEGORY_LABELS.items()],
        limits={
            "body_min_chars": config["ITEM_BODY_MIN_CHARS"],
            "body_max_chars": config["ITEM_BODY_MAX_CHARS"],
            "max_photos": config["ITEM_MAX_PHOTOS"],
            "photo_max_bytes": config["PHOTO_MAX_BYTES"],
        },
        topic=topic_json(resolved.topic) if resolved.topic is not None else None,
    )


def topic_json(topic) -> dict:
    """A topic code's own short form: what it asks, the choices (one to pick, when there are any), until when."""
    return {
        "id": topic.id,
        "kind": topic.kind.value,
        "kind_label": topic.kind.label,
        "title": topic.title,
        "prompt": topic.prompt,
        "choices": list(topic.choices),
        "closes_on": topics.closing_day(topic).isoformat(),
    }


@bp.post("/items")
@describe(
    tags=("群众",),
    json=m.ItemSubmission,
    security=[ANYONE, RESIDENT],  # a resident's token only ties the item to their WeChat ("my items")
    responses={
        200: m.SubmitAnswer,
        201: m.SubmitAnswer,
        401: m.ErrorResponse,
        404: m.ErrorResponse,
        409: m.ErrorResponse,
        410: m.ErrorResponse,
        429: m.ErrorResponse,
    },
)
def create_item():
    """Submit a message: 201 with the reference and key, or 200 with the first item for a repeated client_id.

    409 ``client_id_reused``: the ``client_id`` was used for another message (nothing is written).
    """
    data: m.ItemSubmission = api_schemas.body()
    result = submit_item(
        Submission(
            code=data.code,
            body=data.body,
            category=data.category,
            deputy_choice=data.deputy_id,
            name=data.name,
            phone=data.phone,
            consent=bool(data.consent),
            publish_consent=bool(data.publish_consent),
            client_id=data.client_id,
            channel=ItemChannel.MINIPROGRAM,
            resident=current_resident(),
            address=client_address(),
            topic_choice=data.choice,
        )
    )
    body = {
        "ref": result.ref,
        "ref_display": format_ref(result.ref),
        "key": result.access_key,
        "status": result.status.value,
        "track_url": result.track_url,
    }
    return jsonify(body), (201 if result.created else 200)


@bp.get("/items/<ref>")
@describe(
    tags=("群众",), query=m.ItemLookupQuery, responses={200: m.PublicItem, 404: m.ErrorResponse, 429: m.ErrorResponse}
)
def get_item(ref: str):
    """An item's status and public timeline, for the holder of its key (``?key=``) or of the last four digits of
    the phone number its resident gave (``?phone_last4=``); never the resident's contact details. A wrong key or
    wrong digits answer exactly like an unknown reference (404); guessing is throttled (429), the digits also per
    reference (backend/items/lookup.py). The digits only read: the photo links carry them, never the key."""
    query: m.ItemLookupQuery = api_schemas.args()
    if query.key is None and query.phone_last4 is not None:
        item = find_item_by_phone(ref, query.phone_last4, client_address())
        credential = {"p4": query.phone_last4}
    else:
        item = find_item_for_resident(ref, query.key, client_address())
        credential = {"k": item.access_key} if item else {}
    if item is None:
        raise UserError("unknown_item", UNKNOWN_BY_KEY, 404)
    return jsonify(
        ref=item.ref,
        ref_display=format_ref(item.ref),
        status=item.status.value,
        status_label=timeline.status_label(item),
        is_under_review=item.is_held,
        category=item.category.value,
        category_label=timeline.category_label(item),
        body=item.body,
        created_at=item.created_at.isoformat(),
        deputy={"id": item.deputy.id, "name": item.deputy.name} if item.deputy else None,
        station={"id": item.station.id, "name": item.station.name},
        photos=[
            url_for("resident.item_photo", ref=item.ref, position=p.position, **credential)
            for p in timeline.message_photos(item)
        ],
        timeline=[public_event_json(item, e, credential) for e in timeline.resident_events(item)],
        **answer_back_json(item),
    )


def public_event_json(item: Item, event: ItemEvent, credential: dict[str, str] | None = None) -> dict:
    """A step of the item as its key's holder reads it, with the photos the resident sent with it (their links
    carry ``credential``: the key unless the reader came by the phone's digits)."""
    credential = credential if credential is not None else {"k": item.access_key}
    return {
        "kind": event.kind.value,
        "label": timeline.event_label(event),
        "body": timeline.resident_body(event) or "",
        "at": event.created_at.isoformat(),
        "photos": [
            url_for("resident.item_photo", ref=item.ref, position=p, **credential)
            for p in timeline.event_photo_positions(event)
        ],
    }


def answer_back_json(item: Item) -> dict:
    """What the resident may write back now: the deputy's open question (``waiting``) and whether a 追问 is possible."""
    question = waiting_question(item)
    return {
        "waiting": {"question": question.body, "since": question.created_at.isoformat()} if question else None,
        "can_follow_up": can_follow_up(item),
    }
