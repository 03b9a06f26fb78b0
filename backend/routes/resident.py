"""Pages a resident sees: the form behind a code, the confirmation, the tracking page."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from backend import database
from backend.auth.sessions import current_staff
from backend.downloads import jpeg_response
from backend.errors import FieldErrors, UserError
from backend.extensions import db
from backend.items import timeline
from backend.items.lifecycle import can_follow_up, waiting_question
from backend.items.lookup import clean_phone_last4, find_item_by_phone
from backend.items.operations import DUTY_CHOICE, Submission, find_item_for_resident, station_closed, submit_item
from backend.items.photo_store import read_deputy_photo, read_photo
from backend.items.refs import format_ref, tracking_url
from backend.models import Deputy, DeputyStatus, Item, ItemPhoto, PresenceSource, StaffRole, utcnow
from backend.models.deputy import DEPUTY_STATUS_LABELS
from backend.models.item import ITEM_CATEGORY_LABELS
from backend.outbox.notifications import queue_received_after_subscribing
from backend.qr import scans
from backend.qr.codes import ResolvedCode, resolve_slug
from backend.routes.presence import presence_page
from backend.security import CONTENT_SECURITY_POLICY, client_address
from backend.stations import presence, topics
from backend.stations.calendar import describe_rule, duty_assignment, next_reception_days, today_in_china
from backend.wechat import identity as wechat_identity
from backend.wechat import subscriptions
from backend.wechat.jssdk import script_origin

bp = Blueprint("resident", __name__)

# A wrong key answers exactly like an unknown reference; the sentence says where the key came from.
UNKNOWN_BY_LINK = "找不到该留言。请核对编号和查询链接是否完整。"  # a page's ``?k=``, from the tracking link
UNKNOWN_BY_KEY = "找不到该留言，请核对编号和查询码。"  # the API's ``?key=``, which the mini-program keeps


def item_for_key(ref: str, key: object, message: str = UNKNOWN_BY_LINK) -> Item:
    """The item for the holder of its access key, or 404 with ``message`` (guessing is throttled per address)."""
    item = find_item_for_resident(ref, key, client_address())
    if item is None:
        raise UserError("unknown_item", message, 404)
    return item


FORM_FIELDS = ("body", "category", "deputy_id", "name", "phone", "consent", "publish_consent", "client_id", "choice")


@bp.get("/")
def index():
    """The landing page: find a deputy, or look an item up."""
    return render_template("index.html")


def _form_context(resolved: ResolvedCode) -> dict:
    station = resolved.station
    today = today_in_china()
    serving = [d for d in station.deputies if d.status == DeputyStatus.SERVING]
    return {
        "resolved": resolved,
        "deputy": resolved.deputy,
        "station": station,
        "status_label": DEPUTY_STATUS_LABELS.get(resolved.deputy.status, "") if resolved.deputy else "",
        "station_deputies": serving,
        "duty": duty_assignment(station, today) if resolved.routes_to_station else None,
        "rules": [describe_rule(r) for r in station.reception_rules],
        "next_days": next_reception_days(station.reception_rules, today, count=3),
        "categories": list(ITEM_CATEGORY_LABELS.items()),
        "limits": current_app.config,
        "duty_choice": DUTY_CHOICE,
        "topic": resolved.topic,
        "topic_closes_on": topics.closing_day(resolved.topic) if resolved.topic is not None else None,
    }


def _resolve_or_page(slug: str) -> ResolvedCode:
    resolved = resolve_slug(slug)
    if resolved is None:
        raise UserError("unknown_code", "找不到这个二维码，请确认扫描的是码上联海报上的二维码。", 404)
    if not resolved.station.is_active:
        raise station_closed()
    return resolved


def _topic_closed_page(resolved: ResolvedCode):
    """A topic past its closing day: a page saying so (never a form), with the way to the station's deputies."""
    topic = resolved.topic
    page = render_template(
        "topic_closed.html", topic=topic, station=resolved.station, closed_on=topics.closing_day(topic)
    )
    return page, 410


