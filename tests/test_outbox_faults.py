"""Delivery against the local WeChat sandbox over real HTTP, through wechatpy, with WeChat misbehaving.

Workers run in this process (``worker.run_once``) or as real ``flask outbox run`` subprocesses
on the test's database; what WeChat received is read back from ``/_wechat/sandbox/messages``.
"""

from __future__ import annotations

import collections
import itertools
import json
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from backend.extensions import db
from backend.items.lifecycle import perform_action
from backend.models import Item, OutboxMessage, OutboxStatus, StaffUser, ThrottleCounter, utcnow
from backend.outbox import worker
from tests.factories import (
    DEPUTY_TEMPLATE,
    RESIDENT_TEMPLATES,
    give_credits,
    make_resident,
    outbox_item,
    outbox_world,
    queue,
    queue_many,
)
from tests.helpers import (
    credits_of,
    flask_process_env,
    log_tails,
    make_templates_one_time,
    outbox_row,
    outbox_statuses,
    start_flask,
    stop_process,
    wait_until,
    wechat_settings,
)
from tests.wechat_server import wechat_sandbox  # noqa: F401 - the fixture

SEND = "cgi-bin/message/subscribe/send"
TOKEN = "cgi-bin/token"
PROGRESS, ANSWERED = "tpl-item-progress", "tpl-item-answered"


@pytest.fixture(autouse=True)
def one_time_templates(app, request):
    """These tests count one-time credits: every template one-time, in the app and in the sandbox's "console"
    (long-term ones are tested in test_subscriptions); and each deputy notice its own message (the
    coalescing window is tested in test_deputy_notices)."""
    make_templates_one_time(app)
    app.config["NOTICE_COALESCE_SECONDS"] = 0
    if "wechat_sandbox" not in request.fixturenames:
        yield
        return
    sandbox_config = request.getfixturevalue("wechat_sandbox").sandbox_app.config
    before = sandbox_config["WECHAT_TEMPLATES"]
    sandbox_config["WECHAT_TEMPLATES"] = {p: {**t, "kind": "one_time"} for p, t in before.items()}
    yield
    sandbox_config["WECHAT_TEMPLATES"] = before


@pytest.fixture
def world(app, create_deputy, wechat_sandbox):  # noqa: F811
    """A deputy with a bound WeChat and plenty of credits, here and in the sandbox."""
    w = outbox_world()
    give_credits(w.deputy_openid, 10_000, (DEPUTY_TEMPLATE,))
    db.session.commit()
    wechat_sandbox.subscribe(w.deputy_openid, DEPUTY_TEMPLATE, 10_000)
    app.config.update(OUTBOX_BACKOFF_BASE_SECONDS=0.05, OUTBOX_BACKOFF_MAX_SECONDS=0.2, OUTBOX_IDLE_SECONDS=0.05)
    return w


def subscribed_resident(sandbox, openid: str, credits: int = 10) -> int:
    """A resident who accepted ``credits`` messages of each resident template (counted here and in WeChat)."""
    resident_id = make_resident(openid, credits=credits)
    for template_id in RESIDENT_TEMPLATES:
        sandbox.subscribe(openid, template_id, credits)
    return resident_id


def unfinished() -> int:
    count = db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.HELD)))
    )
    db.session.rollback()
    return count


def drain(seconds: float = 20) -> None:
    """Run the worker in this process until nothing is left to send (or fail after ``seconds``)."""

    def done() -> bool:
        worker.run_once(20)
        return not unfinished()

    wait_until(done, "the outbox to drain", seconds, lambda: f"still unfinished: {outbox_statuses()}")


def received(sandbox) -> list[dict]:
    return sandbox.messages()


def message_key(message: dict) -> tuple:
    return (message["openid"], message["template_id"], message["page"], json.dumps(message["data"], sort_keys=True))


