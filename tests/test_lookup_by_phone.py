"""Looking an item up by its reference and the last four digits of the resident's phone (issue 14).

The pair reads (status, public timeline, photos), never acts: no key in the answer, no rating.
A wrong pair answers byte for byte like an unknown reference; misses are throttled per address
and per reference, in Redis and in the database alike.
"""

from __future__ import annotations

import pytest
import redis
from flask import current_app
from sqlalchemy import func, select, update

from backend.extensions import db
from backend.models import Item, ItemChannel, ItemEvent, ItemStatus, ThrottleCounter, utcnow
from tests.conftest import redis_test_url
from tests.helpers import csrf_token_from, stored_photo

REDIS_TEST_URL = redis_test_url(8)
PHONE = "13812345678"


@pytest.fixture(params=["database", "redis"])
def counters(request, app):
    """The look-up counters in the database, then in Redis (skipped when no Redis answers)."""
    if request.param == "database":
        app.config["REDIS_URL"] = None
        return "database"
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).flushdb()
    except redis.ConnectionError:
        pytest.skip("no Redis at " + REDIS_TEST_URL)
    app.config["REDIS_URL"] = REDIS_TEST_URL
    return "redis"


@pytest.fixture
def slug(create_deputy):
    from backend.qr.codes import current_code

    return current_code(create_deputy()).slug


def post_item(client, slug, phone=PHONE, body="村口路灯坏了三个月，晚上出行很不方便。"):
    """A message through the API, as the mini-program sends it; its JSON answer."""
    fields = {"code": slug, "body": body, "name": "王桂芳", "consent": True}
    if phone:
        fields["phone"] = phone
    answer = client.post("/api/v1/items", json=fields)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def from_address(app, address: str):
    """A client whose requests come from ``address``."""
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = address
    return other


def lookup_counters() -> int:
    """How many throttle counters exist, where the app keeps them."""
    url = current_app.config.get("REDIS_URL")
    if url:
        return len(redis.Redis.from_url(url).keys("msl:throttle:*"))
    return db.session.scalar(select(func.count()).select_from(ThrottleCounter)) or 0


def test_the_phone_digits_answer_like_the_key_but_never_give_the_key_away(app, client, slug):
    created = post_item(client, slug)
    item = db.session.scalar(select(Item).where(Item.ref == created["ref"]))
    db.session.add(stored_photo(item.id))
    db.session.commit()
    by_key = client.get(f"/api/v1/items/{created['ref']}", query_string={"key": created["key"]})
    by_phone = client.get(f"/api/v1/items/{created['ref']}", query_string={"phone_last4": "5678"})
    assert by_key.status_code == by_phone.status_code == 200
    key_body, phone_body = by_key.get_json(), by_phone.get_json()
    assert key_body.keys() == phone_body.keys()
    assert {k: v for k, v in phone_body.items() if k != "photos"} == {
        k: v for k, v in key_body.items() if k != "photos"
    }
    assert phone_body["photos"] == [f"/t/{created['ref']}/photos/0.jpg?p4=5678"]
    assert created["key"] not in by_phone.get_data(as_text=True)
    photo = client.get(phone_body["photos"][0])
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert client.get(f"/t/{created['ref']}/photos/0.jpg?p4=0000").status_code == 404
    # A formatted reference, typed in lower case, finds it too.
    typed = f"{created['ref'][:4].lower()}-{created['ref'][4:]}"
    assert client.get(f"/api/v1/items/{typed}?phone_last4=5678").status_code == 200


def test_a_wrong_pair_answers_exactly_like_an_unknown_reference(app, client, slug, counters):
    with_phone = post_item(client, slug)
    without_phone = post_item(client, slug, phone="", body="没有留手机号的留言，也要能办理。")
    in_person = post_item(client, slug, body="代表接待时代录的留言，群众尚未认领。")
    db.session.execute(
        update(Item).where(Item.ref == in_person["ref"]).values(channel=ItemChannel.IN_PERSON, claimed_at=None)
    )
    db.session.commit()
    answers = [
        client.get(f"/api/v1/items/{with_phone['ref']}?phone_last4=5679"),  # the wrong digits
        client.get("/api/v1/items/ZZZZZZZZ?phone_last4=5678"),  # an unknown reference
        client.get(f"/api/v1/items/{without_phone['ref']}?phone_last4=0000"),  # no phone to match
        client.get(f"/api/v1/items/{in_person['ref']}?phone_last4=5678"),  # not claimed yet: nobody may see it
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.get_data() for a in answers}) == 1
    assert answers[0].get_json()["error"]["code"] == "unknown_item"
    pages = [client.get(f"/t/{with_phone['ref']}?p4=5679"), client.get("/t/ZZZZZZZZ?p4=5678")]
    assert [p.status_code for p in pages] == [404, 404] and pages[0].get_data() == pages[1].get_data()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("567", id="three digits"),
        pytest.param("56789", id="five digits"),
        pytest.param("56a8", id="a letter"),
        pytest.param("５６７８", id="full-width digits"),
        pytest.param("", id="empty"),
        pytest.param("5678\n", id="a newline"),
    ],
)
def test_bad_digits_in_the_api_are_a_400_that_counts_nothing(client, slug, counters, bad):
    created = post_item(client, slug)
    before = lookup_counters()
    answer = client.get(f"/api/v1/items/{created['ref']}", query_string={"phone_last4": bad})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] in {"invalid_phone_last4", "bad_request", "invalid_characters"}
    assert "后四位" in answer.get_json()["error"]["message"] or answer.get_json()["error"]["code"] != (
        "invalid_phone_last4"
    )
    assert lookup_counters() == before


