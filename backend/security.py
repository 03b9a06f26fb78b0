"""Security headers and the one no-store policy on every response; body-size limits that Flask does not apply by
itself; control characters refused in the query, form and JSON of every request before any view (or the database)
sees them."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from flask import Flask, request

from backend.errors import UserError

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


# Set on every response unless the view set its own.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Tracking links carry the item's key in the query string: never leak it in a Referer.
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)

# The one no-store policy (``cache_policy``). Nothing is kept by a browser or a proxy unless the view says how
# long (QR images, a deputy's public photo, static files): pages show personal data or carry a form, and going
# back to a form must fetch it again, with a fresh client_id, rather than resend an old one with a new message.
# These blueprints answer only to staff or behind a secret link, with personal data: every answer of theirs is
# no-store whatever the view (or Flask's send_file, which says "no-cache") set. So is every file handed over as
# an attachment (lists of people, posters).
NO_STORE_BLUEPRINTS = frozenset(
    {"admin", "api_staff", "claim", "department", "deputy", "staff", "supervision", "supervision_api"}
)


def cache_policy(response):
    """Set ``Cache-Control: no-store`` where the policy above says so; leave a view's own caching elsewhere."""
    if (
        "Cache-Control" not in response.headers
        or request.blueprint in NO_STORE_BLUEPRINTS
        or response.headers.get("Content-Disposition", "").startswith("attachment")
    ):
        response.headers["Cache-Control"] = "no-store"
    return response


def client_address() -> str:
    """The client's address, as the throttle and the audit count it: ``remote_addr``, which ProxyFix sets from the
    trusted proxies' X-Forwarded-For (``TRUSTED_PROXY_HOPS``, ``backend.trust_proxies``)."""
    return request.remote_addr or "unknown"


def _refuse_malformed_utf8(raw: bytes) -> None:
    """Werkzeug keeps undecodable %XX escapes as literal text; refuse them instead of storing "%FF"."""
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(
            "invalid_characters", "提交的内容中含有无法识别的字符（不是 UTF-8 编码），请删除后重试。"
        ) from None


# NUL and the other C0 controls but tab, newline and carriage return; DEL; the C1 controls. No field
# takes them, and PostgreSQL refuses NUL in text outright (an error deep in a query: a 500).
CONTROL_CHARACTERS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_MESSAGE = "提交的内容中含有无法识别的字符（空字节等控制字符），请删除后重试。"


def _json_strings(value: object, field: str = ""):
    """Every key and string of a parsed JSON document, each with the top-level field it sits under."""
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield field or "", str(key)
            yield from _json_strings(item, field or str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item, field)


def _request_texts():
    """(field, text) for every query parameter's name and value, and the form's or JSON body's.

    Not the path: a view reads its own segments (a reference, a code) and answers 404 for a bad one.
    """
    for name, value in request.args.items(multi=True):
        yield "", name
        yield name, value
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in request.form.items(multi=True):
            yield "", name
            yield name, value
    elif request.mimetype == "application/json":
        yield from _json_strings(request.get_json(silent=True))


def refuse_control_characters() -> None:
    """400 ``invalid_characters`` (naming the field when there is one) for a control character anywhere in
    the request's text: refused here, once, before any view or query sees it, on both engines alike."""
    for field, text in _request_texts():
        if CONTROL_CHARACTERS_RE.search(text):
            raise UserError("invalid_characters", CONTROL_CHARACTERS_MESSAGE, 400, field=field or None)


def init_app(app: Flask) -> None:
    """Install the request checks and the response headers; call before CSRFProtect so bad bodies are refused first."""

    @app.before_request
    def _limit_body_size():
        length = request.content_length
        if length is None:
            return None
        mimetype = request.mimetype
        if mimetype == "multipart/form-data":
            return None  # Werkzeug enforces MAX_CONTENT_LENGTH while parsing multipart
        limit = app.config["MAX_JSON_BODY"] if mimetype == "application/json" else app.config["MAX_URLENCODED_BODY"]
        if length > limit:
            raise UserError("too_large", "提交的内容太长，请删减后重试。", 413)
        if mimetype == "application/x-www-form-urlencoded":
            _refuse_malformed_utf8(request.get_data(cache=True))
        return None

    app.before_request(refuse_control_characters)  # after the size check: a huge body is refused unparsed

    @app.after_request
    def _headers(response):
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}  # one pass, not one scan per header
        for name, value in SECURITY_HEADERS:
            if name.lower() not in present:
                headers.add(name, value)
        return cache_policy(response)