@bp.get("/c/<slug>")
def code_form(slug: str):
    """What a scanned code opens: the deputy's (or station's) card and the message form."""
    resolved = _resolve_or_page(slug)
    if resolved.is_retired:
        return render_template("code_replaced.html", resolved=resolved), 410
    if resolved.topic is not None and resolved.topic.is_closed(utcnow()):
        return _topic_closed_page(resolved)
    presence_offer = _presence_offer(resolved)
    if presence_offer is not None:
        return presence_offer
    oauth = wechat_identity.h5_oauth_redirect(request.path)  # WeChat's browser: silent OAuth once, never demanded
    if oauth is not None:
        return oauth
    with database.writing():  # the scan count: a write of a GET
        scans.count_scan(resolved.code.id)
    # Never stored (backend/security.py): going back to the form fetches it again, with a fresh client_id.
    values = {"client_id": new_client_id(), "deputy_id": DUTY_CHOICE, "category": "", "choice": ""}
    return render_template("form.html", values=values, errors={}, **_form_context(resolved))


def _presence_offer(resolved: ResolvedCode):
    """The 签到/签退 page instead of the form, for a deputy of this station scanning its station code while
    logged in on their phone; None for everyone else (residents, other staff, a deputy's own code)."""
    if (
        resolved.code.station_id is None
        or resolved.topic is not None  # a topic's code asks its question of everyone, deputies included
        or "sid" not in session
        or request.args.get("as") == "resident"
    ):
        return None
    user = current_staff()
    if user is None or user.role != StaffRole.DEPUTY or user.deputy is None:
        return None
    deputy = user.deputy
    if not presence.may_record(user, deputy, resolved.station) or not deputy.is_serving:
        return None
    return presence_page(user, source=PresenceSource.SCAN, slug=resolved.code.slug)


def new_client_id() -> str:
    """A fresh id for one message the form will send: a repeated submit of it stores one item."""
    return uuid.uuid4().hex


@bp.post("/c/<slug>")
def submit_form(slug: str):
    """Receive the form: store the item and show the confirmation, or show the form again with the errors."""
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise UserError("unsupported_media_type", "请通过页面上的表单提交留言。", 415)
    with database.reading():  # the write transaction begins after the photos are decoded (submit_item)
        resolved = _resolve_or_page(slug)
    if resolved.is_retired:
        return render_template("code_replaced.html", resolved=resolved), 410
    if resolved.topic is not None and resolved.topic.is_closed(utcnow()):
        return _topic_closed_page(resolved)
    values = {name: request.form.get(name, "") for name in FORM_FIELDS}
    files = [f for f in request.files.getlist("photos") if f and f.filename]
    try:
        result = submit_item(
            Submission(
                code=slug,
                body=values["body"],
                category=values["category"],
                deputy_choice=values["deputy_id"],
                name=values["name"],
                phone=values["phone"],
                consent=values["consent"],
                publish_consent=values["publish_consent"],
                client_id=values["client_id"],
                photos=[f.read() for f in files],
                resident=wechat_identity.session_resident(),
                address=client_address(),
                topic_choice=values["choice"],
            )
        )
    except UserError as exc:
        if exc.code == "topic_closed":  # closed between the form and the tap
            db.session.rollback()
            return _topic_closed_page(resolved)
        if exc.status not in (400, 409):
            raise
        db.session.rollback()
        errors = dict(exc.fields) if isinstance(exc, FieldErrors) else {exc.field or "form": exc.message}
        if exc.code == "client_id_reused":  # another message under this form's id: this one gets its own
            values["client_id"] = new_client_id()
            errors = {"form": exc.message}
        # A file input cannot be filled again by the server: without the page's script the photos are
        # chosen again; with it (form.js) they never left the page and go again with the next tap.
        photos_dropped = bool(files) and "photos" not in errors
        context = _form_context(resolved)
        page = render_template("form.html", values=values, errors=errors, photos_dropped=photos_dropped, **context)
        return page, exc.status
    return redirect(url_for("resident.track", ref=result.ref, k=result.access_key, new=1), code=303)


@bp.get("/t")
def lookup():
    """Look an item up (查询) by reference number and access key, or by reference and the phone's last four digits."""
    ref = request.args.get("ref", "")
    key = request.args.get("k", "")
    typed_last4 = request.args.get("p4", "")
    if not ref and not key and not typed_last4:
        return render_template("lookup.html", error=None, ref="")
    if typed_last4 and not key:
        last4 = clean_phone_last4(typed_last4)
        if last4 is None:  # not a guess: nothing counted, nothing looked up
            error = "请填写您留言时所留手机号的后四位（4位数字）。"
            return render_template("lookup.html", error=error, ref=ref[:20]), 400
        item = find_item_by_phone(ref, last4, client_address())
        if item is None:
            error = "编号或手机号后四位不正确，请核对后重试。留言时没有留手机号的，请用查询码查询。"
            return render_template("lookup.html", error=error, ref=ref[:20], p4=last4), 404
        return redirect(url_for("resident.track", ref=item.ref, p4=last4), code=303)
    item = find_item_for_resident(ref, key, client_address())
    if item is None:
        error = "编号或查询码不正确，请核对后重试。"
        return render_template("lookup.html", error=error, ref=ref[:20], open_key_form=True), 404
    return redirect(url_for("resident.track", ref=item.ref, k=item.access_key), code=303)


