"""WeChat identity: the mini-program login and resident tokens, "my items", the H5 form's silent OAuth,
and a deputy binding their WeChat — over real HTTP to the local WeChat sandbox."""

# ruff: noqa: F811 - the wechat_sandbox fixture is imported, then named as a parameter

from __future__ import annotations

import hashlib
import io
import re
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import zxingcpp
from flask import g
from PIL import Image
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import AuditEntry, Item, Resident, ResidentSession, StaffUser, WechatBindingCode, utcnow
from backend.qr.codes import current_code
from backend.wechat import identity
from tests.factories import county_world
from tests.helpers import api_token, csrf_token_from, fresh_token, hidden_value, login
from tests.wechat_server import wechat_sandbox  # noqa: F401

BODY = "村口的路灯坏了三个月，晚上出行很不方便，请帮忙修一修。"
WECHAT_BROWSER = (
    "Mozilla/5.0 (Linux; Android 13; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 "
    "Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64"
)
PLAIN_BROWSER = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0 Mobile Safari"


def wechat_login(client, sandbox, openid: str, unionid: str | None = None):
    """POST /api/v1/wechat/login with the code wx.login would give ``openid``."""
    return client.post("/api/v1/wechat/login", json={"code": sandbox.login_code(openid, unionid)})


def resident_headers(client, sandbox, openid: str) -> dict:
    response = wechat_login(client, sandbox, openid)
    assert response.status_code == 201, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def submit(client, slug: str, headers: dict | None = None, body: str = BODY):
    return client.post("/api/v1/items", json={"code": slug, "body": body, "category": "urban"}, headers=headers or {})


# --- mini-program login -----------------------------------------------------------------------


def test_login_gives_a_token_and_keeps_the_session_key_on_the_server(client, wechat_sandbox):
    response = wechat_login(client, wechat_sandbox, "o-resident-1", unionid="u-resident-1")
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at"}
    assert len(body["token"]) >= 43
    assert response.headers["Cache-Control"] == "no-store"
    resident = db.session.scalar(select(Resident).where(Resident.openid == "o-resident-1"))
    assert resident.unionid == "u-resident-1"
    stored = db.session.scalar(select(ResidentSession).where(ResidentSession.resident_id == resident.id))
    assert stored.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()  # the hash, never the token
    assert stored.session_key and stored.session_key not in response.get_data(as_text=True)
    days = (stored.expires_at - stored.created_at).days
    assert days == 30


def test_logging_in_again_is_the_same_resident_with_a_new_token(client, wechat_sandbox):
    first = wechat_login(client, wechat_sandbox, "o-again").get_json()["token"]
    second = wechat_login(client, wechat_sandbox, "o-again").get_json()["token"]
    assert first != second
    assert db.session.scalar(select(func.count()).select_from(Resident)) == 1
    assert db.session.scalar(select(func.count()).select_from(ResidentSession)) == 2


def test_concurrent_logins_of_one_openid_make_one_resident(app, wechat_sandbox):
    codes = [wechat_sandbox.login_code("o-concurrent") for _ in range(6)]
    barrier = threading.Barrier(len(codes))
    statuses: list[int] = []

    def log_in(code: str) -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post("/api/v1/wechat/login", json={"code": code}).status_code)

    threads = [threading.Thread(target=log_in, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [201] * len(codes)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Resident)) == 1
    assert db.session.scalar(select(func.count()).select_from(ResidentSession)) == len(codes)


def test_a_unionid_joins_the_official_account_resident(client, wechat_sandbox):
    db.session.add(Resident(mp_openid="o-mp-1", unionid="u-shared"))
    db.session.commit()
    assert wechat_login(client, wechat_sandbox, "o-mini-1", unionid="u-shared").status_code == 201
    resident = db.session.scalar(select(Resident))
    assert (resident.openid, resident.mp_openid) == ("o-mini-1", "o-mp-1")
    assert db.session.scalar(select(func.count()).select_from(Resident)) == 1


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("never-issued-code", "invalid_login_code"),
        ("", "invalid_login_code"),
        (None, "invalid_login_code"),
        (12345, "invalid_login_code"),
    ],
)
def test_bad_login_codes_are_clear_400s(client, wechat_sandbox, code, error):
    response = client.post("/api/v1/wechat/login", json={"code": code})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == error
    assert "小程序" in response.get_json()["error"]["message"]
    assert db.session.scalar(select(func.count()).select_from(Resident)) == 0


