"""The department's page behind a forward link: no account, one item, no contact details, answer once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import select

from backend.extensions import db
from backend.items.lifecycle import revoke_forward
from backend.models import ItemEvent, ItemEventKind, ItemPhoto
from backend.stations.calendar import today_in_china
from tests.helpers import jpeg_bytes
from tests.staff_world import audit_rows, build_world, counts, forward, fresh_token, login, make_item

UNKNOWN_MARK = "找不到该交办件"


@pytest.fixture
def world(app, create_county, create_station, create_deputy):
    """The small county of tests/staff_world.py."""
    return build_world(create_county, create_station, create_deputy)


@pytest.fixture
def item(world):
    """A submitted item of d1 with the resident's name and number."""
    return make_item(world.d1, body="炎帝大道人行道地砖松动，下雨天溅水。")


@pytest.fixture
def forwarded(world, item):
    """(forward, raw token) of the item forwarded by d1 to the county's housing bureau."""
    return forward(item, world.users["deputy"], world.department)


def answer(client, raw: str, **fields):
    """Submit the answer form with a fresh CSRF token."""
    _, token = fresh_token(client, f"/d/{raw}")
    return client.post(f"/d/{raw}", data={"csrf_token": token, **fields})


def test_page_shows_message_instructions_due_and_no_contact(client, world, item, forwarded):
    fwd, raw = forwarded
    response = client.get(f"/d/{raw}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    html = response.text
    assert item.body in html and "请核实。" in html and world.department.name in html
    assert fwd.due_at.astimezone().strftime("%Y") in html and 'id="forward-due"' in html
    for secret in ("王桂芳", "13812341234", "王**", "138****1234", item.access_key):
        assert secret not in html
    assert "联系方式不提供给承办单位" in html


def test_no_account_needed_and_staff_login_changes_nothing(app, forwarded):
    _, raw = forwarded
    assert app.test_client().get(f"/d/{raw}").status_code == 200
    staff = login(app, "deputy_d2")  # an unrelated deputy: the link is the credential, the login is irrelevant
    assert staff.get(f"/d/{raw}").status_code == 200


def test_shared_contact_is_masked_then_revealed_with_an_audit_row(client, forwarded):
    fwd, raw = forwarded
    fwd.share_contact = True
    db.session.commit()
    html, token = fresh_token(client, f"/d/{raw}")
    assert "王**" in html and "138****1234" in html and "13812341234" not in html
    shown = client.post(f"/d/{raw}/reveal", data={"csrf_token": token})
    assert shown.status_code == 200 and "13812341234" in shown.text and "王桂芳" in shown.text
    rows = audit_rows("reveal_contact")
    assert len(rows) == 1 and rows[0].data["via"] == "department_link" and rows[0].staff_user_id is None


def test_reveal_without_shared_contact_is_404_and_writes_nothing(client, forwarded):
    _, raw = forwarded
    _, token = fresh_token(client, f"/d/{raw}")
    assert client.post(f"/d/{raw}/reveal", data={"csrf_token": token}).status_code == 404
    assert audit_rows("reveal_contact") == []


def test_answer_goes_to_the_deputy_not_the_resident(app, client, world, item, forwarded):
    fwd, raw = forwarded
    response = answer(client, raw, text="已安排施工队更换地砖。", promised_by="")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/d/{raw}?done=1")
    done = client.get(response.headers["Location"]).text
    assert "答复已提交" in done and "已安排施工队更换地砖。" in done and 'id="answer-form"' not in done
    db.session.refresh(fwd)
    assert fwd.answer == "已安排施工队更换地砖。"
    event = db.session.scalar(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.DEPARTMENT_REPLIED))
    assert event.is_public is False
    deputy = login(app, "deputy_d1")
    assert "已安排施工队更换地砖。" in deputy.get(f"/staff/items/{item.ref}").text
    track = app.test_client().get(f"/t/{item.ref}?k={item.access_key}").text
    assert "已安排施工队更换地砖。" not in track


def test_answer_with_a_promised_date(client, forwarded):
    fwd, raw = forwarded
    day = today_in_china() + timedelta(days=20)
    assert answer(client, raw, text="正在协调资金。", promised_by=day.isoformat()).status_code == 303
    db.session.refresh(fwd)
    assert fwd.promised_by == day


