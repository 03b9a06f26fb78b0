"""POST /api/v1/items, GET /api/v1/codes/<slug>, GET /api/v1/items/<ref>: the mini-program's resident path."""

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from backend.extensions import db
from backend.models import DeputyStatus, Item, ItemEvent, OutboxMessage, utcnow
from backend.qr.codes import current_code, rotate_code
from tests.factories import StaffUserFactory
from tests.helpers import csrf_token_from, hidden_value


def post_item(client, **fields):
    return client.post("/api/v1/items", json=fields)


def item_count():
    return db.session.scalar(select(func.count(Item.id)))


def test_submit_creates_item_with_first_event(client, deputy, slug, client_id):
    resp = post_item(
        client, code=slug, body="村口路灯坏了三个月，晚上出行很不方便。", category="urban", client_id=client_id
    )
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    assert data["status"] == "submitted"
    assert len(data["ref"]) == 8 and set(data["ref"]) <= set("23456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert len(data["key"]) >= 16
    assert data["track_url"] == f"https://msl.example.cn/t/{data['ref']}?k={data['key']}"
    item = db.session.scalar(select(Item).where(Item.ref == data["ref"]))
    assert item.deputy_id == deputy.id and item.station_id == deputy.station_id
    assert item.channel.value == "miniprogram"
    assert [e.kind.value for e in item.events] == ["submitted"]
    assert item.events[0].is_public


def test_same_client_id_returns_first_item(client, slug, client_id):
    first = post_item(client, code=slug, body="第一次提交的内容。", client_id=client_id)
    second = post_item(client, code=slug, body="第一次提交的内容。", client_id=client_id)
    assert first.status_code == 201 and second.status_code == 200
    assert first.get_json() == second.get_json()
    assert item_count() == 1


def test_concurrent_resubmissions_make_one_item(app, slug, client_id):
    """A flaky network sends the same submit several times at once: one item."""
    db.session.commit()  # release this test's transaction (SQLite: BEGIN IMMEDIATE holds the write lock)
    results = []
    barrier = threading.Barrier(6)

    def submit():
        with app.test_client() as c:
            barrier.wait()
            r = c.post("/api/v1/items", json={"code": slug, "body": "同时到达的重复提交。", "client_id": client_id})
            results.append((r.status_code, r.get_json()["ref"]))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in results) == [200] * 5 + [201]
    assert len({ref for _, ref in results}) == 1
    db.session.expire_all()
    assert item_count() == 1
    assert db.session.scalar(select(func.count(ItemEvent.id))) == 1


def test_new_item_queues_deputy_notice(client, deputy, slug):
    StaffUserFactory(username="zxy", deputy=deputy)
    db.session.commit()
    resp = post_item(client, code=slug, body="请关注学校门口交通安全。")
    assert resp.status_code == 201
    rows = db.session.scalars(select(OutboxMessage)).all()
    assert [(r.kind, r.status.value) for r in rows] == [("deputy_new_item", "pending")]


def test_station_code_routes_to_chosen_or_duty_deputy(client, create_station, create_deputy):
    station = create_station()
    a = create_deputy(name="李建国", station=station)
    b = create_deputy(name="王芳", station=station)
    slug = current_code(station).slug
    chosen = post_item(client, code=slug, body="给王芳代表的留言。", deputy_id=b.id)
    assert chosen.status_code == 201
    duty = post_item(client, code=slug, body="给值班代表的留言。", deputy_id="duty")
    assert duty.status_code == 201
    by_ref = {i.ref: i for i in db.session.scalars(select(Item))}
    assert by_ref[chosen.get_json()["ref"]].deputy_id == b.id
    # No reception rules: the fallback is the station's first serving deputy.
    assert by_ref[duty.get_json()["ref"]].deputy_id == a.id


def test_station_code_refuses_deputy_of_another_station(client, create_station, create_deputy):
    home = create_station(name="甲站")
    other = create_deputy(name="外站代表", station=create_station(name="乙站"))
    resp = post_item(client, code=current_code(home).slug, body="选了别的站的代表。", deputy_id=other.id)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "invalid_deputy"
    assert item_count() == 0


