"""The demo county's topic code and 代表建议 (issue 15 parts 5 and 6): ``flask demo load`` issues one open topic code
at the first station, ``flask demo urls`` prints it, and ``--history`` adds a submitted 建议 from the first
deputy's items, whose residents' tracking pages say so."""

from __future__ import annotations

from sqlalchemy import select

from backend.extensions import db
from backend.models import ItemEvent, ItemEventKind, Proposal, ProposalStatus, Station, Topic, TopicKind, utcnow
from backend.qr.codes import current_code


def test_the_demo_has_an_open_topic_code_at_the_first_station_and_prints_it(runner, app):
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    [topic] = db.session.scalars(select(Topic)).all()
    first = db.session.scalar(select(Station).order_by(Station.id).limit(1))
    assert topic.station_id == first.id and topic.kind == TopicKind.POLL and len(topic.choices) == 4
    assert not topic.is_closed(utcnow())
    out = runner.invoke(args=["demo", "urls"]).output
    assert f"专题码留言页（{topic.title}）：{app.config['PUBLIC_BASE_URL']}/c/{current_code(topic).slug}" in out
    page = app.test_client().get(f"/c/{current_code(topic).slug}")
    assert page.status_code == 200 and topic.prompt in page.text
    assert db.session.scalar(select(Proposal)) is None  # no items without the history: nothing to draw from


def test_the_demo_history_gives_a_submitted_proposal(runner):
    result = runner.invoke(args=["demo", "load", "--history", "--months", "2"])
    assert result.exit_code == 0, result.output
    [proposal] = db.session.scalars(select(Proposal)).all()
    assert proposal.status == ProposalStatus.SUBMITTED and 2 <= len(proposal.items) <= 3
    assert proposal.drafted_by.username == "deputy" and proposal.deputy_id == proposal.drafted_by.deputy_id
    included = db.session.scalars(select(ItemEvent).where(ItemEvent.kind == ItemEventKind.PROPOSAL_INCLUDED)).all()
    assert sorted(e.item_id for e in included) == sorted(item.id for item in proposal.items)
