"""The item page and its actions: what staff see, what each form does, and every refusal writing nothing."""

from __future__ import annotations

import pytest
from flask import g
from sqlalchemy import select

from backend.extensions import db
from backend.items.refs import format_ref
from backend.models import (
    Item,
    ItemChannel,
    ItemEvent,
    ItemEventKind,
    ItemForward,
    ItemStatus,
    ReplyTemplate,
)
from tests.factories import act, due_in_days, forward, make_item
from tests.helpers import DEPUTY_ACTIONS_ON_SUBMITTED, api_token, audit_rows, counts, fresh_token, login, stored_photo

UNKNOWN_BODY_MARK = "找不到该留言，请核对编号。"


@pytest.fixture
def item(world):
    """A submitted item of deputy d1 with a name and a number."""
    return make_item(world.d1)


@pytest.fixture
def deputy(app, world):
    """Deputy d1's browser, logged in."""
    return login(app, "deputy_d1")


def post_action(client, item, **fields):
    """Submit an action form of the item page, with a fresh CSRF token."""
    _, token = fresh_token(client, f"/staff/items/{item.ref}")
    return client.post(f"/staff/items/{item.ref}/actions", data={"csrf_token": token, **fields})


# -- what the page shows ----------------------------------------------------------------------


def test_item_page_shows_message_masked_contact_and_the_actions_the_state_allows(deputy, item):
    page = deputy.get(f"/staff/items/{item.ref}")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = page.text
    assert format_ref(item.ref) in html
    assert item.body in html
    assert "王**" in html and "138****1234" in html
    assert "13812341234" not in html and "王桂芳" not in html
    assert item.access_key not in html  # staff never hold the resident's key: no rating on their behalf
    assert 'value="accept"' in html and 'value="decline"' in html and 'value="reassign"' in html
    assert 'value="resolve"' not in html  # not before acceptance
    assert 'value="reply"' in html and 'value="forward"' in html  # each implies the 受理: one tap


def test_item_ref_is_found_in_any_case_and_without_hyphen(deputy, item):
    loose = item.ref[:4].lower() + "-" + item.ref[4:].lower()
    assert deputy.get(f"/staff/items/{loose}").status_code == 200


def test_timeline_marks_public_and_internal_events(world, deputy, item):
    act(item, world.users["deputy"], "accept", text="已收到，正在了解。")
    act(item, world.users["deputy"], "note", text="村委会电话0731-1234")
    html = deputy.get(f"/staff/items/{item.ref}").text
    timeline = html[html.index('id="staff-timeline"') :]
    assert timeline.count("vis-public") >= 1 and "内部备注" in timeline
    assert "村委会电话0731-1234" in timeline
    note_entry = timeline[timeline.index("内部备注") - 200 : timeline.index("村委会电话0731-1234")]
    assert "vis-internal" in note_entry


def test_photos_are_served_to_staff_who_see_the_item_only(app, world, deputy, item):
    db.session.add(stored_photo(item.id, sha256="x"))
    db.session.commit()
    html = deputy.get(f"/staff/items/{item.ref}").text
    assert f"/staff/items/{item.ref}/photos/0.jpg" in html
    photo = deputy.get(f"/staff/items/{item.ref}/photos/0.jpg")
    assert photo.status_code == 200
    assert photo.headers["Content-Type"] == "image/jpeg"
    assert "sandbox" in photo.headers["Content-Security-Policy"]
    assert photo.headers["Cache-Control"] == "no-store"
    other = login(app, "deputy_d2")
    assert other.get(f"/staff/items/{item.ref}/photos/0.jpg").status_code == 404
    assert deputy.get(f"/staff/items/{item.ref}/photos/5.jpg").status_code == 404


