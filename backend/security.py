"""Security headers on every response, and body-size limits that Flask does not apply by itself."""

from __future__ import annotations

from flask import Flask, request

from backend.errors import UserError

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def client_address() -> str:
    """The resident's address, trusting only as many proxy hops as configured."""
    from flask import current_app

    hops = current_app.config.get("TRUSTED_PROXY_HOPS", 0)
    if hops:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.remote_addr or "unknown"


def init_app(app: Flask) -> None:
    """Install the request-size check and the response headers."""

    @app.before_request
    def _limit_body_size():
        length = request.content_length
        if length is None:
            return None
        mimetype = request.mimetype
        if mimetype == "multipart/form-data":
            return None  # Werkzeug enforces MAX_CONTENT_LENGTH while parsing multipart
        limit = app.config["MAX_JSON_BODY"] if mimetype == "application/json" else app.config["MAX_FORM_MEMORY_SIZE"]
        if length > limit:
            raise UserError("too_large", "提交的内容太长，请删减后重试。", 413)
        return None

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # Tracking links carry the item's key in the query string: never leak it in a Referer.
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response