def test_a_used_login_code_is_refused(client, wechat_sandbox):
    code = wechat_sandbox.login_code("o-twice")
    assert client.post("/api/v1/wechat/login", json={"code": code}).status_code == 201
    response = client.post("/api/v1/wechat/login", json={"code": code})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "login_code_used"


@pytest.mark.parametrize("kind", ["busy", "http500", "timeout", "quota", "invalid_token"])
def test_wechat_failing_is_a_503(client, wechat_sandbox, kind):
    code = wechat_sandbox.login_code("o-unlucky")
    # Every WeChat path fails (a token refused forever, the token fetch in quota, or code2Session itself).
    wechat_sandbox.fault("*" if kind == "quota" else "sns/jscode2session", kind, times=-1)
    response = client.post("/api/v1/wechat/login", json={"code": code})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "wechat_unavailable"
    assert response.headers["Retry-After"]
    assert db.session.scalar(select(func.count()).select_from(Resident)) == 0


def test_the_token_must_be_bearer_json(client, wechat_sandbox):
    response = client.post("/api/v1/wechat/login", data="code=abc", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


# --- the token on the API -------------------------------------------------------------------


def test_items_sent_with_a_token_are_the_residents_and_listed_newest_first(client, wechat_sandbox, slug):
    headers = resident_headers(client, wechat_sandbox, "o-writer")
    refs = []
    for n in range(3):
        response = submit(client, slug, headers, body=f"{BODY}第{n + 1}次反映。")
        assert response.status_code == 201, response.get_json()
        refs.append(response.get_json()["ref"])
    anonymous = submit(client, slug, body="匿名留言：广场的长椅坏了。")
    assert anonymous.status_code == 201
    resident = db.session.scalar(select(Resident).where(Resident.openid == "o-writer"))
    owned = db.session.scalars(select(Item.ref).where(Item.resident_id == resident.id)).all()
    assert sorted(owned) == sorted(refs)

    listing = client.get("/api/v1/me/items", headers=headers)
    assert listing.status_code == 200
    assert listing.headers["Cache-Control"] == "no-store"
    body = listing.get_json()
    assert body["total"] == 3 and body["page"] == 1 and not body["has_next"]
    assert [row["ref"] for row in body["items"]] == refs[::-1]
    row = body["items"][0]
    assert row["status"] == "submitted" and row["status_label"] == "已提交"
    assert row["track_url"] == f"https://msl.example.cn/t/{row['ref']}?k={row['key']}"
    assert row["created_at"] and row["is_under_review"] is False

    page2 = client.get("/api/v1/me/items?per_page=2&page=2", headers=headers).get_json()
    assert [r["ref"] for r in page2["items"]] == [refs[0]]
    assert page2["pages"] == 2
    one = client.get(f"/api/v1/me/items/{refs[1]}", headers=headers)
    assert one.status_code == 200 and one.get_json()["ref"] == refs[1]

    # Another resident sees none of them.
    other = resident_headers(client, wechat_sandbox, "o-other")
    assert client.get("/api/v1/me/items", headers=other).get_json()["items"] == []
    assert client.get(f"/api/v1/me/items/{refs[1]}", headers=other).status_code == 404


def test_my_items_needs_a_token(client, wechat_sandbox):
    response = client.get("/api/v1/me/items")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "page=x", "page=1e999", "per_page=51", "per_page=-1", f"per_page={10**9}"]
)
def test_my_items_bad_paging_is_a_400(client, wechat_sandbox, query):
    """The same parser and answers as the staff inbox's (tests/test_pagination.py)."""
    headers = resident_headers(client, wechat_sandbox, "o-pager")
    response = client.get(f"/api/v1/me/items?{query}", headers=headers)
    assert response.status_code == 400
    name = query.split("=")[0]
    assert response.get_json()["error"]["code"] == f"invalid_{name}"


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked", "too_long"])
def test_a_bad_token_is_a_401_never_anonymous(client, wechat_sandbox, slug, state):
    headers = resident_headers(client, wechat_sandbox, "o-stale")
    token = headers["Authorization"].split()[1]
    stored = db.session.scalar(select(ResidentSession))
    if state == "unknown":
        headers = {"Authorization": "Bearer " + "x" * 43}
    elif state == "expired":
        stored.expires_at = utcnow() - timedelta(seconds=1)
    elif state == "revoked":
        stored.revoked_at = utcnow()
    else:
        headers = {"Authorization": "Bearer " + token * 10}
    db.session.commit()
    response = submit(client, slug, headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_token"
    assert db.session.scalar(select(func.count()).select_from(Item)) == 0
    assert client.get("/api/v1/me/items", headers=headers).status_code == 401


def test_a_staff_token_is_no_resident(app, client, wechat_sandbox, create_county, create_station, create_deputy):
    world = county_world()
    headers = api_token(app, "deputy_d1")
    response = submit(client, current_code(world.d1).slug, headers)
    assert response.status_code == 201
    assert db.session.scalar(select(Item.resident_id)) is None
    assert client.get("/api/v1/me/items", headers=headers).status_code == 401


# --- H5 silent OAuth ------------------------------------------------------------------------


def through_wechat_oauth(client, sandbox, slug: str, openid: str):
    """Open the form in WeChat's browser and follow the silent OAuth through the sandbox; return the callback's answer."""
    first = client.get(f"/c/{slug}", headers={"User-Agent": WECHAT_BROWSER})
    assert first.status_code == 302, first.status_code
    authorize = first.headers["Location"]
    assert authorize.startswith(sandbox.url + "connect/oauth2/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["scope"] == ["snsapi_base"] and query["redirect_uri"][0].endswith("/wechat/oauth/callback")
    assert re.fullmatch(r"[A-Za-z0-9]{1,128}", query["state"][0])  # what WeChat allows in state
    back = requests.get(authorize, params={"openid": openid}, allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["Location"])
    assert callback.path == "/wechat/oauth/callback"
    return client.get(f"{callback.path}?{callback.query}", headers={"User-Agent": WECHAT_BROWSER})


def test_h5_form_in_wechat_links_the_item_to_the_residents_openid(client, wechat_sandbox, slug):
    answer = through_wechat_oauth(client, wechat_sandbox, slug, "o-mp-reader")
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"/c/{slug}"
    form = client.get(f"/c/{slug}", headers={"User-Agent": WECHAT_BROWSER})
    assert form.status_code == 200  # known now: no second trip through WeChat
    html = form.get_data(as_text=True)
    response = client.post(
        f"/c/{slug}",
        data={"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id"), "body": BODY},
        headers={"User-Agent": WECHAT_BROWSER},
    )
    assert response.status_code == 303
    item = db.session.scalar(select(Item))
    assert item.resident is not None and item.resident.mp_openid == "o-mp-reader"
    assert item.resident.openid is None


def test_no_oauth_outside_wechat_or_without_an_official_account(app, client, wechat_sandbox, slug):
    assert client.get(f"/c/{slug}", headers={"User-Agent": PLAIN_BROWSER}).status_code == 200
    app.config["WECHAT_MP_APPID"] = None
    other = app.test_client()
    assert other.get(f"/c/{slug}", headers={"User-Agent": WECHAT_BROWSER}).status_code == 200


def test_oauth_failing_leaves_the_form_anonymous_and_never_loops(client, wechat_sandbox, slug):
    wechat_sandbox.fault("sns/oauth2/access_token", "http500", times=-1)
    answer = through_wechat_oauth(client, wechat_sandbox, slug, "o-mp-unlucky")
    assert answer.status_code == 302 and answer.headers["Location"] == f"/c/{slug}"
    assert client.get(f"/c/{slug}", headers={"User-Agent": WECHAT_BROWSER}).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(Resident)) == 0


