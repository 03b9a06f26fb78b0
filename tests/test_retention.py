"""Retention: items closed more than RETENTION_DAYS ago lose the resident's personal data; the figures do not change.

Bad inputs tried: ``--as-of`` in the future, ``--as-of`` that is not a date, RETENTION_DAYS of 0; a second
run (idempotent); the worker's daily run twice on one day.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.items import retention
from backend.items.photo_store import photo_store
from backend.models import (
    Item,
    ItemEvent,
    ItemEventKind,
    ItemPhoto,
    ItemStatus,
    OutboxMessage,
    OutboxStatus,
)
from backend.outbox import worker
from backend.stations.calendar import today_in_china
from backend.supervision import stats
from tests.factories import act, make_item, with_photo_and_resident
from tests.helpers import audit_rows, outbox_worker_running, wait_until

DAYS = 1095
PHONE_IN_TEXT = "我的电话138 1234 5678，晚上打"


def backdate(item: Item, days: int) -> None:
    """Move the item and every step of it ``days`` into the past, as if it had happened then."""
    delta = timedelta(days=days)
    for event in db.session.scalars(select(ItemEvent).where(ItemEvent.item_id == item.id)):
        event.created_at -= delta
    for column in ("created_at", "accepted_at", "first_answered_at", "resolved_at", "rated_at", "due_at"):
        value = getattr(item, column)
        if value is not None:
            setattr(item, column, value - delta)
    db.session.commit()


def resolved_item(world, days_ago: int, **kwargs) -> Item:
    item = make_item(world.d1, body=f"路灯坏了。{PHONE_IN_TEXT}", **kwargs)
    deputy = world.users["deputy"]
    act(item, deputy, "accept")
    act(item, deputy, "reply", text="已联系王桂芳（13812341234），下周修好。")
    act(item, deputy, "resolve", outcome="solved")
    backdate(item, days_ago)
    return item


def county_figures(world) -> dict:
    today = today_in_china()
    rng = stats.DateRange(start=today.replace(day=1) - timedelta(days=4 * 365), end=today + timedelta(days=1))
    figures = stats.compute(stats.Scope("region", region=world.county), rng, with_children=True)
    return stats.figures_json(figures)


def anonymised(item: Item) -> bool:
    return (
        db.session.scalar(
            select(func.count()).where(ItemEvent.item_id == item.id, ItemEvent.kind == ItemEventKind.ANONYMISED)
        )
        == 1
    )


@pytest.fixture
def history(world):
    """Items of every closed kind past retention, others just inside it, open ones and a reopened one."""
    old_resolved = with_photo_and_resident(resolved_item(world, DAYS + 5))
    # Rated before it was backdated: the verdict must survive.
    rated = resolved_item(world, 0)
    from backend.items.lifecycle import rate_item

    rate_item(rated, "basically", True, "")
    db.session.commit()
    backdate(rated, DAYS + 40)
    recent_resolved = resolved_item(world, DAYS - 5)
    old_declined = make_item(world.d1, body=PHONE_IN_TEXT)
    act(old_declined, world.users["deputy"], "decline", text="不属于代表职责。")
    backdate(old_declined, DAYS + 1)
    old_duplicate = make_item(world.d2, body=PHONE_IN_TEXT)
    act(old_duplicate, world.users["deputy2"], "duplicate", duplicate_of=old_resolved.ref)
    backdate(old_duplicate, DAYS + 100)
    old_open = make_item(world.d1, body=PHONE_IN_TEXT)
    backdate(old_open, DAYS + 300)
    old_withdrawn = make_item(world.d2, body=PHONE_IN_TEXT)
    retention.withdraw_item(old_withdrawn)
    db.session.commit()
    backdate(old_withdrawn, DAYS + 2)
    reopened = resolved_item(world, 0)
    rate_item(reopened, "unsatisfied", False, "没修好")
    db.session.commit()
    backdate(reopened, DAYS + 10)
    return {
        "old_resolved": old_resolved,
        "rated": rated,
        "recent_resolved": recent_resolved,
        "old_declined": old_declined,
        "old_duplicate": old_duplicate,
        "old_withdrawn": old_withdrawn,
        "old_open": old_open,
        "reopened": reopened,
    }


def test_items_closed_past_retention_are_anonymised_and_the_figures_do_not_change(app, world, history):
    assert app.config["RETENTION_DAYS"] == DAYS  # the consent text's three years
    before = county_figures(world)
    rated_before = (history["rated"].satisfaction, history["rated"].rated_at, history["rated"].resolved_at)

    assert (before["received"], before["resolved"], before["declined"], before["duplicate"]) == (8, 3, 1, 1)
    assert (before["withdrawn"], before["valid"], before["rated"]) == (1, 5, 2)  # the reopened one keeps its verdict
    keys = [photo.storage_key for photo in history["old_resolved"].photos]
    assert keys and all(photo_store().get(key) for key in keys)
    assert retention.run_retention() == 5
    db.session.commit()
    db.session.expire_all()

    for name in ("old_resolved", "rated", "old_declined", "old_duplicate", "old_withdrawn"):
        item = db.session.get(Item, history[name].id)
        assert anonymised(item), name
        assert (item.contact_name, item.contact_phone, item.resident_id) == ("", "", None), name
        assert "138 1234 5678" not in item.body and "138****5678" in item.body, name
    old = db.session.get(Item, history["old_resolved"].id)
    assert old.photos == []
    assert [photo_store().get(key) for key in keys] == [None] * len(keys)  # the bytes too, after the commit
    reply = next(e for e in old.events if e.kind == ItemEventKind.REPLIED)
    assert reply.body == "已联系王**（138****1234），下周修好。"
    notice = db.session.scalar(select(OutboxMessage).where(OutboxMessage.item_id == old.id))
    assert notice.status == OutboxStatus.SKIPPED and notice.resident_id is None
    rated = db.session.get(Item, history["rated"].id)
    assert (rated.satisfaction, rated.rated_at, rated.resolved_at) == rated_before
    assert rated.status == ItemStatus.RESOLVED and rated.deputy_id == world.d1.id

    # Inside retention, open, or reopened after a verdict: untouched.
    for name in ("recent_resolved", "old_open", "reopened"):
        item = db.session.get(Item, history[name].id)
        assert not anonymised(item), name
        assert item.contact_phone == "13812341234" and "138 1234 5678" in item.body, name

    assert county_figures(world) == before
    [entry] = audit_rows("retention_run")
    assert entry.data["anonymised"] == 5 and entry.data["as_of"] == today_in_china().isoformat()
    assert entry.data["by"] == "cli"


def test_a_second_run_changes_nothing(app, world, history):
    keys = [photo.storage_key for photo in history["old_resolved"].photos]
    assert keys and all(photo_store().get(key) for key in keys)
    assert retention.run_retention() == 5
    db.session.commit()
    assert retention.run_retention() == 0
    db.session.commit()
    assert [e.data["anonymised"] for e in audit_rows("retention_run")] == [5, 0]
    events = db.session.scalar(select(func.count()).where(ItemEvent.kind == ItemEventKind.ANONYMISED))
    assert events == 5


def test_as_of_runs_as_on_another_day(app, runner, world, history):
    # A year ago, nothing of this history was past retention yet… except nothing: all closed later than that cutoff.
    year_ago = today_in_china() - timedelta(days=365)
    result = runner.invoke(args=["retention", "run", "--as-of", year_ago.isoformat()])
    assert result.exit_code == 0, result.output
    assert "本次匿名化 0 件" in result.output
    result = runner.invoke(args=["retention", "run"])
    assert result.exit_code == 0 and "本次匿名化 5 件" in result.output
    assert [e.data["as_of"] for e in audit_rows("retention_run")] == [
        year_ago.isoformat(),
        today_in_china().isoformat(),
    ]


@pytest.mark.parametrize(
    "as_of, message",
    [
        ("tomorrow", "晚于今天"),
        ("2026-13-01", "应为日期"),
        ("not-a-date", "应为日期"),
    ],
)
def test_bad_as_of_is_refused_and_nothing_changes(app, runner, world, history, as_of, message):
    if as_of == "tomorrow":
        as_of = (today_in_china() + timedelta(days=1)).isoformat()
    digest = _snapshot()
    result = runner.invoke(args=["retention", "run", "--as-of", as_of])
    assert result.exit_code != 0
    assert message in result.output and "未做任何更改" in result.output
    db.session.expire_all()
    assert _snapshot() == digest
    assert audit_rows("retention_run") == []


def test_a_retention_period_below_one_day_is_refused(app, runner, world, history):
    app.config["RETENTION_DAYS"] = 0
    digest = _snapshot()
    result = runner.invoke(args=["retention", "run"])
    assert result.exit_code != 0 and "RETENTION_DAYS" in result.output
    db.session.expire_all()
    assert _snapshot() == digest


def test_the_worker_runs_it_once_a_day(app, world, history):
    assert worker.run_retention_daily() == 5
    assert worker.run_retention_daily() is None  # today's run is recorded: not again
    [entry] = audit_rows("retention_run")
    assert entry.data["by"] == "worker" and entry.data["anonymised"] == 5
    # A run by hand as of another day does not count as today's.
    db.session.delete(entry)
    db.session.commit()
    retention.run_retention(today_in_china() - timedelta(days=1))
    db.session.commit()
    assert worker.run_retention_daily() == 0
    assert [e.data["by"] for e in audit_rows("retention_run")] == ["cli", "worker"]


def test_the_worker_loop_runs_retention_while_it_runs(app, world, history):
    """The worker's periodic scan (overdue reminders, throttle purge) runs retention too, in its own loop."""
    app.config.update(OUTBOX_OVERDUE_SCAN_SECONDS=0.05, OUTBOX_IDLE_SECONDS=0.02)
    with outbox_worker_running(app) as stop:
        # Each look a transaction of its own, to see the worker's commits.
        wait_until(lambda: db.session.rollback() or audit_rows("retention_run"), "the worker loop's retention run")
        db.session.rollback()
        stop.wait(0.3)  # several more scans: still one run today
    [entry] = audit_rows("retention_run")
    assert entry.data["by"] == "worker" and entry.data["anonymised"] == 5