def test_reveal_writes_an_audit_row_and_shows_the_full_contact(world, deputy, item):
    _, token = fresh_token(deputy, f"/staff/items/{item.ref}")
    assert audit_rows("reveal_contact") == []
    shown = deputy.post(f"/staff/items/{item.ref}/reveal", data={"csrf_token": token})
    assert shown.status_code == 200
    assert "13812341234" in shown.text and "王桂芳" in shown.text
    rows = audit_rows("reveal_contact")
    assert len(rows) == 1
    assert rows[0].staff_user_id == world.users["deputy"].id and rows[0].object_id == str(item.id)

    as_json = deputy.post(
        f"/staff/items/{item.ref}/reveal", data={"csrf_token": token}, headers={"Accept": "application/json"}
    )
    assert as_json.json == {"name": "王桂芳", "phone": "13812341234"}
    assert len(audit_rows("reveal_contact")) == 2


def test_reveal_needs_post_and_csrf(deputy, item):
    assert deputy.get(f"/staff/items/{item.ref}/reveal").status_code == 405
    assert deputy.post(f"/staff/items/{item.ref}/reveal").status_code == 400
    assert audit_rows("reveal_contact") == []


def test_anonymous_item_has_nothing_to_reveal(deputy, world):
    anonymous = make_item(world.d1, name="", phone="")
    html = deputy.get(f"/staff/items/{anonymous.ref}").text
    assert "匿名" in html and "reveal-form" not in html


# -- the actions ------------------------------------------------------------------------------


def test_accept_then_reply_with_a_station_template(world, deputy, item):
    response = post_action(deputy, item, action="accept")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/staff/items/{item.ref}?done=accept#notice")
    db.session.refresh(item)
    assert item.status == ItemStatus.ACCEPTED
    assert "已受理" in deputy.get(response.headers["Location"]).text

    db.session.add(ReplyTemplate(station_id=world.station_a.id, title="路灯维修", body="已联系供电所，三日内修复。"))
    db.session.add(ReplyTemplate(station_id=world.station_b.id, title="别站模板", body="别的联络站的答复。"))
    db.session.commit()
    html = deputy.get(f"/staff/items/{item.ref}").text
    assert "路灯维修" in html and "已联系供电所，三日内修复。" in html
    assert "别站模板" not in html

    response = post_action(deputy, item, action="reply", text="已联系供电所，三日内修复。")
    assert response.status_code == 303
    db.session.refresh(item)
    assert item.status == ItemStatus.ANSWERED


def test_forward_answers_with_a_redirect_and_the_link_can_be_shown_again(world, deputy, item):
    act(item, world.users["deputy"], "accept")
    html, token = fresh_token(deputy, f"/staff/items/{item.ref}")
    assert world.department.name in html and world.far_department.name not in html  # region and up only
    response = deputy.post(
        f"/staff/items/{item.ref}/actions",
        data={
            "csrf_token": token,
            "action": "forward",
            "department_id": world.department.id,
            "due": due_in_days(10),
            "text": "请派人查看路灯线路。",
        },
    )
    assert response.status_code == 303  # a reload of what follows forwards nothing twice
    forward = db.session.scalar(select(ItemForward).where(ItemForward.item_id == item.id))
    assert response.headers["Location"] == f"/staff/items/{item.ref}/forwards/{forward.id}/link"
    page = deputy.get(response.headers["Location"])
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    link = page.text.split('id="department-link"')[1].split(">", 1)[1].split("<", 1)[0].strip()
    assert link.startswith("https://msl.example.cn/d/")
    raw = link.rsplit("/", 1)[1]
    assert len(raw) >= 20 and "?" not in link
    db.session.refresh(item)
    assert item.status == ItemStatus.FORWARDED
    # Never "shown once": the item page links to it, and it is the same link every time.
    again = deputy.get(f"/staff/items/{item.ref}").text
    assert f'id="show-link-{forward.id}"' in again and world.department.name in again and "待答复" in again
    assert raw in deputy.get(response.headers["Location"]).text
    assert len(db.session.scalars(select(ItemForward).where(ItemForward.item_id == item.id)).all()) == 1
    # Only the item's deputy and station administrator see it.
    for username in ("deputy_d2", "admin_b", "sup_county", "dept_user"):
        other = login(deputy.application, username).get(response.headers["Location"])
        assert other.status_code == 404, username