@pytest.mark.parametrize("state", ["", "abc", "2f632f78z0zdeadbeef", "z" * 200])
def test_a_forged_oauth_state_is_refused(client, wechat_sandbox, slug, state):
    client.get(f"/c/{slug}", headers={"User-Agent": WECHAT_BROWSER})  # this browser has a nonce
    response = client.get(f"/wechat/oauth/callback?code=abc&state={state}")
    assert response.status_code == 400
    assert "微信授权" in response.get_data(as_text=True)


def test_an_oauth_state_from_another_browser_is_refused(app, client, wechat_sandbox, slug):
    first = client.get(f"/c/{slug}", headers={"User-Agent": WECHAT_BROWSER})
    state = parse_qs(urlsplit(first.headers["Location"]).query)["state"][0]
    stranger = app.test_client()
    stranger.get(f"/c/{slug}", headers={"User-Agent": WECHAT_BROWSER})
    assert stranger.get(f"/wechat/oauth/callback?code=abc&state={state}").status_code == 400


# --- a deputy binds their WeChat --------------------------------------------------------------


def decode_qr(data_uri: str) -> list[str]:
    import base64

    png = base64.b64decode(data_uri.split(",", 1)[1])
    image = Image.open(io.BytesIO(png))
    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def binding_page(staff_client) -> tuple[str, str]:
    """Create a binding code on the deputy's page; return (code, the page)."""
    _, token = fresh_token(staff_client, "/staff/wechat-binding")
    response = staff_client.post("/staff/wechat-binding", data={"csrf_token": token, "action": "create"})
    assert response.status_code == 200, response.status_code
    html = response.get_data(as_text=True)
    g.pop("csrf_token", None)
    return re.search(r'id="binding-code">([^<]+)<', html).group(1), html


