"""The H5 form behind a code, the confirmation and tracking pages, and their bad inputs."""

import io
import re
import zipfile

import pytest
from PIL import Image
from sqlalchemy import func, select

from backend.extensions import db
from backend.items.photos import decoding_turn
from backend.models import Code, DeputyStatus, Item, ItemPhoto
from backend.qr import scans
from backend.qr.codes import current_code, rotate_code
from tests.helpers import csrf_token_from, hidden_value, jpeg_bytes
from tests.wechat_server import wechat_sandbox  # noqa: F401


def item_count():
    return db.session.scalar(select(func.count(Item.id)))


def open_form(client, slug):
    resp = client.get(f"/c/{slug}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    return html, {"csrf_token": csrf_token_from(html), "client_id": hidden_value(html, "client_id")}


def post_with_photo(client, slug: str, fields: dict, body: str, photo: bytes, filename: str = "a.jpg"):
    """Send the form as a browser does: its hidden ``fields`` (from :func:`open_form`), ``body`` and one photo."""
    data = {**fields, "body": body, "photos": [(io.BytesIO(photo), filename)]}
    return client.post(f"/c/{slug}", data=data, content_type="multipart/form-data")


def test_form_shows_deputy_card_in_chinese(client, deputy, slug):
    html, _ = open_form(client, slug)
    assert deputy.name in html and "县人大代表" in html and "霞阳镇第三选区" in html
    assert "霞阳镇人大代表联络站" in html
    assert 'lang="zh-CN"' in html and "width=device-width" in html
    assert "我要留言" in html
    # Every scan is counted for the code, on its day.
    code_id = db.session.scalar(select(Code.id).where(Code.slug == slug))
    assert scans.total_scans([code_id]) == {code_id: 1}


def test_submit_form_then_confirmation(client, deputy, slug):
    _, fields = open_form(client, slug)
    resp = client.post(
        f"/c/{slug}",
        data={**fields, "body": "小区门口的下水道堵了，下雨天积水很深。", "category": "urban"},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303
    item = db.session.scalar(select(Item))
    assert item.channel.value == "qr_h5" and item.deputy_id == deputy.id
    assert resp.headers["Location"].startswith(f"/t/{item.ref}?k={item.access_key}")
    page = client.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "提交成功" in html and f"{item.ref[:4]}-{item.ref[4:]}" in html
    assert f"https://msl.example.cn/t/{item.ref}?k={item.access_key}" in html
    assert "接下来" in html and "留言已提交" in html
    assert page.headers["Cache-Control"] == "no-store"


def test_double_submit_of_one_form_makes_one_item(client, slug):
    _, fields = open_form(client, slug)
    data = {**fields, "body": "重复点击了提交按钮。"}
    first = client.post(f"/c/{slug}", data=data)
    second = client.post(f"/c/{slug}", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert item_count() == 1


def test_photos_are_reencoded_and_served_only_with_key(client, slug):
    _, fields = open_form(client, slug)
    resp = post_with_photo(client, slug, fields, "附上现场照片。", jpeg_bytes())
    assert resp.status_code == 303
    item = db.session.scalar(select(Item))
    photo = db.session.scalar(select(ItemPhoto))
    assert photo.item_id == item.id
    ok = client.get(f"/t/{item.ref}/photos/0.jpg?k={item.access_key}")
    assert ok.status_code == 200 and ok.mimetype == "image/jpeg"
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in ok.headers["Content-Security-Policy"]
    Image.open(io.BytesIO(ok.data)).verify()
    assert client.get(f"/t/{item.ref}/photos/0.jpg?k=wrong").status_code == 404
    assert client.get(f"/t/{item.ref}/photos/0.jpg").status_code == 404
    assert client.get(f"/t/{item.ref}/photos/5.jpg?k={item.access_key}").status_code == 404


def _gif():
    buf = io.BytesIO()
    Image.new("P", (10, 10)).save(buf, "GIF")
    return buf.getvalue()


def _zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


def _huge_png():
    buf = io.BytesIO()
    Image.new("1", (12000, 9000)).save(buf, "PNG")  # 108 megapixels, a few kB on disk
    return buf.getvalue()


@pytest.mark.parametrize(
    "payload,code_text",
    [
        (_gif, "JPG"),
        (lambda: b"<html><script>alert(1)</script></html>", "JPG"),
        (_zip, "JPG"),
        (_huge_png, "像素"),
    ],
    ids=["gif-named-jpg", "html-named-jpg", "zip-named-jpg", "108-megapixels"],
)
def test_bad_photos_keep_the_text(client, slug, payload, code_text):
    _, fields = open_form(client, slug)
    body = "照片有问题但文字要保留。"
    resp = post_with_photo(client, slug, fields, body, payload(), "photo.jpg")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert body in html  # nothing the resident typed is lost
    assert code_text in html
    assert item_count() == 0


def test_too_many_photos(client, slug):
    _, fields = open_form(client, slug)
    files = [(io.BytesIO(jpeg_bytes()), f"{i}.jpg") for i in range(4)]
    resp = client.post(f"/c/{slug}", data={**fields, "body": "四张照片太多了。", "photos": files})
    assert resp.status_code == 400 and "最多上传3张照片" in resp.get_data(as_text=True)
    assert item_count() == 0


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"body": ""}, "请填写留言内容"),
        ({"body": "  \n  "}, "请填写留言内容"),
        ({"body": "长" * 1001}, "最多1000个字"),
        ({"body": "正常的留言内容", "phone": "23812345678", "consent": "1"}, "手机号格式不正确"),
        ({"body": "正常的留言内容", "phone": "13812345678"}, "请勾选同意说明"),
        ({"body": "含有\x00空字节"}, "无法识别的字符"),
    ],
)
def test_form_errors_in_chinese_keep_input(client, slug, fields, message):
    _, base = open_form(client, slug)
    resp = client.post(f"/c/{slug}", data={**base, **fields})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert message in html
    if fields.get("phone"):
        assert fields["phone"] in html  # what was typed is shown again
    assert item_count() == 0


