"""The resident's verdict: on the tracking page and through the API, with the key only; never by staff."""

from __future__ import annotations

import pytest
from flask import g
from sqlalchemy import func, select

from backend.extensions import db
from backend.items.inbox import inbox_page
from backend.models import ItemEvent, ItemEventKind, ItemStatus, Satisfaction
from tests.factories import act, make_item
from tests.helpers import api_token, audit_rows, counts, fresh_token, login

STAFF_USERNAMES = {
    "deputy": "deputy_d1",
    "station_admin": "admin_a",
    "supervisor": "sup_county",
    "department": "dept_user",
}


pytestmark = pytest.mark.usefixtures("count_in_database")


@pytest.fixture
def resolved(world):
    """An item of d1, accepted, answered and resolved through the lifecycle."""
    item = make_item(world.d1, body="小区门口的垃圾站每天傍晚才清运，气味很大。")
    act(item, world.users["deputy"], "accept")
    act(item, world.users["deputy"], "reply", text="已与环卫所沟通，改为每天上午清运。")
    act(item, world.users["deputy"], "resolve", outcome="solved")
    return item


def track_path(item) -> str:
    return f"/t/{item.ref}?k={item.access_key}"


def rate_on_page(client, item, **fields):
    """Submit the tracking page's rating form as the resident's browser does."""
    html, token = fresh_token(client, track_path(item))
    assert 'id="rating"' in html
    return client.post(f"/t/{item.ref}/rating?k={item.access_key}", data={"csrf_token": token, **fields})


def rated_events() -> int:
    return db.session.scalar(select(func.count()).select_from(ItemEvent).where(ItemEvent.kind == ItemEventKind.RATED))


# -- the resident -----------------------------------------------------------------------------


def test_form_is_shown_only_when_resolved_and_not_rated(client, world):
    item = make_item(world.d1)
    assert 'id="rating"' not in client.get(track_path(item)).text
    act(item, world.users["deputy"], "accept")
    act(item, world.users["deputy"], "resolve", outcome="solved")
    html = client.get(track_path(item)).text
    assert 'id="rating"' in html and "满意" in html and "基本满意" in html and "不满意" in html
    assert 'href="#rating"' in html


def test_satisfied_on_the_tracking_page(client, resolved):
    response = rate_on_page(client, resolved, satisfaction="satisfied", solved="true", comment="")
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/t/{resolved.ref}?k={resolved.access_key}")
    db.session.refresh(resolved)
    assert resolved.satisfaction == Satisfaction.SATISFIED and resolved.is_solved_per_resident is True
    page = client.get(track_path(resolved)).text
    assert 'id="rating"' not in page and "您的评价" in page and "满意；问题已解决。" in page


def test_unsatisfied_needs_a_reason_keeps_the_input_and_writes_nothing(client, resolved):
    before = counts()
    response = rate_on_page(client, resolved, satisfaction="unsatisfied", solved="false", comment="")
    assert response.status_code == 400
    assert "请写下不满意的原因" in response.text
    assert 'value="unsatisfied" checked' in response.text and 'value="false" checked' in response.text
    assert counts() == before
    db.session.refresh(resolved)
    assert resolved.rated_at is None and resolved.status == ItemStatus.RESOLVED


def test_missing_choices_are_400(client, resolved):
    assert rate_on_page(client, resolved, solved="true").status_code == 400
    response = rate_on_page(client, resolved, satisfaction="satisfied", comment="挺好")
    assert response.status_code == 400 and "请选择问题是否已经解决" in response.text and "挺好" in response.text
    assert rated_events() == 0


def test_unsatisfied_reopens_and_puts_the_item_on_top_of_the_inbox(app, client, world, resolved):
    for n in range(3):
        make_item(world.d1, body=f"其他新留言{n}")
    response = rate_on_page(
        client, resolved, satisfaction="unsatisfied", solved="false", comment="傍晚还是有人倒垃圾。"
    )
    assert response.status_code == 303
    db.session.refresh(resolved)
    assert resolved.status == ItemStatus.ACCEPTED and resolved.reopen_count == 1
    page = inbox_page(world.users["deputy"])
    assert page.rows[0].item.id == resolved.id and page.rows[0].group == "reopened"
    deputy = login(app, "deputy_d1")
    html = deputy.get("/staff/inbox").text
    assert html.index(f"/staff/items/{resolved.ref}") < html.index("其他新留言0")
    item_page = deputy.get(f"/staff/items/{resolved.ref}").text
    assert 'id="reopen-reason"' in item_page and "傍晚还是有人倒垃圾。" in item_page


def test_rating_form_without_csrf_is_refused(client, resolved):
    response = client.post(
        f"/t/{resolved.ref}/rating?k={resolved.access_key}", data={"satisfaction": "satisfied", "solved": "true"}
    )
    assert response.status_code == 400
    assert rated_events() == 0


def test_wrong_key_and_unknown_ref_answer_alike(client, resolved):
    _, token = fresh_token(client, track_path(resolved))
    fields = {"csrf_token": token, "satisfaction": "satisfied", "solved": "true"}
    wrong = client.post(f"/t/{resolved.ref}/rating?k=WRONGKEY", data=fields)
    unknown = client.post("/t/2345-6789/rating?k=WRONGKEY", data=fields)
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.text == unknown.text
    assert rated_events() == 0


