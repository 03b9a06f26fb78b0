"""被满意 closed for good (issue 10, finding 1): receipts and claims for in-person items, and no staff
credential can ever rate.

Before: ``/staff/in-person`` showed the deputy the new item's access key, and the rating endpoints
took it from anyone, so a deputy could rate their own in-person item 满意. Now the deputy gets a
receipt (a one-time claim link, as a QR code and a slip), the resident claims the item on their
own phone (a fresh key, shown only there), and a request carrying any staff credential is refused.
"""

from __future__ import annotations

import base64
import io
import re

import pytest
import sqlalchemy as sa
import zxingcpp
from flask import g
from PIL import Image
from sqlalchemy import func, select

from backend.errors import UserError
from backend.extensions import db
from backend.items.claims import open_receipt
from backend.items.lifecycle import rate_item
from backend.items.refs import format_ref
from backend.models import (
    AuditEntry,
    Item,
    ItemChannel,
    ItemEvent,
    ItemEventKind,
    ItemReceipt,
    ItemStatus,
    Resident,
    Satisfaction,
    utcnow,
)
from backend.wechat.identity import SESSION_RESIDENT_KEY
from tests.factories import act, entered_in_person, make_item
from tests.helpers import api_token, audit_rows, counts, fresh_token, login

BODY = "十都村到镇上的班车太少，老人看病不方便。我的电话 139 1234 5678。"


pytestmark = pytest.mark.usefixtures("count_in_database")


@pytest.fixture
def entered(world):
    """An item d1 entered in person, with its first receipt's claim token (``entered.receipt_token``)."""
    return entered_in_person(world.users["deputy"], BODY)


def receipt_token_in(html: str) -> str:
    """The claim token of the receipt page's QR code, read by zxing-cpp from the image itself."""
    data = re.search(r'id="receipt-qr" src="data:image/png;base64,([^"]+)"', html)[1]
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(data))))
    assert decoded.text.startswith("https://msl.example.cn/r/")
    assert decoded.text in html  # the same link printed under the code
    return decoded.text.rsplit("/r/", 1)[1]


def claim(client, token: str):
    """What the resident's phone does: open the receipt's link, then press 认领."""
    html, csrf = fresh_token(client, f"/r/{token}")
    assert 'id="claim-form"' in html
    return client.post(f"/r/{token}", data={"csrf_token": csrf})


def claimed_key(response) -> str:
    """The new access key from the redirect to the tracking page after a claim."""
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/t/([A-Z0-9]+)\?k=([A-Z0-9]+)&claimed=1", response.headers["Location"])
    assert match, response.headers["Location"]
    return match[2]


def resolve(item, world):
    act(item, world.users["deputy"], "accept")
    act(item, world.users["deputy"], "reply", text="已与公交公司协调，增加两班车。")
    act(item, world.users["deputy"], "resolve", outcome="solved")


def rated_events() -> int:
    return db.session.scalar(select(func.count()).select_from(ItemEvent).where(ItemEvent.kind == ItemEventKind.RATED))


# --- the deputy's receipt ---------------------------------------------------------------------------


def test_the_deputy_gets_a_receipt_with_a_qr_code_and_never_the_key(app, world):
    deputy = login(app, "deputy_d1")
    _, csrf = fresh_token(deputy, "/staff/in-person")
    response = deputy.post(
        "/staff/in-person",
        data={"csrf_token": csrf, "body": BODY, "category": "transport", "channel_note": "接待日"},
    )
    assert response.status_code == 200
    item = db.session.scalar(select(Item))
    token = receipt_token_in(response.text)
    assert open_receipt(token).item.id == item.id and open_receipt(token).state == "live"
    assert item.access_key == "" and item.claimed_at is None
    assert format_ref(item.ref) in response.text and "打印回执" in response.text
    assert "/t/" not in response.text and 'id="access-key"' not in response.text  # no tracking link, no key
    # Stored as a hash only; the token is nowhere else in the database.
    receipt = db.session.scalar(select(ItemReceipt))
    assert receipt.token_hash != token and len(receipt.token_hash) == 64
    stored = [repr(e.data) for e in db.session.scalars(select(ItemEvent))]
    stored += [repr(a.data) for a in db.session.scalars(select(AuditEntry))]
    assert not any(token in row for row in stored)
    page = deputy.get(f"/staff/items/{item.ref}").text
    assert "待群众认领" in page and 'id="reissue-form"' in page


