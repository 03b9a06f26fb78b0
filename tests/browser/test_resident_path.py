"""The resident's path in a phone browser: scan a code, write, submit, get a reference, follow it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_PASSWORD, SCREENSHOT_DIR
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.browser

MESSAGE = "霞阳镇炎帝大道人行道有三块地砖松动，下雨天踩上去会溅水，老人容易滑倒，请尽快修补。"
CATEGORY = "城乡建设"
RESIDENT_NAME = "王桂芳"
RESIDENT_PHONE = "13912345678"
REF_PATTERN = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$")


def fill_contact(page) -> None:
    """Name, phone and the consent box, as a resident who wants to be called back fills them."""
    page.locator("#name").fill(RESIDENT_NAME)
    page.locator("#phone").fill(RESIDENT_PHONE)
    page.locator("input[name=consent]").check()


def test_deputy_code_from_form_to_timeline(live_server, phone):
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page

    response = page.goto(deputy.url)
    assert response is not None and response.status == 200
    expect(page.locator("h1.name")).to_have_text(deputy.owner_name)
    expect(page.get_by_role("heading", name="我要留言")).to_be_visible()
    assert phone.scroll_width() <= phone.width

    counter = page.locator("#body-counter")
    expect(counter).to_have_text(re.compile(r"^已写0字"))
    page.locator("#body").press_sequentially(MESSAGE[:6])
    expect(counter).to_have_text("已写6字，还可以写994字")
    page.locator("#body").fill(MESSAGE)
    expect(counter).to_have_text(f"已写{len(MESSAGE)}字，还可以写{1000 - len(MESSAGE)}字")

    page.locator("#category").select_option(label=CATEGORY)
    fill_contact(page)
    page.locator("#photos").set_input_files(
        files=[{"name": "地砖.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes((320, 240))}]
    )
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-form")

    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    ref = page.locator("#ref").inner_text().strip()
    assert REF_PATTERN.match(ref), ref
    expect(page.locator(".steps")).to_contain_text(f"{deputy.owner_name}代表")
    photo = page.locator(".photos img")
    expect(photo).to_have_count(1)
    photo.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-confirmation")

    page.locator("#track-link").click()
    expect(page.locator("h1")).to_contain_text(ref)
    expect(page.locator("#timeline")).to_contain_text("留言已提交")
    expect(page.locator("section.card p", has_text="类别")).to_have_text(f"类别 {CATEGORY}")
    expect(page.locator(".message")).to_have_text(MESSAGE)
    content = page.content()
    assert RESIDENT_PHONE not in content and RESIDENT_NAME not in content
    assert phone.problems == []


def test_station_code_to_a_chosen_deputy(live_server, phone):
    station = live_server.demo_codes()["station"]
    page = phone.page

    page.goto(station.url)
    expect(page.locator("h1.name")).to_have_text(station.owner_name)
    assert phone.scroll_width() <= phone.width
    choices = page.locator("label.choice", has=page.locator("input[name=deputy_id]:not([value=duty])"))
    assert choices.count() >= 2
    chosen = choices.last  # not the on-duty deputy of the day, whoever that is
    deputy_name = chosen.inner_text().split()[0]
    chosen.locator("input").check()
    page.locator("#body").fill("十都村到镇上的班车下午四点以后就没有了，学生放学回家不方便，希望增加一班。")
    page.locator("#category").select_option(label="交通出行")
    phone.screenshot("station-form")

    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    assert REF_PATTERN.match(page.locator("#ref").inner_text().strip())
    expect(page.locator(".steps")).to_contain_text(f"{deputy_name}代表")
    expect(page.locator("section.card p", has_text="承办代表")).to_have_text(f"承办代表 {deputy_name}")
    assert phone.problems == []


def posts_of(page) -> list:
    """The form posts the page sends from now on (a list that fills as they go)."""
    posts: list = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and "/c/" in r.url else None)
    return posts


def test_empty_message_is_refused_in_the_page_and_the_rest_is_kept(live_server, phone):
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page

    page.goto(deputy.url)
    posts = posts_of(page)
    page.locator("#category").select_option(label="医疗卫生")
    fill_contact(page)
    page.locator("#submit-button").click()

    expect(page.locator("#body-error")).to_have_text("请填写留言内容。")
    expect(page.locator("#body")).to_be_focused()
    expect(page.locator("#name")).to_have_value(RESIDENT_NAME)
    expect(page.locator("#phone")).to_have_value(RESIDENT_PHONE)
    expect(page.locator("input[name=consent]")).to_be_checked()
    expect(page.locator("#category option:checked")).to_have_text("医疗卫生")
    expect(page.locator("#submit-button")).to_be_enabled()
    assert posts == []  # checked in the page: nothing was sent
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-form-error")
    # Fixed, the error goes as the resident types; sent, it is stored.
    page.locator("#body").fill(MESSAGE)
    expect(page.locator("#body-error")).to_be_hidden()
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    assert phone.problems == []


def test_every_problem_at_once_in_the_page(live_server, phone):
    """A short message, a bad number and a name without the consent box: all three said at once, before sending."""
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page
    page.goto(deputy.url)
    posts = posts_of(page)
    page.locator("#body").fill("路灯坏")
    page.locator("#name").fill(RESIDENT_NAME)
    page.locator("#phone").fill("1391234567")
    page.locator("#submit-button").click()

    expect(page.locator("#body-error")).to_have_text("留言内容太短，请至少写5个字。")
    expect(page.locator("#phone-error")).to_have_text("手机号格式不正确，请填写11位大陆手机号，如13812345678。")
    expect(page.locator("#consent-error")).to_have_text(
        "留下姓名或手机号时，请勾选同意说明；也可以不留联系方式匿名提交。"
    )
    expect(page.locator("#name-error")).to_be_hidden()
    expect(page.locator("#body")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#phone")).to_have_attribute("aria-invalid", "true")
    assert posts == []
    page.locator("#body-error").scroll_into_view_if_needed()
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-form-errors-at-once")

    # Full-width digits as a Chinese keyboard types them are a good number, as on the server.
    page.locator("#phone").fill("１３９１２３４５６７８")
    expect(page.locator("#phone-error")).to_be_hidden()
    page.locator("input[name=consent]").check()
    expect(page.locator("#consent-error")).to_be_hidden()
    expect(page.locator("#body-error")).to_be_visible()  # still too short
    page.locator("#body").fill(MESSAGE)
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    assert len(posts) == 1 and phone.problems == []


def choose_photos(page, *photos: tuple[str, bytes]) -> None:
    """Pick photos with the form's 添加照片, and wait until the page has prepared them."""
    before = page.locator("#photo-list li").count()
    page.locator("#photos").set_input_files(
        files=[{"name": name, "mimeType": "image/jpeg", "buffer": data} for name, data in photos]
    )
    expect(page.locator("#photo-list li")).to_have_count(before + len(photos))


