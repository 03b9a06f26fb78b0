from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from backend.demo import DEMO_PASSWORD
from backend.extensions import db
from backend.models import (
    Base,
    Code,
    CongressLevel,
    Department,
    Deputy,
    DeputyStatus,
    ReceptionRuleKind,
    Region,
    StaffRole,
    StaffUser,
    Station,
)
from backend.qr.codes import resolve_slug
from backend.stations.calendar import describe_rule


def row_counts() -> dict[str, int]:
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table)) for table in Base.metadata.sorted_tables
    }


def load(runner, *args):
    result = runner.invoke(args=["demo", "load", *args])
    db.session.expire_all()
    return result


def test_load_creates_the_demo_county(runner):
    result = load(runner)
    assert result.exit_code == 0, result.output
    assert "已载入演示数据" in result.output

    county = db.session.scalar(select(Region).where(Region.code == "430225"))
    assert [r.name for r in county.lineage()] == ["湖南省", "株洲市", "炎陵县"]
    assert sorted((r.code, r.name) for r in county.children) == [
        ("430225100", "霞阳镇"),
        ("430225101", "沔渡镇"),
        ("430225102", "十都镇"),
    ]

    stations = db.session.scalars(select(Station).order_by(Station.id)).all()
    assert [s.name for s in stations] == ["霞阳镇人大代表联络站", "沔渡镇人大代表之家", "十都镇人大代表联络站"]
    for station in stations:
        assert station.address and station.contact_name and station.contact_phone
        assert station.region.parent == county
        assert {r.kind for r in station.reception_rules} == set(ReceptionRuleKind)
        assert [describe_rule(r) for r in station.reception_rules] == [
            "每周三",
            "每月20日",
            "逢六（每月6日、16日、26日）",
        ]
        for rule in station.reception_rules:
            assert rule.deputy is not None and rule.deputy.station == station and rule.deputy.is_serving

    deputies = db.session.scalars(select(Deputy).order_by(Deputy.id)).all()
    assert len(deputies) == 12
    assert len({d.name for d in deputies}) == 12
    assert [d.name for d in deputies if d.status == DeputyStatus.RESIGNED] == ["邓文斌"]
    assert all(d.status in (DeputyStatus.SERVING, DeputyStatus.RESIGNED) for d in deputies)
    assert all(d.occupation and d.constituency and d.term_start.year == 2021 for d in deputies)
    assert all(d.term_end.year == 2026 and d.term_end.month == 12 for d in deputies)
    occupations = " ".join(d.occupation for d in deputies)
    for word in ("农民", "教师", "医生", "企业职工"):
        assert word in occupations
    levels = [{lv.level for lv in d.levels} for d in deputies]
    assert any({CongressLevel.COUNTY, CongressLevel.TOWNSHIP} <= s for s in levels)
    assert any(CongressLevel.PROVINCE in s for s in levels)

    depts = db.session.scalars(select(Department).order_by(Department.id)).all()
    assert [d.name for d in depts] == [
        "炎陵县住房和城乡建设局",
        "炎陵县交通运输局",
        "炎陵县教育局",
        "炎陵县水利局",
        "霞阳镇城建办",
    ]
    assert depts[-1].parent_id == depts[0].id
    assert all(d.region == county for d in depts)


def test_every_deputy_and_station_has_exactly_one_current_code(runner):
    assert load(runner).exit_code == 0
    for deputy in db.session.scalars(select(Deputy)):
        codes = db.session.scalars(select(Code).where(Code.deputy_id == deputy.id)).all()
        assert [c.is_current for c in codes] == [True], deputy.name
    for station in db.session.scalars(select(Station)):
        codes = db.session.scalars(select(Code).where(Code.station_id == station.id, Code.topic_id.is_(None))).all()
        assert [c.is_current for c in codes] == [True], station.name
    assert db.session.scalar(select(func.count()).select_from(Code)) == 16  # and the demo's one topic code

    # The resigned deputy's code still resolves, and routes to the station.
    resigned = db.session.scalar(select(Deputy).where(Deputy.status == DeputyStatus.RESIGNED))
    slug = db.session.scalar(select(Code.slug).where(Code.deputy_id == resigned.id))
    resolved = resolve_slug(slug)
    assert resolved.deputy == resigned and resolved.routes_to_station