def test_revoking_a_forward_kills_its_link(app, world, deputy, item):
    fwd, raw = forward(item, world.users["deputy"], world.department)
    client = app.test_client()
    assert client.get(f"/d/{raw}").status_code == 200
    _, token = fresh_token(deputy, f"/staff/items/{item.ref}")
    response = deputy.post(f"/staff/items/{item.ref}/forwards/{fwd.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get(f"/d/{raw}").status_code == 404


@pytest.mark.parametrize(
    ("action", "fields", "status_after"),
    [
        ("decline", {"text": "属于司法程序，不在代表受理范围。"}, ItemStatus.DECLINED),
        ("note", {"text": "先问问村委会。"}, ItemStatus.SUBMITTED),
    ],
)
def test_actions_on_a_new_item(deputy, item, action, fields, status_after):
    assert post_action(deputy, item, action=action, **fields).status_code == 303
    db.session.refresh(item)
    assert item.status == status_after


def test_duplicate_of_another_item(world, deputy, item):
    original = make_item(world.d1, body="同一个路口的路灯也坏了。")
    response = post_action(deputy, item, action="duplicate", duplicate_of=original.ref.lower())
    assert response.status_code == 303
    db.session.refresh(item)
    assert item.status == ItemStatus.DUPLICATE and item.duplicate_of_id == original.id


def test_reassign_sends_the_deputy_back_to_the_inbox(world, deputy, item):
    response = post_action(deputy, item, action="reassign", deputy_id=str(world.d2.id), text="该片区由李代表联系。")
    assert response.status_code == 303
    assert "/staff/inbox" in response.headers["Location"]
    db.session.refresh(item)
    assert item.deputy_id == world.d2.id
    assert deputy.get(f"/staff/items/{item.ref}").status_code == 404


def test_resolve_wait_resume_extend(world, deputy, item):
    act(item, world.users["deputy"], "accept")
    assert post_action(deputy, item, action="wait_for_resident", text="请补充具体位置。").status_code == 303
    db.session.refresh(item)
    assert item.paused_at is not None
    assert post_action(deputy, item, action="resume").status_code == 303
    db.session.refresh(item)
    assert item.paused_at is None
    assert post_action(deputy, item, action="extend", due=due_in_days(60), text="需要协调资金。").status_code == 303
    assert (
        post_action(deputy, item, action="resolve", outcome="partly", text="已修两盏，另一盏待更换线路。").status_code
        == 303
    )
    db.session.refresh(item)
    assert item.status == ItemStatus.RESOLVED and item.outcome.value == "partly"


def test_supervisor_may_note_but_not_accept(app, world, item):
    supervisor = login(app, "sup_county")
    html = supervisor.get(f"/staff/items/{item.ref}").text
    assert 'value="note"' in html and 'value="accept"' not in html
    before = counts()
    refused = post_action(supervisor, item, action="accept")
    assert refused.status_code == 403
    assert "不能对留言进行“受理”操作" in refused.text
    assert counts() == before
    assert post_action(supervisor, item, action="note", text="请抓紧办理。").status_code == 303


# -- refusals: a clear error, nothing written ---------------------------------------------------


def test_transition_not_allowed_is_409_with_the_reason_and_writes_nothing(deputy, item):
    before = counts()
    response = post_action(deputy, item, action="resolve", outcome="solved", text="已办好。")
    assert response.status_code == 409
    assert "该件当前状态为“已提交”，不能办结。" in response.text
    assert counts() == before
    db.session.refresh(item)
    assert item.status == ItemStatus.SUBMITTED


def test_missing_field_is_400_naming_it_and_keeps_the_input(world, deputy, item):
    act(item, world.users["deputy"], "accept")
    before = counts()
    response = post_action(
        deputy, item, action="forward", department_id="", due=due_in_days(5), text="请尽快处理路灯。"
    )
    assert response.status_code == 400
    assert "请选择一个承办单位。" in response.text
    assert "请尽快处理路灯。" in response.text  # the instructions typed are still there
    assert 'id="action-forward" open' in response.text
    assert counts() == before


def test_over_long_reply_is_400_and_writes_nothing(world, deputy, item):
    act(item, world.users["deputy"], "accept")
    before = counts()
    long_text = "修" * 2001
    response = post_action(deputy, item, action="reply", text=long_text)
    assert response.status_code == 400
    assert "最多2000个字" in response.text
    assert long_text in response.text
    assert counts() == before
    db.session.refresh(item)
    assert item.status == ItemStatus.ACCEPTED


def test_unknown_action_is_400(deputy, item):
    before = counts()
    response = post_action(deputy, item, action="approve")
    assert response.status_code == 400 and "不支持的操作" in response.text
    assert counts() == before


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/staff/items/{ref}/actions", {"action": "accept"}),
        ("/staff/items/{ref}/actions", {"action": "note", "text": "备注"}),
        ("/staff/items/{ref}/reveal", {}),
        ("/staff/templates", {"title": "模板", "body": "内容"}),
        ("/staff/in-person", {"body": "接待时群众反映路灯坏了。", "category": "urban"}),
    ],
)
def test_staff_forms_without_csrf_token_are_refused(deputy, item, path, fields):
    before = counts()
    templates = db.session.scalars(select(ReplyTemplate)).all()
    items = db.session.scalars(select(Item)).all()
    response = deputy.post(path.format(ref=item.ref), data=fields)
    assert response.status_code == 400
    assert "页面已过期" in response.text
    assert counts() == before
    assert db.session.scalars(select(ReplyTemplate)).all() == templates
    assert db.session.scalars(select(Item)).all() == items
    wrong = deputy.post(path.format(ref=item.ref), data={**fields, "csrf_token": "forged"})
    assert wrong.status_code == 400