def assert_each_once(sandbox, expected: int, crash_window: bool = False) -> list[dict]:
    """Every outbox row was sent and WeChat received exactly ``expected`` distinct messages, none twice.

    ``crash_window``: a worker killed after WeChat accepted a message but before it recorded
    ``sent`` leaves the row to be sent again; WeChat (the sandbox) then refuses it with 43101,
    the one acceptance being spent, and the row ends ``failed`` although its message arrived
    once. That is the window the worker's docstring names; only that outcome is allowed.
    """
    messages = received(sandbox)
    counts = collections.Counter(message_key(m) for m in messages)
    duplicates = {k: n for k, n in counts.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} message(s) received more than once"
    assert len(messages) == expected
    rows = db.session.execute(select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.last_error)).all()
    db.session.rollback()
    unsent = [(row.id, row.status.value, row.last_error) for row in rows if row.status.value != "sent"]
    if crash_window:
        unsent = [row for row in unsent if not (row[1] == "failed" and "43101" in row[2])]
    assert not unsent, f"rows not sent: {unsent}"
    return messages


# --- in this process ----------------------------------------------------------------------


def test_delivers_each_message_once_spending_one_credit_each(world, wechat_sandbox):  # noqa: F811
    resident_id = subscribed_resident(wechat_sandbox, "o-res-1", credits=2)
    items = [outbox_item(world, resident_id) for _ in range(2)]
    for item_id in items:
        queue(item_id, "item_received", resident_id=resident_id)
        queue(item_id, "deputy_new_item", staff_user_id=world.staff_user_id)
    drain()
    messages = assert_each_once(wechat_sandbox, 4)
    refs = {db.session.get(Item, i).ref for i in items}
    db.session.rollback()
    resident_messages = [m for m in messages if m["openid"] == "o-res-1"]
    assert {m["data"]["character_string1"]["value"] for m in resident_messages} == refs
    assert all(m["page"].startswith("pages/item/item?ref=") for m in resident_messages)
    assert all(m["page"].startswith("pages/inbox/item?ref=") for m in messages if m["openid"] == world.deputy_openid)
    # Both sides counted the same: two accepts, two messages.
    assert credits_of("o-res-1", PROGRESS) == 0
    assert wechat_sandbox.subscriptions("o-res-1")[PROGRESS] == 0


def test_wechat_down_for_the_whole_test_then_back(world, wechat_sandbox, app):  # noqa: F811
    app.config["OUTBOX_MAX_ATTEMPTS"] = 1000
    resident_id = subscribed_resident(wechat_sandbox, "o-res-1")
    items = [outbox_item(world, resident_id) for _ in range(3)]
    kinds = ("item_received", "item_accepted", "item_forwarded", "item_answered")
    for kind in kinds:  # interleaved across items: order must hold per item, not globally
        for item_id in items:
            queue(item_id, kind, resident_id=resident_id)
    wechat_sandbox.fault(SEND, "http500", times=-1)

    def six_sends_failed() -> bool:
        worker.run_once(20)
        return wechat_sandbox.stats()[SEND] >= 6

    wait_until(six_sends_failed, "the worker to try six times")
    assert received(wechat_sandbox) == []  # it kept trying…
    rows = db.session.scalars(select(OutboxMessage)).all()
    firsts = [m for m in rows if m.kind == "item_received"]
    assert all(m.attempts >= 2 and m.last_error.startswith("HTTP error") for m in firsts)
    assert all(m.attempts == 0 for m in rows if m.kind != "item_received")  # …only the first of each item
    db.session.rollback()

    wechat_sandbox.clear_faults()
    drain()
    messages = assert_each_once(wechat_sandbox, 12)
    by_item = collections.defaultdict(list)
    for m in messages:
        by_item[m["data"]["character_string1"]["value"]].append(m)
    assert len(by_item) == 3
    for sequence in by_item.values():
        statuses_in_order = [m["data"].get("phrase2", {}).get("value") for m in sequence]
        assert statuses_in_order == ["已提交", "已受理", "已交办", None]  # answered: its own template
        assert sequence[-1]["template_id"] == ANSWERED


def test_quota_makes_no_calls_until_the_reset(world, wechat_sandbox, app):  # noqa: F811
    app.config["OUTBOX_QUOTA_HOLD_SECONDS"] = 3600  # ended below by moving the reset, not by waiting for it
    resident_id = subscribed_resident(wechat_sandbox, "o-res-1")
    for _ in range(5):
        queue(outbox_item(world, resident_id), "item_received", resident_id=resident_id)
    wechat_sandbox.fault(SEND, "quota", times=1)
    worker.run_once(20)
    assert wechat_sandbox.stats()[SEND] == 1
    assert set(outbox_statuses().values()) == {"held"}
    for _ in range(3):  # during the hold nobody calls WeChat
        assert worker.run_once(20) == 0
    assert wechat_sandbox.stats()[SEND] == 1
    past = utcnow() - timedelta(seconds=1)  # the reset comes
    db.session.execute(
        update(ThrottleCounter).where(ThrottleCounter.key == worker.QUOTA_HOLD_KEY).values(expires_at=past)
    )
    db.session.execute(update(OutboxMessage).values(next_attempt_at=past))
    db.session.commit()
    drain()
    assert_each_once(wechat_sandbox, 5)
    assert wechat_sandbox.stats()[SEND] == 6


