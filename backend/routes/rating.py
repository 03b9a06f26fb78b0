"""The resident's voice after writing: the verdict (满意度测评), the reply to a request for more
(补充) and the 追问, on the tracking page and through the JSON API.

Only the holder of the item's access key may rate, and never from a browser or an app that
carries a staff credential: a request with a staff session cookie or a staff bearer token
(live, expired or revoked) is refused with 403 before the key is even looked at, audited, and
nothing else is written. No staff page or API action records a rating either (被满意:
``lifecycle.rate_item`` takes no staff actor, and only this module calls it), and an item a
deputy entered in person cannot be rated until the resident claimed it (``items.claims``).
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, redirect, request, url_for

from backend import api_schemas, database
from backend.api_schemas import describe
from backend.api_schemas import models as m
from backend.audit import record_audit
from backend.auth.sessions import staff_in_request
from backend.errors import UserError
from backend.extensions import csrf, db
from backend.items import photos as photo_intake
from backend.items import timeline
from backend.items.late_photos import attach_message_photo, check_may_attach
from backend.items.lifecycle import rate_item, resident_action
from backend.items.refs import format_ref
from backend.models import Item, Satisfaction
from backend.routes import resident
from backend.routes.api import answer_back_json, public_event_json

bp = Blueprint("rating", __name__)

RATING_FIELDS = ("satisfaction", "solved", "comment")
# What the key holder's writes (rating, reply, 追问, photo, erasure) answer besides their success: 403 for a staff
# credential (``refuse_staff``), 404 for an unknown reference or key, 409 when the item's state forbids it, 429
# when throttled.
KEY_HOLDER_ERRORS = {403: m.ErrorResponse, 404: m.ErrorResponse, 409: m.ErrorResponse, 429: m.ErrorResponse}


STAFF_REFUSED_MESSAGE = (
    "工作人员账号不能评价。满意度测评只能由群众本人在自己的手机上进行，工作人员不能代为评价；"
    "如果这是群众本人的手机，请先退出工作人员登录。"
)


ANSWER_STAFF_REFUSED_MESSAGE = (
    "工作人员账号不能代群众补充或追问，只能由群众本人在自己的手机上填写；如果这是群众本人的手机，请先退出工作人员登录。"
)


def refuse_staff(
    ref: str,
    *,
    audit_action: str = "rating_refused_staff",
    code: str = "staff_cannot_rate",
    message: str = STAFF_REFUSED_MESSAGE,
) -> None:
    """403 for a request that carries any staff credential (audited, kept through the 403: someone tried to act as the
    resident). Rating by default; the resident's withdrawal and erasure pass their own action, code and message."""
    user = staff_in_request()
    if user is None:
        return
    record_audit(
        audit_action,
        user=user,
        object_type="item_ref",
        object_id=ref[:64],
        data={"path": request.path[:500], "role": user.role.value},
        keep=True,
    )
    raise UserError(code, message, 403)


def track_page_with_error(form: str, item: Item, exc: UserError, message: str, values: dict):
    """The tracking page as it is, with one of its forms (``g.<form>``) showing the error and what the resident
    typed, answered with the error's status."""
    setattr(g, form, {"error": message, "field": exc.field, "values": values})
    try:
        response = resident.track(item.ref)
    finally:
        g.pop(form, None)
    response.status_code = exc.status
    return response


@bp.post("/t/<ref>/rating")
def rate_page(ref: str):
    """The rating form of the tracking page (CSRF-protected); back to the page, or the page again with the error."""
    refuse_staff(ref)
    item = resident.item_for_key(ref, request.args.get("k"))
    values = {name: request.form.get(name, "") for name in RATING_FIELDS}
    try:
        rate_item(item, values["satisfaction"], values["solved"] or None, values["comment"])
    except UserError as exc:
        if exc.status not in (400, 409):
            raise
        db.session.rollback()
        return track_page_with_error("rating_form", item, exc, exc.message, values)
    return redirect(url_for("resident.track", ref=item.ref, k=item.access_key, _anchor="timeline"), 303)


@bp.post("/api/v1/items/<ref>/rating")
@csrf.exempt
@describe(
    tags=("群众",),
    query=m.KeyQuery,
    json=m.RatingRequest,
    responses={200: m.RatingAnswer, **KEY_HOLDER_ERRORS},  # 403 staff_cannot_rate
)
def rate_api(ref: str):
    """``?key=`` and ``{"satisfaction": "satisfied"|"basically"|"unsatisfied", "solved": bool, "comment"}`` → 200.

    Answers the item's status after the verdict ("accepted" again when not satisfied).
    """
    refuse_staff(ref)
    item = resident.item_for_key(ref, request.args.get("key"), resident.UNKNOWN_BY_KEY)
    data: m.RatingRequest = api_schemas.body()
    event = rate_item(item, data.satisfaction, data.solved, data.comment or "")
    return jsonify(
        ref=item.ref,
        ref_display=format_ref(item.ref),
        status=item.status.value,
        status_label=timeline.status_label(item),
        satisfaction=event.data["satisfaction"],
        solved=event.data["solved"],
        reopened=event.data["satisfaction"] == Satisfaction.UNSATISFIED.value,
    )


# --- the resident answers back: 补充 and 追问 ---------------------------------------------------

ANSWER_KINDS = {"reply": "resident_reply", "follow_up": "follow_up"}


def _refuse_staff_answer(ref: str) -> None:
    refuse_staff(
        ref, audit_action="answer_refused_staff", code="staff_cannot_answer", message=ANSWER_STAFF_REFUSED_MESSAGE
    )


