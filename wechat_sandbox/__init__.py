"""The local WeChat sandbox (模拟微信): an application of its own that stands in for WeChat in development
and tests. It answers WeChat's endpoints (``cgi-bin/token``, ``sns/jscode2session`` …) with WeChat's request
and response shapes and error codes, offers controls for tests and demos under ``sandbox/``, and shows
what each WeChat user received on the 模拟微信 page at its root.

Its paths are WeChat's, from the root, so a sandbox of its own is a drop-in ``WECHAT_API_BASE``; ``make run``
mounts it at ``/_wechat/`` beside the production app (``compose.py``). The production app (``backend``)
never imports this package, whatever its settings: the sandbox lists every openid and mints login codes
for any of them, so it must not be reachable where residents are. Its state lives in ``state.py``'s
SQLite file, shared by every worker.
"""

from __future__ import annotations

import os

from flask import Flask, Response

from wechat_sandbox.config import settings_from_environment

# The 模拟微信 page has no script and no inline style; its forms post to the sandbox itself; its icon is data:,.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"


def create_app(settings: dict | None = None) -> Flask:
    """Build the sandbox: settings from the environment (then ``settings``), its endpoints, its headers."""
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None)
    app.config.update(settings_from_environment(app.instance_path))
    if settings:
        app.config.update(settings)

    from wechat_sandbox import routes

    app.register_blueprint(routes.bp)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
