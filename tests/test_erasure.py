"""The resident withdraws an unanswered item or erases their contact: tracking page (with a confirmation) and API.

Bad inputs tried: a wrong key, no key, an unknown reference; a staff token or a staff session with the right
key (every role); withdrawing twice; withdrawing after an answer, a forward-free resolution or a reopening;
erasing twice; ``what`` missing, unknown or not a string; the page's form without its CSRF token; the
confirmation page for a refused request.
"""

from __future__ import annotations

import pytest
from flask import g
from sqlalchemy import func, select

from backend.extensions import db
from backend.items.inbox import inbox_page
from backend.models import AuditEntry, ItemEventKind, ItemStatus, OutboxMessage, OutboxStatus
from tests.factories import act, make_item, with_photo_and_resident
from tests.helpers import api_token, audit_rows, counts, fresh_token, login

STAFF_USERNAMES = ("deputy_d1", "admin_a", "sup_county", "dept_user")


pytestmark = pytest.mark.usefixtures("count_in_database")


@pytest.fixture
def item(world):
    """A new item of d1 from a resident with WeChat, a photo and the number also written in the message."""
    item = make_item(world.d1, body="村口路灯坏了，电话13912345678。")
    return with_photo_and_resident(item, "o-erase-1", "item_received")


def api(client, item, what, key=None, **kwargs):
    key = item.access_key if key is None else key
    return client.post(f"/api/v1/items/{item.ref}/erase?key={key}", json={"what": what}, **kwargs)


def state(item) -> tuple:
    """Everything a refused request must leave as it was."""
    db.session.expire_all()
    return (
        counts(),
        db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("item_%"))),
        item.status,
        item.contact_name,
        item.contact_phone,
        item.resident_id,
        item.body,
        len(item.photos),
    )


def track(item) -> str:
    return f"/t/{item.ref}?k={item.access_key}"


# -- withdrawal -------------------------------------------------------------------------------


def test_withdraw_on_the_tracking_page_takes_a_confirmation(app, client, world, item):
    page = client.get(track(item)).text
    assert 'id="withdraw-link"' in page and 'id="erase-contact-link"' in page
    assert 'method="post"' not in page.split('id="erase"')[1]  # one tap on the page erases nothing

    before = state(item)
    html, token = fresh_token(client, f"/t/{item.ref}/erase?k={item.access_key}&what=withdraw")
    assert "确认撤回" in html and 'id="erase-cancel"' in html
    assert state(item) == before  # the confirmation page writes nothing

    response = client.post(f"/t/{item.ref}/erase?k={item.access_key}", data={"csrf_token": token, "what": "withdraw"})
    assert response.status_code == 303 and response.headers["Location"].endswith("#timeline")
    db.session.expire_all()
    assert item.status == ItemStatus.WITHDRAWN
    assert (item.contact_name, item.contact_phone, item.resident_id) == ("", "", None)
    assert item.photos == [] and "139****5678" in item.body
    notice = db.session.scalar(select(OutboxMessage).where(OutboxMessage.item_id == item.id))
    assert notice.status == OutboxStatus.SKIPPED and notice.resident_id is None
    [entry] = audit_rows("item_withdrawn")
    assert entry.data == {"ref": item.ref, "from": "submitted"} and entry.staff_user_id is None

    page = client.get(track(item)).text
    assert "群众已撤回" in page and "已撤回" in page
    assert 'id="withdraw-link"' not in page and 'id="erase-contact-link"' not in page

    # Out of the deputy's to-do groups, into the closed ones: still counted, as withdrawn.
    inbox = inbox_page(world.users["deputy"], state="todo")
    assert item.id not in [row.item.id for row in inbox.rows]
    closed = inbox_page(world.users["deputy"], state="closed")
    assert [row.item.id for row in closed.rows] == [item.id]


def test_the_page_form_needs_its_csrf_token(client, item):
    before = state(item)
    response = client.post(f"/t/{item.ref}/erase?k={item.access_key}", data={"what": "withdraw"})
    assert response.status_code == 400
    assert state(item) == before