# --- the resident claims on their own phone --------------------------------------------------------


def test_the_resident_claims_and_rates_once_with_the_new_key(app, client, world, entered):
    page = client.get(f"/r/{entered.receipt_token}")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "139****5678" in page.text and "139 1234 5678" not in page.text  # a receipt may be lost and found
    assert "张秀英代表" in page.text and format_ref(entered.ref) in page.text
    key = claimed_key(claim(client, entered.receipt_token))
    db.session.refresh(entered)
    assert entered.access_key == key and entered.claimed_at is not None and not entered.awaits_claim
    track = client.get(f"/t/{entered.ref}?k={key}&claimed=1")
    assert track.status_code == 200 and 'id="claimed"' in track.text and key in track.text
    assert "本人已认领" in track.text  # the public CLAIMED event on the timeline
    [event] = [e for e in entered.events if e.kind == ItemEventKind.CLAIMED]
    assert event.is_public and event.actor_kind.value == "resident" and event.data["wechat"] is False
    [audit] = audit_rows("item_claimed")
    assert audit.staff_user_id is None and audit.data["ref"] == entered.ref
    assert key not in repr(audit.data) + repr(event.data)

    # Staff never see the new key; the item page says it was claimed.
    deputy = login(app, "deputy_d1")
    staff_page = deputy.get(f"/staff/items/{entered.ref}").text
    assert key not in staff_page and "群众已认领" in staff_page and 'id="reissue-form"' not in staff_page

    resolve(entered, world)
    g.pop("csrf_token", None)
    html, csrf = fresh_token(client, f"/t/{entered.ref}?k={key}")
    assert 'id="rating"' in html
    rated = client.post(
        f"/t/{entered.ref}/rating?k={key}", data={"csrf_token": csrf, "satisfaction": "satisfied", "solved": "true"}
    )
    assert rated.status_code == 303
    again = client.post(
        f"/api/v1/items/{entered.ref}/rating?key={key}", json={"satisfaction": "satisfied", "solved": True}
    )
    assert again.status_code == 409 and again.json["error"]["code"] == "already_rated"
    db.session.refresh(entered)
    assert entered.satisfaction == Satisfaction.SATISFIED and rated_events() == 1


def test_a_receipt_works_once(client, world, entered):
    key = claimed_key(claim(client, entered.receipt_token))
    before = counts()
    second_phone = client.application.test_client()
    _, csrf = fresh_token(second_phone, "/staff/login")
    for response in (
        second_phone.get(f"/r/{entered.receipt_token}"),
        second_phone.post(f"/r/{entered.receipt_token}", data={"csrf_token": csrf}),
    ):
        assert response.status_code == 409 and "已经被认领过" in response.text and "认领时间" in response.text
        assert 'id="claim-form"' not in response.text
        assert '<a class="button" href="/t">查询留言</a>' in response.text  # a way on, not a dead end
    assert counts() == before
    db.session.refresh(entered)
    assert entered.access_key == key  # the first claim's key still stands
    assert [r.data["reason"] for r in audit_rows("claim_refused")] == ["used", "used"]


def test_the_claim_binds_the_resident_s_wechat_when_the_browser_has_one(client, world, entered):
    resident = Resident(mp_openid="o-mp-resident-1", created_at=utcnow())
    db.session.add(resident)
    db.session.commit()
    with client.session_transaction() as session:
        session[SESSION_RESIDENT_KEY] = resident.id  # what the H5 OAuth keeps (wechat.identity.finish_h5_oauth)
    claimed_key(claim(client, entered.receipt_token))
    db.session.refresh(entered)
    assert entered.resident_id == resident.id
    assert db.session.scalar(select(ItemReceipt.resident_id)) == resident.id
    assert audit_rows("item_claimed")[0].data["wechat_bound"] is True