def test_retired_deputy_code_routes_to_station(client, create_station, create_deputy):
    station = create_station()
    serving = create_deputy(name="在任代表", station=station)
    gone = create_deputy(name="辞职代表", station=station, status=DeputyStatus.RESIGNED)
    slug = current_code(gone).slug
    info = client.get(f"/api/v1/codes/{slug}").get_json()
    assert info["kind"] == "deputy" and info["routes_to_station"] is True
    assert info["deputy"]["status_label"] == "已辞去代表职务"
    assert [d["name"] for d in info["station"]["deputies"]] == ["在任代表"]
    resp = post_item(client, code=slug, body="辞职代表的码仍然可以用。")
    assert resp.status_code == 201
    assert db.session.scalar(select(Item.deputy_id)) == serving.id


def test_code_info_for_deputy(client, deputy, slug):
    resp = client.get(f"/api/v1/codes/{slug}")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["kind"] == "deputy" and data["deputy"]["name"] == deputy.name
    assert data["deputy"]["levels"] == ["县人大代表"]
    assert "phone" not in data["deputy"]
    assert data["limits"]["body_max_chars"] == 1000


@pytest.mark.parametrize(
    "slug,status,code",
    [
        ("AAAAAAAAAAAA", 404, "unknown_code"),  # well-formed, unknown
        ("short", 404, "unknown_code"),
        ("has space!!!", 404, "unknown_code"),
        ("x" * 200, 404, "unknown_code"),
    ],
)
def test_bad_slugs(client, deputy, slug, status, code):
    assert client.get(f"/api/v1/codes/{slug}").status_code == status
    resp = post_item(client, code=slug, body="发给不存在的二维码。")
    assert resp.status_code == status and resp.get_json()["error"]["code"] == code
    assert item_count() == 0


def test_replaced_code_is_refused_with_410(client, deputy, slug):
    rotate_code(deputy, "海报被涂改")
    db.session.commit()
    assert client.get(f"/api/v1/codes/{slug}").status_code == 410
    resp = post_item(client, code=slug, body="旧二维码提交。")
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "code_replaced"
    assert item_count() == 0
    new = current_code(deputy).slug
    assert new != slug and post_item(client, code=new, body="新二维码提交。").status_code == 201


@pytest.mark.parametrize(
    "fields,code,field",
    [
        ({"body": ""}, "required", "body"),
        ({"body": "   \n\t  "}, "required", "body"),
        ({"body": None}, "required", "body"),
        ({"body": "短"}, "too_short", "body"),
        ({"body": "长" * 1001}, "too_long", "body"),
        ({"body": 12345}, "invalid_type", "body"),
        ({"body": ["a", "b"]}, "invalid_type", "body"),
        ({"body": "含有\x00空字节的内容"}, "invalid_characters", "body"),
        ({"body": "含有\ud800代理字符的内容"}, "invalid_characters", "body"),
        ({"body": "正常内容正常内容", "phone": "12345678901", "consent": True}, "invalid_phone", "phone"),
        ({"body": "正常内容正常内容", "phone": "1381234567", "consent": True}, "invalid_phone", "phone"),
        ({"body": "正常内容正常内容", "phone": "010-12345678", "consent": True}, "invalid_phone", "phone"),
        ({"body": "正常内容正常内容", "phone": "13812345678"}, "consent_required", "consent"),
        ({"body": "正常内容正常内容", "name": "张三", "consent": False}, "consent_required", "consent"),
        ({"body": "正常内容正常内容", "name": "名" * 21, "consent": True}, "too_long", "name"),
        ({"body": "正常内容正常内容", "category": "nonsense"}, "invalid_category", "category"),
        ({"body": "正常内容正常内容", "client_id": "short"}, "invalid_client_id", "client_id"),
        ({"body": "正常内容正常内容", "client_id": "../../etc/passwd-xxxxxxxx"}, "invalid_client_id", "client_id"),
    ],
)
def test_bad_fields_are_refused_and_nothing_written(client, slug, fields, code, field):
    resp = post_item(client, code=slug, **fields)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]  # a sentence for the person, in Chinese
    assert item_count() == 0


