"""代表建议 from many items (issue 15 part 5): drafted from items in the drafter's sight, submitted, answered;
every resident behind it told through the outbox (mini-program and service account) and on the tracking page.
Bad inputs refused with nothing written; other roles and scopes refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.items.refs import format_ref
from backend.models import (
    AuditEntry,
    ItemCategory,
    ItemEvent,
    ItemEventKind,
    OutboxMessage,
    OutboxStatus,
    Proposal,
    ProposalItem,
    ProposalStatus,
    Resident,
)
from backend.outbox import worker
from tests.factories import give_credits, make_item
from tests.helpers import api_token, audit_rows, fresh_token, login
from tests.wechat_server import wechat_sandbox  # noqa: F401 - the fixture

OA_TEMPLATE = "tpl-oa-item-progress"


def written() -> dict[str, int]:
    """Rows a proposal writes."""
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Proposal, ProposalItem, ItemEvent, OutboxMessage)
    }


@pytest.fixture
def lamps(world):
    """Three items of deputy d1 about street lamps: one from a mini-program resident, one from a service-account
    resident, one anonymous; and one of d2's."""
    mini = Resident(openid="o-prop-mini")
    h5 = Resident(mp_openid="oa-prop-h5")
    db.session.add_all([mini, h5])
    db.session.commit()
    items = [
        make_item(world.d1, body="村口路灯坏了三个月，晚上出行很不方便。"),
        make_item(world.d1, body="学校门口的路灯不亮，孩子放学很危险。"),
        make_item(world.d1, body="河堤路灯太暗，希望加装。", name="", phone=""),
    ]
    items[0].resident_id, items[1].resident_id = mini.id, h5.id
    other = make_item(world.d2, body="菜市场路灯不亮。")
    db.session.commit()
    return items, other, mini, h5


def draft(app, world, items, username="deputy_d1", **overrides):
    body = {
        "title": "关于改善全镇路灯照明的建议",
        "body": "多位群众反映路灯损坏，建议统一排查维修。",
        "item_refs": [item.ref for item in items],
        "department_id": world.department.id,
    } | overrides
    return app.test_client().post("/api/v1/proposals", json=body, headers=api_token(app, username))


def test_a_deputy_drafts_submits_and_records_the_answer_and_every_resident_hears_of_it(
    app,
    world,
    lamps,
    wechat_sandbox,  # noqa: F811
):
    items, _, mini, h5 = lamps
    response = draft(app, world, items)
    assert response.status_code == 201, response.get_json()
    proposal = response.get_json()
    assert proposal["status"] == "drafted" and proposal["status_label"] == "拟稿中"
    assert [row["ref"] for row in proposal["items"]] == [item.ref for item in items]
    assert proposal["department"] == {"id": world.department.id, "name": "炎陵县住房和城乡建设局"}
    headers = api_token(app, "deputy_d1")
    client = app.test_client()

    # Answering a draft is refused: it must be submitted first.
    refused = client.post(f"/api/v1/proposals/{proposal['id']}/answer", json={"text": "已维修。"}, headers=headers)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "transition_not_allowed"

    submitted = client.post(f"/api/v1/proposals/{proposal['id']}/submit", headers=headers)
    assert submitted.status_code == 200 and submitted.get_json()["status"] == "submitted"
    included = db.session.scalars(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.PROPOSAL_INCLUDED)).all()
    assert sorted(e.item_id for e in included) == sorted(item.id for item in items)
    assert all(e.is_public and "关于改善全镇路灯照明的建议" in e.body for e in included)
    assert (
        db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    )  # drafting and submitting tell nobody

    # Both channels can carry the answer's notice: a mini-program credit, a service-account subscription.
    wechat_sandbox.subscribe("o-prop-mini", "tpl-item-progress")
    give_credits("o-prop-mini", 1, ("tpl-item-progress",))
    db.session.commit()
    wechat_sandbox._control(
        "POST", "oa-subscribe", json={"openid": "oa-prop-h5", "template_id": OA_TEMPLATE, "status": "accept"}
    )
    answer = "县住建局已对全镇路灯统一排查，损坏的23盏已于本月修复。"
    answered = client.post(f"/api/v1/proposals/{proposal['id']}/answer", json={"text": answer}, headers=headers)
    assert answered.status_code == 200, answered.get_json()
    assert answered.get_json()["status"] == "answered" and answered.get_json()["residents_told"] == 2
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(r.kind, r.item_id, r.resident_id) for r in rows] == [
        ("item_proposal_answered", items[0].id, mini.id),
        ("item_proposal_answered", items[1].id, h5.id),
    ]
    while worker.run_once(20):
        pass
    assert [(m.status, m.last_error) for m in db.session.scalars(select(OutboxMessage))] == [
        (OutboxStatus.SENT, "")
    ] * 2
    [to_mini] = wechat_sandbox.messages("o-prop-mini")
    [to_h5] = wechat_sandbox.messages("oa-prop-h5")
    assert to_h5["kind"] == "bizsend" and to_h5["url"].startswith(app.config["PUBLIC_BASE_URL"] + f"/t/{items[1].ref}")
    assert to_mini["template_id"] == "tpl-item-progress" and to_mini["page"] == f"pages/item/item?ref={items[0].ref}"
    for message in (to_mini, to_h5):
        assert message["data"]["phrase2"]["value"] == "建议已答复"
        assert message["data"]["thing3"]["value"].startswith("代表建议《关于改善全镇路灯")  # cut to WeChat's 20

    # The tracking page shows the 建议 and its answer, to the anonymous resident too.
    db.session.refresh(items[2])
    page = app.test_client().get(f"/t/{items[2].ref}?k={items[2].access_key}")
    assert page.status_code == 200
    assert "已写入代表建议" in page.text and "代表建议已答复" in page.text
    assert "关于改善全镇路灯照明的建议" in page.text and answer in page.text

    again = client.post(f"/api/v1/proposals/{proposal['id']}/answer", json={"text": "再答复一次"}, headers=headers)
    assert again.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