def test_revoke_without_csrf_is_refused(world, deputy, item):
    fwd, _ = forward(item, world.users["deputy"], world.department)
    assert deputy.post(f"/staff/items/{item.ref}/forwards/{fwd.id}/revoke").status_code == 400
    db.session.refresh(fwd)
    assert fwd.revoked_at is None


def unknown_page(client) -> str:
    return client.get("/staff/items/2345-6789").text


def test_deputy_opening_another_deputys_item_is_404_like_unknown_and_audited(app, world, item):
    other = login(app, "deputy_d2")
    unknown = other.get("/staff/items/2345-6789")
    hidden = other.get(f"/staff/items/{item.ref}")
    assert unknown.status_code == hidden.status_code == 404
    assert hidden.text == unknown.text and UNKNOWN_BODY_MARK in hidden.text
    rows = audit_rows("item_access_denied")
    assert [r.object_id for r in rows] == [str(item.id)]
    assert rows[0].staff_user_id == world.users["deputy2"].id
    # Its actions and its reveal likewise: nothing written.
    before = counts()
    _, token = fresh_token(other, "/staff/")
    for path in (f"/staff/items/{item.ref}/actions", f"/staff/items/{item.ref}/reveal"):
        response = other.post(path, data={"csrf_token": token, "action": "accept"})
        assert response.status_code == 404 and response.text == unknown.text
    assert counts() == before
    assert audit_rows("reveal_contact") == []
    assert len(audit_rows("item_access_denied")) == 3


def test_station_admin_opening_another_stations_item_is_404_and_audited(app, world, item):
    own = login(app, "admin_a")
    assert own.get(f"/staff/items/{item.ref}").status_code == 200
    other = login(app, "admin_b")
    hidden = other.get(f"/staff/items/{item.ref}")
    assert hidden.status_code == 404 and hidden.text == unknown_page(other)
    assert audit_rows("item_access_denied")[-1].staff_user_id == world.users["station_admin_b"].id


