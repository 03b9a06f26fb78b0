"""Several hosts (issue 16 part 4): two web hosts, two outbox workers and two poster workers over one PostgreSQL
database and one Redis, as a province runs them; nothing one process needs lives in another's memory.

What each kind of state is kept in, so that any host can answer any request:

| state                                  | where                                                   |
|----------------------------------------|---------------------------------------------------------|
| a staff login                          | ``staff_sessions`` rows; the cookie holds only a secret  |
| the CSRF token, the replica's read mark| the signed cookie session (one ``SECRET_KEY`` for all)   |
| throttles (submissions, look-ups, logins) | Redis (``REDIS_URL``), else ``throttle_counters``     |
| WeChat access tokens, jsapi tickets    | Redis, else the database (``backend/wechat/client.py``) |
| resident tokens, activation, department links | the database (hashes), or signed with ``SECRET_KEY`` |
| outbox messages, poster batches and their progress | rows with leases (``FOR UPDATE SKIP LOCKED``)     |
| finished poster files                  | ``POSTER_BATCH_DIR``: one folder every host mounts       |
| photos                                 | the photo store (S3 in production)                       |

Caches kept per process hold only what every process would compute alike (fonts, compiled statements, the
work calendar reloaded every minute, the replica's measured lag).

Each web host here has an instance folder of its own, as two machines would. The staff member's requests
alternate between the hosts (the login form from one, the login on the other, every CSRF token from the
other host than its POST); the outbox and poster workers are two of each. PostgreSQL suite only: SQLite
is one file on one machine, ``make run``'s single host.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import OutboxMessage, OutboxStatus, PosterBatch, PosterBatchStatus, StaffSession
from tests.conftest import PG_URL, redis_test_url
from tests.factories import RESIDENT_TEMPLATES, make_item, make_resident, outbox_item, queue_many
from tests.helpers import (
    BIN,
    PASSWORD,
    REPO,
    csrf_token_from,
    log_tails,
    redis_or_skip,
    start_flask,
    stop_process,
    wait_until,
    wechat_settings,
)
from tests.pg_replica import free_port
from tests.wechat_server import _start as start_sandbox
from tests.wechat_server import wechat_sandbox  # noqa: F401 - the fixture

pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="several hosts share one PostgreSQL database: PostgreSQL suite only (TEST_DATABASE_URL); SQLite is "
    "`make run`'s one machine",
)

REDIS_DB = 8  # tests/conftest.py redis_test_url: 6 in the PostgreSQL suite
RESIDENTS = 10
MESSAGES_PER_RESIDENT = 3


@dataclass
class Host:
    """One web host: its address and its own instance folder."""

    url: str
    instance: Path
    process: subprocess.Popen
    log: Path

    def tail(self) -> str:
        """The end of its log, for failure messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture(scope="module")
def environment(database_url, tmp_path_factory, request) -> dict[str, str]:
    """What every host and worker is started with: one database, one Redis, one secret key, one batch folder, the
    session's WeChat sandbox."""
    redis_url = redis_test_url(REDIS_DB)
    redis_or_skip(redis_url)
    sandbox = start_sandbox(database_url, tmp_path_factory, request.config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "OUTBOX_", "POSTER_", "REPLICA_"))}
    env.update(
        FLASK_APP="backend",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="two-hosts-one-secret-key-for-every-host-0123456789",
        PUBLIC_BASE_URL="http://127.0.0.1:8000",  # the load balancer's address, the same for every host
        POSTER_BATCH_DIR=str(tmp_path_factory.mktemp("shared") / "poster-batches"),  # the folder every host mounts
        **wechat_settings(sandbox.url, timeout_seconds=3),
        POSTER_BATCH_IDLE_SECONDS="0.05",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(autouse=True)
def counters_emptied_after(app, environment):
    """The hosts' Redis is the test app's too, so the app fixture empties it after each test."""
    app.config["REDIS_URL"] = environment["REDIS_URL"]


@pytest.fixture(scope="module")
def hosts(environment, tmp_path_factory) -> Iterator[tuple[Host, Host]]:
    """Two gunicorn servers of the production app (the Procfile's ``web:``) on two ports, for the module."""
    folder = tmp_path_factory.mktemp("hosts")
    started: list[Host] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = folder / f"host-{name}.log"
            env = environment | {"INSTANCE_PATH": str(folder / f"host-{name}")}
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(BIN / "gunicorn"), "--workers", "1", "--worker-class", "gthread", "--threads", "4",
                     "--bind", f"127.0.0.1:{port}", "backend:create_app()"],
                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            started.append(Host(f"http://127.0.0.1:{port}", folder / f"host-{name}", process, log))
        for host in started:
            wait_until(lambda host=host: answers(host), f"{host.url} to serve", 60, host.tail)
        yield started[0], started[1]
    finally:
        for host in started:
            stop_process(host.process)


