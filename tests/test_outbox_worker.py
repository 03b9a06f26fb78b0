"""The outbox worker's claiming, leases, ordering, credits, backoff and holds (no call to WeChat here)."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from backend import create_app
from backend.extensions import db
from backend.models import AuditEntry, OutboxMessage, OutboxStatus, ThrottleCounter, utcnow
from backend.outbox import worker
from backend.outbox.worker import Outcome
from tests.factories import DEPUTY_TEMPLATE, give_credits, make_resident, outbox_item, outbox_world, queue, queue_many
from tests.helpers import credits_of, make_templates_one_time, outbox_row, outbox_statuses

PROGRESS = "tpl-item-progress"


@pytest.fixture(autouse=True)
def one_time_templates(app):
    """These tests count one-time credits: every template one-time (long-term ones are tested in test_subscriptions);
    and each deputy notice its own message (the coalescing window is tested in test_deputy_notices)."""
    make_templates_one_time(app)
    app.config["NOTICE_COALESCE_SECONDS"] = 0


@pytest.fixture
def world(app, create_deputy):
    """A deputy with a bound WeChat (and credits), one resident with credits, one item of theirs."""
    w = outbox_world()
    give_credits(w.deputy_openid, 5, (DEPUTY_TEMPLATE,))
    w.resident_id = make_resident("o-res-1", credits=3)
    w.item_id = outbox_item(w, w.resident_id)
    db.session.commit()
    return w


def _expire_lease(message_id: int) -> None:
    db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(lease_expires_at=utcnow() - timedelta(1))
    )
    db.session.commit()


def test_claim_takes_a_due_row_with_a_lease_and_a_token(world, app):
    message_id = queue(world.item_id, "item_received", resident_id=world.resident_id)
    claims, settled, hold = worker.claim(10)
    assert (settled, hold) == (0, None)
    assert [c.id for c in claims] == [message_id]
    message = outbox_row(message_id)
    # A claim is not a send: the claim's token is its own count; the credit is set aside once.
    assert (message.attempts, message.lease_token, claims[0].token) == (0, 1, 1)
    assert message.has_reserved_credit is True and credits_of("o-res-1", PROGRESS) == 2
    lease = message.lease_expires_at - utcnow()
    assert (
        timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"] - 5)
        < lease
        <= timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
    )
    assert claims[0].notice.openid == "o-res-1"
    assert claims[0].notice.template_id == PROGRESS
    # Leased: nobody else takes it.
    assert worker.claim(10)[0] == []


def test_an_expired_lease_is_taken_over_and_the_old_holder_writes_nothing(world):
    message_id = queue(world.item_id, "item_received", resident_id=world.resident_id)
    [first] = worker.claim(10)[0]
    _expire_lease(message_id)
    [second] = worker.claim(10)[0]
    assert second.token == first.token + 1
    # The first worker comes back from a slow call: its result is refused.
    assert worker.record(first, Outcome("sent")) is False
    assert outbox_row(message_id).status == OutboxStatus.PENDING
    assert worker.record(second, Outcome("sent")) is True
    message = outbox_row(message_id)
    assert message.status == OutboxStatus.SENT and message.sent_at is not None and message.lease_expires_at is None
    # A take-over does not reserve a second credit: 3 accepted, one spent.
    assert credits_of("o-res-1", PROGRESS) == 2


def test_rows_not_yet_due_are_left(world):
    queue(world.item_id, "item_received", resident_id=world.resident_id, next_attempt_at=utcnow() + timedelta(60))
    assert worker.claim(10) == ([], 0, None)


def test_one_item_one_recipient_in_order_others_in_parallel(world):
    first = queue(world.item_id, "item_received", resident_id=world.resident_id)
    second = queue(world.item_id, "item_accepted", resident_id=world.resident_id)
    deputy = queue(world.item_id, "deputy_new_item", staff_user_id=world.staff_user_id)
    claims = worker.claim(10)[0]
    assert sorted(c.id for c in claims) == [first, deputy]  # the second waits for the first
    by_id = {c.id: c for c in claims}
    worker.record(by_id[first], Outcome("retry", "HTTP error: 500"))
    db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    db.session.commit()
    # Still unfinished: the second keeps waiting, the first is claimed again.
    assert [c.id for c in worker.claim(10)[0]] == [first]
    _expire_lease(first)
    [again] = worker.claim(10)[0]
    worker.record(again, Outcome("sent"))
    assert [c.id for c in worker.claim(10)[0]] == [second]


def test_skipped_without_identity_channel_or_credit(world):
    no_openid = make_resident(None)
    no_credit = make_resident("o-res-2", credits=0)
    a = queue(world.item_id, "item_received", resident_id=no_openid)
    b = queue(world.item_id, "item_received", resident_id=no_credit)
    c = queue(world.item_id, "department_new_item", payload={"forward_id": 1})
    d = queue(world.item_id, "no_such_kind", resident_id=world.resident_id)
    claims, settled, _ = worker.claim(10)
    assert claims == [] and settled == 4
    assert outbox_statuses() == {a: "skipped", b: "skipped", c: "skipped", d: "failed"}
    assert "no WeChat identity" in outbox_row(a).last_error
    assert "no subscription left" in outbox_row(b).last_error
    assert "no WeChat identity" in outbox_row(c).last_error  # a department without accounts: no recipient
    assert "no notification is defined" in outbox_row(d).last_error
    assert all(outbox_row(i).attempts == 0 for i in (a, b, c))


def test_the_last_credit_goes_to_one_message_only(world):
    give_credits("o-res-1", 1)
    items = [outbox_item(world, world.resident_id) for _ in range(3)]
    ids = [queue(i, "item_received", resident_id=world.resident_id) for i in items]
    claims, settled, _ = worker.claim(10)
    assert [c.id for c in claims] == ids[:1] and settled == 2
    assert credits_of("o-res-1", PROGRESS) == 0


def test_concurrent_claims_take_disjoint_rows_and_never_overspend(world, app):
    give_credits("o-res-1", 30)
    items = [outbox_item(world, world.resident_id) for _ in range(40)]
    queue_many([{"kind": "item_received", "item_id": i, "resident_id": world.resident_id} for i in items])
    taken: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claimer():
        try:
            with app.app_context():
                barrier.wait()
                mine: list[int] = []
                while True:
                    claims, _settled, _hold = worker.claim(3)
                    if not claims and not _settled:
                        break
                    mine += [c.id for c in claims]
                taken.append(mine)
                db.session.remove()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    every = [i for mine in taken for i in mine]
    assert len(every) == len(set(every)) == 30  # 30 credits: 30 claims, no row twice
    assert credits_of("o-res-1", PROGRESS) == 0
    assert sorted(outbox_statuses().values()).count("skipped") == 10


def test_backoff_is_full_jitter_capped(app):
    app.config.update(OUTBOX_BACKOFF_BASE_SECONDS=5, OUTBOX_BACKOFF_MAX_SECONDS=3600)
    rng = random.Random(7)
    for attempts, cap in [(1, 5), (2, 10), (3, 20), (8, 640), (12, 3600), (40, 3600), (5000, 3600)]:
        delays = [worker.backoff_delay(attempts, rng) for _ in range(400)]
        assert all(0 <= d <= cap for d in delays), attempts
        assert max(delays) > cap * 0.9 and min(delays) < cap * 0.1  # spread over the whole range


def test_transient_errors_retry_later_then_dead_letter_returns_the_credit(world, app):
    app.config.update(OUTBOX_MAX_ATTEMPTS=3, OUTBOX_BACKOFF_BASE_SECONDS=100)
    message_id = queue(world.item_id, "item_received", resident_id=world.resident_id)
    for attempt in (1, 2):
        [claim_] = worker.claim(10)[0]
        assert claim_.token == attempt
        before = utcnow()
        worker.record(claim_, Outcome("retry", "-1 system busy", -1))
        message = outbox_row(message_id)
        assert message.status == OutboxStatus.PENDING and message.lease_expires_at is None
        assert message.attempts == attempt  # one send each time
        assert before <= message.next_attempt_at <= before + timedelta(seconds=100 * 2 ** (attempt - 1) + 1)
        assert message.last_error == "-1 system busy"
        assert credits_of("o-res-1", PROGRESS) == 2  # still reserved
        db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
        db.session.commit()
    [claim_] = worker.claim(10)[0]
    worker.record(claim_, Outcome("retry", "HTTP error: 503"))
    message = outbox_row(message_id)
    assert (message.status, message.attempts, message.last_error) == (OutboxStatus.DEAD, 3, "HTTP error: 503")
    assert credits_of("o-res-1", PROGRESS) == 3  # given back
    assert message.has_reserved_credit is False


def test_claims_given_back_are_not_sends_and_never_spend_the_retry_budget(world, app):
    """Finding 9: ``attempts`` counted claims, so a row released or held often passed OUTBOX_MAX_ATTEMPTS
    (or died) with few sends. Now it counts calls to WeChat; holds and releases are counted apart."""
    app.config.update(OUTBOX_MAX_ATTEMPTS=3, OUTBOX_BACKOFF_BASE_SECONDS=100)
    message_id = queue(world.item_id, "item_received", resident_id=world.resident_id)
    stop = threading.Event()
    stop.set()  # a stopping worker gives every claim back unsent
    for _ in range(5):
        claims = worker.claim(10)[0]
        assert [c.id for c in claims] == [message_id]
        assert worker.deliver(claims, stop) == 0
    message = outbox_row(message_id)
    assert (message.attempts, message.releases, message.lease_token) == (0, 5, 5)
    assert message.status == OutboxStatus.PENDING and credits_of("o-res-1", PROGRESS) == 2  # one credit set aside

    # Held for WeChat's quota: a send that met 45009 counts as a send and a hold; the rest of the batch as a hold.
    other = queue(outbox_item(world, world.resident_id), "item_received", resident_id=world.resident_id)
    app.config["OUTBOX_QUOTA_HOLD_SECONDS"] = 0.01
    claims = worker.claim(10)[0]
    worker.record(claims[0], Outcome("quota", "45009 reach max api daily quota limit", 45009))
    worker.release(claims[1:], hold_until=worker.quota_hold_until(utcnow()))
    sent_and_held, held = outbox_row(claims[0].id), outbox_row(claims[1].id)
    assert (sent_and_held.attempts, sent_and_held.quota_holds, sent_and_held.status) == (1, 1, OutboxStatus.HELD)
    assert (held.attempts, held.quota_holds, held.status) == (0, 1, OutboxStatus.HELD)
    assert {c.id for c in claims} == {message_id, other}

    # The whole budget of sends is left: dead after exactly OUTBOX_MAX_ATTEMPTS calls, never more.
    db.session.execute(update(ThrottleCounter).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    sends = outbox_row(message_id).attempts
    while outbox_row(message_id).status == OutboxStatus.PENDING or outbox_row(message_id).status == OutboxStatus.HELD:
        db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
        db.session.commit()
        claim_ = next(c for c in worker.claim(10)[0] if c.id == message_id)
        worker.record(claim_, Outcome("retry", "-1 system busy", -1))
        sends += 1
    message = outbox_row(message_id)
    assert (message.status, message.attempts) == (OutboxStatus.DEAD, 3) and sends == 3
    assert (message.releases, message.quota_holds) == (5, 1)  # kept apart, as they were
    assert message.lease_token == 5 + 1 + (3 - 1)  # every claim: released, held, and the sends after the hold


def test_the_token_error_names_the_real_settings():
    """Finding 9: the log line named WECHAT_APP_ID / WECHAT_APP_SECRET, which no setting is called."""
    from wechatpy.exceptions import WeChatClientException

    outcome = worker.classify(WeChatClientException(40001, "invalid credential"))
    assert outcome.kind == "auth" and "WECHAT_APPID" in outcome.error and "WECHAT_SECRET" in outcome.error
    assert "APP_ID" not in outcome.error and "APP_SECRET" not in outcome.error


def test_permanent_failures_are_not_retried_and_43101_zeroes_the_credits(world):
    refused = queue(world.item_id, "item_received", resident_id=world.resident_id)
    [claim_] = worker.claim(10)[0]
    worker.record(claim_, Outcome("failed", "43101 user refuse to accept the msg", 43101))
    assert outbox_row(refused).status == OutboxStatus.FAILED
    assert credits_of("o-res-1", PROGRESS) == 0
    give_credits("o-res-1", 2)
    db.session.commit()
    item2 = outbox_item(world, world.resident_id)
    invalid = queue(item2, "item_received", resident_id=world.resident_id)
    [claim_] = worker.claim(10)[0]
    worker.record(claim_, Outcome("failed", "47003 argument invalid! data.thing3.value", 47003))
    assert outbox_row(invalid).status == OutboxStatus.FAILED
    assert credits_of("o-res-1", PROGRESS) == 2  # WeChat sent nothing: the credit is free again
    assert worker.claim(10) == ([], 0, None)


def test_quota_holds_every_claim_until_the_reset(world, app):
    app.config["OUTBOX_QUOTA_HOLD_SECONDS"] = 3600
    first = queue(world.item_id, "item_received", resident_id=world.resident_id)
    other = queue(outbox_item(world, world.resident_id), "item_received", resident_id=world.resident_id)
    claims = worker.claim(10)[0]
    assert [c.id for c in claims] == [first, other]
    worker.record(claims[0], Outcome("quota", "45009 reach max api daily quota limit", 45009))
    worker.release(claims[1:], hold_until=worker.quota_hold_until(utcnow()))
    assert outbox_statuses() == {first: "held", other: "held"}
    hold = db.session.get(ThrottleCounter, worker.QUOTA_HOLD_KEY).expires_at
    db.session.rollback()
    assert timedelta(minutes=59) < hold - utcnow() <= timedelta(hours=1)
    queue(outbox_item(world, world.resident_id), "item_received", resident_id=world.resident_id)
    claims, settled, held_until = worker.claim(10)
    assert (claims, settled) == ([], 0) and held_until == hold
    assert worker.run_once(10) == 0
    # The quota resets: held rows go out again, without a second credit.
    db.session.execute(update(ThrottleCounter).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    db.session.commit()
    claims = worker.claim(10)[0]
    assert len(claims) == 3
    assert credits_of("o-res-1", PROGRESS) == 0


def test_quota_reset_is_the_next_midnight_in_china():
    china_afternoon = datetime(2026, 11, 21, 7, 1, tzinfo=UTC)  # 15:01 in China
    assert worker.next_quota_reset(china_afternoon) == datetime(2026, 11, 21, 16, 0, tzinfo=UTC)
    just_after_midnight = datetime(2026, 11, 21, 16, 0, 1, tzinfo=UTC)  # 00:00:01 on the 22nd in China
    assert worker.next_quota_reset(just_after_midnight) == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert worker.next_quota_reset(datetime(2026, 12, 31, 20, 0, tzinfo=UTC)) == datetime(2027, 1, 1, 16, 0, tzinfo=UTC)


def test_quota_hold_defaults_to_the_midnight_reset(app):
    assert app.config["OUTBOX_QUOTA_HOLD_SECONDS"] is None
    now = utcnow()
    assert worker.quota_hold_until(now) == worker.next_quota_reset(now)


def test_token_trouble_pauses_every_worker(world, app):
    app.config.update(OUTBOX_BACKOFF_BASE_SECONDS=10)
    message_id = queue(world.item_id, "item_received", resident_id=world.resident_id)
    [claim_] = worker.claim(10)[0]
    worker.record(claim_, Outcome("auth", "access token refused (40001)", 40001))
    assert outbox_row(message_id).status == OutboxStatus.PENDING
    claims, _, hold = worker.claim(10)
    assert claims == [] and hold is not None and hold > utcnow() + timedelta(seconds=15)


def test_a_claim_without_time_left_is_released_not_sent(world, app, monkeypatch):
    message_id = queue(world.item_id, "item_received", resident_id=world.resident_id)
    [claim_] = worker.claim(10)[0]
    late = worker.Claim(claim_.id, claim_.token, utcnow() + timedelta(seconds=1), claim_.notice)

    def no_send(_notice):  # the check must come first; reaching WeChat here is the bug
        raise AssertionError("sent with too little lease left")

    monkeypatch.setattr(worker, "send", no_send)
    assert worker.deliver([late]) == 0
    message = outbox_row(message_id)
    assert message.status == OutboxStatus.PENDING and message.lease_expires_at is None


def test_settings_are_read_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("OUTBOX_LEASE_SECONDS", "7.5")
    monkeypatch.setenv("OUTBOX_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("OUTBOX_QUOTA_HOLD_SECONDS", "30")
    monkeypatch.setenv("WECHAT_TEMPLATES", '{"item_progress": {"id": "tpl-x", "fields": {"thing1": "summary"}}}')
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["OUTBOX_LEASE_SECONDS"] == 7.5
    assert app.config["OUTBOX_MAX_ATTEMPTS"] == 4
    assert app.config["OUTBOX_QUOTA_HOLD_SECONDS"] == 30
    assert app.config["WECHAT_TEMPLATES"]["item_progress"]["id"] == "tpl-x"


# --- the CLI ------------------------------------------------------------------------------


def _dead_row(world, reason="HTTP error: 502") -> int:
    message_id = queue(world.item_id, "item_received", resident_id=world.resident_id)
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status=OutboxStatus.DEAD, attempts=8, last_error=reason)
    )
    db.session.commit()
    return message_id


def test_cli_lists_dead_and_failed_with_reasons(world, runner):
    dead = _dead_row(world)
    assert runner.invoke(args=["outbox", "dead"]).output.strip().startswith(f"{dead}\tdead\titem_received")
    assert "HTTP error: 502" in runner.invoke(args=["outbox", "dead"]).output
    status = runner.invoke(args=["outbox", "status"]).output
    assert "dead     1" in status


def test_cli_retries_one_or_all_dead(world, runner):
    first = _dead_row(world)
    second = _dead_row(world, "timeout")
    result = runner.invoke(args=["outbox", "retry", str(first)])
    assert result.exit_code == 0, result.output
    message = outbox_row(first)
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 0)
    assert outbox_row(second).status == OutboxStatus.DEAD
    result = runner.invoke(args=["outbox", "retry", "--all-dead"])
    assert "1 message(s) back to pending" in result.output
    assert outbox_row(second).status == OutboxStatus.PENDING
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "outbox_retry").limit(1))
    db.session.rollback()
    # Pending rows are not "retried"; unknown ids are named.
    assert runner.invoke(args=["outbox", "retry", str(first)]).exit_code != 0
    assert "no outbox message 999999" in runner.invoke(args=["outbox", "retry", "999999"]).output
    assert runner.invoke(args=["outbox", "retry"]).exit_code != 0


def test_cli_retry_reserves_a_credit_again(world, runner):
    dead = _dead_row(world)
    runner.invoke(args=["outbox", "retry", str(dead)])
    [claim_] = worker.claim(10)[0]
    assert claim_.id == dead and claim_.token == 1
    assert credits_of("o-res-1", PROGRESS) == 2


# --- overdue reminders --------------------------------------------------------------------


def test_overdue_items_earn_one_reminder_per_deadline(world, runner):
    from backend.models import Item

    item = db.session.get(Item, world.item_id)
    item.due_at = utcnow() - timedelta(hours=1)
    held = db.session.get(Item, outbox_item(world, world.resident_id))
    held.due_at, held.is_held = utcnow() - timedelta(hours=1), True
    db.session.commit()
    assert worker.queue_overdue() == 1
    assert worker.queue_overdue() == 0  # once per deadline, also with two workers scanning
    assert "0 overdue reminder(s) queued" in runner.invoke(args=["outbox", "overdue"]).output
    reminder = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "deputy_item_overdue"))
    assert (reminder.item_id, reminder.staff_user_id) == (world.item_id, world.staff_user_id)
    db.session.rollback()
    [claim_] = worker.claim(10)[0]
    assert claim_.notice.data["phrase2"]["value"] == "已超期"
    worker.record(claim_, Outcome("sent"))
    # Reminded three hours ago; the deadline was then extended, and the new one has passed: a new reminder.
    db.session.execute(update(OutboxMessage).values(created_at=utcnow() - timedelta(hours=3)))
    item = db.session.get(Item, world.item_id)
    item.due_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    assert worker.queue_overdue() == 1


def test_a_stopping_worker_gives_its_claims_back(world):
    message_id = queue(world.item_id, "item_received", resident_id=world.resident_id)
    claims = worker.claim(10)[0]
    stop = threading.Event()
    stop.set()
    assert worker.deliver(claims, stop) == 0
    message = outbox_row(message_id)
    assert message.status == OutboxStatus.PENDING and message.lease_expires_at is None
    assert [c.id for c in worker.claim(10)[0]] == [message_id]  # at once, not after the lease


def test_messages_waiting_for_an_earlier_one_never_starve_others(world):
    long_item = world.item_id
    waiting = [queue(long_item, "item_accepted", resident_id=world.resident_id) for _ in range(10)]
    give_credits("o-res-1", 20)
    db.session.commit()
    other = queue(outbox_item(world, world.resident_id), "item_received", resident_id=world.resident_id)
    [first] = worker.claim(2)[0]  # a window of 6: the first of the long item, five of its followers
    assert first.id == waiting[0]
    second = worker.claim(2)[0]  # the followers moved out of the way: the other item goes now
    assert [c.id for c in second] == [other]
    assert worker.claim(2) == ([], 0, None)
    worker.record(first, Outcome("sent"))  # …and its end wakes the next one of its item
    [nxt] = worker.claim(2)[0]
    assert nxt.id == waiting[1]
    assert all(outbox_row(i).attempts == 0 for i in waiting[2:])
