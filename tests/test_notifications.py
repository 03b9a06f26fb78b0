"""What each outbox kind says, to whom, with which template — and every value cut to WeChat's limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.items.lifecycle import TRANSITIONS, perform_action
from backend.models import Department, Item, OutboxMessage, Region, StaffUser
from backend.outbox import notifications as n
from backend.outbox.notifications import NoChannel, NotDefined, build_notice, cut_text, fit_value, utf16_length
from tests.factories import make_resident, outbox_item, outbox_world, queue

# --- the limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("路灯修好了", "路灯修好了"),
        ("一二三四五六七八九十一二三四五六七八九十", "一二三四五六七八九十一二三四五六七八九十"),  # exactly 20: kept
        ("一二三四五六七八九十一二三四五六七八九十一", "一二三四五六七八九十一二三四五六七八九…"),  # 21: 19 + …
        ("abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrs…"),
        ("第一行\n第二行\t\t第三行", "第一行 第二行 第三行"),
        ("", "无"),
        ("   ", "无"),
    ],
)
def test_thing_is_at_most_20_characters_cut_at_19_with_an_ellipsis(value, expected):
    got = fit_value("thing3", value)
    assert got == expected
    assert utf16_length(got) <= 20


def test_thing_counts_emoji_as_two_and_never_splits_one():
    thumbs = fit_value("thing1", "👍" * 15)  # 30 UTF-16 units
    assert thumbs == "👍" * 9 + "…" and utf16_length(thumbs) == 19
    assert fit_value("thing1", "👍" * 10) == "👍" * 10  # 20 units: fits
    family = "👨\u200d👩\u200d👧"  # one person-visible emoji, five code points, 8 units
    assert fit_value("thing1", "家" * 12 + family) == "家" * 12 + family  # 20 units: fits
    cut = fit_value("thing1", "家" * 13 + family)
    assert cut == "家" * 13 + "…"  # the family would not fit whole: it goes whole
    flags = fit_value("thing1", "🇨🇳" * 6)  # 4 units each
    assert flags == "🇨🇳" * 4 + "…"
    accent = fit_value("thing1", "e\u0301" * 12)  # a base and a combining mark stay together
    assert accent == "e\u0301" * 9 + "…"
    skin = fit_value("thing1", "👍🏽" * 6)  # 4 units each
    assert skin == "👍🏽" * 4 + "…"


def test_cut_text_leaves_short_text_alone_and_respects_any_limit():
    assert cut_text("短", 20) == "短"
    for limit in range(2, 30):
        assert utf16_length(cut_text("码上联😀" * 10, limit)) <= limit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("已受理", "已受理"),
        ("不予受理", "不予受理"),
        ("已经全部办理完毕", "已经全部办"),
        ("OK已受理!", "已受理"),
        ("", "无"),
    ],
)
def test_phrase_is_at_most_five_chinese_characters(value, expected):
    assert fit_value("phrase2", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7K4P9QXD", "7K4P9QXD"),
        ("7K4P-9QXD", "7K4P-9QXD"),
        ("编号7K4P 9QXD", "7K4P9QXD"),
        ("A" * 40, "A" * 32),
        ("", "-"),
    ],
)
def test_character_string_is_at_most_32_letters_digits_and_symbols(value, expected):
    assert fit_value("character_string1", value) == expected


def test_time_and_date_are_china_time_in_wechats_format():
    moment = datetime(2026, 11, 21, 7, 1, tzinfo=UTC)
    assert fit_value("time4", moment) == "2026年11月21日 15:01"
    assert fit_value("date5", moment) == "2026年11月21日"
    early = datetime(2026, 1, 4, 17, 5, tzinfo=UTC)  # 01:05 on 5 January in China
    assert fit_value("time4", early) == "2026年1月5日 01:05"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("number1", "1" * 40, "1" * 32),
        ("number1", "共12.5件", "12.5"),
        ("letter1", "abc123DEF" + "x" * 40, ("abcDEF" + "x" * 40)[:32]),
        ("symbol1", "!@#$%^&*", "!@#$%"),
        ("name1", "欧阳张秀英李建国王五六", "欧阳张秀英李建国王五"),
        ("name1", "Zhang Xiuying Li Jianguo", "Zhang Xiuying Li Jia"),
        ("name1", "张秀英 Zhang", "张秀英"),
        ("phone_number1", "0731-2345 6789 ext 1234567", "0731-2345 6789  1"),
        ("car_number1", "湘B 12345 6", "湘B123456"),
        ("amount1", "一" * 30, "一" * 19 + "…"),
    ],
)
def test_other_value_types_are_cut_to_their_limits(key, value, expected):
    assert fit_value(key, value) == expected


def test_phone_number_is_never_over_17():
    assert len(fit_value("phone_number1", "1" * 30)) == 17


# --- what each kind says ------------------------------------------------------------------


@pytest.fixture
def world(app, create_deputy):
    """A deputy with a WeChat, a resident with one, an item, a department in the county."""
    w = outbox_world()
    w.resident_id = make_resident("o-res-1")
    w.item_id = outbox_item(w, w.resident_id, body="村口的路灯坏了三个月，晚上老人出行很不方便，请尽快修一下。")
    county = db.session.scalar(select(Region).where(Region.code == "430225"))
    w.department = Department(name="炎陵县住房和城乡建设局", region=county)
    db.session.add(w.department)
    db.session.commit()
    return w


def _notice_for(kind: str):
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id))
    return build_notice(message)


def test_every_kind_the_code_writes_has_a_notification():
    written = {t.resident_notice for t in TRANSITIONS.values() if t.resident_notice}
    written |= {t.staff_notice for t in TRANSITIONS.values() if t.staff_notice}
    written |= {"item_received", "deputy_new_item", "deputy_item_reopened", "deputy_department_replied"}
    written |= {"department_new_item", "deputy_item_overdue", "deputy_item_supervised"}
    # And whatever kind a module of the backend writes literally.
    backend = Path(n.__file__).resolve().parents[1]
    for path in backend.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for call in re.finditer(r"OutboxMessage\(", source):
            written |= set(re.findall(r'kind="([a-z_]+)"', source[call.end() : call.end() + 300])[:1])
    assert written <= set(n.KINDS), written - set(n.KINDS)


def test_resident_is_told_received_with_template_page_and_china_time(world, app):
    queue(world.item_id, "item_received", resident_id=world.resident_id)
    notice = _notice_for("item_received")
    item = db.session.get(Item, world.item_id)
    assert notice.openid == "o-res-1"
    assert notice.template_id == app.config["WECHAT_TEMPLATES"]["item_progress"]["id"]
    assert notice.page == f"pages/item/item?ref={item.ref}"
    assert notice.data["character_string1"]["value"] == item.ref
    assert notice.data["phrase2"]["value"] == "已提交"
    assert notice.data["thing3"]["value"] == "已送达张秀英代表，请留意答复"
    assert notice.data["time4"]["value"] == n.wechat_time(item.created_at)


def test_resident_is_told_each_step_with_the_answers_beginning(world, app):
    user = db.session.get(StaffUser, world.staff_user_id)
    item = db.session.get(Item, world.item_id)
    perform_action(item, user, "accept")
    due = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
    perform_action(item, user, "forward", department_id=world.department.id, due=due, text="请核实。")
    perform_action(item, user, "reply", text="已联系住建局，路灯将于本周五前全部修复，修好后请您再看看。")
    perform_action(item, user, "resolve", outcome="solved")
    db.session.commit()

    accepted = _notice_for("item_accepted")
    assert accepted.data["phrase2"]["value"] == "已受理"
    assert accepted.data["thing3"]["value"]  # never empty: the event's text or a default

    forwarded = _notice_for("item_forwarded")
    assert forwarded.data["phrase2"]["value"] == "已交办"
    assert len(forwarded.data["thing3"]["value"]) <= 20

    answered = _notice_for("item_answered")
    assert answered.template_id == app.config["WECHAT_TEMPLATES"]["item_answered"]["id"]
    assert answered.data["thing3"]["value"] == "已联系住建局，路灯将于本周五前全部修复…"
    assert answered.data["thing2"]["value"] == "张秀英代表"

    resolved = _notice_for("item_resolved")
    assert resolved.template_id == app.config["WECHAT_TEMPLATES"]["item_resolved"]["id"]
    assert resolved.data["phrase2"]["value"] == "已解决"
    assert "评价" in resolved.data["thing3"]["value"]
    assert resolved.page == f"pages/item/item?ref={item.ref}"

    # The department has no WeChat channel.
    department = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "department_new_item"))
    with pytest.raises(NoChannel):
        build_notice(department)


@pytest.mark.parametrize(
    ("kind", "payload", "status"),
    [
        ("deputy_new_item", {}, "新留言"),
        ("deputy_new_item", {"reassigned": True}, "转交件"),
        ("deputy_item_overdue", {}, "已超期"),
        ("deputy_item_reopened", {}, "被重开"),
        ("deputy_item_supervised", {}, "督办"),
        ("deputy_resident_replied", {}, "群众已补充"),
        ("deputy_resident_followup", {}, "群众追问"),
    ],
)
def test_deputy_is_told_new_overdue_and_reopened_items(world, app, kind, payload, status):
    queue(world.item_id, kind, staff_user_id=world.staff_user_id, payload=payload)
    notice = _notice_for(kind)
    item = db.session.get(Item, world.item_id)
    assert notice.openid == world.deputy_openid
    assert notice.template_id == app.config["WECHAT_TEMPLATES"]["deputy_task"]["id"]
    assert notice.page == f"pages/inbox/item?ref={item.ref}"
    assert notice.data["phrase2"]["value"] == status
    if kind in ("deputy_new_item", "deputy_item_overdue"):
        assert notice.data["thing3"]["value"] == "村口的路灯坏了三个月，晚上老人出行很不…"
    # No resident's name or number ever goes into a message.
    assert item.contact_phone == "" or item.contact_phone not in str(notice.data)


def test_no_identity_and_unknown_kinds(world):
    no_openid = make_resident(None)
    queue(world.item_id, "item_received", resident_id=no_openid)
    with pytest.raises(NoChannel, match="no WeChat identity"):
        _notice_for("item_received")
    user = db.session.get(StaffUser, world.staff_user_id)
    user.wechat_openid = None
    db.session.commit()
    queue(world.item_id, "deputy_new_item", staff_user_id=world.staff_user_id)
    with pytest.raises(NoChannel):
        _notice_for("deputy_new_item")
    queue(world.item_id, "item_teleported", resident_id=world.resident_id)
    with pytest.raises(NotDefined):
        _notice_for("item_teleported")


def test_a_template_missing_from_settings_means_no_channel(world, app):
    app.config["WECHAT_TEMPLATES"] = {k: v for k, v in app.config["WECHAT_TEMPLATES"].items() if k != "item_progress"}
    queue(world.item_id, "item_received", resident_id=world.resident_id)
    with pytest.raises(NoChannel, match="no template configured"):
        _notice_for("item_received")