def test_a_deputy_binds_their_wechat_by_scanning_a_one_time_code(app, client, wechat_sandbox, world):
    staff = login(app, "deputy_d1")
    code, html = binding_page(staff)
    assert len(code) == 16
    image = re.search(r'id="binding-qr" src="(data:image/png;base64,[^"]+)"', html).group(1)
    assert decode_qr(image) == [f"b={code}"]  # the sandbox's mini-program code carries the scene
    assert "10分钟内有效" in html
    row = db.session.scalar(select(WechatBindingCode))
    assert row.code_hash == hashlib.sha256(code.encode()).hexdigest() and code not in row.code_hash
    assert timedelta(minutes=9) < row.expires_at - row.created_at <= timedelta(minutes=10)

    response = client.post(
        "/api/v1/wechat/bind", json={"code": wechat_sandbox.login_code("o-deputy-zhang"), "binding_code": code}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["user"]["username"] == "deputy_d1"
    db.session.expire_all()
    assert db.session.get(StaffUser, world.users["deputy"].id).wechat_openid == "o-deputy-zhang"
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert "wechat_binding_code_created" in actions and "wechat_bound" in actions
    page = staff.get("/staff/wechat-binding").get_data(as_text=True)
    assert "已绑定微信" in page

    # Single use.
    again = client.post(
        "/api/v1/wechat/bind", json={"code": wechat_sandbox.login_code("o-someone-else"), "binding_code": code}
    )
    assert again.status_code == 400
    assert again.get_json()["error"]["code"] == "binding_code_used"
    assert "已经使用过" in again.get_json()["error"]["message"]
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "wechat_bind_refused")) is not None