def test_a_token_refused_forever_makes_a_bounded_number_of_fetches_then_a_clear_error(world, wechat_sandbox, app):  # noqa: F811
    app.config.update(OUTBOX_MAX_ATTEMPTS=3, OUTBOX_BACKOFF_BASE_SECONDS=0.01)
    resident_id = subscribed_resident(wechat_sandbox, "o-res-1")
    message_id = queue(outbox_item(world, resident_id), "item_received", resident_id=resident_id)
    wechat_sandbox.fault(SEND, "invalid_token", times=-1)
    drain(30)
    message = outbox_row(message_id)
    assert message.status == OutboxStatus.DEAD
    assert "access token refused (40001)" in message.last_error
    assert "WECHAT_APP" in message.last_error
    fetches = wechat_sandbox.stats()[TOKEN]
    limit = app.config["WECHAT_TOKEN_REFRESH_LIMIT"]
    assert 1 <= fetches <= 3 * (limit + 1)
    assert credits_of("o-res-1", PROGRESS) == 10  # the reservation came back with the dead letter


def test_43101_fails_without_retry_and_the_tracking_page_still_shows_the_answer(world, wechat_sandbox, client):  # noqa: F811
    resident_id = make_resident("o-res-1", credits=3)  # we think three are left; WeChat knows none
    wechat_sandbox.subscribe("o-res-1", PROGRESS, 1)  # the sandbox knows the user, no answered credit
    item_id = outbox_item(world, resident_id)
    item = db.session.get(Item, item_id)
    user = db.session.get(StaffUser, world.staff_user_id)
    perform_action(item, user, "accept")
    perform_action(item, user, "reply", text="路灯已于今天上午修复，感谢您的反映。")
    db.session.commit()
    ref, key = item.ref, item.access_key
    answered = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.kind == "item_answered"))
    db.session.execute(update(OutboxMessage).where(OutboxMessage.kind != "item_answered").values(status="skipped"))
    db.session.commit()
    drain()
    message = outbox_row(answered)
    assert message.status == OutboxStatus.FAILED and message.last_error.startswith("43101")
    assert credits_of("o-res-1", ANSWERED) == 0  # WeChat says none is left
    calls = wechat_sandbox.stats()[SEND]
    for _ in range(5):
        worker.run_once(20)
    assert wechat_sandbox.stats()[SEND] == calls == 1  # never retried
    page = client.get(f"/t/{ref}?k={key}")
    assert page.status_code == 200
    assert "路灯已于今天上午修复" in page.get_data(as_text=True)


def test_unknown_user_and_template_fail_for_good(world, wechat_sandbox, app):  # noqa: F811
    stranger = make_resident("o-never-seen", credits=1)  # WeChat does not know this openid: 40003
    stranger_msg = queue(outbox_item(world, stranger), "item_received", resident_id=stranger)
    drain()
    assert outbox_row(stranger_msg).status == OutboxStatus.FAILED and outbox_row(stranger_msg).last_error.startswith(
        "40003"
    )
    assert credits_of("o-never-seen", PROGRESS) == 1  # nothing was sent: the credit is free again
    templates = json.loads(json.dumps(app.config["WECHAT_TEMPLATES"]))
    templates["item_progress"]["id"] = "tpl-withdrawn"  # removed in the console: 40037
    app.config["WECHAT_TEMPLATES"] = templates
    resident_id = make_resident("o-res-1", credits=1, templates=("tpl-withdrawn",))
    wechat_sandbox.subscribe("o-res-1", PROGRESS, 1)
    withdrawn = queue(outbox_item(world, resident_id), "item_received", resident_id=resident_id)
    drain()
    assert outbox_row(withdrawn).status == OutboxStatus.FAILED and outbox_row(withdrawn).last_error.startswith("40037")