def test_guessing_the_digits_is_throttled_per_reference_from_every_address(app, client, slug, counters):
    app.config["LOOKUP_PHONE_MISSES_PER_REF"] = 3
    created, other = post_item(client, slug), post_item(client, slug, body="另一条留言，手机号相同。")
    ref = created["ref"]
    guesses = [from_address(app, f"10.0.0.{n}").get(f"/api/v1/items/{ref}?phone_last4={n:04d}") for n in range(3)]
    assert [g.status_code for g in guesses] == [404, 404, 404]
    right = from_address(app, "10.0.1.1").get(f"/api/v1/items/{ref}?phone_last4=5678")
    assert right.status_code == 429 and right.get_json()["error"]["code"] == "too_many_lookups"
    assert "查询失败次数太多" in right.get_json()["error"]["message"]
    page = from_address(app, "10.0.1.2").get(f"/t?ref={ref}&p4=5678")
    assert page.status_code == 429 and "查询失败次数太多" in page.get_data(as_text=True)
    # The key still opens it, and the other item's digits still work: the limit is this reference's.
    assert from_address(app, "10.0.1.3").get(f"/api/v1/items/{ref}?key={created['key']}").status_code == 200
    assert from_address(app, "10.0.1.4").get(f"/api/v1/items/{other['ref']}?phone_last4=5678").status_code == 200
    # An unknown reference is throttled the same way, so the 429 is no oracle either.
    for n in range(3):
        from_address(app, f"10.0.2.{n}").get(f"/api/v1/items/ZZZZZZZZ?phone_last4={n:04d}")
    assert from_address(app, "10.0.2.9").get("/api/v1/items/ZZZZZZZZ?phone_last4=5678").status_code == 429


def test_guessing_the_digits_is_throttled_per_address_with_the_key_misses(app, client, slug, counters):
    app.config["LOOKUP_MISSES_PER_ADDRESS"] = 3
    items = [post_item(client, slug, body=f"第{n}条留言，用来试地址的限制。") for n in range(4)]
    misses = [
        client.get(f"/api/v1/items/{items[0]['ref']}?phone_last4=0001"),
        client.get(f"/t/{items[1]['ref']}?p4=0002"),
        client.get(f"/api/v1/items/{items[2]['ref']}?key=WRONG"),
    ]
    assert [m.status_code for m in misses] == [404, 404, 404]
    assert client.get(f"/api/v1/items/{items[3]['ref']}?phone_last4=5678").status_code == 429
    assert from_address(app, "10.9.8.7").get(f"/api/v1/items/{items[3]['ref']}?phone_last4=5678").status_code == 200


def test_the_lookup_page_opens_the_tracking_page_read_only(app, client, slug):
    created = post_item(client, slug)
    ref = created["ref"]
    item = db.session.scalar(select(Item).where(Item.ref == ref))
    item.status, item.resolved_at = ItemStatus.RESOLVED, utcnow()  # what a rating form would be offered for
    db.session.commit()
    found = client.get(f"/t?ref={ref[:4]}-{ref[4:].lower()}&p4=５６７８")  # full-width, as a Chinese keyboard types
    assert found.status_code == 303 and found.headers["Location"] == f"/t/{ref}?p4=5678"
    page = client.get(found.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and item.body in html and 'id="read-only"' in html
    assert created["key"] not in html
    assert 'id="rating"' not in html and "去评价办理结果" not in html and 'id="erase"' not in html
    by_key = client.get(f"/t/{ref}?k={created['key']}").get_data(as_text=True)
    assert 'id="rating"' in by_key  # the key's holder is offered the rating


def test_the_phone_digits_never_rate(app, client, slug):
    """The deputy sees the resident's number: the digits must not let anyone rate in the resident's place."""
    created = post_item(client, slug)
    ref = created["ref"]
    db.session.execute(update(Item).where(Item.ref == ref).values(status=ItemStatus.RESOLVED, resolved_at=utcnow()))
    db.session.commit()
    token = csrf_token_from(client.get(f"/c/{slug}").get_data(as_text=True))  # any page's token
    events = db.session.scalar(select(func.count()).select_from(ItemEvent))
    page = client.post(
        f"/t/{ref}/rating?p4=5678", data={"csrf_token": token, "satisfaction": "satisfied", "solved": "true"}
    )
    api = client.post(
        f"/api/v1/items/{ref}/rating?phone_last4=5678", json={"satisfaction": "satisfied", "solved": True}
    )
    assert page.status_code == 404 and api.status_code == 404
    db.session.rollback()
    assert db.session.scalar(select(Item.satisfaction).where(Item.ref == ref)) is None
    assert db.session.scalar(select(func.count()).select_from(ItemEvent)) == events


@pytest.mark.parametrize(
    ("typed", "status", "says"),
    [
        pytest.param("12", 400, "后四位（4位数字）", id="two digits"),
        pytest.param("abcd", 400, "后四位（4位数字）", id="letters"),
        pytest.param("0000", 404, "编号或手机号后四位不正确", id="wrong digits"),
    ],
)
def test_the_lookup_page_says_what_is_wrong_in_chinese(client, slug, counters, typed, status, says):
    created = post_item(client, slug)
    before = lookup_counters()
    page = client.get("/t", query_string={"ref": created["ref"], "p4": typed})
    html = page.get_data(as_text=True)
    assert page.status_code == status and says in html and "unknown_item" not in html
    assert 'id="phone-lookup-hint"' in html and "没有留手机号的" in html
    assert (lookup_counters() > before) == (status == 404)  # only a real guess counts