def test_supervisor_of_another_county_gets_404(app, world, item):
    far = login(app, "sup_far")
    assert far.get(f"/staff/items/{item.ref}").status_code == 404
    assert len(audit_rows("item_access_denied")) == 1


def test_guessing_refs_on_the_staff_side_is_404_and_never_says_which_exist(deputy, item):
    for guess in ("2345-6789", "ZZZZ-ZZZZ", "not-a-ref", "0000-0000", item.ref[:7]):
        response = deputy.get(f"/staff/items/{guess}")
        assert response.status_code == 404 and UNKNOWN_BODY_MARK in response.text
    assert audit_rows("item_access_denied") == []  # unknown refs point at nothing to audit


def test_department_role_has_no_item_pages(app, item):
    department = login(app, "dept_user")
    assert department.get(f"/staff/items/{item.ref}").status_code == 404
    inbox = department.get("/staff/inbox")
    assert inbox.status_code == 200 and "交办链接" in inbox.text and item.ref not in inbox.text


def test_pages_need_login(client, item):
    response = client.get(f"/staff/items/{item.ref}")
    assert response.status_code == 303 and "/staff/login" in response.headers["Location"]
    assert client.get("/staff/inbox").status_code == 303


# -- reply templates --------------------------------------------------------------------------


def test_templates_are_kept_per_station(app, world, deputy):
    html, token = fresh_token(deputy, "/staff/templates")
    assert "还没有常用答复" in html
    added = deputy.post("/staff/templates", data={"csrf_token": token, "title": "路灯", "body": "已联系供电所。"})
    assert added.status_code == 303
    template = db.session.scalar(select(ReplyTemplate))
    assert template.station_id == world.station_a.id
    assert audit_rows("reply_template_added")[0].staff_user_id == world.users["deputy"].id

    admin = login(app, "admin_a")
    assert "已联系供电所。" in admin.get("/staff/templates").text  # the station's admin shares them
    admin_b = login(app, "admin_b")
    assert "已联系供电所。" not in admin_b.get("/staff/templates").text
    _, token_b = fresh_token(admin_b, "/staff/templates")
    assert admin_b.post(f"/staff/templates/{template.id}/delete", data={"csrf_token": token_b}).status_code == 404

    too_long = deputy.post("/staff/templates", data={"csrf_token": token, "title": "长", "body": "字" * 2001})
    assert too_long.status_code == 400 and "最多2000个字" in too_long.text

    _, token = fresh_token(deputy, "/staff/templates")
    assert deputy.post(f"/staff/templates/{template.id}/delete", data={"csrf_token": token}).status_code == 303
    assert db.session.scalar(select(ReplyTemplate)) is None
    assert len(audit_rows("reply_template_deleted")) == 1


def test_supervisors_keep_no_templates(app, world):
    supervisor = login(app, "sup_county")
    assert supervisor.get("/staff/templates").status_code == 404


# -- 代表接待选民 --------------------------------------------------------------------------------


def test_in_person_entry_creates_an_item_and_shows_a_receipt_not_a_key(world, deputy):
    html, token = fresh_token(deputy, "/staff/in-person")
    assert "代表接待选民" in html
    response = deputy.post(
        "/staff/in-person",
        data={
            "csrf_token": token,
            "body": "接待日群众反映：十都村到镇上的班车太少。",
            "category": "transport",
            "name": "陈大爷",
            "phone": "13912345678",
            "consent": "1",
            "channel_note": "3月20日联络站接待日",
        },
    )
    assert response.status_code == 200
    entered = db.session.scalar(select(Item))
    assert entered.channel == ItemChannel.IN_PERSON and entered.deputy_id == world.d1.id
    assert format_ref(entered.ref) in response.text and 'id="receipt-qr"' in response.text
    assert (
        entered.access_key == "" and "/t/" not in response.text
    )  # no tracking link: the resident's claim makes the key
    first = entered.events[0]
    assert first.kind == ItemEventKind.SUBMITTED and first.data["channel_note"] == "3月20日联络站接待日"
    assert "待群众认领" in deputy.get(f"/staff/items/{entered.ref}").text