def test_items_outside_the_drafters_scope_are_refused_and_nothing_is_written(app, world, lamps):
    items, other, _, _ = lamps
    before = written()
    response = draft(app, world, [items[0], other])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "unknown_items" and error["field"] == "item_refs"
    assert format_ref(other.ref) in error["message"]
    assert written() == before
    denied = audit_rows("item_access_denied")
    assert [row.object_id for row in denied] == [str(other.id)]  # written down, as opening it would be


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"title": ""}, "required", "title"),
        ({"title": "   "}, "required", "title"),
        ({"title": "路灯"}, "too_short", "title"),
        ({"item_refs": []}, "no_items", "item_refs"),
        ({"item_refs": ["ZZZZ-ZZZZ"]}, "unknown_items", "item_refs"),
        ({"item_refs": ["<script>"]}, "unknown_items", "item_refs"),
        ({"item_refs": ["AAAA-AAAA"] * 51}, "too_many_items", "item_refs"),
        ({"department_id": 999999}, "invalid_department", "department_id"),
        ({"department_id": "abc"}, "invalid_department", "department_id"),
        ({"department_id": None}, "invalid_department", "department_id"),
    ],
)
def test_bad_drafts_are_refused_with_a_reason_and_nothing_written(app, world, lamps, overrides, code, field):
    items, _, _, _ = lamps
    before = written()
    response = draft(app, world, items, **overrides)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["field"] == field
    if code != "required":
        assert error["code"] in (code, "invalid_title", "invalid_department_id")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
    assert written() == before


def test_a_department_of_another_region_is_refused(app, world, lamps):
    items, _, _, _ = lamps
    before = written()
    response = draft(app, world, items, department_id=world.far_department.id)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_department"
    assert written() == before


def test_who_may_draft_and_see_a_proposal(app, world, lamps):
    items, _, _, _ = lamps
    proposal_id = draft(app, world, items).get_json()["id"]
    # Roles that draft no 建议: the API answers as for another role (404), nothing written.
    for username in ("admin_a", "dept_user"):
        refused = draft(app, world, items, username=username)
        assert refused.status_code == 404
    unauthenticated = app.test_client().post("/api/v1/proposals", json={"title": "关于路灯的建议"})
    assert unauthenticated.status_code == 401
    # The county's supervisor sees and may act on it; another deputy and another county's supervisor may not.
    supervisor = app.test_client().post(f"/api/v1/proposals/{proposal_id}/submit", headers=api_token(app, "sup_county"))
    assert supervisor.status_code == 200
    for username in ("deputy_d2", "sup_far"):
        hidden = app.test_client().post(
            f"/api/v1/proposals/{proposal_id}/answer", json={"text": "已办理。"}, headers=api_token(app, username)
        )
        assert hidden.status_code == 404 and hidden.get_json()["error"]["code"] == "unknown_proposal"
    assert len(audit_rows("proposal_access_denied")) == 2
    assert db.session.get(Proposal, proposal_id).status == ProposalStatus.SUBMITTED
    unknown = app.test_client().post("/api/v1/proposals/999999/submit", headers=api_token(app, "deputy_d1"))
    assert unknown.status_code == 404


