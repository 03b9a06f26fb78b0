"""Small helpers shared by tests."""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import pytest
from flask import g
from PIL import Image
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import (
    AuditEntry,
    ItemEvent,
    ItemForward,
    OutboxMessage,
    Resident,
    ResidentSession,
    SubscriptionCredit,
    utcnow,
)
from backend.wechat.identity import hash_token
from wechat_sandbox.config import APPID as SANDBOX_APPID
from wechat_sandbox.config import SECRET as SANDBOX_SECRET

# The tests' password hash method (``PASSWORD_HASH_METHOD``): Werkzeug's scrypt at a trivial cost, where
# production's costs ~70 ms of CPU a hash or a check; the suites log in thousands of times.
# tests/test_passwords.py checks that production's method is the default and works end to end.
TEST_PASSWORD_HASH_METHOD = "scrypt:128:8:1"  # the least N OpenSSL accepts with werkzeug's memory bound
PASSWORD = "correct horse 2026"  # every test staff user's (tests/factories.py)

# What a deputy may do with a submitted item, in the order the pages offer it (lifecycle.TRANSITIONS' order).
DEPUTY_ACTIONS_ON_SUBMITTED = ["accept", "decline", "duplicate", "reassign", "reply", "forward", "note"]


def csrf_token_from(html: str) -> str:
    """The CSRF token a rendered form carries."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form has no CSRF token"
    return match.group(1)


def hidden_value(html: str, name: str) -> str:
    """The value of a hidden input."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"form has no hidden {name}"
    return match.group(1)


def jpeg_bytes(size=(40, 30), color=(200, 30, 30)) -> bytes:
    """A small real JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def stored_photo(item_id: int, position: int = 0, data: bytes | None = None, sha256: str = "x"):
    """An ``ItemPhoto`` (not yet added) whose bytes (a small real JPEG unless given) are in the app's photo store."""
    from backend.items.photo_store import JPEG, new_key, photo_store
    from backend.models import ItemPhoto

    data = jpeg_bytes() if data is None else data
    key = new_key()
    photo_store().put(key, data, JPEG)
    return ItemPhoto(
        item_id=item_id, position=position, width=40, height=30, storage_key=key, size=len(data), sha256=sha256
    )


def give_deputy_photo(deputy, data: bytes | None = None) -> None:
    """Give ``deputy`` a portrait (a small real JPEG unless given) in the app's photo store, as version 1."""
    from backend.items.photo_store import DEPUTY_PREFIX, store_jpeg

    deputy.photo_key = store_jpeg(jpeg_bytes() if data is None else data, DEPUTY_PREFIX)
    deputy.photo_version = 1


def missing_tool(message: str) -> NoReturn:
    """A test needs a tool or service this machine lacks (Chromium, poppler, Node, Redis, the CJK font): under
    CI=true that is a failure, since CI must have everything; locally the test is skipped and `make test` lists
    the reason (pytest -rs), so a missing tool never passes silently as a green run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


def redis_or_skip(url: str) -> None:
    """Fail (CI) or skip (locally) unless a Redis answers at ``url``."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError:
        missing_tool(f"Redis does not answer at {url} (start redis-server, or set TEST_REDIS_URL)")


def wait_until(condition, what: str, seconds: float = 60, describe=lambda: "", progress=None) -> None:
    """Poll ``condition`` until it holds: tests wait on what happened, never for a fixed time. ``seconds`` is only
    the point past which the wait is a failure (generous, so a loaded machine is slow, never wrong); with
    ``progress`` (a callable whose value changes as work gets done) it counts from the last change, so a long job
    fails only when it stalls. The message names ``what`` was awaited, with ``describe()`` (e.g. workers' logs)."""
    deadline = time.monotonic() + seconds
    seen = progress() if progress else None
    while not condition():
        if progress is not None and (now := progress()) != seen:
            seen, deadline = now, time.monotonic() + seconds
        if time.monotonic() > deadline:
            raise AssertionError(f"no progress for {seconds} s waiting for {what}\n{describe()}")
        time.sleep(0.02)


def flask_process_env(app, tmp_path, **settings) -> dict[str, str]:
    """The environment of a ``flask`` subprocess (a worker) on the test's database, with an instance folder in
    ``tmp_path``: the suite's own WeChat, outbox, poster-batch and Redis settings left out, so that only the test's
    ``settings`` say how it runs."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "OUTBOX_", "POSTER_")) and k != "REDIS_URL"
    }
    env.update(
        FLASK_APP="backend",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        INSTANCE_PATH=str(tmp_path / "instance"),
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in settings.items()})
    return env


REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # this environment's commands (flask, gunicorn)


def wechat_settings(sandbox_url: str, timeout_seconds: float) -> dict[str, str]:
    """The settings that point a ``flask`` subprocess (a worker, a host) at the test's WeChat sandbox, the
    mini-program it knows, and an outbox loop that looks for work every 50 ms."""
    return {
        "WECHAT_SANDBOX": "0",
        "WECHAT_API_BASE": sandbox_url,
        "WECHAT_APPID": SANDBOX_APPID,
        "WECHAT_SECRET": SANDBOX_SECRET,
        "WECHAT_TIMEOUT_SECONDS": str(timeout_seconds),
        "WECHAT_MINIPROGRAM_STATE": "developer",
        "OUTBOX_IDLE_SECONDS": "0.05",
    }


def start_flask(env: dict[str, str], log: Path, *command: str) -> subprocess.Popen:
    """``flask <command>`` (a worker, as if on a host of its own) from the repository, its output added to ``log``;
    stop it with :func:`stop_process`."""
    with log.open("ab") as out:
        return subprocess.Popen([str(BIN / "flask"), *command], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, seconds: float = 20) -> None:
    """Stop a process the test started: ``sig``, a kill when it has not ended after ``seconds``; then wait for it, so
    that no process outlives its test."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tails(logs: Iterable[Path]) -> str:
    """The end of each process's log, for a failure message."""
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())


