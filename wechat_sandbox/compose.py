"""``make run``'s server: the production app, with the sandbox answering beside it at ``/_wechat/``.

    gunicorn 'wechat_sandbox.compose:create_app()'

Werkzeug's ``DispatcherMiddleware`` hands every request under ``/_wechat`` to the sandbox and the rest to
the production app, in one server: so ``<PUBLIC_BASE_URL>/_wechat/`` (模拟微信, and the OAuth page a phone is
sent to) and every demo address ``flask demo urls`` prints stay where they are. The production app calls
WeChat at ``<PUBLIC_BASE_URL>/_wechat/`` over HTTP like any WeChat call, so this server needs a free thread
for the sandbox's answer while the production request waits (``scripts/run.sh`` runs gthread workers).

This module imports both apps; the production app imports neither it nor anything else of the sandbox.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from backend import create_app as create_production_app
from wechat_sandbox import create_app as create_sandbox_app
from wechat_sandbox.config import listed

SANDBOX_PATH = "/_wechat"


def sandbox_settings(production: Flask) -> dict:
    """What the sandbox takes from the production app, so the two agree: the apps it knows (ids and secrets),
    the templates chosen in its "console", the host its OAuth page returns to, a timeout fault longer than the
    production app's client waits."""
    config = production.config
    settings = {
        "WECHAT_TEMPLATES": config["WECHAT_TEMPLATES"],
        "WECHAT_MP_TEMPLATES": config.get("WECHAT_MP_TEMPLATES"),
        # Pushes (subscribe events) go to the production app beside it, signed with its token.
        "WECHAT_PUSH_TOKEN": config.get("WECHAT_PUSH_TOKEN"),
        "WECHAT_SANDBOX_OAUTH_HOSTS": [
            *listed("WECHAT_SANDBOX_OAUTH_HOSTS"),
            urlsplit(config["PUBLIC_BASE_URL"]).hostname,
        ],
    }
    for name in ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_MP_APPID", "WECHAT_MP_SECRET"):
        if config.get(name):
            settings[name] = config[name]
    if not os.environ.get("WECHAT_SANDBOX_TIMEOUT_SECONDS"):
        settings["WECHAT_SANDBOX_TIMEOUT_SECONDS"] = float(config["WECHAT_TIMEOUT_SECONDS"]) + 5
    return settings


def compose(production: Flask, sandbox: Flask) -> DispatcherMiddleware:
    """One WSGI application: the sandbox under ``/_wechat``, the production app everywhere else."""
    return DispatcherMiddleware(production, {SANDBOX_PATH: sandbox})


def create_app() -> DispatcherMiddleware:
    """The production app from the environment with the sandbox beside it; only with ``WECHAT_SANDBOX=1``."""
    production = create_production_app()
    if not production.config["WECHAT_SANDBOX"]:
        raise RuntimeError(
            "wechat_sandbox.compose serves the local WeChat sandbox beside the app, for `make run`: it needs "
            "WECHAT_SANDBOX=1. In production run the app alone (the Procfile's web: backend:create_app())."
        )
    return compose(production, create_sandbox_app(sandbox_settings(production)))
