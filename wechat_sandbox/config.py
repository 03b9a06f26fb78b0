"""The sandbox's settings, each from the environment with a default for local use.

The sandbox answers like WeChat for the apps it knows: the mini-program (``WECHAT_APPID`` /
``WECHAT_SECRET``, by default the ids below, which ``make run`` also gives the production app) and an
official account when ``WECHAT_MP_APPID`` / ``WECHAT_MP_SECRET`` are set. Composed beside the production app
(``compose.py``), it is told the production app's own values instead, so the two always agree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# The mini-program the sandbox knows when nothing else is said: `make run` gives the production app these.
APPID = "wx-sandbox-app"
SECRET = "sandbox-secret"  # noqa: S105 - the sandbox's own, public by design


def listed(name: str) -> list[str]:
    """A comma-separated setting as a list (empty when unset)."""
    return [part.strip() for part in (os.environ.get(name) or "").split(",") if part.strip()]


def settings_from_environment(instance_path: str) -> dict:
    """Every setting of the sandbox, read from the environment."""
    templates = os.environ.get("WECHAT_TEMPLATES")
    return {
        "WECHAT_APPID": os.environ.get("WECHAT_APPID") or APPID,
        "WECHAT_SECRET": os.environ.get("WECHAT_SECRET") or SECRET,
        "WECHAT_MP_APPID": os.environ.get("WECHAT_MP_APPID") or None,
        "WECHAT_MP_SECRET": os.environ.get("WECHAT_MP_SECRET") or None,
        # Template id → purpose, title and field labels, as chosen in WeChat's console (the production app's
        # setting of the same name); unset, any id starting with ``tpl-`` is known and shown by its id.
        "WECHAT_TEMPLATES": json.loads(templates) if templates else None,
        "WECHAT_MP_TEMPLATES": json.loads(os.environ["WECHAT_MP_TEMPLATES"])
        if os.environ.get("WECHAT_MP_TEMPLATES")
        else None,
        # Message push (消息推送): the app's push URL (unset: /wechat/push on the host the sandbox is served on)
        # and the token its pushes are signed with (unset: nothing is pushed).
        "WECHAT_SANDBOX_PUSH_URL": os.environ.get("WECHAT_SANDBOX_PUSH_URL") or None,
        "WECHAT_PUSH_TOKEN": os.environ.get("WECHAT_PUSH_TOKEN") or None,
        # Its state: an SQLite file of its own, shared by every worker of the server.
        "WECHAT_SANDBOX_DB": os.environ.get("WECHAT_SANDBOX_DB") or str(Path(instance_path) / "wechat_sandbox.sqlite3"),
        # How long a "timeout" fault sleeps: longer than the clients' timeout (5 s by default).
        "WECHAT_SANDBOX_TIMEOUT_SECONDS": float(os.environ.get("WECHAT_SANDBOX_TIMEOUT_SECONDS") or 10),
        # Token fetches per app per day; 45009 past it, as WeChat answers past its 2,000.
        "WECHAT_SANDBOX_TOKEN_DAILY_LIMIT": int(os.environ.get("WECHAT_SANDBOX_TOKEN_DAILY_LIMIT") or 2000),
        # Hosts the OAuth page may redirect to besides this server's own and loopback (WeChat's 网页授权域名).
        "WECHAT_SANDBOX_OAUTH_HOSTS": listed("WECHAT_SANDBOX_OAUTH_HOSTS"),
        # The mini-program's published pages; unset, read from miniprogram_stub/app.json when it exists.
        "WECHAT_SANDBOX_PAGES": listed("WECHAT_SANDBOX_PAGES") or None,
    }