def test_html_in_every_field_is_escaped_when_shown_again(client, slug):
    _, base = open_form(client, slug)
    evil = '"><script>alert(1)</script>'
    resp = client.post(f"/c/{slug}", data={**base, "body": evil + "内容", "name": evil[:20], "phone": evil})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert item_count() == 0


def test_malformed_utf8_in_form(client, slug):
    _, base = open_form(client, slug)
    raw = (
        f"csrf_token={base['csrf_token']}&client_id={base['client_id']}&body=%FF%FE%E4%BD%A0%E5%A5%BD%E5%A5%BD%E5%A5%BD"
    ).encode()
    resp = client.post(f"/c/{slug}", data=raw, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400 and "无法识别的字符" in resp.get_data(as_text=True)
    assert item_count() == 0


def test_csrf_missing_or_wrong(client, slug):
    _, base = open_form(client, slug)
    no_token = client.post(f"/c/{slug}", data={"client_id": base["client_id"], "body": "没有令牌的提交。"})
    wrong = client.post(f"/c/{slug}", data={**base, "csrf_token": "forged", "body": "伪造令牌的提交。"})
    for resp in (no_token, wrong):
        assert resp.status_code == 400
        assert "页面已过期" in resp.get_data(as_text=True)
    assert item_count() == 0


def test_json_sent_to_the_form(client, slug):
    _, base = open_form(client, slug)
    resp = client.post(f"/c/{slug}", json={"body": "JSON 发到表单。"}, headers={"X-CSRFToken": base["csrf_token"]})
    assert resp.status_code == 415
    assert "请通过页面上的表单提交留言" in resp.get_data(as_text=True)
    assert item_count() == 0


def test_oversized_bodies(app, client, slug):
    _, base = open_form(client, slug)
    # url-encoded: Flask does not limit it by itself
    big = client.post(f"/c/{slug}", data={**base, "body": "很" * 30000})
    assert big.status_code == 413 and "太长" in big.get_data(as_text=True)
    # multipart: over MAX_CONTENT_LENGTH
    app.config["MAX_CONTENT_LENGTH"] = 200_000
    files = {"photos": [(io.BytesIO(b"\xff" * 300_000), "big.jpg")]}
    huge = client.post(f"/c/{slug}", data={**base, "body": "大文件。", **files}, content_type="multipart/form-data")
    assert huge.status_code == 413 and "太大" in huge.get_data(as_text=True)
    assert item_count() == 0


@pytest.mark.parametrize("bad", ["AAAAAAAAAAAA", "short", "%00%00", "a" * 300])
def test_unknown_and_malformed_slugs_page(client, deputy, bad):
    resp = client.get(f"/c/{bad}")
    assert resp.status_code == 404
    assert "找不到这个二维码" in resp.get_data(as_text=True)


def test_replaced_code_page_has_no_form(client, deputy, slug):
    rotate_code(deputy, "海报被涂改")
    db.session.commit()
    resp = client.get(f"/c/{slug}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 410 and "已经更换" in html and "<form" not in html
    assert ways_back(html) == [("码上找代表", "/stations"), ("返回首页", "/")]
    assert client.post(f"/c/{slug}", data={"body": "x"}).status_code in (400, 410)
    assert item_count() == 0


def test_resigned_deputy_code_routes_to_station(client, create_station, create_deputy):
    station = create_station()
    create_deputy(name="在任代表", station=station)
    gone = create_deputy(name="辞职代表", station=station, status=DeputyStatus.RESIGNED)
    html = client.get(f"/c/{current_code(gone).slug}").get_data(as_text=True)
    assert "辞职代表已辞去代表职务" in html and "交给霞阳镇人大代表联络站的代表办理" in html
    assert "在任代表" in html and 'name="deputy_id"' in html


def test_tracking_page_never_shows_contact_and_wrong_key_is_unknown(client, slug):
    _, base = open_form(client, slug)
    client.post(
        f"/c/{slug}", data={**base, "body": "请回电话给我。", "name": "王小明", "phone": "13912345678", "consent": "1"}
    )
    item = db.session.scalar(select(Item))
    html = client.get(f"/t/{item.ref}?k={item.access_key}").get_data(as_text=True)
    assert "王小明" not in html and "13912345678" not in html and "1391234" not in html
    wrong = client.get(f"/t/{item.ref}?k=nope")
    unknown = client.get("/t/ZZZZZZZZ?k=nope")
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.get_data() == unknown.get_data()


def test_lookup_form(client, slug):
    _, base = open_form(client, slug)
    client.post(f"/c/{slug}", data={**base, "body": "查询页面测试。"})
    item = db.session.scalar(select(Item))
    ok = client.get(f"/t?ref={item.ref[:4]}-{item.ref[4:].lower()}&k={item.access_key}")
    assert ok.status_code == 303 and ok.headers["Location"].startswith(f"/t/{item.ref}?k=")
    bad = client.get(f"/t?ref={item.ref}&k=wrong")
    assert bad.status_code == 404 and "编号或查询码不正确" in bad.get_data(as_text=True)


def test_security_headers_everywhere(client, slug):
    for path in ("/", f"/c/{slug}", "/t", "/api/v1/codes/AAAAAAAAAAAA"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_pages_have_no_inline_script(client, slug):
    html = client.get(f"/c/{slug}").get_data(as_text=True)
    assert "<script>" not in html and "onclick" not in html and "style=" not in html


def test_a_real_phone_photo_over_http(app, wechat_sandbox, deputy, slug):  # noqa: F811
    """Through a real HTTP server (not the test client): a multipart body with a photo of a few hundred kB
    is parsed in 64 KiB chunks, and must not trip the form-memory limit (it did at 64 KiB)."""
    import os

    import requests

    base = wechat_sandbox.url.removesuffix("/_wechat/")
    db.session.commit()  # the server is another connection: release this test's (SQLite write) transaction
    photo = io.BytesIO()
    Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3)).save(photo, "JPEG", quality=92)
    assert 300_000 < len(photo.getvalue()) < 900_000
    with requests.Session() as http:
        page = http.get(f"{base}/c/{slug}", timeout=10)
        fields = {"csrf_token": csrf_token_from(page.text), "client_id": hidden_value(page.text, "client_id")}
        answer = http.post(
            f"{base}/c/{slug}",
            data={**fields, "body": "附上一张手机拍的照片。"},
            files={"photos": ("IMG_0001.jpg", photo.getvalue(), "image/jpeg")},
            allow_redirects=False,
            timeout=20,
        )
    assert answer.status_code == 303, answer.text[:300]
    db.session.rollback()
    assert db.session.scalar(select(func.count(ItemPhoto.id))) == 1


def test_pages_with_a_form_are_never_stored(client, deputy, slug):
    """Going back to a form must fetch it again (with a fresh client_id), never show a stored copy."""
    forms = ("/", f"/c/{slug}", "/t", "/staff/login")
    for path in forms:
        answer = client.get(path)
        assert answer.status_code == 200 and "<form" in answer.text, path
        assert answer.headers["Cache-Control"] == "no-store", path
    qr = client.get(f"/qr/deputy/{deputy.id}.png")  # what says how long it may be kept keeps its own
    assert qr.status_code == 200 and "max-age" in qr.headers["Cache-Control"]


def test_every_visit_of_the_form_has_a_fresh_client_id(client, slug):
    ids = {open_form(client, slug)[1]["client_id"] for _ in range(3)}
    assert len(ids) == 3


def test_a_form_sent_again_under_a_used_client_id_with_another_message(client, slug):
    """The form (back button, a stale page) sends a used client_id with a new message: nothing is stored under
    it, the form comes back with the message kept, says why, and has a fresh client_id for a second tap."""
    _, fields = open_form(client, slug)
    assert client.post(f"/c/{slug}", data={**fields, "body": "第一条留言：路灯坏了。"}).status_code == 303
    refused = client.post(f"/c/{slug}", data={**fields, "body": "第二条留言：垃圾没人收。"})
    assert refused.status_code == 409
    assert "这条留言和之前提交的另一条留言用了同一个提交编号，没有保存。请再提交一次。" in refused.text
    assert "第二条留言：垃圾没人收。" in refused.text
    fresh = hidden_value(refused.text, "client_id")
    assert fresh != fields["client_id"]
    assert item_count() == 1
    again = client.post(f"/c/{slug}", data={**fields, "client_id": fresh, "body": "第二条留言：垃圾没人收。"})
    assert again.status_code == 303
    assert sorted(db.session.scalars(select(Item.body))) == ["第一条留言：路灯坏了。", "第二条留言：垃圾没人收。"]


# -- photos after the throttle, a few at a time (issue 10, finding 4) ----------------------------


@pytest.fixture(scope="module")
def forty_megapixels() -> bytes:
    """An 8000×5000 PNG (40 MP, the limit): a few KB to send, a few hundred MB and a second or two to decode."""
    out = io.BytesIO()
    Image.new("1", (8000, 5000)).save(out, "PNG", optimize=True)
    return out.getvalue()


def with_photos(fields: dict, body: str, *photos: bytes) -> dict:
    return {**fields, "body": body, "photos": [(io.BytesIO(data), f"IMG_{n}.png") for n, data in enumerate(photos)]}


def test_a_throttled_request_is_refused_before_its_photos_are_decoded(app, client, slug, forty_megapixels):
    """Observed, not timed: the test holds the process's only decoding turn and nobody may wait for it, so a
    request that tried to decode would answer 503. The throttled one answers 429; the same request when not
    throttled would decode (503)."""
    app.config.update(THROTTLE_PER_ADDRESS=2, PHOTO_DECODES_PER_PROCESS=1, PHOTO_DECODE_WAIT_SECONDS=0)
    _, fields = open_form(client, slug)
    assert client.post(f"/c/{slug}", data={**fields, "body": "第一条留言，没有照片。"}).status_code == 303
    three = (forty_megapixels,) * 3
    with decoding_turn():
        _, fields = open_form(client, slug)
        would_decode = client.post(f"/c/{slug}", data=with_photos(fields, "第二条留言，带三张大照片。", *three))
        assert would_decode.status_code == 503
        assert "现在提交照片的人很多，请稍等一分钟后再提交。" in would_decode.text
        assert client.post(f"/c/{slug}", data={**fields, "body": "第二条留言，没有照片。"}).status_code == 303

        _, fields = open_form(client, slug)
        throttled = client.post(f"/c/{slug}", data=with_photos(fields, "第三条留言，带三张大照片。", *three))
    assert throttled.status_code == 429
    assert "提交太频繁" in throttled.text
    assert item_count() == 2
    assert db.session.scalar(select(func.count(ItemPhoto.id))) == 0


def test_photos_wait_for_a_decoding_turn_and_are_refused_when_none_comes(app, client, slug):
    app.config.update(PHOTO_DECODES_PER_PROCESS=1, PHOTO_DECODE_WAIT_SECONDS=0)
    _, fields = open_form(client, slug)
    data = with_photos(fields, "附上现场照片。", jpeg_bytes())
    with decoding_turn():
        busy = client.post(f"/c/{slug}", data=data)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "60"
    assert item_count() == 0
    assert client.post(f"/c/{slug}", data=with_photos(fields, "附上现场照片。", jpeg_bytes())).status_code == 303
    assert db.session.scalar(select(func.count(ItemPhoto.id))) == 1


# -- issue 14: every problem at once, no dead ends, the truth about where the key is ----------------------


def visible_text(html: str) -> str:
    """What a person reads on a page: the text outside tags, scripts and styles."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def shown_errors(html: str) -> dict[str, str]:
    """The form's field errors that are shown (not hidden), by field."""
    return {
        field: message
        for field, hidden, message in re.findall(r'data-field="(\w+)"( hidden)?>([^<]*)</p>', html)
        if not hidden
    }


@pytest.mark.parametrize(
    "fields,expected",
    [
        (
            {"body": "太短", "phone": "1381234", "consent": "1"},
            {
                "body": "留言内容太短，请至少写5个字。",
                "phone": "手机号格式不正确，请填写11位大陆手机号，如13812345678。",
            },
        ),
        (
            {"body": "", "name": "王" * 21, "phone": "23812345678"},
            {
                "body": "请填写留言内容。",
                "name": "姓名最多20个字，现在有21个字，请删减。",
                "phone": "手机号格式不正确，请填写11位大陆手机号，如13812345678。",
                "consent": "留下姓名或手机号时，请勾选同意说明；也可以不留联系方式匿名提交。",
            },
        ),
        (
            {"body": "长" * 1001, "category": "no-such-category", "name": "王桂芳"},
            {
                "body": "留言内容最多1000个字，现在有1001个字，请删减。",
                "category": "请选择一个有效的类别。",
                "consent": "留下姓名或手机号时，请勾选同意说明；也可以不留联系方式匿名提交。",
            },
        ),
    ],
    ids=["short-message-and-bad-phone", "empty-long-name-bad-phone-no-consent", "too-long-bad-category-no-consent"],
)
def test_every_problem_is_reported_at_once_and_nothing_is_written(client, slug, fields, expected):
    _, base = open_form(client, slug)
    resp = client.post(f"/c/{slug}", data={**base, **fields})
    assert resp.status_code == 400
    assert shown_errors(resp.text) == expected
    for field in ("body", "name", "phone"):
        if field in expected:
            assert f'id="{field}" name="{field}" aria-invalid="true" aria-describedby="{field}-error"' in resp.text
    assert item_count() == 0


def test_an_oversized_photo_is_reported_with_the_text_problems(app, client, slug):
    """The size is known before any decoding: a photo over the limit and an empty message, both in one answer."""
    app.config["PHOTO_MAX_BYTES"] = 2000
    _, base = open_form(client, slug)
    big = jpeg_bytes((400, 300))
    assert len(big) > 2000
    resp = post_with_photo(client, slug, base, "", big, "IMG_1.jpg")
    assert resp.status_code == 400
    errors = shown_errors(resp.text)
    assert errors["body"] == "请填写留言内容。"
    assert errors["photos"].startswith("照片太大")
    assert 'id="photos-dropped"' not in resp.text  # the photo's own error says what to do
    assert item_count() == 0 and db.session.scalar(select(func.count(ItemPhoto.id))) == 0


def test_too_many_photos_and_a_short_message_at_once(client, slug):
    _, fields = open_form(client, slug)
    files = [(io.BytesIO(jpeg_bytes()), f"{i}.jpg") for i in range(4)]
    resp = client.post(f"/c/{slug}", data={**fields, "body": "短", "photos": files})
    assert resp.status_code == 400
    assert shown_errors(resp.text) == {"body": "留言内容太短，请至少写5个字。", "photos": "最多上传3张照片。"}


def test_the_api_still_answers_the_first_problem_with_its_code(client, slug):
    """Several problems at once change nothing for a JSON client: the first one's code and message."""
    resp = client.post("/api/v1/items", json={"code": slug, "body": "", "phone": "123"})
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "required" and resp.json["error"]["field"] == "body"
    assert item_count() == 0


def test_photos_sent_without_the_page_script_are_asked_for_again(client, slug):
    """A plain form post cannot get its files back: the form says so, beside the photos (form.js removes it)."""
    _, base = open_form(client, slug)
    resp = post_with_photo(client, slug, base, "", jpeg_bytes())
    assert resp.status_code == 400
    assert (
        '<p class="field-error" role="alert" id="photos-dropped">出于安全原因，已选的照片需要重新选择。</p>'
        in resp.text
    )
    without = client.post(f"/c/{slug}", data={**base, "body": ""})
    assert 'id="photos-dropped"' not in without.text


def ways_back(html: str) -> list[tuple[str, str]]:
    """The error page's links onward: (label, href)."""
    nav = re.search(r'<nav class="card ways-back".*?</nav>', html, re.S)
    assert nav, "the error page has no way back"
    return [(label.strip(), href) for href, label in re.findall(r'href="([^"]+)">([^<]+)</a>', nav.group(0))]


@pytest.mark.parametrize("bad", ["AAAAAAAAAAAA", "short", "%00%00"])
def test_an_unknown_code_leads_to_the_directory_and_home_in_chinese_only(client, deputy, bad):
    resp = client.get(f"/c/{bad}")
    assert resp.status_code == 404
    assert ways_back(resp.text) == [("码上找代表", "/stations"), ("返回首页", "/")]
    text = visible_text(resp.text)
    assert "找不到这个二维码" in text and "unknown_code" not in text and "错误代码" not in text
    assert 'data-code="unknown_code"' in resp.text  # kept for whoever helps, out of sight


def test_a_closed_station_leads_to_the_directory(client, deputy, slug):
    deputy.station.is_active = False
    db.session.commit()
    resp = client.get(f"/c/{slug}")
    assert resp.status_code == 410
    assert ways_back(resp.text) == [("码上找代表", "/stations"), ("返回首页", "/")]
    assert "已经撤销" in resp.text and "station_closed" not in visible_text(resp.text)


def test_an_expired_form_leads_back_to_the_form(client, slug):
    """A form sent with a stale token (a page left open overnight): back to the form, which fetches a fresh one."""
    resp = client.post(f"/c/{slug}", data={"csrf_token": "stale", "body": "放了一夜的页面。"})
    assert resp.status_code == 400 and "页面已过期" in resp.text
    assert ways_back(resp.text)[0] == ("返回留言页", f"/c/{slug}")
    assert "csrf_failed" not in visible_text(resp.text)
    assert item_count() == 0


def test_a_busy_moment_on_the_form_leads_back_to_the_form(app, client, slug):
    app.config.update(THROTTLE_PER_ADDRESS=1)
    _, fields = open_form(client, slug)
    assert client.post(f"/c/{slug}", data={**fields, "body": "第一条留言，没有照片。"}).status_code == 303
    _, fields = open_form(client, slug)
    resp = client.post(f"/c/{slug}", data={**fields, "body": "第二条留言，来得太快。"})
    assert resp.status_code == 429
    assert ways_back(resp.text)[0] == ("返回留言页", f"/c/{slug}")
    assert "too_many_requests" not in visible_text(resp.text) and "rate_limited" not in visible_text(resp.text)


def test_a_wrong_key_leads_to_the_lookup_and_answers_like_an_unknown_item(client, slug):
    _, base = open_form(client, slug)
    client.post(f"/c/{slug}", data={**base, "body": "查询链接不完整。"})
    item = db.session.scalar(select(Item))
    wrong = client.get(f"/t/{item.ref}?k=nope")
    unknown = client.get("/t/ZZZZZZZZ?k=nope")
    assert wrong.status_code == unknown.status_code == 404 and wrong.get_data() == unknown.get_data()
    assert ways_back(wrong.text) == [("重新查询留言", "/t"), ("码上找代表", "/stations"), ("返回首页", "/")]
    assert "unknown_item" not in visible_text(wrong.text) and "nope" not in wrong.text


def test_an_error_after_the_key_leads_back_to_the_item(client, slug):
    """A rating sent from a page left open too long (stale token): back to the item, the key still in the link."""
    _, base = open_form(client, slug)
    client.post(f"/c/{slug}", data={**base, "body": "放久了的查询页面。"})
    item = db.session.scalar(select(Item))
    resp = client.post(
        f"/t/{item.ref}/rating?k={item.access_key}",
        data={"csrf_token": "stale", "satisfaction": "satisfied", "solved": "true"},
    )
    assert resp.status_code == 400 and "页面已过期" in resp.text
    assert ways_back(resp.text)[0] == ("返回这条留言", f"/t/{item.ref}?k={item.access_key}")
    assert "csrf_failed" not in visible_text(resp.text)


def test_staff_error_pages_lead_to_the_staff_home(client):
    resp = client.get("/admin/no-such-page")
    assert resp.status_code == 404
    assert ways_back(resp.text) == [("回到工作台", "/staff/")]
    assert '<a class="brand" href="/staff/">码上联</a>' in resp.text


def test_the_header_leads_home(client, slug):
    for path in ("/", f"/c/{slug}", "/t", "/stations", "/c/AAAAAAAAAAAA"):
        assert '<a class="brand" href="/">码上联</a>' in client.get(path).text, path
    assert '<a class="brand" href="/staff/">码上联</a>' in client.get("/staff/login").text


def test_the_lookup_page_says_truthfully_where_the_key_is(client):
    html = client.get("/t").text
    assert "也在您收到的微信通知里" not in html
    assert "编号和查询码在您提交成功后的页面上" in html and "开启了微信通知的" in html


def test_the_tracking_page_offers_to_save_its_link(client, slug):
    _, base = open_form(client, slug)
    client.post(f"/c/{slug}", data={**base, "body": "保存链接的测试。"})
    item = db.session.scalar(select(Item))
    link = f"https://msl.example.cn/t/{item.ref}?k={item.access_key}"
    later = client.get(f"/t/{item.ref}?k={item.access_key}").text
    assert 'id="save-link"' in later and f'data-copy-link="{link}"' in later and "copy_link.js" in later
    confirmation = client.get(f"/t/{item.ref}?k={item.access_key}&new=1").text
    assert 'id="save-link"' not in confirmation and link in confirmation  # the confirmation shows it already


def test_choice_rows_are_whole_width_rows(client, create_station, create_deputy):
    """The deputy choice of a station's form (and the rating, tests/browser) are rows a thumb finds: class row."""
    station = create_station()
    create_deputy(name="在任代表", station=station)
    html = client.get(f"/c/{current_code(station).slug}").text
    assert html.count('<label class="choice row"><input type="radio" name="deputy_id"') == 2