def item_photo_sizes(page, track_url: str) -> list[tuple[int, int]]:
    """The (width, height) of each photo the tracking page shows, as the browser decoded them."""
    page.goto(track_url)
    photos = page.locator(".message ~ .photos img")
    sizes = []
    for n in range(photos.count()):
        handle = photos.nth(n).element_handle()
        handle.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=handle)
        sizes.append(tuple(handle.evaluate("img => [img.naturalWidth, img.naturalHeight]")))
    return sizes


def test_photos_are_kept_when_the_server_refuses_and_go_with_the_item(live_server, phone):
    """A problem only the server sees (a direction-reversing character in the name): its answer shows in the
    page, the chosen photos stay, and the next tap stores the item with exactly those photos."""
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page
    page.goto(deputy.url)
    posts = posts_of(page)
    page.locator("#body").fill(MESSAGE)
    page.locator("#name").fill("王桂芳\u202e")
    page.locator("#phone").fill(RESIDENT_PHONE)
    page.locator("input[name=consent]").check()
    choose_photos(page, ("地砖.jpg", jpeg_bytes((320, 240))), ("路面.jpg", jpeg_bytes((240, 320), (30, 30, 200))))
    expect(page.locator("#photos-chosen")).to_have_text("已选择2张照片")
    page.locator("#submit-button").click()

    expect(page.locator("#name-error")).to_have_text("姓名中含有改变文字方向的控制字符，请删除后重试。")
    expect(page.locator("#photo-list li")).to_have_count(2)
    expect(page.locator("#photos-dropped")).to_have_count(0)
    expect(page.locator("#photos-chosen")).to_have_text("已选择2张照片")
    expect(page.locator("#submit-button")).to_be_enabled()
    assert len(posts) == 1
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-form-server-error-photos-kept")

    page.locator("#name").fill(RESIDENT_NAME)
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    assert len(posts) == 2
    track_url = page.locator("#track-link").get_attribute("href")
    assert sorted(item_photo_sizes(page, track_url)) == [(240, 320), (320, 240)]
    # The refused post is the one console error (Chromium logs a 400 answer, by design).
    assert len(phone.problems) == 1 and "status of 400" in phone.problems[0], phone.problems


