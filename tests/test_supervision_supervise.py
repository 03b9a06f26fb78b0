"""督办 (supervise): the lifecycle's transition for supervisors on open items, and the dashboard's button."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select, update

from backend.errors import UserError
from backend.extensions import db
from backend.items.lifecycle import (
    ROLE_ACTIONS,
    SUPERVISE_DEFAULT_TEXT,
    SUPERVISE_REPEAT_AFTER,
    TRANSITIONS,
    allowed_actions,
    perform_action,
)
from backend.models import AuditEntry, ItemEvent, ItemEventKind, ItemStatus, OutboxMessage, StaffRole, utcnow
from tests.factories import handle, make_overdue, submit, supervision_world
from tests.helpers import counts, fresh_token, login

WORLD = supervision_world  # the world fixture (tests/conftest.py)


@pytest.fixture
def overdue_item(client, world):
    item = handle(submit(client, world.d1, "灌溉渠多处破损漏水，春耕前需要修补。"), world.users["deputy"], "accept")
    make_overdue(item)
    return item


def test_the_table_row():
    row = TRANSITIONS["supervise"]
    assert row.allowed_from == {ItemStatus.SUBMITTED, ItemStatus.ACCEPTED, ItemStatus.FORWARDED, ItemStatus.ANSWERED}
    assert row.to is None and row.event_kind == ItemEventKind.SUPERVISED and row.is_public is False
    assert row.resident_notice is None
    assert "supervise" in ROLE_ACTIONS[StaffRole.SUPERVISOR]
    for role in (StaffRole.DEPUTY, StaffRole.STATION_ADMIN, StaffRole.DEPARTMENT):
        assert "supervise" not in ROLE_ACTIONS[role]


def test_supervise_writes_a_private_event_a_notice_for_the_deputy_and_an_audit_row(world, overdue_item):
    supervisor = world.users["supervisor"]
    due, status = overdue_item.due_at, overdue_item.status
    event = perform_action(overdue_item, supervisor, "supervise", text="请三日内答复群众。")
    db.session.commit()
    assert event.kind == ItemEventKind.SUPERVISED and not event.is_public
    assert event.body == "请三日内答复群众。" and event.actor_user_id == supervisor.id
    assert event.data["was_overdue"] is True
    assert overdue_item.status == status and overdue_item.due_at == due  # nothing changes for the resident
    notices = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "deputy_item_supervised")).all()
    assert [(n.item_id, n.staff_user_id, n.payload) for n in notices] == [
        (overdue_item.id, world.users["deputy"].id, {"event_id": event.id})
    ]
    # The resident is told nothing.
    assert (
        db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.resident_id.is_not(None)))
        == 0
    )
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "item_supervise"))
    assert audit.staff_user_id == supervisor.id and audit.object_id == str(overdue_item.id)
    assert audit.data["from"] == audit.data["to"] == "accepted"


def test_without_text_the_event_says_to_hurry(world, overdue_item):
    event = perform_action(overdue_item, world.users["supervisor"], "supervise")
    assert event.body == SUPERVISE_DEFAULT_TEXT


@pytest.mark.parametrize("steps", [("decline",), ("accept", "resolve")])
def test_closed_items_cannot_be_supervised(client, world, steps):
    item = handle(submit(client, world.d1, "已经办完的留言，不能再督办。"), world.users["deputy"], *steps)
    before = counts()
    with pytest.raises(UserError) as err:
        perform_action(item, world.users["supervisor"], "supervise")
    assert err.value.status == 409 and err.value.code == "transition_not_allowed"
    db.session.rollback()
    assert counts() == before


@pytest.mark.parametrize(("who", "status"), [("deputy", 403), ("station_admin", 403), ("supervisor_far", 404)])
def test_only_the_supervisor_of_the_region_may_supervise(world, overdue_item, who, status):
    with pytest.raises(UserError) as err:
        perform_action(overdue_item, world.users[who], "supervise")
    assert err.value.status == status


def test_allowed_actions_offer_supervise_to_supervisors_on_open_items_only(client, world, overdue_item):
    assert allowed_actions(overdue_item, world.users["supervisor"]) == ["supervise", "note"]
    assert "supervise" not in allowed_actions(overdue_item, world.users["deputy"])
    resolved = handle(submit(client, world.d1, "已经办结的留言。"), world.users["deputy"], "accept", "resolve")
    assert allowed_actions(resolved, world.users["supervisor"]) == ["note"]


def test_the_dashboard_button(app, world, overdue_item):
    client = login(app, "sup_county")
    html, token = fresh_token(client, "/supervision/")
    assert f'id="overdue-{overdue_item.ref}"' in html and "督办</button>" in html
    next_url = f"/supervision/?station={world.station_a.id}"
    response = client.post(
        f"/supervision/items/{overdue_item.ref}/supervise",
        data={"csrf_token": token, "text": "请尽快答复。", "next": next_url},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{next_url}&done=supervised#overdue"
    g.pop("csrf_token", None)
    page = client.get(response.headers["Location"]).text
    assert "已督办：代表会收到提醒" in page and "已督办1次" in page
    event = db.session.scalar(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.SUPERVISED))
    assert event.body == "请尽快答复。"


def test_the_button_needs_csrf_and_refuses_a_foreign_next(app, world, overdue_item):
    client = login(app, "sup_county")
    assert client.post(f"/supervision/items/{overdue_item.ref}/supervise", data={}).status_code == 400
    _, token = fresh_token(client, "/supervision/")
    response = client.post(
        f"/supervision/items/{overdue_item.ref}/supervise",
        data={"csrf_token": token, "next": "https://evil.example/x"},
    )
    assert response.status_code == 303 and response.headers["Location"].startswith("/supervision/?done=supervised")


def test_no_button_for_station_administrators_and_their_post_is_refused(app, world, overdue_item):
    client = login(app, "admin_a")
    html = client.get("/supervision/").text
    assert f'id="overdue-{overdue_item.ref}"' in html and "督办</button>" not in html
    _, token = fresh_token(client, "/staff/")
    response = client.post(f"/supervision/items/{overdue_item.ref}/supervise", data={"csrf_token": token})
    assert response.status_code == 404  # a page for supervisors only: refused like an unknown one
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "forbidden")) is not None


def test_a_supervisor_of_another_county_gets_404_and_an_audit_row(app, world, overdue_item):
    client = login(app, "sup_far")
    _, token = fresh_token(client, "/staff/")
    response = client.post(f"/supervision/items/{overdue_item.ref}/supervise", data={"csrf_token": token})
    assert response.status_code == 404
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "item_access_denied")) is not None
    assert db.session.scalar(select(func.count()).select_from(ItemEvent).where(ItemEvent.kind == "supervised")) == 0


def test_a_second_supervise_within_minutes_is_refused_and_reminds_nobody_twice(world, overdue_item):
    supervisor = world.users["supervisor"]
    perform_action(overdue_item, supervisor, "supervise")
    db.session.commit()
    with pytest.raises(UserError) as refused:
        perform_action(overdue_item, supervisor, "supervise", text="再催一次")
    assert (refused.value.code, refused.value.status) == ("recently_supervised", 409)
    assert "督办" in refused.value.message
    db.session.rollback()
    notices = select(func.count()).where(OutboxMessage.kind == "deputy_item_supervised")
    events = select(func.count()).where(ItemEvent.kind == ItemEventKind.SUPERVISED)
    reminded = db.session.scalar(notices)
    assert db.session.scalar(events) == 1
    # Once the quiet period is over, 督办 again is allowed and reminds again.
    db.session.execute(
        update(ItemEvent)
        .where(ItemEvent.kind == ItemEventKind.SUPERVISED)
        .values(created_at=utcnow() - SUPERVISE_REPEAT_AFTER - timedelta(seconds=1))
    )
    perform_action(overdue_item, supervisor, "supervise")
    db.session.commit()
    assert db.session.scalar(events) == 2 and db.session.scalar(notices) == 2 * reminded


def test_a_double_click_on_the_button_supervises_once_and_says_so(app, world, overdue_item):
    client = login(app, "sup_county")
    _, token = fresh_token(client, "/supervision/")
    first = client.post(f"/supervision/items/{overdue_item.ref}/supervise", data={"csrf_token": token})
    second = client.post(f"/supervision/items/{overdue_item.ref}/supervise", data={"csrf_token": token})
    assert first.status_code == second.status_code == 303
    assert second.headers["Location"].endswith("done=recently_supervised#overdue")
    assert db.session.scalar(select(func.count()).where(ItemEvent.kind == ItemEventKind.SUPERVISED)) == 1
    g.pop("csrf_token", None)
    assert "10 分钟内不重复督办" in client.get(second.headers["Location"]).text