def test_staff_users_one_per_role_with_the_demo_password(runner):
    assert load(runner).exit_code == 0
    users = {u.username: u for u in db.session.scalars(select(StaffUser))}
    assert set(users) == {"deputy", "station_admin", "supervisor", "department"}
    assert {u.role for u in users.values()} == set(StaffRole)
    for user in users.values():
        assert check_password_hash(user.password_hash, DEMO_PASSWORD)
        assert not check_password_hash(user.password_hash, "wrong")
        assert user.is_active
    assert DEMO_PASSWORD == "demo-2026"

    first_station = db.session.scalar(select(Station).order_by(Station.id).limit(1))
    assert users["deputy"].role == StaffRole.DEPUTY
    assert users["deputy"].deputy.is_serving
    assert users["station_admin"].station == first_station
    assert users["supervisor"].region.code == "430225"
    assert users["department"].department.name == "炎陵县住房和城乡建设局"


def test_loading_twice_fails_and_writes_nothing(runner):
    assert load(runner).exit_code == 0
    before = row_counts()
    result = load(runner)
    assert result.exit_code == 1
    assert "演示数据只能载入空数据库" in result.output
    assert row_counts() == before


def test_load_refuses_a_database_with_a_station(runner, create_station):
    create_station()
    before = row_counts()
    result = load(runner)
    assert result.exit_code == 1
    assert "演示数据只能载入空数据库" in result.output
    assert row_counts() == before


def test_if_empty_skips_when_data_exists(runner):
    first = load(runner, "--if-empty")
    assert first.exit_code == 0, first.output
    before = row_counts()
    second = load(runner, "--if-empty")
    assert second.exit_code == 0
    assert "数据库已有数据，跳过演示数据。" in second.output
    assert row_counts() == before


def test_load_reuses_regions_already_present(runner, create_county):
    create_county()
    db.session.commit()
    assert load(runner).exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(Region)) == 6


def test_urls_print_real_slugs(runner, app):
    assert load(runner).exit_code == 0
    result = runner.invoke(args=["demo", "urls"])
    assert result.exit_code == 0, result.output
    out = result.output

    base = app.config["PUBLIC_BASE_URL"]
    first_serving = db.session.scalar(
        select(Deputy).where(Deputy.status == DeputyStatus.SERVING).order_by(Deputy.id).limit(1)
    )
    deputy_slug = db.session.scalar(select(Code.slug).where(Code.deputy_id == first_serving.id))
    first_station = db.session.scalar(select(Station).order_by(Station.id).limit(1))
    station_slug = db.session.scalar(
        select(Code.slug).where(Code.station_id == first_station.id, Code.topic_id.is_(None))
    )
    assert f"{base}/c/{deputy_slug}" in out
    assert first_serving.name in out
    assert f"{base}/c/{station_slug}" in out
    assert f"{base}/stations" in out
    assert f"{base}/staff/login" in out
    for username in ("deputy", "station_admin", "supervisor", "department"):
        assert username in out
    assert DEMO_PASSWORD in out
    has_login = any(rule.endpoint == "staff.login" for rule in app.url_map.iter_rules())
    assert ("员工登录页面在后续版本提供" in out) is (not has_login)


def test_urls_follow_public_base_url(runner, app):
    assert load(runner).exit_code == 0
    app.config["PUBLIC_BASE_URL"] = "http://127.0.0.1:8080"
    out = runner.invoke(args=["demo", "urls"]).output
    assert "http://127.0.0.1:8080/c/" in out
    assert "https://msl.example.cn" not in out


def test_urls_without_data_say_what_to_do(runner):
    result = runner.invoke(args=["demo", "urls"])
    assert result.exit_code == 1
    assert "flask demo load" in result.output
