"""QR code images for deputies and stations.

Each image encodes the owner's current code URL. It changes only when the slug is rotated,
so the ETag is derived from the slug and clients revalidate with If-None-Match.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, current_app, request

from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import MAX_ID
from backend.models import Deputy, Station
from backend.qr.codes import code_url, current_code
from backend.qr.render import qr_png, qr_svg

bp = Blueprint("qr", __name__, url_prefix="/qr")

DEFAULT_SIZE = 600
MIN_SIZE = 100
CACHE_SECONDS = 86400
# Bumped when the rendering changes, so that cached images are revalidated.
RENDER_VERSION = 1
# ASCII digits only: int() would also accept "+600", " 600", "6_00" and non-ASCII digits.
SIZE_RE = re.compile(r"[0-9]{1,5}")

RENDERERS = {"png": (qr_png, "image/png"), "svg": (qr_svg, "image/svg+xml")}
# Whose code an address draws: /qr/deputy/<id>.png, /qr/station/<id>.svg, …/wxacode.png (routes.wechat_pages).
CODE_OWNERS = {"deputy": Deputy, "station": Station}


def requested_size() -> int:
    """The ``size`` query parameter, in pixels; UserError (400) unless one integer in range."""
    values = request.args.getlist("size")
    if not values:
        return DEFAULT_SIZE
    if len(values) == 1 and SIZE_RE.fullmatch(values[0]):
        size = int(values[0])
        if MIN_SIZE <= size <= current_app.config["QR_MAX_SIZE"]:
            return size
    raise UserError("bad_size", "尺寸参数无效，应为100到2000之间的整数。", 400)


def qr_image(owner: Deputy | Station | None, fmt: str) -> Response:
    """The owner's current code as an image, with a strong ETag and a conditional answer."""
    size = requested_size()
    if owner is None:
        abort(404)
    code = current_code(owner)
    if code is None:
        abort(404)
    render, mimetype = RENDERERS[fmt]
    response = current_app.response_class(render(code_url(code.slug), size), mimetype=mimetype)
    response.set_etag(f"{code.slug}.{size}.{fmt}.v{RENDER_VERSION}")
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    return response.make_conditional(request)


@bp.get(f"/<any({', '.join(CODE_OWNERS)}):owner>/<int(max={MAX_ID}):owner_id>.<any({', '.join(RENDERERS)}):fmt>")
def image(owner: str, owner_id: int, fmt: str):
    """A deputy's code (代表码) or a station's (联络站码) as PNG, or as SVG for print; a former deputy's is still
    served (it routes to their station)."""
    return qr_image(db.session.get(CODE_OWNERS[owner], owner_id), fmt)