def test_withdraw_through_the_api_then_again(client, world, item):
    response = api(client, item, "withdraw")
    assert response.status_code == 200, response.text
    assert response.json["status"] == "withdrawn" and response.json["status_label"] == "已撤回"
    assert response.json["has_contact"] is False
    before = state(item)
    again = api(client, item, "withdraw")
    assert again.status_code == 409 and again.json["error"]["code"] == "already_withdrawn"
    assert state(item) == before
    # Nothing for staff to do on it but notes.
    with pytest.raises(Exception, match="当前状态为“已撤回”"):
        act(item, world.users["deputy"], "accept")
    db.session.rollback()


def test_an_accepted_item_without_an_answer_may_be_withdrawn(client, world, item):
    act(item, world.users["deputy"], "accept")
    response = api(client, item, "withdraw")
    assert response.status_code == 200 and response.json["status"] == "withdrawn"
    assert [e.kind for e in item.events if e.is_public][-1] == ItemEventKind.WITHDRAWN


@pytest.mark.parametrize("steps", ["reply", "resolve", "reopened", "forward"])
def test_once_answered_it_cannot_be_withdrawn(client, world, item, steps):
    deputy = world.users["deputy"]
    act(item, deputy, "accept")
    if steps == "reply":
        act(item, deputy, "reply", text="已联系路灯所。")
    elif steps == "forward":
        from tests.factories import forward

        forward(item, deputy, world.department)
    else:
        act(item, deputy, "resolve", outcome="solved")
        if steps == "reopened":
            from backend.items.lifecycle import rate_item

            rate_item(item, "unsatisfied", False, "没修")
            db.session.commit()
            assert item.status == ItemStatus.ACCEPTED
    before = state(item)
    response = api(client, item, "withdraw")
    assert response.status_code == 409 and response.json["error"]["code"] == "already_answered"
    assert "删除您的联系方式" in response.json["error"]["message"]
    assert state(item) == before
    page = client.get(track(item)).text
    assert 'id="withdraw-link"' not in page and 'id="erase-contact-link"' in page
    # The confirmation page says so too, and offers nothing to confirm.
    refused = client.get(f"/t/{item.ref}/erase?k={item.access_key}&what=withdraw")
    assert refused.status_code == 409 and "不能再撤回" in refused.text and 'id="erase-confirm"' not in refused.text


def test_the_figures_count_a_withdrawn_item_apart(app, world, item):
    from backend.supervision import stats

    other = make_item(world.d1)
    act(other, world.users["deputy"], "accept")
    act(other, world.users["deputy"], "reply", text="好的。")
    app.test_client().post(f"/api/v1/items/{item.ref}/erase?key={item.access_key}", json={"what": "withdraw"})
    figures = stats.compute(stats.Scope("region", region=world.county), stats.default_range())
    counts_ = figures.counts
    assert (counts_.received, counts_.withdrawn, counts_.valid, counts_.answered) == (2, 1, 1, 1)
    assert figures.rates["answer_rate"].numerator == 1 and figures.rates["answer_rate"].denominator == 1


# -- contact erasure --------------------------------------------------------------------------


def test_erase_contact_after_an_answer_on_the_page(app, client, world, item):
    deputy = world.users["deputy"]
    act(item, deputy, "accept")
    act(item, deputy, "reply", text="请王桂芳留意13912345678的来电。")
    html, token = fresh_token(client, f"/t/{item.ref}/erase?k={item.access_key}&what=contact")
    assert "确认删除" in html
    response = client.post(f"/t/{item.ref}/erase?k={item.access_key}", data={"csrf_token": token, "what": "contact"})
    assert response.status_code == 303
    db.session.expire_all()
    assert item.status == ItemStatus.ANSWERED  # the item goes on
    assert (item.contact_name, item.contact_phone, item.resident_id) == ("", "", None)
    assert len(item.photos) == 1  # a photo is not a contact
    reply = next(e for e in item.events if e.kind == ItemEventKind.REPLIED)
    assert reply.body == "请王**留意139****5678的来电。"
    assert [e.data for e in audit_rows("item_contact_erased")] == [{"ref": item.ref}]
    page = client.get(track(item)).text
    assert "群众已删除联系方式" in page and 'id="erase-contact-link"' not in page

    # Notices stop: the next step queues nothing for the resident.
    outbox_before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
    act(item, deputy, "resolve", outcome="solved")
    queued = db.session.scalars(select(OutboxMessage).where(OutboxMessage.resident_id.is_not(None))).all()
    assert queued == [] and db.session.scalar(select(func.count()).select_from(OutboxMessage)) == outbox_before