def _item_for_reader(ref: str) -> tuple[Item | None, dict[str, str]]:
    """The item the query's credential opens (``k``, or ``p4`` when no key is given) and that credential, for
    the links the page writes (photos). Only the key's holder may act; ``p4`` reads."""
    key = request.args.get("k")
    typed_last4 = request.args.get("p4")
    if key is None and typed_last4 is not None:
        item = find_item_by_phone(ref, typed_last4, client_address())
        return item, ({"p4": clean_phone_last4(typed_last4) or ""} if item else {})
    item = find_item_for_resident(ref, key, client_address())
    return item, ({"k": item.access_key} if item else {})


@bp.get("/t/<ref>")
def track(ref: str):
    """The tracking page: status and the public timeline, never the resident's contact details.

    Opened by the phone's last four digits it is read only: no key shown, no rating, no answering back."""
    item, credential = _item_for_reader(ref)
    if item is None:
        raise UserError("unknown_item", UNKNOWN_BY_LINK, 404)
    by_phone = "p4" in credential
    track_url = tracking_url(item.ref, item.access_key)
    in_wechat = wechat_identity.WECHAT_USER_AGENT_MARK in request.headers.get("User-Agent", "")
    page_url = current_app.config["PUBLIC_BASE_URL"] + request.full_path.rstrip("?")
    notices = (
        {"mode": "read_only"} if by_phone else subscriptions.resident_notices_panel(item.resident, in_wechat, page_url)
    )
    response = make_response(
        render_template(
            "track.html",
            notices=notices,
            item=item,
            ref_display=format_ref(item.ref),
            is_new=request.args.get("new") == "1" and not by_phone,
            by_phone=by_phone,
            credential=credential,
            events=timeline.resident_events(item),
            timeline=timeline,
            next_step=timeline.next_step(item),
            waiting=waiting_question(item),
            can_follow_up=can_follow_up(item),
            sent=request.args.get("sent"),
            track_url=None if by_phone else track_url,
        )
    )
    if notices["mode"] == "ask":  # WeChat's JS-SDK, for the wx-open-subscribe button
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "script-src 'self'", f"script-src 'self' {script_origin()}"
        )
    return response


@bp.post("/t/<ref>/notices")
def report_notices(ref: str):
    """The tracking page's report of the ``wx-open-subscribe`` button: ``{"results": {template_id: status}}``."""
    item = item_for_key(ref, request.args.get("k"))
    body = request.get_json(silent=True)
    try:
        credits = subscriptions.record_page_report(
            item.resident, (body or {}).get("results") if isinstance(body, dict) else None
        )
    except LookupError as exc:
        db.session.rollback()
        return jsonify(error={"code": "no_wechat_identity", "message": str(exc)}), 409
    except ValueError as exc:
        db.session.rollback()
        return jsonify(error={"code": "invalid_results", "message": str(exc)}), 400
    # The H5 resident could not subscribe before submitting: "已提交" goes now (brief ui14 part 3).
    queue_received_after_subscribing(item, body["results"], utcnow())
    return jsonify(credits=credits)


@bp.get("/t/<ref>/photos/<int:position>.jpg")
def item_photo(ref: str, position: int):
    """A photo of an item, to the holder of its key (or of the phone's last four digits) only, and only as an image."""
    item, _credential = _item_for_reader(ref)
    if item is None:
        abort(404)
    photo = db.session.scalar(select(ItemPhoto).where(ItemPhoto.item_id == item.id, ItemPhoto.position == position))
    data = read_photo(photo) if photo is not None else None
    if data is None:
        abort(404)
    return jpeg_response(data, private=True)


@bp.get("/deputies/<int:deputy_id>/photo-<int:version>.jpg")
def deputy_photo(deputy_id: int, version: int):
    """A deputy's public photo; the version in the path changes when the photo does."""
    deputy = db.session.get(Deputy, deputy_id)
    data = read_deputy_photo(deputy) if deputy is not None and deputy.photo_version == version else None
    if data is None:
        abort(404)
    return jpeg_response(data, private=False)