def test_photos_are_kept_when_the_network_drops(live_server, phone):
    """The post never reaches the server (the network fails: injected, as it cannot be caused otherwise):
    the page says so, keeps text and photo, and the next tap stores one item with the photo."""
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page
    page.goto(deputy.url)
    page.locator("#body").fill(MESSAGE)
    choose_photos(page, ("地砖.jpg", jpeg_bytes((320, 240))))
    page.route("**/c/*", lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    page.locator("#submit-button").click()
    expect(page.locator("#form-error")).to_contain_text("网络不通，留言没有发出")
    expect(page.locator("#photo-list li")).to_have_count(1)
    expect(page.locator("#submit-button")).to_be_enabled()
    page.unroute("**/c/*")
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    assert item_photo_sizes(page, page.locator("#track-link").get_attribute("href")) == [(320, 240)]


def phone_photo() -> bytes:
    """A 12-megapixel camera JPEG of over 10 MB, as phones take them (noise keeps it from compressing)."""
    import io
    import os

    from PIL import Image

    width, height = 4000, 3000
    noise = Image.frombytes("L", (width, height), os.urandom(width * height))
    gradient = Image.linear_gradient("L").resize((width, height))
    out = io.BytesIO()
    Image.merge("RGB", (noise, gradient, Image.blend(noise, gradient, 0.5))).save(out, "JPEG", quality=96)
    return out.getvalue()


def test_a_large_phone_photo_is_shrunk_in_the_page_before_upload(live_server, phone):
    """An 11 MB photo (over the 5 MB limit) goes as a JPEG of at most 2,048 px a side, under the limit."""
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page
    big = phone_photo()
    assert len(big) > 10_000_000
    page.goto(deputy.url)
    posts = posts_of(page)
    page.locator("#body").fill(MESSAGE)
    choose_photos(page, ("IMG_20261203_101500.jpg", big))
    size = page.locator("#photo-list .size").inner_text()
    assert size.endswith(("KB", "MB")) and (size.endswith("KB") or float(size[:-2]) < 5), size
    page.locator("#photo-list").scroll_into_view_if_needed()
    phone.screenshot("deputy-form-photo-shrunk")
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    # One post, stored with its photo: the server refuses a photo over 5 MB, so what went was the shrunk one
    # (the size shown above; Playwright does not see a body built of blobs).
    assert len(posts) == 1
    assert item_photo_sizes(page, page.locator("#track-link").get_attribute("href")) == [(2048, 1536)]
    assert phone.problems == []


def test_not_a_photo_is_refused_in_the_page(live_server, phone):
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page
    page.goto(deputy.url)
    page.locator("#photos").set_input_files(
        files=[{"name": "说明.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 not a photo"}]
    )
    expect(page.locator("#photos-error")).to_have_text("“说明.pdf”不是 JPG 或 PNG 照片，请换一张。")
    expect(page.locator("#photo-list li")).to_have_count(0)
    # More than three at once: the first three are kept, the rest said.
    four = [(f"{n}.jpg", jpeg_bytes((60, 40))) for n in range(4)]
    page.locator("#photos").set_input_files(
        files=[{"name": name, "mimeType": "image/jpeg", "buffer": data} for name, data in four]
    )
    expect(page.locator("#photo-list li")).to_have_count(3)
    expect(page.locator("#photos-error")).to_have_text("最多3张照片，多选的1张没有加入。")
    page.get_by_role("button", name="删除第1张照片").click()
    expect(page.locator("#photo-list li")).to_have_count(2)
    expect(page.locator("#photos-error")).to_be_hidden()
    assert phone.problems == []


FIRST = "东门口的路灯坏了一个星期，晚上走路看不清，请尽快修好。"
SECOND = "菜市场门前的下水道堵了，一下雨就积水，请安排疏通。"


def read_message(page, track_url: str) -> str:
    """The message a tracking page shows."""
    page.goto(track_url)
    return page.locator(".message").inner_text().strip()


def submit_message(page, body: str) -> str:
    """Write ``body`` into the open form, submit it; the tracking page's URL of the new item."""
    page.locator("#body").fill(body)
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    return page.locator("#track-link").get_attribute("href")


def write_to_the_deputy(live_server, page, body: str) -> tuple[str, str]:
    """Open the demo deputy's code on ``page`` and submit ``body``: the tracking page's URL and the reference."""
    page.goto(live_server.demo_codes()["deputy"].url)
    track_url = submit_message(page, body)
    return track_url, track_url.split("/t/", 1)[1].split("?", 1)[0]


@pytest.mark.parametrize("browser", ["phone", "phone_with_back_forward_cache"])
def test_submit_back_write_another_submit_keeps_both_messages(live_server, request, browser):
    """The back button after a submission, then a second message: two items, each with its own message.
    The form is never stored, so going back fetches it again with a fresh client_id; a browser that keeps
    the page as it was left (back/forward cache) gets a fresh one from the page's script."""
    deputy = live_server.demo_codes()["deputy"]
    phone = request.getfixturevalue(browser)
    page = phone.page
    page.goto(deputy.url)
    first_id = page.locator("input[name=client_id]").input_value()
    choose_photos(page, ("路灯.jpg", jpeg_bytes((320, 240))))
    first = submit_message(page, FIRST)

    page.go_back(wait_until="commit")  # a page restored from the back/forward cache fires no "load"
    expect(page.get_by_role("heading", name="我要留言")).to_be_visible()
    expect(page.locator("#submit-button")).to_be_enabled()
    assert page.locator("input[name=client_id]").input_value() != first_id
    expect(page.locator("#photo-list li")).to_have_count(0)  # the photo went with the first message only
    second = submit_message(page, SECOND)

    assert second != first
    assert read_message(page, second) == SECOND
    assert item_photo_sizes(page, second) == []
    assert read_message(page, first) == FIRST
    assert item_photo_sizes(page, first) == [(320, 240)]
    assert phone.problems == []


def test_a_second_message_under_a_used_client_id_is_refused_and_can_be_sent_again(live_server, phone):
    """Should a browser still send an old client_id with a new message, nothing is lost: the form comes back
    with the message, says so, and a second tap stores it as an item of its own."""
    deputy = live_server.demo_codes()["deputy"]
    page = phone.page
    page.goto(deputy.url)
    used_id = page.locator("input[name=client_id]").input_value()
    first = submit_message(page, FIRST)

    page.goto(deputy.url)
    page.locator("input[name=client_id]").evaluate("(input, id) => { input.value = id; }", used_id)
    page.locator("#body").fill(SECOND)
    page.locator("#submit-button").click()
    expect(page.locator(".alert")).to_have_text(
        "这条留言和之前提交的另一条留言用了同一个提交编号，没有保存。请再提交一次。"
    )
    expect(page.locator("#body")).to_have_value(SECOND)
    assert page.locator("input[name=client_id]").input_value() != used_id
    assert phone.scroll_width() <= phone.width
    phone.screenshot("deputy-form-client-id-reused")

    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    second = page.locator("#track-link").get_attribute("href")
    assert read_message(page, second) == SECOND
    assert read_message(page, first) == FIRST
    # The refused form comes back as a 409 document by design, and Chromium logs that status as an error.
    assert len(phone.problems) == 1 and "status of 409" in phone.problems[0], phone.problems


# -- issue 14: no dead ends, tap targets, the tracking page's link ------------------------------------------


def visible_text(page) -> str:
    """What the resident reads on the page."""
    return page.locator("body").inner_text()


def test_an_unknown_code_is_no_dead_end(live_server, phone):
    page = phone.page
    answer = page.goto(live_server.base_url + "/c/AAAAAAAAAAAA")
    assert answer is not None and answer.status == 404
    expect(page.locator("h1")).to_have_text("找不到该内容")
    text = visible_text(page)
    assert "找不到这个二维码" in text and "unknown_code" not in text and "错误代码" not in text
    assert phone.scroll_width() <= phone.width
    phone.screenshot("error-unknown-code")
    page.get_by_role("link", name="码上找代表").click()
    expect(page).to_have_url(live_server.base_url + "/stations")
    page.locator("a.brand").click()  # the 码上联 header leads home
    expect(page).to_have_url(live_server.base_url + "/")
    expect(page.get_by_role("heading", name="查询留言办理情况")).to_be_visible()


def test_a_wrong_key_leads_to_the_lookup_which_says_where_the_key_is(live_server, phone):
    page = phone.page
    _, ref = write_to_the_deputy(live_server, page, "菜市场东边的水龙头漏水一个月了，请安排维修。")
    answer = page.goto(f"{live_server.base_url}/t/{ref}?k=WRONGKEY")
    assert answer is not None and answer.status == 404
    assert "unknown_item" not in visible_text(page)
    page.get_by_role("link", name="重新查询留言").click()
    expect(page.locator("#where-the-key-is")).to_contain_text("编号和查询码在您提交成功后的页面上")
    assert "也在您收到的微信通知里" not in visible_text(page)
    assert phone.scroll_width() <= phone.width
    phone.screenshot("lookup-after-wrong-key")


def test_the_tracking_page_copies_its_link(live_server, phone):
    page = phone.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.base_url)
    track_url, _ = write_to_the_deputy(live_server, page, "小区门口的垃圾桶满了没人清运，请安排。")
    page.goto(track_url)
    copy = page.locator("#save-link-copy")
    expect(copy).to_have_text("复制本页链接")
    copy.click()
    expect(page.locator("#save-link-result")).to_have_text("已复制链接，请粘贴到备忘录或收藏夹保存。")
    assert page.evaluate("navigator.clipboard.readText()") == track_url
    assert phone.problems == []