def test_in_person_entry_keeps_the_input_on_error(deputy):
    _, token = fresh_token(deputy, "/staff/in-person")
    response = deputy.post(
        "/staff/in-person",
        data={"csrf_token": token, "body": "班车太少了不方便。", "category": "transport", "name": "陈大爷"},
    )
    assert response.status_code == 400
    assert "请勾选同意说明" in response.text and "班车太少了不方便。" in response.text and "陈大爷" in response.text
    assert db.session.scalar(select(Item)) is None


def test_only_deputies_enter_in_person_items(app, world):
    admin = login(app, "admin_a")
    assert admin.get("/staff/in-person").status_code == 404


# -- the JSON API -----------------------------------------------------------------------------


def test_api_actions_answer_the_new_status_and_the_event(app, world, item):
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    accepted = client.post(f"/api/v1/items/{item.ref}/actions", json={"action": "accept"}, headers=headers)
    assert accepted.status_code == 200
    assert accepted.json["item"]["status"] == "accepted"
    assert accepted.json["event"]["kind"] == "accepted" and accepted.json["event"]["is_public"] is True

    forwarded = client.post(
        f"/api/v1/items/{item.ref.lower()}/actions",
        json={"action": "forward", "department_id": world.department.id, "due": due_in_days(7), "text": "请核实"},
        headers=headers,
    )
    assert forwarded.status_code == 200
    assert forwarded.json["item"]["status"] == "forwarded"
    link = forwarded.json["department_link"]
    assert app.test_client().get(link.replace("https://msl.example.cn", "")).status_code == 200


