"""Finding 6 (500s instead of 4xx) and finding 10 (lenient input) of issue 10, on both engines.

Each case names its input. Every refusal is a 4xx with a Chinese message, names the field when
there is one, and writes nothing; the same rules hold for the form pages and the JSON API.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Deputy, Item, ItemEvent
from backend.qr.codes import current_code
from tests.factories import act, due_in_days, make_item
from tests.helpers import api_token, counts, csrf_token_from, fresh_token, hidden_value, login

ZERO_WIDTH_SPACE = "\u200b"
RIGHT_TO_LEFT_OVERRIDE = "\u202e"
FULL_WIDTH_MOBILE = "１３８１２３４５６７８"
ARABIC_INDIC_MOBILE = "١٣٨١٢٣٤٥٦٧٨"


@pytest.fixture
def station_slug(world):
    return current_code(world.station_a).slug


@pytest.fixture
def deputy_slug(world):
    return current_code(world.d1).slug


def accepted_item(world) -> Item:
    """A submitted item of deputy d1, accepted (so that it may be forwarded, answered, extended)."""
    item = make_item(world.d1)
    act(item, world.users["deputy"], "accept")
    return item


def item_count() -> int:
    return db.session.scalar(select(func.count(Item.id)))


def refused(response, status: int = 400, code: str | None = None, field: str | None = None) -> dict:
    """Assert a JSON refusal with a Chinese message; return its error object."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.get_json()["error"]
    assert error["message"] and any("\u4e00" <= char <= "\u9fff" for char in error["message"])
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error
    return error


def post_raw_json(client, path: str, text: str, headers: dict | None = None):
    """POST a JSON text as written (``1e999`` cannot be written by json.dumps)."""
    return client.post(path, data=text, content_type="application/json", headers=headers or {})


# --- finding 6: numbers that overflow -------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1e308", str(2**63), str(10**30), "0", "-1"])
def test_a_submission_deputy_id_that_overflows_or_is_no_id_is_a_400(client, station_slug, number):
    text = f'{{"code": "{station_slug}", "body": "给本站代表的一条留言。", "deputy_id": {number}}}'
    refused(post_raw_json(client, "/api/v1/items", text), 400, "invalid_deputy", "deputy_id")
    assert item_count() == 0


@pytest.mark.parametrize(
    ("action", "inputs", "field"),
    [
        ("forward", {"department_id": 2**63, "due": "2026-12-31"}, "department_id"),
        ("forward", {"department_id": 10**30, "due": "2026-12-31"}, "department_id"),
        ("reassign", {"deputy_id": 2**63, "text": "换人"}, "deputy_id"),
        ("reassign", {"deputy_id": -(2**63), "text": "换人"}, "deputy_id"),
    ],
)
def test_action_ids_that_overflow_are_a_400(app, world, action, inputs, field):
    item = accepted_item(world)
    before = counts()
    response = app.test_client().post(
        f"/api/v1/items/{item.ref}/actions", json={"action": action, **inputs}, headers=api_token(app, "deputy_d1")
    )
    refused(response, 400, field=field)
    assert counts() == before


def test_a_department_id_of_1e999_in_a_forward_is_a_400(app, world):
    item = accepted_item(world)
    text = '{"action": "forward", "department_id": 1e999, "due": "2026-12-31"}'
    response = post_raw_json(
        app.test_client(), f"/api/v1/items/{item.ref}/actions", text, headers=api_token(app, "deputy_d1")
    )
    refused(response, 400, field="department_id")