def test_expired_and_unknown_binding_codes_are_refused_in_chinese(app, client, wechat_sandbox, world):
    staff = login(app, "deputy_d1")
    code, _ = binding_page(staff)
    row = db.session.scalar(select(WechatBindingCode))
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    expired = client.post(
        "/api/v1/wechat/bind", json={"code": wechat_sandbox.login_code("o-late"), "binding_code": code}
    )
    assert expired.status_code == 400
    assert expired.get_json()["error"]["code"] == "binding_code_expired"
    assert "已过期" in expired.get_json()["error"]["message"]
    for bad in ("A" * 16, "short", None):
        unknown = client.post("/api/v1/wechat/bind", json={"code": "x", "binding_code": bad})
        assert unknown.status_code == 400
        assert unknown.get_json()["error"]["code"] == "binding_code_unknown"
        assert "绑定码无效" in unknown.get_json()["error"]["message"]
    assert db.session.get(StaffUser, world.users["deputy"].id).wechat_openid is None


def test_a_new_binding_code_replaces_the_one_on_screen(app, client, wechat_sandbox, world):
    staff = login(app, "deputy_d1")
    old, _ = binding_page(staff)
    new, _ = binding_page(staff)
    refused = client.post("/api/v1/wechat/bind", json={"code": wechat_sandbox.login_code("o-d"), "binding_code": old})
    assert refused.status_code == 400
    ok = client.post("/api/v1/wechat/bind", json={"code": wechat_sandbox.login_code("o-d"), "binding_code": new})
    assert ok.status_code == 200


def test_an_openid_bound_elsewhere_moves_and_unbinding_forgets_it(app, client, wechat_sandbox, world):
    world.users["deputy2"].wechat_openid = "o-shared-phone"
    db.session.commit()
    staff = login(app, "deputy_d1")
    code, _ = binding_page(staff)
    ok = client.post(
        "/api/v1/wechat/bind", json={"code": wechat_sandbox.login_code("o-shared-phone"), "binding_code": code}
    )
    assert ok.status_code == 200, ok.get_json()
    db.session.expire_all()
    assert db.session.get(StaffUser, world.users["deputy2"].id).wechat_openid is None
    assert db.session.get(StaffUser, world.users["deputy"].id).wechat_openid == "o-shared-phone"

    _, token = fresh_token(staff, "/staff/wechat-binding")
    page = staff.post("/staff/wechat-binding", data={"csrf_token": token, "action": "unbind"})
    assert "已解除微信绑定" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(StaffUser, world.users["deputy"].id).wechat_openid is None


def test_a_bad_login_code_spends_no_binding_code(app, client, wechat_sandbox, world):
    staff = login(app, "deputy_d1")
    code, _ = binding_page(staff)
    refused = client.post("/api/v1/wechat/bind", json={"code": "not-a-real-code", "binding_code": code})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_login_code"
    ok = client.post("/api/v1/wechat/bind", json={"code": wechat_sandbox.login_code("o-d1"), "binding_code": code})
    assert ok.status_code == 200


def test_the_binding_page_is_for_deputies_and_station_administrators_only(app, wechat_sandbox, world):
    # A station's administrators handle the items with no deputy (a topic code's) and hear of them in WeChat.
    assert login(app, "admin_a").get("/staff/wechat-binding").status_code == 200
    for username in ("sup_county", "dept_user"):
        assert login(app, username).get("/staff/wechat-binding").status_code == 404
    assert app.test_client().get("/staff/wechat-binding").status_code == 303  # to the login page


def test_without_wechat_the_binding_code_is_shown_as_text(app, wechat_sandbox, world):
    wechat_sandbox.fault("wxa/getwxacodeunlimit", "http500", times=-1)
    code, html = binding_page(login(app, "deputy_d1"))
    assert 'id="binding-qr"' not in html and code in html and "输入下面的绑定码" in html


def test_binding_codes_have_at_least_80_random_bits():
    codes = {identity.new_binding_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(identity.BINDING_CODE_RE.fullmatch(c) for c in codes)
    assert identity.BINDING_CODE_BYTES * 8 >= 80