def test_api_item_shows_the_whole_message_timeline_and_the_actions_allowed(app, world, item):
    """What the mini-program's item page (opened from a WeChat notice) shows: not just the inbox line."""
    item.body = "第一行：村口路灯坏了三个月。\n第二行：晚上出行很不方便，老人小孩容易摔倒。"
    db.session.add(stored_photo(item.id, sha256="x"))
    db.session.commit()
    act(item, world.users["deputy"], "note", text="村委会电话0731-1234")
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    answer = client.get(f"/api/v1/inbox/{item.ref.lower()}", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    data = answer.json
    assert data["item"]["body"] == item.body  # the whole message, both lines
    assert data["item"]["ref_display"] == format_ref(item.ref)
    assert data["item"]["status"] == "submitted" and data["item"]["status_label"] == "已提交"
    assert data["item"]["deputy"] == {"id": world.d1.id, "name": "张秀英"}
    assert data["item"]["station"]["name"] == "霞阳镇人大代表联络站"
    assert data["contact"]["name"] == "王**" and data["contact"]["phone"] == "138****1234"
    assert "王桂芳" not in answer.text and "13812341234" not in answer.text  # masked until revealed
    assert [e["label"] for e in data["timeline"]] == ["内部备注"]  # (make_item writes no first event)
    assert data["timeline"][0]["is_public"] is False and data["timeline"][0]["body"] == "村委会电话0731-1234"
    assert data["timeline"][0]["actor"] == "deputy_d1"
    assert [a["action"] for a in data["actions"]] == DEPUTY_ACTIONS_ON_SUBMITTED
    assert data["station_deputies"] == [{"id": world.d2.id, "name": "李建国"}]  # whom it may be reassigned to
    assert data["templates"] == []  # the station keeps none (a reply is offered: it implies the 受理)
    assert sorted(d["name"] for d in data["departments"]) == ["炎陵县交通运输局", "炎陵县住房和城乡建设局"]

    photo = client.get(data["photos"][0]["url"], headers=headers)
    assert photo.status_code == 200 and photo.headers["Content-Type"] == "image/jpeg"
    assert "sandbox" in photo.headers["Content-Security-Policy"]
    assert client.get(f"/api/v1/inbox/{item.ref}/photos/5.jpg", headers=headers).status_code == 404

    assert audit_rows("reveal_contact") == []
    revealed = client.post(data["contact"]["reveal_url"], headers=headers)
    assert revealed.json == {"name": "王桂芳", "phone": "13812341234"}
    assert audit_rows("reveal_contact")[0].staff_user_id == world.users["deputy"].id

    act(item, world.users["deputy"], "accept")
    accepted = client.get(f"/api/v1/inbox/{item.ref}", headers=headers).json
    assert {"reply", "forward", "resolve"} <= {a["action"] for a in accepted["actions"]}
    assert "accept" not in {a["action"] for a in accepted["actions"]}
    assert {d["name"] for d in accepted["departments"]} == {world.department.name, world.department2.name}
    forward(item, world.users["deputy"], world.department)
    forwarded = client.get(f"/api/v1/inbox/{item.ref}", headers=headers).json
    assert forwarded["forwards"][0]["department"] == world.department.name
    assert forwarded["forwards"][0]["answered_at"] is None and forwarded["forwards"][0]["revoked_at"] is None


def test_api_item_of_someone_else_or_unknown_is_the_same_404_and_nothing_is_revealed(app, world, item):
    client = app.test_client()
    other = api_token(app, "deputy_d2")
    for path in (f"/api/v1/inbox/{item.ref}", f"/api/v1/inbox/{item.ref}/photos/0.jpg"):
        hidden = client.get(path, headers=other)
        assert hidden.status_code == 404 and hidden.json["error"]["code"] == "unknown_item"
    hidden = client.post(f"/api/v1/inbox/{item.ref}/reveal", headers=other)
    assert hidden.status_code == 404
    assert audit_rows("reveal_contact") == []
    assert len(audit_rows("item_access_denied")) == 3
    headers = api_token(app, "deputy_d1")
    for ref in ("2345-6789", "0OIL", "x" * 500, "%00", "7K4P-9QX"):
        unknown = client.get(f"/api/v1/inbox/{ref}", headers=headers)
        assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_item", ref
    assert client.get(f"/api/v1/inbox/{item.ref}").status_code == 401  # no token
    assert client.get(f"/api/v1/inbox/{item.ref}", headers=api_token(app, "dept_user")).status_code == 404
    assert client.get(f"/api/v1/inbox/{item.ref}/reveal", headers=headers).status_code == 405


def test_api_item_for_the_station_admin_and_the_supervisor(app, world, item):
    client = app.test_client()
    admin = client.get(f"/api/v1/inbox/{item.ref}", headers=api_token(app, "admin_a")).json
    assert "reassign" in [a["action"] for a in admin["actions"]]
    supervisor = client.get(f"/api/v1/inbox/{item.ref}", headers=api_token(app, "sup_county")).json
    assert [a["action"] for a in supervisor["actions"]] == ["supervise", "note"]
    assert supervisor["station_deputies"] == [] and supervisor["templates"] == []
    assert client.get(f"/api/v1/inbox/{item.ref}", headers=api_token(app, "sup_far")).status_code == 404


def test_api_errors_are_json_with_a_code(app, world, item):
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    before = counts()
    conflict = client.post(
        f"/api/v1/items/{item.ref}/actions", json={"action": "resolve", "outcome": "solved"}, headers=headers
    )
    assert conflict.status_code == 409
    assert conflict.json["error"]["code"] == "transition_not_allowed"
    assert "不能办结" in conflict.json["error"]["message"]

    act(item, world.users["deputy"], "accept")
    before = counts()
    missing = client.post(
        f"/api/v1/items/{item.ref}/actions", json={"action": "forward", "due": due_in_days(3)}, headers=headers
    )
    assert missing.status_code == 400 and missing.json["error"]["field"] == "department_id"
    too_long = client.post(
        f"/api/v1/items/{item.ref}/actions", json={"action": "reply", "text": "答" * 2001}, headers=headers
    )
    assert too_long.status_code == 400 and too_long.json["error"]["field"] == "text"
    far = client.post(
        f"/api/v1/items/{item.ref}/actions",
        json={"action": "forward", "department_id": world.far_department.id, "due": due_in_days(3)},
        headers=headers,
    )
    assert far.status_code == 400 and far.json["error"]["code"] == "invalid_department_id"
    not_json = client.post(f"/api/v1/items/{item.ref}/actions", data="action=accept", headers=headers)
    assert not_json.status_code == 415
    assert counts() == before


def test_api_item_of_someone_else_is_404_like_unknown_and_audited(app, world, item):
    headers = api_token(app, "deputy_d2")
    client = app.test_client()
    hidden = client.post(f"/api/v1/items/{item.ref}/actions", json={"action": "accept"}, headers=headers)
    unknown = client.post("/api/v1/items/2345-6789/actions", json={"action": "accept"}, headers=headers)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json == unknown.json
    assert audit_rows("item_access_denied")[0].object_id == str(item.id)
    db.session.refresh(item)
    assert item.status == ItemStatus.SUBMITTED


def test_api_needs_a_bearer_token_not_the_cookie(app, deputy, item):
    response = deputy.post(f"/api/v1/items/{item.ref}/actions", json={"action": "accept"})
    assert response.status_code == 401
    assert deputy.get("/api/v1/inbox").status_code == 401


def test_api_departments_of_the_region_and_up(app, world, item):
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    names = [d["name"] for d in client.get("/api/v1/departments", headers=headers).json["departments"]]
    assert set(names) == {world.department.name, world.department2.name}
    by_item = client.get(f"/api/v1/departments?ref={item.ref}", headers=headers).json["departments"]
    assert {d["name"] for d in by_item} == set(names)
    other = api_token(app, "deputy_d4")
    assert [d["name"] for d in client.get("/api/v1/departments", headers=other).json["departments"]] == [
        world.far_department.name
    ]
    assert client.get(f"/api/v1/departments?ref={item.ref}", headers=other).status_code == 404
    department = api_token(app, "dept_user")
    assert client.get("/api/v1/departments", headers=department).status_code == 404


def test_forward_to_a_department_of_another_region_from_a_form_is_refused(world, deputy, item):
    act(item, world.users["deputy"], "accept")
    before = counts()
    response = post_action(
        deputy, item, action="forward", department_id=str(world.far_department.id), due=due_in_days(5)
    )
    assert response.status_code == 400 and "请选择本地区的一个承办单位。" in response.text
    assert counts() == before


def test_events_written_by_the_page_carry_the_staff_user(world, deputy, item):
    post_action(deputy, item, action="accept", text="收到")
    event = db.session.scalar(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.ACCEPTED))
    assert event.actor_user_id == world.users["deputy"].id
    assert audit_rows("item_accept")[0].staff_user_id == world.users["deputy"].id


def test_forward_page_department_answer_is_shown_to_the_deputy(app, world, deputy, item):
    fwd, raw = forward(item, world.users["deputy"], world.department)
    department = app.test_client()
    g.pop("csrf_token", None)
    _, token = fresh_token(department, f"/d/{raw}")
    department.post(f"/d/{raw}", data={"csrf_token": token, "text": "已派人更换灯泡。", "promised_by": ""})
    html = deputy.get(f"/staff/items/{item.ref}").text
    assert "已派人更换灯泡。" in html and "承办单位答复" in html
    db.session.refresh(fwd)
    assert fwd.answered_at is not None
    assert db.session.get(ItemForward, fwd.id).answer == "已派人更换灯泡。"