def test_a_supervisor_drafts_from_items_of_several_stations_in_the_county(app, world):
    a = make_item(world.d1, body="霞阳镇供水管道老化，经常停水。")
    b = make_item(world.d3, body="沔渡镇自来水浑浊，希望改造管网。")
    far = make_item(world.d4, body="南山区自来水问题。")
    ok = draft(app, world, [a, b], username="sup_county", title="关于改造全县农村供水管网的建议")
    assert ok.status_code == 201
    assert db.session.get(Proposal, ok.get_json()["id"]).deputy_id is None
    refused = draft(app, world, [a, far], username="sup_county")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "unknown_items"


def test_an_empty_answer_is_refused_and_nothing_is_written(app, world, lamps):
    items, _, _, _ = lamps
    proposal_id = draft(app, world, items).get_json()["id"]
    headers = api_token(app, "deputy_d1")
    client = app.test_client()
    assert client.post(f"/api/v1/proposals/{proposal_id}/submit", headers=headers).status_code == 200
    before = written()
    for bad in ({"text": ""}, {"text": " "}, {}, {"text": 12}):
        response = client.post(f"/api/v1/proposals/{proposal_id}/answer", json=bad, headers=headers)
        assert response.status_code == 400, (bad, response.get_json())
    assert written() == before
    assert db.session.get(Proposal, proposal_id).status == ProposalStatus.SUBMITTED


# --- the pages --------------------------------------------------------------------------------------


def test_the_deputy_finds_items_by_category_and_words_and_drafts_on_the_page(app, world, lamps):
    items, other, _, _ = lamps
    make_item(world.d1, body="农村低保申请太难。", category=ItemCategory.SOCIAL_SECURITY)
    client = login(app, "deputy_d1")
    html, token = fresh_token(client, "/staff/proposals/new?category=urban&q=路灯")
    for item in items:
        assert format_ref(item.ref) in html
    assert format_ref(other.ref) not in html and "低保" not in html
    refused = client.post(
        "/staff/proposals/",
        data={"csrf_token": token, "title": "", "department_id": "", "item_refs": [items[0].ref]},
    )
    assert refused.status_code == 400
    assert "建议标题" in refused.text and "承办单位" in refused.text
    assert db.session.scalar(select(func.count()).select_from(Proposal)) == 0
    created = client.post(
        "/staff/proposals/",
        data={
            "csrf_token": token,
            "title": "关于改善全镇路灯照明的建议",
            "department_id": str(world.department.id),
            "item_refs": [item.ref for item in items],
        },
    )
    assert created.status_code == 303
    page = client.get(created.headers["Location"])
    assert page.status_code == 200 and "拟稿中" in page.text and "提交建议" in page.text
    listing = client.get("/staff/proposals/")
    assert "关于改善全镇路灯照明的建议" in listing.text and "汇集留言3件" in listing.text


def test_the_pages_refuse_other_roles_and_bad_search_input(app, world, lamps):
    items, _, _, _ = lamps
    proposal_id = draft(app, world, items).get_json()["id"]
    admin = login(app, "admin_a")
    assert admin.get("/staff/proposals/").status_code == 404
    other_deputy = login(app, "deputy_d2")
    assert other_deputy.get(f"/staff/proposals/{proposal_id}").status_code == 404
    deputy = login(app, "deputy_d1")
    bad = deputy.get("/staff/proposals/new?category=nonsense")
    assert bad.status_code == 200 and "请选择一个有效的类别" in bad.text
    assert deputy.get("/staff/proposals/report.docx?month=2026-11").status_code == 404  # supervisors only
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) > 0