@pytest.mark.parametrize(
    ("fields", "field_message"),
    [
        ({"text": "", "promised_by": ""}, "请填写办理情况。"),
        ({"text": "答" * 2001, "promised_by": ""}, "最多2000个字"),
        ({"text": "正在办。", "promised_by": "明天"}, "请填写有效的完成日期"),
    ],
)
def test_bad_answers_are_400_keep_the_input_and_write_nothing(client, forwarded, fields, field_message):
    fwd, raw = forwarded
    before = counts()
    response = answer(client, raw, **fields)
    assert response.status_code == 400
    assert field_message in response.text
    if fields["text"]:
        assert fields["text"] in response.text
    assert counts() == before
    db.session.refresh(fwd)
    assert fwd.answered_at is None


def test_second_answer_is_409(client, forwarded):
    _, raw = forwarded
    assert answer(client, raw, text="已处理。").status_code == 303
    g.pop("csrf_token", None)
    _, token = fresh_token(client, "/staff/login")
    before = counts()
    again = client.post(f"/d/{raw}", data={"csrf_token": token, "text": "再答一次。"})
    assert again.status_code == 409 and "已经答复过" in again.text
    assert counts() == before


def test_answer_without_csrf_is_refused(client, forwarded):
    fwd, raw = forwarded
    response = client.post(f"/d/{raw}", data={"text": "没有令牌的答复。"})
    assert response.status_code == 400
    db.session.refresh(fwd)
    assert fwd.answered_at is None


def test_unknown_and_revoked_tokens_answer_the_same_404_and_revoked_is_audited(client, world, forwarded):
    fwd, raw = forwarded
    unknown = client.get("/d/" + "A" * 22)
    assert unknown.status_code == 404 and UNKNOWN_MARK in unknown.text
    assert audit_rows("forward_link_denied") == []

    revoke_forward(fwd, world.users["deputy"])
    db.session.commit()
    before = counts()
    revoked = client.get(f"/d/{raw}")
    assert revoked.status_code == 404 and revoked.text == unknown.text
    posted = client.post(f"/d/{raw}", data={"text": "收回后答复。"})
    assert posted.status_code in (400, 404)  # CSRF first; with a token below
    g.pop("csrf_token", None)
    _, token = fresh_token(client, "/staff/login")
    posted = client.post(f"/d/{raw}", data={"csrf_token": token, "text": "收回后答复。"})
    assert posted.status_code == 404 and posted.text == unknown.text
    assert counts() == before
    rows = audit_rows("forward_link_denied")
    assert len(rows) == 2 and rows[0].object_id == str(fwd.id) and rows[0].data["reason"] == "revoked"


def test_a_token_is_limited_to_its_item(client, world, item, forwarded):
    _, raw = forwarded
    own = ItemPhoto(item_id=item.id, position=0, width=40, height=30, jpeg=jpeg_bytes(), sha256="a")
    other_item = make_item(world.d1, body="另一件留言，有自己的照片。")
    foreign = ItemPhoto(item_id=other_item.id, position=0, width=40, height=30, jpeg=jpeg_bytes(), sha256="b")
    db.session.add_all([own, foreign])
    db.session.commit()
    page = client.get(f"/d/{raw}").text
    assert f"/d/{raw}/photos/{own.id}.jpg" in page
    served = client.get(f"/d/{raw}/photos/{own.id}.jpg")
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert "sandbox" in served.headers["Content-Security-Policy"]

    unknown = client.get("/d/" + "A" * 22)
    refused = client.get(f"/d/{raw}/photos/{foreign.id}.jpg")
    assert refused.status_code == 404 and refused.text == unknown.text
    rows = audit_rows("forward_link_denied")
    assert len(rows) == 1 and rows[0].data["reason"] == "other_item"
    assert client.get(f"/d/{raw}/photos/999999.jpg").status_code == 404


def test_a_token_of_one_item_never_shows_another(client, world, item, forwarded):
    _, raw = forwarded
    other_item = make_item(world.d1, body="第二件留言的内容不应出现。")
    _, other_raw = forward(other_item, world.users["deputy"], world.department2)
    assert "第二件留言的内容不应出现。" not in client.get(f"/d/{raw}").text
    assert item.body not in client.get(f"/d/{other_raw}").text