def answers(host: Host) -> bool:
    """True once ``host`` answers /healthz; fails when its server exited."""
    assert host.process.poll() is None, host.tail()
    try:
        return requests.get(host.url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:  # not listening yet, or still importing the app
        return False


def token_from(browser: requests.Session, url: str) -> str:
    """The CSRF token of the form at ``url``."""
    page = browser.get(url, timeout=10)
    assert page.status_code == 200, (url, page.status_code)
    return csrf_token_from(page.text)


def start_workers(environment: dict[str, str], tmp_path: Path, *command: str) -> list[tuple[subprocess.Popen, Path]]:
    """Two worker processes (``flask <command>``), each as if on a host of its own."""
    workers = []
    for n in (1, 2):
        log = tmp_path / f"{command[0]}-{n}.log"
        env = environment | {"INSTANCE_PATH": str(tmp_path / f"{command[0]}-host-{n}")}
        workers.append((start_flask(env, log, *command), log))
    return workers


def logs_of(workers) -> str:
    """Every worker's log, for failure messages."""
    return log_tails(log for _, log in workers)


def test_a_staff_member_alternating_between_two_hosts(app, world, hosts):
    a, b = hosts
    item = make_item(world.d1)
    ref = item.ref
    browser = requests.Session()

    login = browser.post(
        b.url + "/staff/login",
        data={"csrf_token": token_from(browser, a.url + "/staff/login"), "username": "deputy_d1", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 303, login.text
    inbox = browser.get(a.url + "/staff/inbox", allow_redirects=False, timeout=10)
    assert inbox.status_code == 200 and ref[:4] in inbox.text  # logged in on b, known on a

    for action, form_host, post_host in (("accept", b, a), ("note", a, b)):
        token = token_from(browser, f"{form_host.url}/staff/items/{ref}")
        done = browser.post(
            f"{post_host.url}/staff/items/{ref}/actions",
            data={"csrf_token": token, "action": action, "text": "已联系住建局，本周内答复。"},
            allow_redirects=False,
            timeout=10,
        )
        assert done.status_code == 303, (action, done.status_code, done.text[:500])
    page = browser.get(f"{a.url}/staff/items/{ref}", timeout=10).text
    assert "已受理" in page and "已联系住建局" in page

    # A token of one host's form is the other host's too; a forged one is refused by both.
    forged = browser.post(
        f"{b.url}/staff/items/{ref}/actions", data={"csrf_token": "forged", "action": "note", "text": "x"}, timeout=10
    )
    assert forged.status_code == 400

    # Logging out on one host ends the login on both.
    browser.post(a.url + "/staff/logout", data={"csrf_token": token_from(browser, b.url + "/staff/")}, timeout=10)
    for host in (a, b):
        assert browser.get(host.url + "/staff/inbox", allow_redirects=False, timeout=10).status_code == 303
    db.session.rollback()
    assert (
        db.session.scalar(select(func.count()).select_from(StaffSession).where(StaffSession.revoked_at.is_(None))) == 0
    )


def test_a_throttle_counts_across_hosts(app, world, hosts):
    a, b = hosts
    browser = requests.Session()
    allowed = 5  # failed logins per account and address (backend/auth/sessions.py login_limits), wherever they land
    codes = []
    for n in range(allowed + 1):
        host = (a, b)[n % 2]
        answer = browser.post(
            host.url + "/staff/login",
            data={
                "csrf_token": token_from(browser, host.url + "/staff/login"),
                "username": "deputy_d2",
                "password": "x",
            },
            allow_redirects=False,
            timeout=10,
        )
        codes.append(answer.status_code)
    assert 429 not in codes[:allowed] and codes[allowed] == 429, codes


def test_two_outbox_workers_send_each_message_once(app, environment, wechat_sandbox, create_deputy, tmp_path):  # noqa: F811
    deputy = create_deputy()
    owner = SimpleNamespace(deputy_id=deputy.id)
    rows = []
    for n in range(RESIDENTS):
        openid = f"o-two-hosts-{n}"
        resident_id = make_resident(openid, credits=MESSAGES_PER_RESIDENT)
        for template_id in RESIDENT_TEMPLATES:
            wechat_sandbox.subscribe(openid, template_id, MESSAGES_PER_RESIDENT)
        item_id = outbox_item(owner, resident_id)
        rows += [
            {"kind": kind, "item_id": item_id, "resident_id": resident_id}
            for kind in ("item_received", "item_accepted", "item_answered")
        ]
    queue_many(rows)
    workers = start_workers(environment, tmp_path, "outbox", "run")
    try:
        wait_until(
            lambda: unfinished_messages() == 0,
            "two outbox workers to send every message",
            60,
            lambda: logs_of(workers),
            progress=unfinished_messages,
        )
    finally:
        for process, _ in workers:
            stop_process(process)
    received = wechat_sandbox.messages()
    keys = collections.Counter((m["openid"], json.dumps(m["data"], sort_keys=True)) for m in received)
    assert len(received) == len(rows) and max(keys.values()) == 1  # nothing lost, nothing twice
    db.session.rollback()
    statuses = collections.Counter(db.session.scalars(select(OutboxMessage.status)))
    assert statuses == {OutboxStatus.SENT: len(rows)}
    assert all("worker started" in log.read_text() for _, log in workers), logs_of(workers)


def unfinished_messages() -> int:
    """Outbox rows not yet sent (or failed)."""
    db.session.rollback()
    return db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.HELD)))
    )