def assert_rows_a_thumb_finds(rows, fieldset) -> None:
    """Every row at least 44 px tall and as wide as its fieldset's content."""
    inner = fieldset.evaluate("f => f.clientWidth - parseFloat(getComputedStyle(f).paddingLeft) * 2")
    assert rows.count() >= 2
    for n in range(rows.count()):
        box = rows.nth(n).bounding_box()
        assert box["height"] >= 44, (rows.nth(n).inner_text(), box)
        assert box["width"] >= inner - 2, (rows.nth(n).inner_text(), box, inner)


def test_the_deputy_choice_rows_are_44_px_tall(live_server, phone):
    station = live_server.demo_codes()["station"]
    page = phone.page
    page.goto(station.url)
    rows = page.locator("label.choice", has=page.locator("input[name=deputy_id]"))
    assert_rows_a_thumb_finds(rows, page.locator("fieldset", has=rows.first))
    rows.last.click(position={"x": rows.last.bounding_box()["width"] - 8, "y": 10})  # the row's far end
    expect(rows.last.locator("input")).to_be_checked()


def staff_call(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    """One JSON call to the staff API (``call`` of the dashboard's tests); fails the test on an error answer."""
    from tests.browser.test_dashboard import call

    status, answer = call(base, method, path, body, token)
    assert status in (200, 201), (path, status, answer)
    return answer


def test_the_rating_options_are_44_px_tall(live_server, phone):
    """The deputy handles the item through the staff API; the resident rates on the phone with whole-width rows."""
    page = phone.page
    track_url, ref = write_to_the_deputy(live_server, page, "村口的桥栏杆松了，孩子上学要经过，请尽快加固。")
    base = live_server.base_url
    token = staff_call(base, "POST", "/api/v1/auth/token", {"username": "deputy", "password": DEMO_PASSWORD})["token"]
    for action in ({"action": "accept"}, {"action": "reply", "text": "已请村委会加固栏杆。"}):
        staff_call(base, "POST", f"/api/v1/items/{ref}/actions", action, token)
    staff_call(base, "POST", f"/api/v1/items/{ref}/actions", {"action": "resolve", "outcome": "solved"}, token)

    page.goto(track_url)
    rating = page.locator("#rating")
    for fieldset in (rating.locator("fieldset").nth(0), rating.locator("fieldset").nth(1)):
        assert_rows_a_thumb_finds(fieldset.locator("label.choice"), fieldset)
    rating.locator("label.choice", has_text="基本满意").click()
    expect(rating.locator("input[value=basically]")).to_be_checked()
    rating.scroll_into_view_if_needed()
    assert phone.scroll_width() <= phone.width
    page.set_viewport_size({"width": 360, "height": 740})
    rating.locator("h2").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOT_DIR / "rating-options.png"))
    rating.locator("label.choice", has_text="已解决").click()
    page.locator("#rating-submit").click()
    expect(page.locator("#timeline")).to_contain_text("基本满意；问题已解决。")
    assert phone.problems == []