def test_dead_letters_are_listed_and_retried_by_an_administrator(world, wechat_sandbox, app, runner):  # noqa: F811
    app.config["OUTBOX_MAX_ATTEMPTS"] = 2
    resident_id = subscribed_resident(wechat_sandbox, "o-res-1")
    message_id = queue(outbox_item(world, resident_id), "item_received", resident_id=resident_id)
    wechat_sandbox.fault(SEND, "busy", times=-1)
    drain()
    assert outbox_row(message_id).status == OutboxStatus.DEAD
    listing = runner.invoke(args=["outbox", "dead"]).output
    assert f"{message_id}\tdead\titem_received" in listing and "-1 system error" in listing
    wechat_sandbox.clear_faults()
    assert runner.invoke(args=["outbox", "retry", "--all-dead"]).exit_code == 0
    drain()
    assert_each_once(wechat_sandbox, 1)
    assert runner.invoke(args=["outbox", "dead"]).output.strip() == "no dead or failed messages"


def test_a_database_hiccup_while_recording_a_sent_message_is_retried(world, wechat_sandbox, monkeypatch):  # noqa: F811
    from sqlalchemy.exc import OperationalError

    resident_id = subscribed_resident(wechat_sandbox, "o-res-1")
    message_id = queue(outbox_item(world, resident_id), "item_received", resident_id=resident_id)
    real_record = worker.record
    failures = [OperationalError("UPDATE", {}, Exception("database is locked"))]

    def flaky_record(claim_, outcome):  # the fault: the database refuses once (cannot be caused on demand)
        if failures:
            raise failures.pop()
        return real_record(claim_, outcome)

    monkeypatch.setattr(worker, "record", flaky_record)
    assert worker.run_once(20) == 1
    assert not failures and outbox_row(message_id).status == OutboxStatus.SENT
    assert_each_once(wechat_sandbox, 1)


def test_flask_outbox_run_once_delivers_what_is_due_and_exits(world, wechat_sandbox, runner):  # noqa: F811
    resident_id = subscribed_resident(wechat_sandbox, "o-res-1")
    for _ in range(3):
        queue(outbox_item(world, resident_id), "item_received", resident_id=resident_id)
    result = runner.invoke(args=["outbox", "run", "--once", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "3 message(s) settled" in result.output
    assert_each_once(wechat_sandbox, 3)
    status = runner.invoke(args=["outbox", "status"]).output
    assert "sent     3" in status


# --- real worker processes ----------------------------------------------------------------


def worker_env(app, sandbox, tmp_path: Path, **settings) -> dict[str, str]:
    """The environment of a ``flask outbox run`` subprocess on the test's database and sandbox."""
    defaults = dict(
        SECRET_KEY="worker-test",
        **wechat_settings(sandbox.url, timeout_seconds=2),
        OUTBOX_BACKOFF_BASE_SECONDS="0.05",
        OUTBOX_BACKOFF_MAX_SECONDS="0.5",
        WECHAT_TEMPLATES=json.dumps(app.config["WECHAT_TEMPLATES"]),  # one-time, as the test's app has them
        NOTICE_COALESCE_SECONDS=str(app.config["NOTICE_COALESCE_SECONDS"]),
    )
    return flask_process_env(app, tmp_path, **{**defaults, **settings})


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """A ``flask outbox run`` process; its output in ``log``."""
    return start_flask(env, log, "outbox", "run")


def wait_for(condition, seconds: float, what: str, logs=()) -> None:
    """Wait until ``condition`` holds, failing when no message was finished for ``seconds``; then show the outbox
    and the workers' logs."""

    def describe() -> str:
        return f"outbox {collections.Counter(outbox_statuses().values())}\n{log_tails(logs)}"

    wait_until(condition, what, seconds, describe, progress=unfinished)


def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(world, wechat_sandbox, app, tmp_path):  # noqa: F811
    resident_ids = [subscribed_resident(wechat_sandbox, f"o-res-{i}") for i in range(3)]
    rows = []
    for i in range(30):
        item_id = outbox_item(world, resident_ids[i % 3])
        rows.append({"kind": "item_received", "item_id": item_id, "resident_id": resident_ids[i % 3]})
        rows.append({"kind": "deputy_new_item", "item_id": item_id, "staff_user_id": world.staff_user_id})
    queue_many(rows)
    # The client's timeout is long enough that no ordinary call reaches it on a loaded machine: a
    # call that times out may still have been delivered, and its retry would be a second copy (the
    # window the worker's docstring names). The faulted call hangs longer still, and the worker is
    # killed while it waits. The lease outlasts twice the timeout, as it must.
    env = worker_env(app, wechat_sandbox, tmp_path, OUTBOX_LEASE_SECONDS=31, OUTBOX_BATCH=10, WECHAT_TIMEOUT_SECONDS=15)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = start_worker(env, logs[0])
    try:
        wait_for(lambda: len(received(wechat_sandbox)) >= 15, 120, "the first worker to send", logs)
        # WeChat now answers slowly: the next call hangs, and the worker is killed while it waits.
        # "In flight" is the fault being spent (not the call count going up, which an ordinary call
        # made just before the fault was set would also do, and which may then be delivered before
        # the kill: a second copy the test would blame on the worker).
        wechat_sandbox.fault(SEND, "timeout", times=1, seconds=16)
        wait_for(lambda: not wechat_sandbox.pending_faults(), 120, "the slow call in flight", logs)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop_process(first, signal.SIGKILL)
    sent_before = len(received(wechat_sandbox))
    assert 15 <= sent_before < 60
    leased = db.session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.lease_expires_at.is_not(None))
    )
    db.session.rollback()
    assert leased >= 1, logs[0].read_text()[-3000:]  # the killed worker's claims are still leased…
    second = start_worker(env, logs[1])
    try:
        wait_for(lambda: unfinished() == 0, 90, "the second worker to finish", logs)  # …until the lease expires
    finally:
        stop_process(second)
    assert_each_once(wechat_sandbox, 60, crash_window=True)


