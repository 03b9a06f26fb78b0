"""Topic codes (issue 15 part 6): a station admin issues a code for a topic with its own prompt, choices and closing
day; residents answer it through the page and the API; its messages are the station's items, shown and exported
together; its poster decodes; after the closing day a page says it is closed (never a form) and the API refuses."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from flask import g
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import AuditEntry, Code, Item, ItemEvent, ItemEventKind, Topic, utcnow
from backend.qr.codes import current_code
from backend.stations.calendar import today_in_china
from tests.helpers import csrf_token_from, fresh_token, login
from tests.test_posters import decode, pdf_page_image

CHOICES = "赞成\n基本赞成\n不赞成"


def written() -> dict[str, int]:
    """Rows a topic or its messages write."""
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model)) for model in (Topic, Code, Item)}


def topic_form(**overrides) -> dict:
    return {
        "kind": "draft_law",
        "title": "《炎陵县物业管理条例（草案）》征求意见",
        "prompt": "您对草案总体上怎么看？",
        "choices": CHOICES,
        "closes_on": (today_in_china() + timedelta(days=30)).isoformat(),
    } | overrides


def create(app, station, username="admin_a", **overrides):
    client = login(app, username)
    _, token = fresh_token(client, "/staff/account")  # any page of theirs: the form's token is the session's
    response = client.post(
        f"/admin/stations/{station.id}/topics", data={"csrf_token": token, **topic_form(**overrides)}
    )
    g.pop("csrf_token", None)
    return response


@pytest.fixture
def topic(app, world):
    app.config.update(THROTTLE_PER_ADDRESS=10_000, THROTTLE_PER_CODE=10_000)
    response = create(app, world.station_a)
    assert response.status_code == 303, response.text
    return db.session.scalar(select(Topic))


def submit_page(app, slug: str, **fields):
    """The resident's form sent from a fresh phone (its own session, a fresh submission id)."""
    client = app.test_client()
    g.pop("csrf_token", None)
    form = client.get(f"/c/{slug}")
    data = {"csrf_token": csrf_token_from(form.text), "client_id": uuid.uuid4().hex, **fields}
    g.pop("csrf_token", None)
    return client.post(f"/c/{slug}", data=data)


def test_a_station_admin_issues_a_topic_code_beside_the_stations_own(app, world, topic):
    station_code = current_code(world.station_a)
    code = current_code(topic)
    assert code is not None and code.topic_id == topic.id and code.station_id == world.station_a.id
    assert current_code(world.station_a).id == station_code.id  # the station's own code is untouched
    assert topic.choices == ["赞成", "基本赞成", "不赞成"] and topic.title.startswith("《炎陵县物业管理条例")
    page = login(app, "admin_a").get(f"/admin/topics/{topic.id}")
    assert page.status_code == 200 and f"/c/{code.slug}" in page.text and "还没有收到留言" in page.text
    directory = app.test_client().get("/api/v1/stations")
    assert code.slug not in directory.text and station_code.slug in directory.text
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "topic_created")).object_id == str(topic.id)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"closes_on": (today_in_china() - timedelta(days=1)).isoformat()}, "closes_on", "不能早于今天"),
        ({"closes_on": "2026-02-30"}, "closes_on", "不是有效的日期"),
        ({"closes_on": ""}, "closes_on", "不是有效的日期"),
        ({"closes_on": (today_in_china() + timedelta(days=400)).isoformat()}, "closes_on", "一年之后"),
        ({"title": ""}, "title", "专题名称"),
        ({"prompt": "  "}, "prompt", "提问"),
        ({"choices": "只有一个选项"}, "choices", "2到6个"),
        ({"choices": "\n".join(f"选项{n}" for n in range(7))}, "choices", "2到6个"),
        ({"choices": "赞成\n" + "很" * 21}, "choices", "选项"),
        ({"kind": "lottery"}, "kind", "专题类型"),
    ],
)
def test_bad_topics_are_refused_with_the_reason_and_nothing_written(app, world, overrides, field, words):
    before = written()
    response = create(app, world.station_a, **overrides)
    assert response.status_code == 400
    assert words in response.text and f'id="{field}-error"' in response.text
    assert written() == before


def test_who_may_issue_and_see_a_topic(app, world, topic):
    before = written()
    assert create(app, world.station_a, username="admin_b").status_code == 404  # another station's admin
    assert create(app, world.station_a, username="sup_far").status_code == 404  # another county's supervisor
    assert create(app, world.station_a, username="deputy_d1").status_code == 404
    assert login(app, "deputy_d1").get(f"/admin/stations/{world.station_a.id}/topics").status_code == 404
    assert written() == before
    assert login(app, "admin_b").get(f"/admin/topics/{topic.id}").status_code == 404
    refused = login(app, "sup_far").get(f"/admin/topics/{topic.id}/export.xlsx")
    refused.close()
    assert refused.status_code == 404
    assert login(app, "admin_a").get("/admin/topics/999999").status_code == 404
    assert create(app, world.station_a, username="sup_county").status_code == 303  # the county's supervisor may