def test_two_poster_workers_render_each_batch_once_and_either_host_hands_it_out(
    app, world, hosts, environment, tmp_path, cjk_font
):
    a, b = hosts
    browser = requests.Session()
    browser.post(
        a.url + "/staff/login",
        data={"csrf_token": token_from(browser, b.url + "/staff/login"), "username": "admin_a", "password": PASSWORD},
        timeout=10,
    )
    station_page = f"/admin/stations/{world.station_a.id}"
    ids = []
    for kind, form_host, post_host in (("station", a, b), ("cards", b, a), ("station", b, a), ("cards", a, b)):
        queued = browser.post(
            post_host.url + "/admin/poster-batches",
            data={
                "csrf_token": token_from(browser, form_host.url + station_page),
                "kind": kind,
                "station_id": world.station_a.id,
            },
            allow_redirects=False,
            timeout=10,
        )
        assert queued.status_code == 303, queued.text[:500]
        ids.append(int(re.search(r"/admin/poster-batches/(\d+)$", queued.headers["Location"]).group(1)))
    # The same batch asked again on the other host while it waits is the one already queued, not a second job.
    assert ids[2:] == ids[:2] and ids[0] != ids[1]
    ids = ids[:2]

    workers = start_workers(environment, tmp_path, "posters", "run")
    try:
        wait_until(
            lambda: batches_done(ids) == len(ids),
            "two poster workers to render every batch",
            90,
            lambda: logs_of(workers),
        )
    finally:
        for process, _ in workers:
            stop_process(process)
    db.session.rollback()
    rows = db.session.scalars(select(PosterBatch).where(PosterBatch.id.in_(ids))).all()
    assert sorted((row.status, row.attempts) for row in rows) == [(PosterBatchStatus.DONE, 1)] * len(ids)
    for batch_id, host in [(i, h) for i in ids for h in (a, b)]:
        status = browser.get(f"{host.url}/admin/poster-batches/{batch_id}/status", timeout=10).json()
        assert status["status"] == "done", status
        download = browser.get(host.url + status["download_url"], timeout=30)
        assert download.status_code == 200 and download.content.startswith(b"%PDF"), (batch_id, host.url)
    shared = Path(environment["POSTER_BATCH_DIR"])
    assert sorted(p.name for p in shared.iterdir()) == sorted(Path(row.file_path).name for row in rows)


def batches_done(ids: list[int]) -> int:
    """How many of the batches are finished (done or failed: a failure ends the wait and the assertion says it)."""
    db.session.rollback()
    return db.session.scalar(
        select(func.count())
        .select_from(PosterBatch)
        .where(PosterBatch.id.in_(ids), PosterBatch.status.in_((PosterBatchStatus.DONE, PosterBatchStatus.FAILED)))
    )