@pytest.mark.parametrize("count", [1000])
def test_two_workers_1000_messages_10_percent_transient_errors(world, wechat_sandbox, app, tmp_path, count):  # noqa: F811
    """Run on PostgreSQL (FOR UPDATE SKIP LOCKED) and on SQLite (IMMEDIATE transactions) alike."""
    residents = [subscribed_resident(wechat_sandbox, f"o-res-{i}", credits=20) for i in range(50)]
    rows = []
    for i in range(count // 4):
        resident_id = residents[i % len(residents)]
        item_id = outbox_item(world, resident_id)
        for kind in ("item_received", "item_accepted", "item_answered"):
            rows.append({"kind": kind, "item_id": item_id, "resident_id": resident_id})
        rows.append({"kind": "deputy_new_item", "item_id": item_id, "staff_user_id": world.staff_user_id})
    queue_many(rows)
    assert len(rows) == count

    stop_injecting = threading.Event()
    injected = [0]

    def inject_transient_errors():
        """Keep about one call in ten failing: -1 busy, HTTP 500, or a timeout (504 after 50 ms)."""
        kinds = itertools.cycle(("busy", "http500", "timeout"))
        while not stop_injecting.wait(0.02):
            target = wechat_sandbox.stats().get(SEND, 0) // 10
            if target > injected[0]:
                wechat_sandbox.fault(SEND, next(kinds), times=target - injected[0], seconds=0.05)
                injected[0] = target

    env = worker_env(app, wechat_sandbox, tmp_path, OUTBOX_MAX_ATTEMPTS=20, OUTBOX_LEASE_SECONDS=10)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    injector = threading.Thread(target=inject_transient_errors, daemon=True)
    injector.start()
    started = time.monotonic()
    workers = [start_worker(env, log) for log in logs]
    try:
        wait_for(lambda: unfinished() == 0, 90, "two workers to drain 1,000 messages", logs)
    finally:
        stop_injecting.set()
        injector.join(5)
        for process in workers:
            stop_process(process)
    elapsed = time.monotonic() - started
    retried = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.attempts > 1))
    db.session.rollback()
    assert_each_once(wechat_sandbox, count)
    calls = wechat_sandbox.stats()[SEND]
    assert calls >= count * 1.05 and retried >= count * 0.05, (calls, retried)  # errors really happened
    both_worked = [log.read_text() for log in logs]
    assert all("worker started" in text for text in both_worked)
    print(f"\n{count} messages, {calls} calls, {retried} retried, {elapsed:.1f} s")
