"""A resident withdraws a message that went into a 代表建议 (issue 15's leftover, ``proposals.membership``): while the
建议 is only drafted the message leaves the draft, which says so in its history; once it is submitted or answered
withdrawing is refused (a sentence on the tracking page, ``in_submitted_proposal`` in the API) and nothing is
written, while erasing the contact still anonymises the message without taking it out of the 建议."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.items.refs import format_ref
from backend.models import (
    AuditEntry,
    Item,
    ItemEvent,
    ItemEventKind,
    ItemStatus,
    Proposal,
    ProposalItem,
    ProposalStatus,
)
from tests.factories import make_item, with_photo_and_resident
from tests.helpers import api_token, fresh_token, login


def written() -> dict[str, int]:
    """Rows a withdrawal writes or removes."""
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (ProposalItem, ItemEvent, AuditEntry)
    }


@pytest.fixture
def lamps(world):
    """Two messages to deputy d1, the first with a WeChat resident, a photo and a notice waiting."""
    first = with_photo_and_resident(make_item(world.d1, body="村口路灯坏了三个月，晚上出行很不方便。"), "o-lamp-1")
    second = make_item(world.d1, body="学校门口的路灯不亮，孩子放学很危险。")
    return first, second


def draft(app, world, items, title="关于改善全镇路灯照明的建议") -> int:
    body = {"title": title, "item_refs": [i.ref for i in items], "department_id": world.department.id}
    response = app.test_client().post("/api/v1/proposals", json=body, headers=api_token(app, "deputy_d1"))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def act(app, proposal_id: int, action: str, headers=None, **body):
    headers = headers or api_token(app, "deputy_d1")
    return app.test_client().post(f"/api/v1/proposals/{proposal_id}/{action}", json=body, headers=headers)


def withdraw(client, item, what="withdraw"):
    return client.post(f"/api/v1/items/{item.ref}/erase?key={item.access_key}", json={"what": what})


def test_withdrawing_a_drafted_message_takes_it_out_of_the_draft_with_a_line_in_its_history(app, client, world, lamps):
    first, second = lamps
    proposal_id = draft(app, world, [first, second])
    other_draft = draft(app, world, [first], title="关于路灯维修的第二件建议")

    response = withdraw(client, first)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "withdrawn"
    db.session.expire_all()
    assert [i.ref for i in db.session.get(Proposal, proposal_id).items] == [second.ref]
    assert db.session.get(Proposal, other_draft).items == []  # every draft that held it lets it go
    assert db.session.get(Proposal, proposal_id).status == ProposalStatus.DRAFTED
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "proposal_item_withdrawn")).all()
    assert sorted(e.object_id for e in entries) == sorted([str(proposal_id), str(other_draft)])
    assert all(e.staff_user_id is None and e.data == {"ref": first.ref} for e in entries)

    # The drafter sees it gone, and why, in the draft's history.
    page = login(app, "deputy_d1").get(f"/staff/proposals/{proposal_id}")
    assert page.status_code == 200
    listed = page.text[page.text.index('id="proposal-items"') :]
    listed = listed[: listed.index("</ul>")]
    assert format_ref(second.ref) in listed and format_ref(first.ref) not in listed
    history = page.text[page.text.index('id="proposal-history"') :]
    assert "起草，汇集留言2件" in history
    assert f"群众：留言{format_ref(first.ref)}已由群众撤回，移出本建议" in history
    assert "汇集留言</dt><dd>1件" in page.text

    # A draft left with no message cannot be submitted; its page says why; nothing is written.
    headers = api_token(app, "deputy_d1")  # signing in is audited: before counting
    before = written()
    refused = act(app, other_draft, "submit", headers)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "no_items_left"
    assert written() == before and db.session.get(Proposal, other_draft).status == ProposalStatus.DRAFTED
    client = login(app, "deputy_d1")
    _, token = fresh_token(client, f"/staff/proposals/{other_draft}")
    shown = client.post(f"/staff/proposals/{other_draft}/submit", data={"csrf_token": token})
    assert shown.status_code == 409 and "汇集的留言都已被群众撤回，不能提交" in shown.text
    assert 'id="proposal-no-items"' in shown.text
    # The remaining draft is submitted with the one message left.
    assert act(app, proposal_id, "submit").status_code == 200
    included = select(ItemEvent.item_id).where(ItemEvent.kind == ItemEventKind.PROPOSAL_INCLUDED)
    assert db.session.scalars(included).all() == [second.id]  # the withdrawn message is told nothing more


@pytest.mark.parametrize("status", ["submitted", "answered"])
def test_once_the_proposal_is_submitted_withdrawing_is_refused_and_nothing_is_written(
    app, client, world, lamps, status
):
    first, second = lamps
    proposal_id = draft(app, world, [first, second])
    assert act(app, proposal_id, "submit").status_code == 200
    if status == "answered":
        assert act(app, proposal_id, "answer", text="县住建局已统一维修全镇路灯。").status_code == 200
    also_drafted = draft(app, world, [first], title="关于路灯维修的第二件建议")
    db.session.commit()
    before = written()

    refused = withdraw(client, first)
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "in_submitted_proposal"
    assert "已写入代表建议《关于改善全镇路灯照明的建议》并已提交，不能再撤回" in error["message"]
    db.session.expire_all()
    assert written() == before
    assert db.session.get(Item, first.id).status == ItemStatus.SUBMITTED
    assert [i.ref for i in db.session.get(Proposal, also_drafted).items] == [first.ref]  # the draft keeps it too

    # The tracking page offers no 撤回 and says why; the confirmation page refuses with the same sentence.
    track = client.get(f"/t/{first.ref}?k={first.access_key}")
    assert 'id="withdraw-link"' not in track.text and 'id="withdraw-refused"' in track.text
    assert "并已提交，不能再撤回" in track.text and 'id="erase-contact-link"' in track.text
    confirm = client.get(f"/t/{first.ref}/erase?k={first.access_key}&what=withdraw")
    assert confirm.status_code == 409 and "不能再撤回" in confirm.text and 'id="erase-confirm"' not in confirm.text

    # Erasing the contact still works: the message is anonymised and stays behind the 建议.
    erased = withdraw(client, first, "contact")
    assert erased.status_code == 200, erased.get_json()
    db.session.expire_all()
    item = db.session.get(Item, first.id)
    assert item.contact_name == "" and item.contact_phone == "" and item.resident_id is None
    assert first.ref in [i.ref for i in db.session.get(Proposal, proposal_id).items]


def test_a_message_in_no_proposal_is_withdrawn_as_before(client, world, lamps):
    _, second = lamps
    before = written()
    assert withdraw(client, second).status_code == 200
    assert written()["ProposalItem"] == before["ProposalItem"]
    assert (
        db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.object_type == "proposal")) == 0
    )