def test_thirty_digit_ids_in_paths_are_404(app, world):
    item = make_item(world.d1)
    thirty = "9" * 30
    staff = login(app, "deputy_d1")
    _, token = fresh_token(staff, f"/staff/items/{item.ref}")
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    assert client.get(f"/api/v1/inbox/{item.ref}/photos/{thirty}.jpg", headers=headers).status_code == 404
    assert client.get(f"/api/v1/inbox/{item.ref}/photos/{2**31}.jpg", headers=headers).status_code == 404
    assert client.get(f"/api/v1/inbox/{item.ref}/photos/٢.jpg", headers=headers).status_code == 404
    assert staff.get(f"/staff/items/{item.ref}/photos/{thirty}.jpg").status_code == 404
    assert (
        staff.post(f"/staff/items/{item.ref}/forwards/{thirty}/revoke", data={"csrf_token": token}).status_code == 404
    )
    assert staff.post(f"/staff/templates/{thirty}/delete", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/t/{item.ref}/photos/{thirty}.jpg?k={item.access_key}").status_code == 404
    assert client.get(f"/deputies/{thirty}/photo-{thirty}.jpg").status_code == 404
    assert client.get(f"/qr/deputy/{thirty}.png").status_code == 404


# --- finding 6: dates at the calendar's ends --------------------------------------------------------


@pytest.mark.parametrize(
    "due", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31", "0001-01-01", "2026-12-31T25:00"]
)
def test_a_due_date_at_the_calendars_ends_is_a_400(app, world, due):
    item = make_item(world.d1)
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    assert (
        client.post(f"/api/v1/items/{item.ref}/actions", json={"action": "accept"}, headers=headers).status_code == 200
    )
    before = counts()
    forward = {"action": "forward", "department_id": world.department.id, "due": due}
    refused(client.post(f"/api/v1/items/{item.ref}/actions", json=forward, headers=headers), 400, "invalid_due", "due")
    extend = {"action": "extend", "due": due, "text": "需要协调"}
    refused(client.post(f"/api/v1/items/{item.ref}/actions", json=extend, headers=headers), 400, "invalid_due", "due")
    assert counts() == before


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"from": "0001-01-01", "to": "0001-01-02"}, "invalid_from"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "invalid_from"),
        ({"from": "2026-01-01", "to": "9999-12-31"}, "invalid_to"),
        ({"from": "２０２６-０１-０１"}, "invalid_from"),
        ({"station": str(2**31)}, "invalid_station"),
        ({"deputy": "9" * 12}, "invalid_deputy"),
        ({"deputy": "٢"}, "invalid_deputy"),
    ],
)
def test_supervision_filters_outside_the_calendar_or_the_ids_are_a_400(app, world, args, code):
    args = {"region": world.county.code, **args} if not {"station", "deputy"} & args.keys() else args
    response = app.test_client().get("/api/v1/stats", query_string=args, headers=api_token(app, "sup_county"))
    refused(response, 400, code)
    page = login(app, "sup_county").get("/supervision/", query_string=args)
    assert page.status_code in (200, 400)  # the page falls back to the default range and says why


@pytest.mark.parametrize("month", ["9999-12", "0001-01", "2026-13", "٢٠٢٦-٠١"])
def test_an_export_month_outside_the_calendar_is_a_400(app, world, month):
    response = login(app, "sup_county").get("/supervision/export.xlsx", query_string={"month": month})
    assert response.status_code == 400 and "月份" in response.text


# --- finding 6: NUL and other control characters, refused before the database --------------------------


@pytest.mark.parametrize("username", ["dep\x00uty", "\x00", "deputy_d1\x1b"])
def test_a_control_character_in_a_username_is_a_400(app, world, username):
    before = counts()
    response = app.test_client().post("/api/v1/auth/token", json={"username": username, "password": "x"})
    refused(response, 400, "invalid_characters", "username")
    client = app.test_client()
    _, token = fresh_token(client, "/staff/login")
    page = client.post("/staff/login", data={"csrf_token": token, "username": username, "password": "x"})
    assert page.status_code == 400 and "无法识别的字符" in page.text
    assert counts() == before


@pytest.mark.parametrize("name", ["q", "state", "page"])
def test_a_nul_in_the_inbox_query_is_a_400(app, world, name):
    response = app.test_client().get(
        "/api/v1/inbox", query_string={name: "a\x00b"}, headers=api_token(app, "deputy_d1")
    )
    refused(response, 400, "invalid_characters", name)
    assert login(app, "deputy_d1").get("/staff/inbox", query_string={name: "\x00"}).status_code == 400


@pytest.mark.parametrize(("name", "value"), [("region", "430\x00225"), ("scope", "region:\x00"), ("from", "\x7f")])
def test_a_nul_in_supervision_parameters_is_a_400(app, world, name, value):
    response = app.test_client().get("/api/v1/stats", query_string={name: value}, headers=api_token(app, "sup_county"))
    refused(response, 400, "invalid_characters", name)
    assert login(app, "sup_county").get("/supervision/", query_string={name: value}).status_code == 400


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "张\x00三", "consent": True},
        {"body": "路灯坏了\x00很久了"},
        {"body": "路灯坏了\x85很久了"},  # a C1 control (NEL)
        {"client_id": "abcdefghijklmnop\x00"},
        {"extra": ["\x00"]},  # anywhere in the document, even a field nobody reads
        {"\x00": "key"},
    ],
)
def test_control_characters_anywhere_in_json_are_a_400(client, deputy_slug, fields):
    payload = {"code": deputy_slug, "body": "路灯坏了很久了，请帮忙。", **fields}
    refused(client.post("/api/v1/items", json=payload), 400, "invalid_characters")
    assert item_count() == 0


# --- finding 10: integers are integers -----------------------------------------------------------------


@pytest.mark.parametrize("deputy_id", [2.5, True, False, "٢", "２", "+2", " 2", "2.0", [2], {"id": 2}])
def test_a_submission_deputy_id_must_be_an_integer(client, world, station_slug, deputy_id):
    payload = {"code": station_slug, "body": "给本站代表的一条留言。", "deputy_id": deputy_id}
    refused(client.post("/api/v1/items", json=payload), 400, "invalid_deputy", "deputy_id")
    assert item_count() == 0