def run_to_end(args: list[str], env: dict[str, str], cwd) -> str:
    """Run a process (two minutes at the most) and return what it printed; the test fails with its output when it
    exits non-zero."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@contextlib.contextmanager
def outbox_worker_running(app) -> Iterator[threading.Event]:
    """The outbox worker's loop (``run_forever``) in a thread of its own on ``app`` for the block; yields the event
    that stops it."""
    from backend.outbox import worker

    stop = threading.Event()

    def run():
        with app.app_context():
            worker.run_forever(stop)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield stop
    finally:
        db.session.rollback()  # on SQLite this test's reads hold the write lock the worker may be waiting for
        stop.set()
        thread.join(timeout=20)


# Clients: pages' forms, logins, API tokens.


def fresh_token(client, path: str) -> tuple[str, str]:
    """GET ``path`` and return (page html, its CSRF token).

    The test's app context is shared by every request of every client, and Flask-WTF keeps
    the token it issued in ``g``: forget it first, or one client gets another's token.
    """
    g.pop("csrf_token", None)
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.text, csrf_token_from(response.text)


def login(app, username: str):
    """A new test client logged in to the staff pages as ``username``."""
    client = app.test_client()
    _, token = fresh_token(client, "/staff/login")
    response = client.post("/staff/login", data={"csrf_token": token, "username": username, "password": PASSWORD})
    assert response.status_code == 303, response.text
    g.pop("csrf_token", None)
    return client


def api_token(app, username: str) -> dict:
    """The Authorization header of a fresh API token for ``username``."""
    response = app.test_client().post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json['token']}"}


def resident_token(resident_id: int, *, expires_in=timedelta(days=30), revoked=False) -> str:
    """A resident session as ``POST /api/v1/wechat/login`` makes one (committed); returns the token."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        ResidentSession(
            token_hash=hash_token(token),
            resident_id=resident_id,
            expires_at=utcnow() + expires_in,
            revoked_at=utcnow() if revoked else None,
        )
    )
    db.session.commit()
    return token


def resident_headers(openid: str) -> dict:
    """The Authorization header of a new resident's WeChat token (the mini-program's resident side): for the
    refusals of a resident where a staff token is needed."""
    resident = Resident(openid=openid)
    db.session.add(resident)
    db.session.flush()
    return {"Authorization": f"Bearer {resident_token(resident.id)}"}


def post_form(client, path: str, data: dict | None = None, page: str = "/staff/", **kwargs):
    """POST a form with a CSRF token taken from a page the client may open."""
    _, token = fresh_token(client, page)
    g.pop("csrf_token", None)
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def csv_bytes(rows, encoding: str = "utf-8", bom: bool = False) -> bytes:
    """A roster file as a county's office saves it: CSV in ``encoding``, with Excel's BOM when asked."""
    text = "\r\n".join(",".join(_quote(v) for v in row) for row in rows) + "\r\n"
    data = text.encode(encoding)
    return (codecs.BOM_UTF8 + data) if bom else data


def _quote(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ',"\n') else value


def dry_run(client, data: bytes, filename: str = "名册.csv"):
    """Upload a roster to the import page (its dry run)."""
    g.pop("csrf_token", None)
    _, token = fresh_token(client, "/admin/import")
    return client.post(
        "/admin/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


# Reads: what an action wrote.


def counts() -> dict[str, int]:
    """Rows in the tables that an action writes to."""
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (ItemEvent, OutboxMessage, ItemForward)
    }


def fresh_rows(model) -> list:
    """Every row of ``model`` in the order written, read afresh: the session's cached copies are dropped, so the
    test sees what the request stored."""
    db.session.expire_all()
    return list(db.session.scalars(select(model).order_by(model.id)))


def audit_rows(action: str) -> list[AuditEntry]:
    """Audit rows of one action, oldest first."""
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def audit_count(*actions: str) -> int:
    """Audit rows of the given actions."""
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.in_(actions)))


def outbox_row(message_id: int) -> OutboxMessage:
    """A fresh read of an outbox row (the session's cached copy is dropped)."""
    db.session.expire_all()
    message = db.session.get(OutboxMessage, message_id)
    db.session.expunge(message)  # keeps its loaded state: reading it opens no transaction
    db.session.rollback()
    return message


def outbox_statuses() -> dict[int, str]:
    """Every outbox row's status by id."""
    result = {i: s.value for i, s in db.session.execute(select(OutboxMessage.id, OutboxMessage.status))}
    db.session.rollback()
    return result


def credits_of(openid: str, template_id: str) -> int:
    """The free credits of ``openid`` for ``template_id`` (0 when no row)."""
    value = db.session.scalar(
        select(SubscriptionCredit.credits).where(
            SubscriptionCredit.openid == openid, SubscriptionCredit.template_id == template_id
        )
    )
    db.session.rollback()
    return value or 0


def make_templates_one_time(app) -> None:
    """Every configured template one-time: for the tests of one-time credit accounting (``app`` restores it)."""
    for template in app.config["WECHAT_TEMPLATES"].values():
        template["kind"] = "one_time"