def test_a_resident_answers_the_topics_form_and_the_item_goes_to_the_station(app, world, topic):
    slug = current_code(topic).slug
    form = app.test_client().get(f"/c/{slug}")
    assert form.status_code == 200
    assert "您对草案总体上怎么看？" in form.text and 'name="choice"' in form.text
    assert 'name="deputy_id"' not in form.text  # the station handles it: nobody to pick
    missing = submit_page(app, slug, body="建议草案明确物业费公示的周期。")
    assert missing.status_code == 400 and "请选择一项" in missing.text
    forged = submit_page(app, slug, body="建议草案明确物业费公示的周期。", choice="完全赞成")
    assert forged.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Item)) == 0
    done = submit_page(app, slug, body="建议草案明确物业费公示的周期。", choice="基本赞成")
    assert done.status_code == 303
    item = db.session.scalar(select(Item))
    assert item.station_id == world.station_a.id and item.deputy_id is None
    assert item.body == "【基本赞成】建议草案明确物业费公示的周期。"
    event = db.session.scalar(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.SUBMITTED))
    assert event.data == {"topic_choice": "基本赞成"}

    # The mini-program reads the form from the API and answers through it.
    info = app.test_client().get(f"/api/v1/codes/{slug}").get_json()
    assert info["kind"] == "topic" and info["topic"]["choices"] == ["赞成", "基本赞成", "不赞成"]
    assert info["topic"]["closes_on"] == (today_in_china() + timedelta(days=30)).isoformat()
    api = app.test_client().post(
        "/api/v1/items", json={"code": slug, "body": "希望增加业主大会线上表决。", "choice": "赞成"}
    )
    assert api.status_code == 201, api.get_json()
    refused = app.test_client().post("/api/v1/items", json={"code": slug, "body": "没有选择选项的留言内容。"})
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "choice"

    # Shown together: the topic page lists both and counts the choices; the station admin's inbox has them.
    page = login(app, "admin_a").get(f"/admin/topics/{topic.id}")
    assert "收到的留言（2件）" in page.text and "物业费公示" in page.text and "线上表决" in page.text
    counts = page.text[page.text.index('id="topic-counts"') :]
    assert "<td>赞成</td><td>1</td>" in counts and "<td>基本赞成</td><td>1</td>" in counts
    assert "<td>不赞成</td><td>0</td>" in counts
    inbox = login(app, "admin_a").get("/staff/inbox?state=new")
    assert "物业费公示" in inbox.text


def test_the_topics_messages_are_exported_together(app, world, topic):
    slug = current_code(topic).slug
    for choice, body in (
        ("赞成", "赞成草案，希望尽快实施。"),
        ("不赞成", "物业费标准不应由物业公司单方面定，电话13912345678。"),
    ):
        assert (
            submit_page(
                app, slug, body=body, choice=choice, name="王桂芳", phone="13812341234", consent="1"
            ).status_code
            == 303
        )
    other = app.test_client().get(f"/c/{current_code(world.d1).slug}")  # a message to a deputy is not the topic's
    assert other.status_code == 200
    response = login(app, "admin_a").get(f"/admin/topics/{topic.id}/export.xlsx")
    data = response.get_data()  # read it all, then let the temporary file go, as a server does
    response.close()
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(data))
    facts = {row[0].value: row[1].value for row in workbook["专题"].iter_rows(min_row=3)}
    assert facts["收到留言"] == "2件" and facts["选“赞成”"] == "1件" and facts["选“基本赞成”"] == "0件"
    rows = [[cell.value for cell in row] for row in workbook["民意件"].iter_rows()][1:]
    assert [row[6] for row in rows] == [
        "【赞成】赞成草案，希望尽快实施。",
        "【不赞成】物业费标准不应由物业公司单方面定，电话139****5678。",
    ]
    assert all(row[7] == "王**" and row[8] == "138****1234" for row in rows)  # masked, as the monthly export


def test_after_the_closing_day_the_code_opens_a_closed_page_and_the_api_refuses(app, world, topic):
    slug = current_code(topic).slug
    form = app.test_client().get(f"/c/{slug}")
    token = csrf_token_from(form.text)
    g.pop("csrf_token", None)
    topic.closes_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    before = written()
    page = app.test_client().get(f"/c/{slug}")
    assert page.status_code == 410
    assert (
        "意见征集已经结束" in page.text
        and "<form" not in page.text.split('id="topic-closed"')[1].split("</section>")[0]
    )
    assert 'id="item-form"' not in page.text
    late = app.test_client().post(
        f"/c/{slug}", data={"csrf_token": token, "body": "截止后才写的意见。", "choice": "赞成", "client_id": "c" * 20}
    )
    assert late.status_code in (400, 410)  # a new client has no session for the token: either way, nothing stored
    api = app.test_client().post("/api/v1/items", json={"code": slug, "body": "截止后才写的意见。", "choice": "赞成"})
    assert api.status_code == 410 and api.get_json()["error"]["code"] == "topic_closed"
    assert app.test_client().get(f"/api/v1/codes/{slug}").status_code == 410
    assert written() == before
    staff_page = login(app, "admin_a").get(f"/admin/topics/{topic.id}")
    assert "已截止" in staff_page.text


def test_a_form_sent_after_the_closing_moment_gets_the_closed_page(app, world, topic):
    slug = current_code(topic).slug
    client = app.test_client()
    token = csrf_token_from(client.get(f"/c/{slug}").text)
    g.pop("csrf_token", None)
    topic.closes_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    late = client.post(f"/c/{slug}", data={"csrf_token": token, "body": "截止后才写的意见。", "choice": "赞成"})
    assert late.status_code == 410 and "意见征集已经结束" in late.text
    assert db.session.scalar(select(func.count()).select_from(Item)) == 0


@pytest.mark.engine_independent
def test_the_topic_poster_decodes_to_the_topics_code(app, world, topic, cjk_font, poppler, tmp_path):
    client = login(app, "admin_a")
    url = f"{app.config['PUBLIC_BASE_URL']}/c/{current_code(topic).slug}"
    pdf = client.get(f"/admin/topics/{topic.id}/poster.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert decode(pdf_page_image(pdf.data, tmp_path, dpi=100)) == [url]
    png = client.get(f"/admin/topics/{topic.id}/poster.png")
    assert png.status_code == 200 and decode(Image.open(io.BytesIO(png.data))) == [url]
