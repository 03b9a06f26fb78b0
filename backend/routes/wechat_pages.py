"""WeChat pages: the H5 form's OAuth callback, a deputy's WeChat binding, mini-program code images, the
verification file of 扫普通链接二维码打开小程序, and the review of items held by content screening."""

from __future__ import annotations

import base64
import re

from flask import Blueprint, Response, abort, current_app, make_response, redirect, render_template, request, url_for

from backend import database
from backend.access import WECHAT_BINDERS, find_item_for_staff, visible_items_query
from backend.auth.sessions import current_staff, login_required
from backend.errors import UserError
from backend.extensions import db
from backend.items.operations import release_held_item
from backend.items.refs import format_ref
from backend.items.validation import MAX_ID
from backend.models import Deputy, Item, StaffRole, Station
from backend.models.item import ITEM_STATUS_LABELS
from backend.outbox.notifications import staff_notices_off
from backend.qr.codes import current_code
from backend.routes.qr import CACHE_SECONDS, CODE_OWNERS
from backend.wechat import identity, screening, wxacode

bp = Blueprint("wechat_pages", __name__)

BINDING_QR_WIDTH = 430
VERIFY_FILENAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
REVIEWERS = (StaffRole.STATION_ADMIN, StaffRole.SUPERVISOR)
REVIEW_PAGE_SIZE = 50


def _page(template: str, status: int = 200, **context):
    """A staff page that is never cached (it shows personal data or a live binding code)."""
    return make_response(render_template(template, **context), status)


# --- H5 silent OAuth ------------------------------------------------------------------------------


@bp.get("/wechat/oauth/callback")
@database.writing()  # a GET that writes (the resident), after WeChat answered
def oauth_callback():
    """Where WeChat's silent OAuth comes back: keep the resident in this browser's session, return to the form."""
    path = identity.finish_h5_oauth(request.args.get("code"), request.args.get("state"))
    return redirect(path, 302)


# --- a deputy binds their WeChat ------------------------------------------------------------------


def _binding_image(code: str) -> tuple[str | None, bool]:
    """The binding code as a ``data:`` PNG (a mini-program code opening the bind page), and whether WeChat made it.

    When WeChat cannot make one, None: the page shows the code as text to type into the mini-program.
    """
    try:
        png = wxacode.fetch_png(wxacode.binding_scene(code), current_app.config["WECHAT_MINIPROGRAM_PAGE_BIND"])
    except wxacode.WxacodeUnavailable:
        return None, False
    return "data:image/png;base64," + base64.b64encode(png).decode(), True


@bp.route("/staff/wechat-binding", methods=["GET", "POST"])
@login_required(*WECHAT_BINDERS)
def wechat_binding():
    """A deputy's or station administrator's WeChat binding: whether it is bound; POST ``action=create`` shows a one-time binding code
    (10 minutes) as a mini-program code and as text; POST ``action=unbind`` forgets the WeChat."""
    user = current_staff()
    context = {"user": user, "code": None, "image": None, "expires_at": None, "notice": None}
    if request.method == "POST":
        action = request.form.get("action")
        if action == "create":
            code = identity.new_binding_code()
            database.commit_before_slow_work()  # nobody holds SQLite's write lock while WeChat answers
            image, _made_by_wechat = _binding_image(code)
            _code, row = identity.create_binding_code(user, code)
            context.update(code=code, image=image, expires_at=row.expires_at)
        elif action == "unbind":
            identity.unbind_staff_wechat(user)
            context["notice"] = "已解除微信绑定，新留言将不再通过微信提醒您。"
        else:
            raise UserError("bad_request", "请求有误，请返回重试。", 400)
    context["is_bound"] = user.wechat_openid is not None
    context["notices_off"] = staff_notices_off(user)
    context["minutes"] = identity.BINDING_CODE_MINUTES
    return _page("wechat/binding.html", **context)


# --- mini-program codes ---------------------------------------------------------------------------