def test_phone_is_normalised_and_kept_with_consent(client, slug):
    resp = post_item(client, code=slug, body="请联系我了解情况。", name="张三", phone="+86 138-1234-5678", consent=True)
    assert resp.status_code == 201
    item = db.session.scalar(select(Item))
    assert (item.contact_name, item.contact_phone) == ("张三", "13812345678")
    assert item.consented_at is not None


def test_malformed_json_and_wrong_content_types(client, slug):
    bad_utf8 = b'{"code": "' + slug.encode() + b'", "body": "\xff\xfe\xfa bad"}'
    resp = client.post("/api/v1/items", data=bad_utf8, content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_json"
    resp = client.post("/api/v1/items", data="{not json", content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_json"
    resp = client.post("/api/v1/items", data="[1, 2]", content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_json"
    # A form sent to the JSON API.
    resp = client.post("/api/v1/items", data={"code": slug, "body": "表单发到接口。"})
    assert resp.status_code == 415 and resp.get_json()["error"]["code"] == "unsupported_media_type"
    assert item_count() == 0


def test_json_body_over_the_limit(client, slug):
    resp = client.post("/api/v1/items", json={"code": slug, "body": "很" * 40000})
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_large"
    assert item_count() == 0


def test_item_lookup_with_key_only(client, slug):
    created = post_item(client, code=slug, body="查询测试。", name="张三", phone="13812345678", consent=True).get_json()
    ok = client.get(f"/api/v1/items/{created['ref']}?key={created['key']}")
    assert ok.status_code == 200
    data = ok.get_json()
    assert data["status"] == "submitted" and [e["kind"] for e in data["timeline"]] == ["submitted"]
    assert "13812345678" not in ok.get_data(as_text=True) and "张三" not in ok.get_data(as_text=True)
    # Lower case and a hyphen are accepted, as typed from a phone call.
    spoken = created["ref"].lower()[:4] + "-" + created["ref"].lower()[4:]
    assert client.get(f"/api/v1/items/{spoken}?key={created['key']}").status_code == 200
    wrong = client.get(f"/api/v1/items/{created['ref']}?key=wrong")
    missing = client.get(f"/api/v1/items/{created['ref']}")
    unknown = client.get(f"/api/v1/items/ZZZZZZZZ?key={created['key']}")
    assert wrong.status_code == missing.status_code == unknown.status_code == 404
    assert wrong.get_json() == missing.get_json() == unknown.get_json()


def test_html_in_text_is_stored_as_text_and_escaped_in_json(client, slug):
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    created = post_item(client, code=slug, body=payload, name=payload[:20], consent=True).get_json()
    item = db.session.scalar(select(Item))
    assert item.body == payload  # stored as the resident typed it
    page = client.get(f"/t/{created['ref']}?k={created['key']}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_unique_refs(client, slug):
    refs = {
        post_item(client, code=slug, body=f"第{i}条不同内容的留言 {uuid.uuid4()}").get_json()["ref"] for i in range(20)
    }
    assert len(refs) == 20


def test_near_identical_messages_are_kept_and_flagged(client, slug):
    first = post_item(client, code=slug, body="幸福路12号门前的路灯已经坏了三个月，请尽快修理。")
    again = post_item(client, code=slug, body="幸福路12号门前的路灯已经坏了 三个月，请尽快修理！！")
    other = post_item(client, code=slug, body="学校门口早上上学时段车辆太多，建议安排交警疏导。")
    assert first.status_code == again.status_code == other.status_code == 201
    items = {i.ref: i for i in db.session.scalars(select(Item))}
    assert len(items) == 3  # kept, not rejected
    flagged = items[again.get_json()["ref"]]
    assert flagged.needs_review and first.get_json()["ref"] in flagged.review_reason
    assert [e.kind.value for e in flagged.events] == ["submitted", "flagged"]
    assert not flagged.events[1].is_public  # the resident is not told
    assert not items[first.get_json()["ref"]].needs_review
    assert not items[other.get_json()["ref"]].needs_review


def test_near_duplicates_are_compared_per_deputy_whichever_code_and_within_the_window(
    app, client, create_station, create_deputy
):
    station = create_station()
    a = create_deputy(name="李建国", station=station)
    b = create_deputy(name="王芳", station=station)
    text = "幸福路12号门前的路灯已经坏了三个月，晚上出行很不方便，请尽快修理。"
    first = post_item(client, code=current_code(a).slug, body=text).get_json()["ref"]
    # The same words to deputy A through the station's code (chosen deputy): flagged.
    via_station = post_item(client, code=current_code(station).slug, deputy_id=a.id, body=text + "！")
    # The same words to deputy B: another deputy's inbox, not a repeat.
    to_b = post_item(client, code=current_code(b).slug, body=text)
    # A long and a short text never match, whatever they share (the length bound).
    short = post_item(client, code=current_code(a).slug, body="路灯坏了三个月。")
    assert via_station.status_code == to_b.status_code == short.status_code == 201
    items = {i.ref: i for i in db.session.scalars(select(Item))}
    assert items[via_station.get_json()["ref"]].needs_review
    assert first in items[via_station.get_json()["ref"]].review_reason
    assert not items[to_b.get_json()["ref"]].needs_review
    assert not items[short.get_json()["ref"]].needs_review
    # Once the earlier copies are older than the window, the same text is not flagged.
    minutes = app.config["NEAR_DUPLICATE_MINUTES"]
    db.session.execute(update(Item).values(created_at=utcnow() - timedelta(minutes=minutes + 1)))
    db.session.commit()
    late = post_item(client, code=current_code(a).slug, body=text)
    assert late.status_code == 201
    assert not db.session.scalar(select(Item).where(Item.ref == late.get_json()["ref"])).needs_review


def test_throttled_per_address_with_retry_time(app, client, slug):
    app.config["THROTTLE_PER_ADDRESS"] = 2
    for i in range(2):
        assert post_item(client, code=slug, body=f"第{i}条留言，内容各不相同{i * 7}。").status_code == 201
    resp = post_item(client, code=slug, body="第三条留言超过了限制。")
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) > 0
    error = resp.get_json()["error"]
    assert error["code"] == "too_many_submissions" and "之后再试" in error["message"]
    assert item_count() == 2
    # The form answers with a page in Chinese saying when to try again.
    html = client.get(f"/c/{slug}").get_data(as_text=True)
    fields = {"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id")}
    page = client.post(f"/c/{slug}", data={**fields, "body": "表单提交也被限制。"})
    assert page.status_code == 429 and "之后再试" in page.get_data(as_text=True)
    assert item_count() == 2


def test_refused_submission_writes_nothing_not_even_its_count(app, client, deputy, slug):
    """Past the code's limit: 429, and no item, event, outbox row or counted hit is left behind.

    On PostgreSQL the counters are counted in the insert's own statement; on SQLite before it.
    """
    from backend.models import ThrottleCounter

    # A deputy account, so that an accepted item queues a notice.
    StaffUserFactory(username="zxy", deputy=deputy)
    db.session.commit()
    app.config.update(THROTTLE_PER_CODE=2, THROTTLE_PER_ADDRESS=100)
    for i in range(2):
        assert post_item(client, code=slug, body=f"第{i}条留言，内容各不相同{i * 7}。").status_code == 201
    counts = {
        model: db.session.scalar(select(func.count()).select_from(model)) for model in (Item, ItemEvent, OutboxMessage)
    }
    resp = post_item(client, code=slug, body="第三条留言超过了本码的限制。")
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "too_many_submissions"
    assert int(resp.headers["Retry-After"]) > 0
    db.session.rollback()
    assert {model: db.session.scalar(select(func.count()).select_from(model)) for model in counts} == counts
    code_counter = db.session.get(ThrottleCounter, f"submit:code:{slug}")
    assert code_counter.count == 2  # the refused hit was rolled back with everything else


def test_reference_and_key_alphabet_has_no_lookalikes():
    from backend.items.refs import format_ref, new_access_key, new_ref, normalize_ref

    keys = [new_access_key() for _ in range(200)]
    refs = [new_ref() for _ in range(200)]
    assert all(len(k) == 17 for k in keys) and len(set(keys)) == 200
    assert not set("".join(keys + refs)) & set("01ILOU")
    ref = refs[0]
    assert normalize_ref(f" {format_ref(ref).lower()} ") == ref
    assert normalize_ref("ABCD-EFG") is None and normalize_ref("0000-0000") is None and normalize_ref(None) is None


def test_key_typed_in_lower_case_with_spaces_is_accepted(client, slug):
    created = post_item(client, code=slug, body="查询码大小写测试。").get_json()
    typed = " ".join([created["key"][:6].lower(), created["key"][6:]])
    assert client.get(f"/api/v1/items/{created['ref']}", query_string={"key": typed}).status_code == 200


def test_guessing_references_is_throttled_per_address(app, client, slug):
    app.config["LOOKUP_MISSES_PER_ADDRESS"] = 3
    created = post_item(client, code=slug, body="被人猜测编号的留言。").get_json()
    right = f"/api/v1/items/{created['ref']}?key={created['key']}"
    assert client.get(right).status_code == 200  # a hit does not count
    misses = ["/api/v1/items/ZZZZZZZZ?key=x", f"/api/v1/items/{created['ref']}?key=wrong", "/t/not-a-ref?k=x"]
    assert [client.get(p).status_code for p in misses] == [404, 404, 404]
    blocked = client.get(right)  # even the right key, so the limit is no oracle
    assert blocked.status_code == 429 and blocked.get_json()["error"]["code"] == "too_many_lookups"
    assert "之后再试" in blocked.get_json()["error"]["message"]
    page = client.get(f"/t/{created['ref']}?k={created['key']}")
    assert page.status_code == 429 and "查询失败次数太多" in page.get_data(as_text=True)
    # Another address is not affected.
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    assert other.get(right).status_code == 200


# -- a repeated client_id (issue 10, finding 3) ------------------------------------------------


@pytest.mark.parametrize(
    "second_body",
    [
        pytest.param("东门口路灯坏了3天，请修一修。", id="the same"),
        pytest.param("  东门口 路灯坏了3天 请修一修 ", id="other spacing and punctuation"),
        pytest.param("东门口路灯坏了３天，请修一修！", id="a full-width digit"),
    ],
)
def test_a_retry_is_the_same_message_once_normalised(client, slug, client_id, second_body):
    first = post_item(client, code=slug, body="东门口路灯坏了3天，请修一修。", client_id=client_id)
    retry = post_item(client, code=slug, body=second_body, client_id=client_id)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.get_json() == first.get_json()
    assert item_count() == 1


@pytest.mark.parametrize(
    "second",
    [
        pytest.param({"body": "第二条留言，内容不同。"}, id="another message"),
        pytest.param({"body": "第一次提交的内容。", "to_other_code": True}, id="the same message to another code"),
    ],
)
def test_a_client_id_reused_for_another_message_is_409_and_nothing_is_written(
    client, create_deputy, slug, client_id, second
):
    first = post_item(client, code=slug, body="第一次提交的内容。", client_id=client_id)
    code = current_code(create_deputy(name="李建国")).slug if second.get("to_other_code") else slug
    events = db.session.scalar(select(func.count(ItemEvent.id)))
    reused = post_item(client, code=code, body=second["body"], client_id=client_id)
    assert first.status_code == 201
    assert reused.status_code == 409
    assert reused.get_json()["error"] == {
        "code": "client_id_reused",
        "message": "这条留言和之前提交的另一条留言用了同一个提交编号，没有保存。请再提交一次。",
        "field": "client_id",
    }
    assert first.get_json()["key"] not in reused.get_data(as_text=True)  # the first item's key stays its own
    assert item_count() == 1
    assert db.session.scalar(select(func.count(ItemEvent.id))) == events


def test_concurrent_requests_reusing_a_client_id_store_one_message(app, slug, client_id):
    """Two messages under one client_id at the same moment: one is stored, the other refused — never taken for it."""
    db.session.commit()  # release this test's transaction (SQLite: BEGIN IMMEDIATE holds the write lock)
    results = []
    barrier = threading.Barrier(6)

    def submit(n):
        with app.test_client() as c:
            barrier.wait()
            r = c.post("/api/v1/items", json={"code": slug, "body": f"同时到达的第{n}条留言。", "client_id": client_id})
            results.append((r.status_code, n))

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(status for status, _ in results) == [201] + [409] * 5
    stored = next(n for status, n in results if status == 201)
    db.session.expire_all()
    assert db.session.scalars(select(Item.body)).all() == [f"同时到达的第{stored}条留言。"]