def test_an_unclaimed_item_cannot_be_looked_up_or_rated(client, world, entered):
    resolve(entered, world)
    before = counts()
    for key in ("", "-", " ", "_", "--", "A" * 17):
        assert client.get(f"/t/{entered.ref}", query_string={"k": key}).status_code == 404, key
        response = client.post(
            f"/api/v1/items/{entered.ref}/rating",
            query_string={"key": key},
            json={"satisfaction": "satisfied", "solved": True},
        )
        assert response.status_code == 404, key
    with pytest.raises(UserError) as refused:
        rate_item(entered, "satisfied", True)  # even a caller that found the item some other way
    assert refused.value.status == 409 and refused.value.code == "not_claimed"
    db.session.rollback()
    assert counts() == before and rated_events() == 0


@pytest.mark.parametrize(
    "token",
    ["x", "short-token", "A" * 22, "A" * 65, "%00" * 8, "..%2f..%2fetc%2fpasswd", "\u202e" * 20],
)
def test_unknown_and_malformed_claim_links_are_404(client, entered, token):
    get = client.get(f"/r/{token}")
    assert get.status_code == 404 and 'id="claim' not in get.text
    _, csrf = fresh_token(client, "/staff/login")
    assert client.post(f"/r/{token}", data={"csrf_token": csrf}).status_code == 404
    assert audit_rows("claim_refused") == []  # nothing real was touched


def test_a_claim_without_csrf_is_refused(client, entered):
    before = counts()
    assert client.post(f"/r/{entered.receipt_token}", data={}).status_code == 400
    assert counts() == before and open_receipt(entered.receipt_token).state == "live"


# --- staff are refused: the claim page --------------------------------------------------------------


@pytest.mark.parametrize("username", ["deputy_d1", "admin_a", "sup_county", "deputy_d4"])
def test_a_browser_logged_in_as_staff_cannot_claim(app, entered, username):
    """The deputy holding the receipt's link while logged in (and any other staff browser) is refused."""
    staff = login(app, username)
    _, csrf = fresh_token(staff, "/staff/")
    before = counts()
    page = staff.get(f"/r/{entered.receipt_token}")
    posted = staff.post(f"/r/{entered.receipt_token}", data={"csrf_token": csrf})
    for response in (page, posted):
        assert response.status_code == 403 and "不能认领" in response.text
    assert counts() == before and open_receipt(entered.receipt_token).state == "live"
    rows = audit_rows("claim_refused")
    assert len(rows) == 2 and {r.data["reason"] for r in rows} == {"staff"} and rows[0].staff_user_id is not None


def test_a_logged_out_session_or_a_staff_token_still_counts(app, entered):
    staff = login(app, "deputy_d1")
    with staff.session_transaction() as session:
        sid = session["sid"]
    _, csrf = fresh_token(staff, "/staff/")
    staff.post("/staff/logout", data={"csrf_token": csrf})  # the server ends the session …
    with staff.session_transaction() as session:
        session["sid"] = sid  # … but the browser kept (or replays) its cookie
    assert staff.get(f"/r/{entered.receipt_token}").status_code == 403
    headers = api_token(app, "admin_a")
    assert app.test_client().get(f"/r/{entered.receipt_token}", headers=headers).status_code == 403
    assert open_receipt(entered.receipt_token).state == "live"


# --- a new receipt --------------------------------------------------------------------------------