def test_a_submission_deputy_id_as_a_number_or_digits_or_duty_is_taken(client, world, station_slug):
    for choice in (world.d2.id, str(world.d2.id), "duty"):
        response = client.post(
            "/api/v1/items", json={"code": station_slug, "body": f"留言内容：{choice}", "deputy_id": choice}
        )
        assert response.status_code == 201, response.text
    assert item_count() == 3


@pytest.mark.parametrize("deputy_id", ["٢", "2.5", "true", str(2**63)])
def test_the_station_form_refuses_the_same_deputy_ids(client, world, station_slug, deputy_id):
    html = client.get(f"/c/{station_slug}").text
    fields = {"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id")}
    response = client.post(f"/c/{station_slug}", data={**fields, "body": "给本站代表的留言。", "deputy_id": deputy_id})
    assert response.status_code == 400 and "请选择本站的一位代表" in response.text
    assert item_count() == 0


@pytest.mark.parametrize("deputy_id", [2.5, True, "٢", "1e3"])
def test_a_reassign_deputy_id_must_be_an_integer(app, world, deputy_id):
    item = make_item(world.d1)
    before = counts()
    response = app.test_client().post(
        f"/api/v1/items/{item.ref}/actions",
        json={"action": "reassign", "deputy_id": deputy_id, "text": "换人"},
        headers=api_token(app, "deputy_d1"),
    )
    refused(response, 400, field="deputy_id")
    assert counts() == before
    assert db.session.get(Item, item.id).deputy_id == world.d1.id


def test_a_reassign_on_the_item_page_refuses_arabic_indic_digits(app, world):
    item = make_item(world.d1)
    staff = login(app, "deputy_d1")
    _, token = fresh_token(staff, f"/staff/items/{item.ref}")
    before = counts()
    digits = "".join(chr(0x0660 + int(d)) for d in str(world.d2.id))
    response = staff.post(
        f"/staff/items/{item.ref}/actions",
        data={"csrf_token": token, "action": "reassign", "deputy_id": digits, "text": "换人"},
    )
    assert response.status_code == 400 and "请选择本站的另一位在任代表" in response.text
    assert counts() == before


@pytest.mark.parametrize("department_id", [2.5, True, "٣", [1]])
def test_a_forward_department_id_must_be_an_integer(app, world, department_id):
    item = accepted_item(world)
    response = app.test_client().post(
        f"/api/v1/items/{item.ref}/actions",
        json={"action": "forward", "department_id": department_id, "due": due_in_days(5)},
        headers=api_token(app, "deputy_d1"),
    )
    refused(response, 400, field="department_id")


# --- finding 10: digits are ASCII after normalising full-width ------------------------------------------


def test_a_full_width_mobile_is_stored_as_ascii(client, deputy_slug):
    payload = {
        "code": deputy_slug,
        "body": "请联系我了解情况。",
        "name": "张三",
        "phone": FULL_WIDTH_MOBILE,
        "consent": True,
    }
    assert client.post("/api/v1/items", json=payload).status_code == 201
    assert db.session.scalar(select(Item.contact_phone)) == "13812345678"


def test_a_full_width_mobile_on_the_form_is_stored_as_ascii(client, deputy_slug):
    html = client.get(f"/c/{deputy_slug}").text
    fields = {"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id")}
    data = {
        **fields,
        "body": "请联系我了解情况。",
        "name": "张三",
        "phone": "＋８６ １３８－１２３４－５６７８",
        "consent": "1",
    }
    assert client.post(f"/c/{deputy_slug}", data=data).status_code == 303
    assert db.session.scalar(select(Item.contact_phone)) == "13812345678"


@pytest.mark.parametrize("phone", [ARABIC_INDIC_MOBILE, "१३८१२३४५६७८", "138١٢٣٤٥٦٧٨"])
def test_other_scripts_digits_in_a_mobile_are_refused(client, deputy_slug, phone):
    payload = {"code": deputy_slug, "body": "请联系我了解情况。", "phone": phone, "consent": True}
    refused(client.post("/api/v1/items", json=payload), 400, "invalid_phone", "phone")
    html = client.get(f"/c/{deputy_slug}").text
    fields = {"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id")}
    page = client.post(
        f"/c/{deputy_slug}", data={**fields, "body": "请联系我了解情况。", "phone": phone, "consent": "1"}
    )
    assert page.status_code == 400 and "手机号格式不正确" in page.text
    assert item_count() == 0