def wxacode_image(owner: Deputy | Station | None) -> Response:
    """The owner's current slug as a mini-program code (fetched from WeChat once), with a strong ETag."""
    if owner is None:
        abort(404)
    code = current_code(owner)
    if code is None:
        abort(404)
    code_id, slug = code.id, code.slug
    database.commit_before_slow_work()  # a code made just now is kept; nobody holds SQLite's write lock while WeChat answers
    try:
        image = wxacode.miniprogram_code(code_id, slug)
    except wxacode.WxacodeUnavailable:
        raise UserError(
            "wechat_unavailable", "微信暂时无法生成小程序码，请稍后再试，或先使用普通二维码。", 503, retry_after=60
        ) from None
    response = current_app.response_class(image.png, mimetype="image/png")
    response.set_etag(image.etag)
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    return response.make_conditional(request)


@bp.get(f"/qr/<any({', '.join(CODE_OWNERS)}):owner>/<int(max={MAX_ID}):owner_id>/wxacode.png")
def wxacode_png(owner: str, owner_id: int):
    """A deputy's or a station's mini-program code (scene ``c=<slug>``); a former deputy's still works (it routes
    to the station)."""
    return wxacode_image(db.session.get(CODE_OWNERS[owner], owner_id))


# --- the verification file of 扫普通链接二维码打开小程序 ------------------------------------------------


def qr_verify_file():
    """The file WeChat's console asks to be served before an ordinary QR code may open the mini-program."""
    response = make_response(current_app.config["WECHAT_QR_VERIFY_CONTENT"])
    response.mimetype = "text/plain"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def verify_file_path(config) -> str | None:
    """Where the verification file is served (``WECHAT_QR_VERIFY_PATH`` + ``WECHAT_QR_VERIFY_FILENAME``), or None."""
    filename = config.get("WECHAT_QR_VERIFY_FILENAME")
    if not filename:
        return None
    if not VERIFY_FILENAME_RE.fullmatch(filename) or filename in (".", ".."):
        raise ValueError(f"WECHAT_QR_VERIFY_FILENAME is not a plain file name: {filename!r}")
    directory = "/" + (config.get("WECHAT_QR_VERIFY_PATH") or "/").strip("/")
    return directory.rstrip("/") + "/" + filename


@bp.record
def _register_verify_file(state) -> None:
    """Add the verification file's route only when it is configured (its path comes from settings)."""
    path = verify_file_path(state.app.config)
    if path is not None:
        state.add_url_rule(path, endpoint="qr_verify_file", view_func=qr_verify_file, methods=["GET"])


# --- items held by content screening --------------------------------------------------------------


def _held_query(user):
    return visible_items_query(user).where(Item.is_held.is_(True))


@bp.get("/staff/review")
@login_required(*REVIEWERS)
def review():
    """Items WeChat's content check held, in the reviewer's scope, oldest first: release each into the inbox."""
    user = current_staff()
    items = db.session.scalars(_held_query(user).order_by(Item.created_at, Item.id).limit(REVIEW_PAGE_SIZE)).all()
    return _page(
        "wechat/review.html",
        user=user,
        items=items,
        format_ref=format_ref,
        status_labels=ITEM_STATUS_LABELS,
        label_of=screening.label_text,
        notice="已放行，该件已进入代表的待办。" if request.args.get("done") == "released" else None,
    )


@bp.post("/staff/review/<ref>/release")
@login_required(*REVIEWERS)
def release(ref: str):
    """Release a held item into the deputy's inbox (audited); an item outside the reviewer's scope is a 404."""
    user = current_staff()
    item = find_item_for_staff(user, ref)
    if item is None:
        raise UserError("unknown_item", "找不到该留言，请核对编号。", 404)
    if not item.is_held:
        raise UserError("not_held", "该件已经放行，无需再次审核。", 409)
    release_held_item(item, user)
    return redirect(url_for("wechat_pages.review", done="released"), 303)