def _key_holders_item(ref: str, key: object, message: str) -> Item:
    """The item for its key's holder, read before the photos are decoded (no write lock held meanwhile)."""
    with database.reading():
        return resident.item_for_key(ref, key, message)


def _decoded_photos(files) -> list:
    """The uploaded photos checked and re-encoded (the submission form's rules), outside any transaction."""
    if len(files) > current_app.config["ITEM_MAX_PHOTOS"]:
        raise photo_intake.too_many_photos()
    return [photo_intake.process_photo(f.read()) for f in files]


@bp.post("/t/<ref>/answer")
def answer_page(ref: str):
    """The tracking page's 补充 form (text and photos, while the deputy waits) or 追问 form (``kind``), CSRF-protected;
    back to the page, or the page again with the error and what the resident typed."""
    _refuse_staff_answer(ref)
    item = _key_holders_item(ref, request.args.get("k"), resident.UNKNOWN_BY_LINK)
    kind = request.form.get("kind", "")
    values = {"kind": kind, "text": request.form.get("text", "")}
    files = [f for f in request.files.getlist("photos") if f and f.filename]
    try:
        if kind not in ANSWER_KINDS:
            raise UserError("invalid_kind", "请通过页面上的表单补充或追问。", 400, field="kind")
        resident_action(item, ANSWER_KINDS[kind], values["text"], _decoded_photos(files))
    except UserError as exc:
        if exc.status not in (400, 409):
            raise
        db.session.rollback()
        error = exc.message
        if files and exc.field != "photos":
            error += "出于安全原因，已选的照片需要重新选择。"
        return track_page_with_error("answer_form", item, exc, error, values)
    return redirect(url_for("resident.track", ref=item.ref, k=item.access_key, sent=kind, _anchor="timeline"), 303)


def _answer_api(ref: str, action: str):
    _refuse_staff_answer(ref)
    item = resident.item_for_key(ref, request.args.get("key"), resident.UNKNOWN_BY_KEY)
    data: m.ResidentTextRequest = api_schemas.body()
    event = resident_action(item, action, data.text)
    return jsonify(
        ref=item.ref,
        ref_display=format_ref(item.ref),
        status=item.status.value,
        status_label=timeline.status_label(item),
        event=public_event_json(item, event),
        **answer_back_json(item),
    ), 201


_ANSWER_RESPONSES = {201: m.ResidentAnswerBack, **KEY_HOLDER_ERRORS}  # 403 staff_cannot_answer


@bp.post("/api/v1/items/<ref>/replies")
@csrf.exempt
@describe(tags=("群众",), query=m.KeyQuery, json=m.ResidentTextRequest, responses=_ANSWER_RESPONSES)
def reply_api(ref: str):
    """``?key=`` and ``{"text"}`` → 201: the resident answers the deputy's request for more (等待群众补充).

    Only while the item waits for the resident (``waiting`` in ``GET /api/v1/items/{ref}``; else 409
    ``not_waiting``). The item's clock restarts (the paused time does not count toward the deadline)
    and the deputy is told. Photos go through the tracking page's form.
    """
    return _answer_api(ref, "resident_reply")


@bp.post("/api/v1/items/<ref>/followups")
@csrf.exempt
@describe(tags=("群众",), query=m.KeyQuery, json=m.ResidentTextRequest, responses=_ANSWER_RESPONSES)
def follow_up_api(ref: str):
    """``?key=`` and ``{"text"}`` → 201: a 追问 on an open item, one per item a day (China time).

    409 ``not_open`` on a resolved, declined or duplicate item, ``waiting_for_you`` while the deputy
    waits for a reply (answer with ``/replies``), ``follow_up_limit`` for a second one the same day.
    The deputy is told.
    """
    return _answer_api(ref, "follow_up")


# --- the mini-program's photos, one a request, just after the message ----------------------------------


@bp.post("/api/v1/items/<ref>/photos")
@csrf.exempt
@describe(
    tags=("群众",),
    query=m.KeyQuery,
    responses={
        200: m.MessagePhotoAnswer,
        201: m.MessagePhotoAnswer,
        **KEY_HOLDER_ERRORS,
        413: m.ErrorResponse,
        503: m.ErrorResponse,
    },
)
def message_photo_api(ref: str):
    """``?key=`` and one JPEG or PNG as the multipart field ``photo`` → 201: a photo of the message, as
    ``wx.uploadFile`` sends it (one file a request) right after ``POST /api/v1/items``.

    The H5 form's checks and re-encoding (at most 5 MB, JPEG or PNG, EXIF removed, long side at most 2,048 px);
    409 ``photo_too_late`` more than ``PHOTO_ATTACH_MINUTES`` after the message, ``too_many_photos`` past the
    limit. The same photo sent again answers 200 with the one already taken.
    """
    _refuse_staff_answer(ref)
    item = _key_holders_item(ref, request.args.get("key"), resident.UNKNOWN_BY_KEY)
    check_may_attach(item)
    upload = request.files.get("photo")
    if upload is None:
        raise UserError("photo_missing", "请选择一张照片上传（表单字段 photo）。", 400, field="photo")
    processed = photo_intake.process_photo(upload.read())  # outside any transaction: decoding is slow
    photo, created = attach_message_photo(item, processed)
    body = {
        "ref": item.ref,
        "position": photo.position,
        "photos": len(timeline.message_photos(item)),
        "url": url_for("resident.item_photo", ref=item.ref, position=photo.position, k=item.access_key),
    }
    return jsonify(body), (201 if created else 200)