def test_a_deputy_phone_in_other_scripts_digits_is_refused_on_the_admin_page(app, world):
    admin = login(app, "admin_a")
    _, token = fresh_token(admin, f"/admin/deputies/{world.d1.id}")
    response = admin.post(
        f"/admin/deputies/{world.d1.id}",
        data={"csrf_token": token, "name": world.d1.name, "phone": "٠٧٣١-٢٦٢٠٠١٠١", "level": "county"},
    )
    assert response.status_code == 400 and "格式不正确" in response.text
    assert db.session.get(Deputy, world.d1.id).phone != "٠٧٣١-٢٦٢٠٠١٠١"


# --- finding 10: a message has visible characters; names refuse bidi controls ----------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (ZERO_WIDTH_SPACE * 6, "required"),
        ("\u200c\u200d\u2060\ufeff\u200b\u200b", "required"),  # joiners, word joiner, BOM
        ("\u3000" * 6, "required"),  # ideographic spaces
        ("短" + ZERO_WIDTH_SPACE * 8, "too_short"),
    ],
)
def test_a_message_needs_visible_characters(client, deputy_slug, body, code):
    refused(client.post("/api/v1/items", json={"code": deputy_slug, "body": body}), 400, code, "body")
    html = client.get(f"/c/{deputy_slug}").text
    fields = {"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id")}
    assert client.post(f"/c/{deputy_slug}", data={**fields, "body": body}).status_code == 400
    assert item_count() == 0


def test_a_staff_reply_of_zero_width_spaces_is_no_reply(app, world):
    item = accepted_item(world)
    before = counts()
    response = app.test_client().post(
        f"/api/v1/items/{item.ref}/actions",
        json={"action": "reply", "text": ZERO_WIDTH_SPACE * 6},
        headers=api_token(app, "deputy_d1"),
    )
    refused(response, 400, "required", "text")
    assert counts() == before


@pytest.mark.parametrize(
    "control", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
)
def test_bidi_controls_are_refused_in_a_residents_name(client, deputy_slug, control):
    payload = {"code": deputy_slug, "body": "请联系我了解情况。", "name": f"张{control}三", "consent": True}
    refused(client.post("/api/v1/items", json=payload), 400, "invalid_characters", "name")
    assert item_count() == 0


def test_bidi_controls_are_refused_in_a_name_on_the_form_and_the_admin_pages(app, client, world, deputy_slug):
    html = client.get(f"/c/{deputy_slug}").text
    fields = {"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id")}
    data = {**fields, "body": "请联系我了解情况。", "name": f"张{RIGHT_TO_LEFT_OVERRIDE}三", "consent": "1"}
    page = client.post(f"/c/{deputy_slug}", data=data)
    assert page.status_code == 400 and "改变文字方向" in page.text
    assert item_count() == 0
    admin = login(app, "admin_a")
    _, token = fresh_token(admin, f"/admin/deputies/{world.d1.id}")
    name = f"张{RIGHT_TO_LEFT_OVERRIDE}英秀"
    response = admin.post(f"/admin/deputies/{world.d1.id}", data={"csrf_token": token, "name": name, "level": "county"})
    assert response.status_code == 400 and "改变文字方向" in response.text
    assert db.session.get(Deputy, world.d1.id).name == "张秀英"


def test_a_message_body_keeps_its_bidi_marks_and_line_breaks(client, deputy_slug):
    body = "第一行\n第二行 \u202bמשפט\u202c 第三段。"  # a multi-line message may quote right-to-left text
    response = client.post("/api/v1/items", json={"code": deputy_slug, "body": body})
    assert response.status_code == 201, response.text
    assert db.session.scalar(select(Item.body)) == body
    assert db.session.scalar(select(func.count(ItemEvent.id))) >= 1


def test_refusals_name_the_input_in_json(client, deputy_slug):
    """The raw JSON text of a refused request is never echoed back: only code, message and field."""
    text = json.dumps({"code": deputy_slug, "body": "正常内容正常内容", "deputy_id": 2.5, "phone": ARABIC_INDIC_MOBILE})
    error = refused(post_raw_json(client, "/api/v1/items", text), 400)
    assert set(error) <= {"code", "message", "field"}


@pytest.mark.parametrize("term_end", ["9999-12-31", "0001-01-01", "２０２６-０１-０１"])
def test_a_deputys_term_outside_the_calendar_is_refused(app, world, term_end):
    admin = login(app, "admin_a")
    _, token = fresh_token(admin, f"/admin/deputies/{world.d1.id}")
    before = world.d1.term_end
    data = {"csrf_token": token, "name": world.d1.name, "level": "county", "term_end": term_end}
    response = admin.post(f"/admin/deputies/{world.d1.id}", data=data)
    assert response.status_code == 400 and "任期结束日期格式不正确" in response.text
    db.session.expire_all()
    assert db.session.get(Deputy, world.d1.id).term_end == before