def test_erase_contact_twice(client, item):
    assert api(client, item, "contact").status_code == 200
    before = state(item)
    again = api(client, item, "contact")
    assert again.status_code == 409 and again.json["error"]["code"] == "already_erased"
    assert state(item) == before


def test_an_item_without_contact_has_nothing_to_erase(client, world):
    item = make_item(world.d1, name="", phone="")
    page = client.get(track(item)).text
    assert 'id="erase-contact-link"' not in page and 'id="withdraw-link"' in page
    response = api(client, item, "contact")
    assert response.status_code == 409 and response.json["error"]["code"] == "already_erased"


# -- who may: the key's holder, never staff -----------------------------------------------------


@pytest.mark.parametrize("key", ["wrong-key-wrong-key-wrong", ""])
def test_a_wrong_or_missing_key_answers_like_an_unknown_item(client, item, key):
    before = state(item)
    for what in ("withdraw", "contact"):
        response = api(client, item, what, key=key)
        assert response.status_code == 404 and response.json["error"]["code"] == "unknown_item"
        page = client.get(f"/t/{item.ref}/erase?k={key}&what={what}")
        assert page.status_code == 404
    unknown = client.post("/api/v1/items/ZZZZZZZZ/erase?key=x", json={"what": "withdraw"})
    assert unknown.status_code == 404
    assert state(item) == before


@pytest.mark.parametrize("username", STAFF_USERNAMES)
def test_no_staff_token_may_erase_even_with_the_key(app, client, item, username):
    headers = api_token(app, username)
    before = state(item)
    for what in ("withdraw", "contact"):
        response = api(client, item, what, headers=headers)
        assert response.status_code == 403 and response.json["error"]["code"] == "staff_cannot_erase"
    assert state(item) == before
    assert len(audit_rows("erasure_refused_staff")) == 2


@pytest.mark.parametrize("username", STAFF_USERNAMES)
def test_no_staff_session_may_erase_on_the_page(app, item, username):
    staff = login(app, username)
    _, token = fresh_token(staff, "/staff/")
    before = state(item)
    confirm = staff.get(f"/t/{item.ref}/erase?k={item.access_key}&what=withdraw")
    assert confirm.status_code == 403 and "工作人员账号不能撤回留言" in confirm.text
    g.pop("csrf_token", None)
    response = staff.post(f"/t/{item.ref}/erase?k={item.access_key}", data={"csrf_token": token, "what": "withdraw"})
    assert response.status_code == 403
    assert state(item) == before
    assert len(audit_rows("erasure_refused_staff")) == 2


@pytest.mark.parametrize("body", [{"what": "everything"}, {}, {"what": 1}, {"what": None}, []])
def test_what_must_be_withdraw_or_contact(client, item, body):
    before = state(item)
    response = client.post(f"/api/v1/items/{item.ref}/erase?key={item.access_key}", json=body)
    assert response.status_code == 400, response.text
    assert response.json["error"]["code"] in ("invalid_what", "invalid_json")
    assert state(item) == before


def test_the_confirmation_page_needs_a_known_what(client, item):
    response = client.get(f"/t/{item.ref}/erase?k={item.access_key}&what=all")
    assert response.status_code == 400 and "撤回留言" in response.text
    _, token = fresh_token(client, f"/t/{item.ref}/erase?k={item.access_key}&what=withdraw")
    before = state(item)
    posted = client.post(f"/t/{item.ref}/erase?k={item.access_key}", data={"csrf_token": token, "what": "all"})
    assert posted.status_code == 400
    assert state(item) == before
