"""The migration that records which department's answer a rating judged (``9d4f2a6b8c17``) fills it in for the
ratings already given, from the timeline, as ``lifecycle.judged_forward`` would have chosen: the forward answered
last before each RATED event and after the item's previous one; nothing for a rating with no department answer
since the last, nor for an in-person item rated before the resident claimed it. On the suite's engine."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from backend import create_app
from backend.extensions import db
from tests.conftest import PG_URL, create_pg_database, drop_pg_database

BEFORE = "c3a9e5d7f1b2"
THIS = "9d4f2a6b8c17"
T0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def database_before(tmp_path):
    url = create_pg_database(PG_URL) if PG_URL else "sqlite:///" + str(tmp_path / "backfill.sqlite3")
    yield url
    if url.startswith("postgresql"):
        drop_pg_database(url)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _moment(value) -> datetime:
    """A timestamp read by plain SQL: a string on SQLite, a datetime on PostgreSQL; as an aware UTC datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def test_existing_ratings_are_recorded_against_the_forward_they_judged(database_before):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_before})
    with app.app_context():
        upgrade(revision=BEFORE)
        meta = sa.MetaData()
        meta.reflect(db.engine, only=["regions", "stations", "items", "departments", "item_forwards", "item_events"])
        t = meta.tables
        with db.engine.begin() as conn:
            region = conn.execute(
                t["regions"].insert().values(code="430225", name="炎陵县", level="county").returning(t["regions"].c.id)
            ).scalar()
            station = conn.execute(
                t["stations"]
                .insert()
                .values(name="霞阳站", region_id=region, address="", contact_name="", contact_phone="")
                .values(reception_hours="", is_active=True, created_at=T0)
                .returning(t["stations"].c.id)
            ).scalar()
            housing, transport = (
                conn.execute(
                    t["departments"]
                    .insert()
                    .values(name=name, region_id=region, contact_name="", contact_phone="", is_active=True)
                    .returning(t["departments"].c.id)
                ).scalar()
                for name in ("住建局", "交通局")
            )

            def item(ref: str, channel: str = "qr_h5", claimed_at=None) -> int:
                return conn.execute(
                    t["items"]
                    .insert()
                    .values(
                        ref=ref, access_key="k" * 32, station_id=station, channel=channel, category="urban", body="路灯"
                    )
                    .values(contact_name="", contact_phone="", status="resolved", outcome_reason="", reopen_count=0)
                    .values(screening="unscreened", is_held=False, needs_review=False, review_reason="")
                    .values(body_fingerprint="", created_at=T0, updated_at=T0, claimed_at=claimed_at)
                    .returning(t["items"].c.id)
                ).scalar()

            def forward(item_id: int, department: int, answered_hours: float | None) -> int:
                return conn.execute(
                    t["item_forwards"]
                    .insert()
                    .values(item_id=item_id, department_id=department, link_version=1, instructions="")
                    .values(due_at=_at(240), share_contact=False, created_at=T0, answer="", return_reason="")
                    .values(extension_reason="", answered_at=None if answered_hours is None else _at(answered_hours))
                    .returning(t["item_forwards"].c.id)
                ).scalar()

            def rated(item_id: int, hours: float, verdict: str) -> None:
                conn.execute(
                    t["item_events"]
                    .insert()
                    .values(item_id=item_id, kind="rated", actor_kind="resident", is_public=True, body="")
                    .values(data={"satisfaction": verdict, "solved": True}, created_at=_at(hours))
                )

            # One item, two rounds: housing answered, 不满意; transport answered, 满意.
            reopened = item("AAAA1111")
            first = forward(reopened, housing, 10)
            second = forward(reopened, transport, 50)
            rated(reopened, 20, "unsatisfied")
            rated(reopened, 60, "satisfied")
            # Rated twice with no department answer between: the second judges the deputy's work only.
            again = item("BBBB2222")
            only = forward(again, housing, 5)
            rated(again, 8, "unsatisfied")
            rated(again, 30, "satisfied")
            # Answered after the rating: the rating could not have judged it.
            later = item("CCCC3333")
            after = forward(later, housing, 40)
            rated(later, 30, "basically")
            # Never answered.
            unanswered = item("DDDD4444")
            silent = forward(unanswered, transport, None)
            rated(unanswered, 30, "satisfied")
            # In person, rated before the resident claimed it: not counted as the resident's own verdict.
            in_person = item("EEEE5555", channel="in_person", claimed_at=_at(40))
            unclaimed = forward(in_person, housing, 5)
            rated(in_person, 30, "satisfied")
            # In person, claimed first: the resident's own.
            claimed_item = item("FFFF6666", channel="in_person", claimed_at=_at(6))
            claimed = forward(claimed_item, transport, 5)
            rated(claimed_item, 30, "basically")

        upgrade(revision=THIS)
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, verdict, verdict_at FROM item_forwards ORDER BY id")).all()
        verdicts = {row.id: row.verdict for row in rows}
        assert verdicts == {
            first: "unsatisfied",
            second: "satisfied",
            only: "unsatisfied",
            after: None,
            silent: None,
            unclaimed: None,
            claimed: "basically",
        }
        judged_at = {row.id: _moment(row.verdict_at) for row in rows if row.verdict_at is not None}
        assert judged_at[first] == _at(20) and judged_at[second] == _at(60)
        db.engine.dispose()