def test_api_rating(client, resolved):
    response = client.post(
        f"/api/v1/items/{resolved.ref}/rating?key={resolved.access_key}",
        json={"satisfaction": "basically", "solved": True, "comment": "基本解决了"},
    )
    assert response.status_code == 200
    assert response.json["status"] == "resolved" and response.json["satisfaction"] == "basically"
    assert response.json["reopened"] is False
    again = client.post(
        f"/api/v1/items/{resolved.ref}/rating?key={resolved.access_key}",
        json={"satisfaction": "satisfied", "solved": True},
    )
    assert again.status_code == 409 and again.json["error"]["code"] == "already_rated"


def test_api_rating_errors(client, world, resolved):
    url = f"/api/v1/items/{resolved.ref}/rating?key={resolved.access_key}"
    unsatisfied = client.post(url, json={"satisfaction": "unsatisfied", "solved": False})
    assert unsatisfied.status_code == 400 and unsatisfied.json["error"]["field"] == "comment"
    bad = client.post(url, json={"satisfaction": "great", "solved": True})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "satisfaction"
    no_solved = client.post(url, json={"satisfaction": "satisfied"})
    assert no_solved.status_code == 400 and no_solved.json["error"]["field"] == "solved"
    wrong = client.post(
        f"/api/v1/items/{resolved.ref}/rating?key=NOPE", json={"satisfaction": "satisfied", "solved": True}
    )
    unknown = client.post("/api/v1/items/2345-6789/rating?key=NOPE", json={"satisfaction": "satisfied", "solved": True})
    assert wrong.status_code == unknown.status_code == 404 and wrong.json == unknown.json
    open_item = make_item(world.d1)
    not_yet = client.post(
        f"/api/v1/items/{open_item.ref}/rating?key={open_item.access_key}",
        json={"satisfaction": "satisfied", "solved": True},
    )
    assert not_yet.status_code == 409 and not_yet.json["error"]["code"] == "transition_not_allowed"
    assert rated_events() == 0


def test_api_unsatisfied_reopens(client, resolved):
    response = client.post(
        f"/api/v1/items/{resolved.ref}/rating?key={resolved.access_key}",
        json={"satisfaction": "unsatisfied", "solved": False, "comment": "没有改变"},
    )
    assert response.status_code == 200 and response.json["reopened"] is True and response.json["status"] == "accepted"


# -- no staff role can rate (被满意) -------------------------------------------------------------


@pytest.mark.parametrize("role", list(STAFF_USERNAMES))
def test_no_staff_role_can_rate_through_any_staff_page(app, resolved, role):
    staff = login(app, STAFF_USERNAMES[role])
    _, token = fresh_token(staff, "/staff/")
    before = counts()
    fields = {"csrf_token": token, "satisfaction": "satisfied", "solved": "true", "comment": "满意"}
    for key in ("", f"?key={resolved.access_key}", f"?k={resolved.access_key}"):
        for action in ("rate", "rating", "satisfied"):
            response = staff.post(f"/staff/items/{resolved.ref}/actions{key}", data={**fields, "action": action})
            # Handling roles: an unknown action (400). The department role has no item pages (404).
            assert response.status_code == (404 if role == "department" else 400), (action, key)
        # A real action that carries satisfaction fields records none of them.
        response = staff.post(
            f"/staff/items/{resolved.ref}/actions{key}", data={**fields, "action": "note", "text": "x"}
        )
        assert response.status_code in (303, 404)
    # The resident's rating form refuses a browser logged in as staff, even with the item's right key.
    for path in (
        f"/t/{resolved.ref}/rating",
        f"/t/{resolved.ref}/rating?k=",
        f"/t/{resolved.ref}/rating?k={resolved.access_key}",
    ):
        refused = staff.post(path, data=fields)
        assert refused.status_code == 403 and "工作人员账号不能评价" in refused.text
    db.session.refresh(resolved)
    assert resolved.rated_at is None and resolved.satisfaction is None
    assert rated_events() == 0
    assert counts()["ItemEvent"] - before["ItemEvent"] == (0 if role == "department" else 3)
    assert len(audit_rows("rating_refused_staff")) == 3


@pytest.mark.parametrize("role", list(STAFF_USERNAMES))
def test_no_staff_role_can_rate_through_the_api(app, resolved, role):
    headers = api_token(app, STAFF_USERNAMES[role])
    client = app.test_client()
    body = {"satisfaction": "satisfied", "solved": True, "comment": "满意"}
    for key in ("", f"?key={resolved.access_key}"):
        for action in ("rate", "rating"):
            response = client.post(
                f"/api/v1/items/{resolved.ref}/actions{key}", json={**body, "action": action}, headers=headers
            )
            assert response.status_code == (404 if role == "department" else 400)
            if role != "department":
                assert response.json["error"]["code"] == "invalid_action"
    # The resident's endpoint refuses a staff token, with or without the item's right key.
    for key in ("", f"?key={resolved.access_key}"):
        refused = client.post(f"/api/v1/items/{resolved.ref}/rating{key}", json=body, headers=headers)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "staff_cannot_rate"
    db.session.refresh(resolved)
    assert resolved.rated_at is None
    assert rated_events() == 0


def test_staff_pages_never_hand_out_the_key_of_a_resolved_item(app, resolved):
    for username in ("deputy_d1", "admin_a", "sup_county"):
        staff = login(app, username)
        html = staff.get(f"/staff/items/{resolved.ref}").text
        assert resolved.access_key not in html
        g.pop("csrf_token", None)
    headers = api_token(app, "deputy_d1")
    listed = app.test_client().get("/api/v1/inbox?state=resolved", headers=headers)
    assert resolved.access_key not in listed.text