def test_a_new_receipt_voids_the_old_one(app, client, world, entered):
    deputy = login(app, "deputy_d1")
    _, csrf = fresh_token(deputy, f"/staff/items/{entered.ref}")
    response = deputy.post(f"/staff/items/{entered.ref}/receipt", data={"csrf_token": csrf})
    assert response.status_code == 200 and "原来的回执已作废" in response.text
    new_token = receipt_token_in(response.text)
    assert new_token != entered.receipt_token
    old = client.get(f"/r/{entered.receipt_token}")
    assert old.status_code == 410 and "已作废" in old.text
    [reissue] = audit_rows("receipt_reissued")
    assert reissue.staff_user_id == world.users["deputy"].id and reissue.data["voided"] == 1
    note = db.session.scalar(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.NOTE))
    assert note.data["action"] == "reissue_receipt" and not note.is_public
    assert "重新出具回执" in deputy.get(f"/staff/items/{entered.ref}").text

    claimed_key(claim(client, new_token))
    before = counts()
    g.pop("csrf_token", None)
    _, csrf = fresh_token(deputy, f"/staff/items/{entered.ref}")
    refused = deputy.post(f"/staff/items/{entered.ref}/receipt", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "已经用本人手机认领" in refused.text
    assert counts() == before


@pytest.mark.parametrize("username", ["sup_county", "deputy_d3", "admin_b", "deputy_d4"])
def test_only_the_item_s_deputy_and_station_issue_receipts(app, entered, username):
    staff = login(app, username)
    _, csrf = fresh_token(staff, "/staff/")
    assert staff.post(f"/staff/items/{entered.ref}/receipt", data={"csrf_token": csrf}).status_code == 404
    assert audit_rows("receipt_reissued") == [] and open_receipt(entered.receipt_token).state == "live"


def test_the_station_issues_a_receipt_but_not_for_a_resident_s_own_item(app, world, entered):
    admin = login(app, "admin_a")
    _, csrf = fresh_token(admin, f"/staff/items/{entered.ref}")
    assert admin.post(f"/staff/items/{entered.ref}/receipt", data={"csrf_token": csrf}).status_code == 200
    own = make_item(world.d1)
    refused = admin.post(f"/staff/items/{own.ref}/receipt", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "已有查询码" in refused.text
    assert admin.post(f"/staff/items/{entered.ref}/receipt", data={}).status_code == 400  # no CSRF


# --- no staff credential rates, for any item -------------------------------------------------------


@pytest.fixture
def both_resolved(client, world, entered):
    """A resident's own item and a claimed in-person item, both resolved; their keys."""
    own = make_item(world.d1)
    resolve(own, world)
    key = claimed_key(claim(client, entered.receipt_token))
    resolve(entered, world)
    g.pop("csrf_token", None)
    return [(own, own.access_key), (entered, key)]


def test_the_deputy_s_session_is_refused_at_both_rating_endpoints(app, world, both_resolved):
    deputy = login(app, "deputy_d1")
    for item, key in both_resolved:
        _, csrf = fresh_token(deputy, f"/t/{item.ref}?k={key}")  # the key in staff hands, somehow
        before = counts()
        page = deputy.post(
            f"/t/{item.ref}/rating?k={key}", data={"csrf_token": csrf, "satisfaction": "satisfied", "solved": "true"}
        )
        assert page.status_code == 403 and "工作人员账号不能评价" in page.text
        # The JSON endpoint reads the browser's cookie too.
        api = deputy.post(
            f"/api/v1/items/{item.ref}/rating?key={key}", json={"satisfaction": "satisfied", "solved": True}
        )
        assert api.status_code == 403 and api.json["error"]["code"] == "staff_cannot_rate"
        assert counts() == before
        db.session.refresh(item)
        assert item.rated_at is None and item.status == ItemStatus.RESOLVED
    assert len(audit_rows("rating_refused_staff")) == 4 and rated_events() == 0


@pytest.mark.parametrize("username", ["sup_county", "admin_a", "deputy_d1", "dept_user"])
def test_staff_tokens_are_refused_at_both_rating_endpoints(app, world, both_resolved, username):
    headers = api_token(app, username)
    client = app.test_client()
    for item, key in both_resolved:
        before = counts()
        api = client.post(
            f"/api/v1/items/{item.ref}/rating?key={key}",
            json={"satisfaction": "satisfied", "solved": True},
            headers=headers,
        )
        assert api.status_code == 403 and "不能评价" in api.json["error"]["message"]
        page = client.post(f"/t/{item.ref}/rating?k={key}", data={"satisfaction": "satisfied"}, headers=headers)
        assert page.status_code in (400, 403)  # the page's CSRF check may answer first; never a rating
        assert counts() == before
        db.session.refresh(item)
        assert item.rated_at is None
    assert rated_events() == 0
    # Without any staff credential the same key rates.
    own, key = both_resolved[0]
    fine = client.post(f"/api/v1/items/{own.ref}/rating?key={key}", json={"satisfaction": "basically", "solved": True})
    assert fine.status_code == 200


# --- the figures keep in-person satisfaction apart ---------------------------------------------------


def test_in_person_satisfaction_is_counted_apart_and_earns_no_points(app, client, world, both_resolved):
    from backend.supervision import points, stats

    (own, _), (in_person, _) = both_resolved
    for item, item_key in both_resolved:
        rated = client.post(
            f"/api/v1/items/{item.ref}/rating?key={item_key}", json={"satisfaction": "satisfied", "solved": True}
        )
        assert rated.status_code == 200
    # An in-person item rated the old way, before claims existed (its deputy had seen the key): the
    # columns the old rating wrote, set directly, the only way to make that state now.
    legacy = entered_in_person(world.users["deputy"], "改版前录入的意见，查询码曾交给代表。")
    resolve(legacy, world)
    legacy.satisfaction, legacy.is_solved_per_resident, legacy.rated_at = Satisfaction.SATISFIED, True, utcnow()
    db.session.commit()

    scope = stats.Scope("deputy", deputy=world.d1, station=world.station_a)
    figures = stats.compute(scope, stats.default_range())
    c = figures.counts
    assert (c.rated, c.fully_satisfied) == (1, 1)  # 满意率: the resident's own item only
    assert (c.in_person, c.in_person_rated, c.in_person_fully_satisfied) == (2, 1, 1)
    assert c.unclaimed_rated == 1
    lines = {line.rule.key: line.quantity for line in points.deputy_points(figures).lines}
    assert lines["satisfied"] == 1  # the in-person verdicts earn nothing
    rng = stats.default_range()
    listed = {
        figure: set(db.session.scalars(stats.figure_items_query(scope, rng, figure).with_only_columns(Item.ref)))
        for figure in ("rated", "in_person_rated", "unclaimed_rated")
    }
    assert listed == {"rated": {own.ref}, "in_person_rated": {in_person.ref}, "unclaimed_rated": {legacy.ref}}

    app.config["STATS_MIN_SAMPLE"] = 1
    supervisor = api_token(app, "sup_county")
    body = app.test_client().get(f"/api/v1/stats?deputy={world.d1.id}", headers=supervisor).json
    assert body["satisfaction_rate"] == 1.0 and body["rated"] == 1
    assert (body["in_person_rated"], body["in_person_satisfaction_rate"], body["unclaimed_rated"]) == (1, 1.0, 1)
    html = login(app, "sup_county").get(f"/supervision/?deputy={world.d1.id}").text
    assert re.search(r'id="value-in-person-satisfaction-rate">\s*100\.0%', html)
    assert re.search(r'id="value-unclaimed-rated">1<', html)
    assert in_person.channel == ItemChannel.IN_PERSON


def test_an_unknown_receipt_says_so(client):
    response = client.get("/r/" + "A" * 22)
    assert response.status_code == 404 and "找不到这张回执" in response.text


# --- in-person items made before this change -------------------------------------------------------


# The revision just before the claims migration (its down_revision): the items table as the old entry page wrote it.
BEFORE_CLAIMS = "b5d1f0c8a3e2"


def test_a_migrated_in_person_item_s_old_key_cannot_rate(old_database, tmp_path):
    """The deputy saw the old key on the entry page: after the migration it opens and rates nothing;
    a receipt from the item page lets the resident claim the item and rate it once, with a new key."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import insert, text

    from backend import create_app
    from backend.items.operations import body_fingerprint
    from tests.factories import password_hash
    from tests.helpers import PASSWORD

    old_key = "ABCDEFGHJKMNPQRST"
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": old_database,
            "PUBLIC_BASE_URL": "https://msl.example.cn",
            "REDIS_URL": None,
        }
    )
    app.instance_path = str(tmp_path / "instance")
    with app.app_context():
        upgrade(revision=BEFORE_CLAIMS)
        now = utcnow()

        def old_row(table: str, **values) -> int:
            """A row written with the old schema's columns (today's models have columns added since)."""
            reflected = sa.Table(table, sa.MetaData(), autoload_with=db.session.connection())
            present = {key: value for key, value in values.items() if key in reflected.c}
            return db.session.execute(insert(reflected).values(present).returning(reflected.c.id)).scalar()

        county_id = old_row("regions", code="430225", name="炎陵县", level="county")
        station_id = old_row(
            "stations", name="霞阳镇人大代表联络站", region_id=county_id, address="霞阳镇", contact_name="",
            contact_phone="", reception_hours="", is_active=True, created_at=now,
        )  # fmt: skip
        deputy_id = old_row(
            "deputies", name="张秀英", station_id=station_id, constituency="第三选区", occupation="", phone="",
            status="serving", photo_version=0, created_at=now,
        )  # fmt: skip
        old_row(
            "staff_users", username="deputy_d1", display_name="张秀英", password_hash=password_hash(),
            role="deputy", deputy_id=deputy_id, is_active=True, created_at=now,
        )  # fmt: skip
        db.session.commit()
        row = {  # an in-person item as the old entry page stored it: resolved, its key shown to the deputy
            "ref": "7K4P9QXD", "access_key": old_key, "station_id": station_id, "deputy_id": deputy_id,
            "channel": ItemChannel.IN_PERSON, "category": "transport", "body": "班车太少。", "contact_name": "",
            "contact_phone": "", "status": ItemStatus.RESOLVED, "resolved_at": now, "accepted_at": now,
            "first_answered_at": now, "outcome": "solved", "outcome_reason": "", "reopen_count": 0,
            "screening": "unscreened", "is_held": False, "needs_review": False, "review_reason": "",
            "body_fingerprint": body_fingerprint("班车太少。"), "created_at": now, "updated_at": now,
        }  # fmt: skip
        columns = [c.name for c in Item.__table__.columns if c.name != "claimed_at"]  # the old table's
        db.session.execute(insert(Item.__table__).values({k: v for k, v in row.items() if k in columns}))
        db.session.commit()
        db.session.remove()

        upgrade()  # to head: the key is voided
        assert db.session.scalar(text("SELECT access_key FROM items WHERE ref = '7K4P9QXD'")) == ""
        db.session.remove()

        client = app.test_client()
        assert client.get(f"/t/7K4P9QXD?k={old_key}").status_code == 404
        rated = client.post(
            f"/api/v1/items/7K4P9QXD/rating?key={old_key}", json={"satisfaction": "satisfied", "solved": True}
        )
        assert rated.status_code == 404
        # The deputy issues a receipt from the item page; the resident claims the item and rates it once.
        deputy_browser = app.test_client()
        g.pop("csrf_token", None)
        html = deputy_browser.get("/staff/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]
        deputy_browser.post("/staff/login", data={"csrf_token": csrf, "username": "deputy_d1", "password": PASSWORD})
        g.pop("csrf_token", None)
        page = deputy_browser.get("/staff/items/7K4P9QXD").text
        assert "待群众认领" in page
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        receipt = deputy_browser.post("/staff/items/7K4P9QXD/receipt", data={"csrf_token": csrf})
        assert receipt.status_code == 200
        g.pop("csrf_token", None)
        new_key = claimed_key(claim(client, receipt_token_in(receipt.text)))
        assert new_key != old_key
        body = {"satisfaction": "satisfied", "solved": True}
        assert client.post(f"/api/v1/items/7K4P9QXD/rating?key={old_key}", json=body).status_code == 404
        assert client.post(f"/api/v1/items/7K4P9QXD/rating?key={new_key}", json=body).status_code == 200
        assert client.post(f"/api/v1/items/7K4P9QXD/rating?key={new_key}", json=body).status_code == 409
        db.session.remove()
        downgrade(revision=BEFORE_CLAIMS)  # and back: the key the claim made stays, the CLAIMED event is a note
        assert db.session.scalar(text("SELECT access_key FROM items WHERE ref = '7K4P9QXD'")) == new_key
        assert db.session.scalar(text("SELECT count(*) FROM item_events WHERE kind = 'claimed'")) == 0
        db.session.remove()
        db.engine.dispose()