def _snapshot() -> str:
    """A digest of every column of every item, event and photo: to show that nothing changed."""
    rows = []
    for model in (Item, ItemEvent, ItemPhoto, OutboxMessage):
        for row in db.session.scalars(select(model).order_by(model.id)):
            rows.append(repr(sorted((c.key, repr(getattr(row, c.key))) for c in model.__table__.columns)))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def test_items_closed_after_the_cutoff_wait(app, world):
    item = resolved_item(world, DAYS)  # resolved today three years ago: not yet "more than" RETENTION_DAYS
    assert retention.run_retention() == 0
    db.session.commit()
    assert not anonymised(item)
    backdate(item, 1)  # the day before: past retention
    assert retention.run_retention() == 1
    db.session.commit()
    assert anonymised(item)


def test_two_workers_at_once_run_it_once(app, world, history):
    """Two outbox workers reach the daily run together: the retention lock lets one run it, the other sees it done."""
    db.session.rollback()  # this test's reads must not hold SQLite's write lock
    barrier = threading.Barrier(2)
    results: list = []

    def run():
        with app.app_context():
            barrier.wait(timeout=20)
            results.append(worker.run_retention_daily())
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results, key=repr) == sorted([5, None], key=repr)
    [entry] = audit_rows("retention_run")
    assert entry.data["anonymised"] == 5
