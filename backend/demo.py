"""Deterministic demo data: 炎陵县 (株洲市, 湖南省) as the field reports describe it.

``flask demo load`` writes three township stations with twelve deputies, their QR codes,
three county departments, one staff user per role and one topic code (专题码: a 民生实事 poll at
the first station); with ``--history``, also one 代表建议 drawn from the first deputy's items.
``flask demo urls`` prints where to look. Everything is fixed except the code slugs (``issue_code``) and the password salts.
The demo refuses to write into a database that already holds stations, deputies, staff
users or departments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from backend.auth.passwords import hash_password
from backend.demo_history import load_history
from backend.extensions import db
from backend.models import (
    CongressLevel,
    Department,
    Deputy,
    DeputyLevel,
    DeputyStatus,
    Item,
    ItemCategory,
    Proposal,
    ReceptionRule,
    ReceptionRuleKind,
    Region,
    RegionLevel,
    StaffRole,
    StaffUser,
    Station,
    Topic,
    TopicKind,
    utcnow,
)
from backend.proposals import operations as proposals
from backend.qr.codes import code_url, current_code, issue_code
from backend.stations import topics
from backend.stations.calendar import today_in_china

# Demo only: printed by ``flask demo urls`` for anyone to read. Never load the demo into a
# database that real people log in to.
DEMO_PASSWORD = "demo-2026"  # noqa: S105

TERM_START = date(2021, 12, 1)
TERM_END = date(2026, 12, 31)
RESIGNED_AT = datetime(2025, 3, 18, 2, 0, tzinfo=UTC)

# (code, name, level, parent code)
REGIONS = [
    ("430000", "湖南省", RegionLevel.PROVINCE, None),
    ("430200", "株洲市", RegionLevel.CITY, "430000"),
    ("430225", "炎陵县", RegionLevel.COUNTY, "430200"),
    ("430225100", "霞阳镇", RegionLevel.TOWNSHIP, "430225"),
    ("430225101", "沔渡镇", RegionLevel.TOWNSHIP, "430225"),
    ("430225102", "十都镇", RegionLevel.TOWNSHIP, "430225"),
]
COUNTY_CODE = "430225"


@dataclass(frozen=True)
class DemoStation:
    """A station of the demo county."""

    key: str
    name: str
    township_code: str
    address: str
    contact_name: str
    contact_phone: str


@dataclass(frozen=True)
class DemoDeputy:
    """A deputy of the demo county; ``levels`` pairs a congress level with its constituency."""

    key: str
    name: str
    station: str
    occupation: str
    phone: str
    levels: tuple[tuple[CongressLevel, str], ...]
    status: DeputyStatus = DeputyStatus.SERVING


STATIONS = [
    DemoStation(
        "xiayang",
        "霞阳镇人大代表联络站",
        "430225100",
        "炎陵县霞阳镇炎帝大道1号便民服务中心二楼",
        "彭丽",
        "0731-26200101",
    ),
    DemoStation(
        "miandu", "沔渡镇人大代表之家", "430225101", "炎陵县沔渡镇沔渡社区综合服务中心一楼", "谢春生", "0731-26200102"
    ),
    DemoStation(
        "shidu", "十都镇人大代表联络站", "430225102", "炎陵县十都镇十都村党群服务中心", "肖红霞", "0731-26200103"
    ),
]

_COUNTY = CongressLevel.COUNTY
_TOWNSHIP = CongressLevel.TOWNSHIP

DEPUTIES = [
    # 霞阳镇
    DemoDeputy(
        "zhang_xiuying",
        "张秀英",
        "xiayang",
        "霞阳镇中心小学教师",
        "13800000001",
        ((_COUNTY, "霞阳镇第三选区"), (_TOWNSHIP, "霞阳镇城东社区选区")),
    ),
    DemoDeputy(
        "li_jianguo",
        "李建国",
        "xiayang",
        "霞阳镇山田村农民（种粮大户）",
        "13800000002",
        ((_TOWNSHIP, "霞阳镇山田村选区"),),
    ),
    DemoDeputy(
        "liu_zhiqiang", "刘志强", "xiayang", "炎陵县人民医院医生", "13800000003", ((_COUNTY, "霞阳镇第五选区"),)
    ),
    DemoDeputy(
        "luo_kaihua",
        "罗开华",
        "xiayang",
        "炎陵县黄桃专业合作社负责人",
        "13800000004",
        ((CongressLevel.PROVINCE, "株洲市"), (_COUNTY, "霞阳镇第一选区")),
    ),
    # 沔渡镇
    DemoDeputy(
        "zhou_guilan", "周桂兰", "miandu", "沔渡镇沔渡村农民", "13800000005", ((_TOWNSHIP, "沔渡镇沔渡村选区"),)
    ),
    DemoDeputy("huang_haitao", "黄海涛", "miandu", "县竹木加工企业职工", "13800000006", ((_COUNTY, "沔渡镇第一选区"),)),
    DemoDeputy(
        "tan_xiaoyan", "谭小燕", "miandu", "沔渡镇卫生院医生", "13800000007", ((_TOWNSHIP, "沔渡镇梨树洲村选区"),)
    ),
    DemoDeputy(
        "deng_wenbin",
        "邓文斌",
        "miandu",
        "沔渡镇中学教师",
        "13800000008",
        ((_COUNTY, "沔渡镇第二选区"),),
        DeputyStatus.RESIGNED,
    ),
    # 十都镇
    DemoDeputy(
        "zeng_fanlin", "曾凡林", "shidu", "十都镇黄桃种植户（农民）", "13800000009", ((_TOWNSHIP, "十都镇十都村选区"),)
    ),
    DemoDeputy(
        "zhong_lihua",
        "钟丽华",
        "shidu",
        "十都镇卫生院医生",
        "13800000010",
        ((_COUNTY, "十都镇第一选区"), (_TOWNSHIP, "十都镇密花村选区")),
    ),
    DemoDeputy("he_yongsheng", "何永生", "shidu", "县水电站企业职工", "13800000011", ((CongressLevel.CITY, "炎陵县"),)),
    DemoDeputy(
        "chen_meilan", "陈美兰", "shidu", "十都镇中心小学教师", "13800000012", ((_TOWNSHIP, "十都镇平乐村选区"),)
    ),
]

# (station key, kind, day, duty deputy key, note): 每周三, 每月20日 and 逢六 at every station.
RECEPTION_RULES = [
    ("xiayang", ReceptionRuleKind.WEEKLY, 3, "zhang_xiuying", "县人大常委会确定的接待日"),
    ("xiayang", ReceptionRuleKind.MONTHLY, 20, "liu_zhiqiang", "人大代表活动日"),
    ("xiayang", ReceptionRuleKind.XUN, 6, "li_jianguo", "逢六进站"),
    ("miandu", ReceptionRuleKind.WEEKLY, 3, "zhou_guilan", "县人大常委会确定的接待日"),
    ("miandu", ReceptionRuleKind.MONTHLY, 20, "huang_haitao", "人大代表活动日"),
    ("miandu", ReceptionRuleKind.XUN, 6, "tan_xiaoyan", "逢六进站"),
    ("shidu", ReceptionRuleKind.WEEKLY, 3, "zeng_fanlin", "县人大常委会确定的接待日"),
    ("shidu", ReceptionRuleKind.MONTHLY, 20, "zhong_lihua", "人大代表活动日"),
    ("shidu", ReceptionRuleKind.XUN, 6, "chen_meilan", "逢六进站"),
]

# (name, contact, phone), all under the county.
DEPARTMENTS = [
    ("炎陵县住房和城乡建设局", "王志刚", "0731-26200201"),
    ("炎陵县交通运输局", "赵小平", "0731-26200202"),
    ("炎陵县教育局", "孙丽娟", "0731-26200203"),
    ("炎陵县水利局", "周建军", "0731-26200204"),  # few forwards: under the league table's minimum sample
]
# Units of a department (``Department.parent_id``): counted under it in the departments' figures.
DEPARTMENT_UNITS = [
    ("霞阳镇城建办", "炎陵县住房和城乡建设局", "刘海燕", "0731-26200211"),
]

DEMO_USERNAMES = ("deputy", "station_admin", "supervisor", "department")


class DatabaseNotEmptyError(Exception):
    """The database already holds data; the demo is never loaded on top of it."""


def database_has_data() -> bool:
    """True when any station, deputy, staff user or department exists."""
    return any(
        db.session.scalar(select(exists().where(model.id.isnot(None))))
        for model in (Station, Deputy, StaffUser, Department)
    )


def load_demo() -> None:
    """Write the demo county (flushes; the caller commits); raise DatabaseNotEmptyError if data exists."""
    if database_has_data():
        raise DatabaseNotEmptyError("数据库已有联络站、代表、员工账号或承办单位，演示数据只能载入空数据库。")

    regions: dict[str, Region] = {}
    for code, name, level, parent_code in REGIONS:
        # Regions are reference data a deployment may have loaded already: reuse them.
        region = db.session.scalar(select(Region).where(Region.code == code))
        if region is None:
            region = Region(code=code, name=name, level=level, parent=regions.get(parent_code or ""))
            db.session.add(region)
        regions[code] = region
    db.session.flush()

    stations: dict[str, Station] = {}
    for spec in STATIONS:
        station = Station(
            name=spec.name,
            region=regions[spec.township_code],
            address=spec.address,
            contact_name=spec.contact_name,
            contact_phone=spec.contact_phone,
        )
        db.session.add(station)
        stations[spec.key] = station
    db.session.flush()

    deputies: dict[str, Deputy] = {}
    for spec in DEPUTIES:
        deputy = Deputy(
            name=spec.name,
            station=stations[spec.station],
            constituency=spec.levels[-1][1],
            occupation=spec.occupation,
            phone=spec.phone,
            term_start=TERM_START,
            term_end=TERM_END,
            status=spec.status,
            status_changed_at=None if spec.status == DeputyStatus.SERVING else RESIGNED_AT,
        )
        deputy.levels = [DeputyLevel(level=level, constituency=where) for level, where in spec.levels]
        db.session.add(deputy)
        deputies[spec.key] = deputy
    db.session.flush()

    for station_key, kind, day, deputy_key, note in RECEPTION_RULES:
        stations[station_key].reception_rules.append(
            ReceptionRule(kind=kind, day=day, deputy=deputies[deputy_key], note=note)
        )
    db.session.flush()

    for station in stations.values():
        issue_code(station)
    for deputy in deputies.values():
        issue_code(deputy)  # the resigned deputy's code too: a printed code never dies

    county = regions[COUNTY_CODE]
    departments = [
        Department(name=name, region=county, contact_name=contact, contact_phone=phone)
        for name, contact, phone in DEPARTMENTS
    ]
    db.session.add_all(departments)
    db.session.flush()
    by_name = {department.name: department for department in departments}
    db.session.add_all(
        [
            Department(
                name=name, region=county, contact_name=contact, contact_phone=phone, parent_id=by_name[parent].id
            )
            for name, parent, contact, phone in DEPARTMENT_UNITS
        ]
    )
    db.session.flush()

    first_station = stations[STATIONS[0].key]
    first_deputy = deputies[DEPUTIES[0].key]
    password_hash = hash_password(DEMO_PASSWORD)
    db.session.add_all(
        [
            StaffUser(
                username="deputy",
                display_name=first_deputy.name,
                password_hash=password_hash,
                role=StaffRole.DEPUTY,
                deputy=first_deputy,
            ),
            StaffUser(
                username="station_admin",
                display_name=first_station.contact_name,
                password_hash=password_hash,
                role=StaffRole.STATION_ADMIN,
                station=first_station,
            ),
            StaffUser(
                username="supervisor",
                display_name="炎陵县人大常委会选联工委",
                password_hash=password_hash,
                role=StaffRole.SUPERVISOR,
                region=county,
            ),
            StaffUser(
                username="department",
                display_name=departments[0].name,
                password_hash=password_hash,
                role=StaffRole.DEPARTMENT,
                department=departments[0],
            ),
        ]
    )
    db.session.flush()
    # Written as the demo writes its stations: directly, no audit row (the demo is set-up, not someone's act).
    topic = Topic(
        station=first_station,
        kind=TopicKind.POLL,
        title=DEMO_TOPIC_TITLE,
        prompt="明年您最希望县里办好哪件民生实事？",
        choices=list(DEMO_TOPIC_CHOICES),
        closes_at=topics.closes_at(today_in_china() + timedelta(days=DEMO_TOPIC_DAYS)),
    )
    db.session.add(topic)
    issue_code(topic)


DEMO_TOPIC_TITLE = "2027年民生实事项目征集"
DEMO_TOPIC_CHOICES = ("农村道路硬化", "城区停车位", "学校食堂改造", "乡镇卫生院设备")
DEMO_TOPIC_DAYS = 60
DEMO_PROPOSAL_ITEMS = 3


def load_demo_proposal() -> Proposal | None:
    """One 代表建议 of the first deputy, submitted: drawn from their latest items of the category they hear most
    about (or their three latest, when no category has two). After ``load_history``: the items are the history's.
    None when the deputy has no item."""
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == "deputy"))
    rows = db.session.execute(
        select(Item.category, Item.ref)
        .where(Item.deputy_id == user.deputy_id, Item.is_held.is_(False))
        .order_by(Item.created_at.desc(), Item.id.desc())
    ).all()
    if not rows:
        return None
    by_category: dict[ItemCategory, list[str]] = {}
    for category, ref in rows:
        by_category.setdefault(category, []).append(ref)
    category, refs = max(by_category.items(), key=lambda pair: len(pair[1]))  # the first of the largest: newest
    if len(refs) >= 2:
        title = f"关于集中解决群众反映的{category.label}问题的建议"
    else:
        title, refs = "关于集中解决近期群众反映问题的建议", [ref for _, ref in rows]
    proposal = proposals.draft_proposal(
        user,
        title=title,
        body="近期多位群众反映同类问题，建议有关部门统一排查、限期解决，并向群众反馈。",
        item_refs=refs[:DEMO_PROPOSAL_ITEMS],
        department_id=db.session.scalar(select(Department.id).order_by(Department.id).limit(1)),
    )
    return proposals.perform(proposal, user, "submit")


def demo_urls() -> list[str]:
    """The lines ``flask demo urls`` prints: where to scan, browse and log in."""
    base = current_app.config["PUBLIC_BASE_URL"]
    deputy = db.session.scalar(select(Deputy).where(Deputy.status == DeputyStatus.SERVING).order_by(Deputy.id).limit(1))
    station = db.session.scalar(select(Station).order_by(Station.id).limit(1))
    if deputy is None or station is None:
        raise click.ClickException("数据库中没有代表或联络站，请先运行 flask demo load。")
    deputy_code = current_code(deputy)
    station_code = current_code(station)
    if deputy_code is None or station_code is None:
        raise click.ClickException("代表或联络站没有在用的二维码。")

    lines = [
        f"代表码留言页（{deputy.name}）：{code_url(deputy_code.slug)}",
        f"联络站码留言页（{station.name}）：{code_url(station_code.slug)}",
    ]
    former = db.session.scalar(select(Deputy).where(Deputy.status != DeputyStatus.SERVING).order_by(Deputy.id).limit(1))
    former_code = current_code(former) if former is not None else None
    if former is not None and former_code is not None:
        lines.append(f"已离任代表的码（{former.name}，仍可扫码，转到其联络站）：{code_url(former_code.slug)}")
    topic = db.session.scalar(select(Topic).order_by(Topic.id).limit(1))
    topic_code = topics.topic_code(topic) if topic is not None else None
    if topic is not None and topic_code is not None:
        lines.append(f"专题码留言页（{topic.title}）：{code_url(topic_code.slug)}")
    lines.append(f"联络站名录：{base}/stations")

    login_rules = [rule for rule in current_app.url_map.iter_rules() if rule.endpoint == "staff.login"]
    if login_rules:
        lines.append(f"代表/工作人员登录：{base}{login_rules[0].rule}")
    else:
        lines.append(f"员工登录：{base}/staff/login (员工登录页面在后续版本提供)")
    lines.append(f"  演示账号：{' / '.join(DEMO_USERNAMES)}，密码均为 {DEMO_PASSWORD}（仅供演示）")
    if current_app.config.get("WECHAT_SANDBOX"):
        lines.append(f"模拟微信（居民收到的通知）：{base}/_wechat/")
    return lines


demo_cli = AppGroup("demo", help="演示数据：炎陵县的三个联络站。")


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="数据库已有数据时跳过（退出码 0），而不是报错。")
@click.option("--history", is_flag=True, help="同时写入过去12个月的留言和办理记录（make run 的做法），让统计有数可看。")
@click.option(
    "--months", type=click.IntRange(1, 36), default=12, show_default=True, help="--history 写入的月数（本月之前）。"
)
def load_command(if_empty: bool, history: bool, months: int) -> None:
    """Load the demo county into an empty database (with ``--history``, its last twelve months too)."""
    items = 0
    try:
        load_demo()
        if history:
            now = utcnow()
            items = load_history(today_in_china(now), now, months)
            load_demo_proposal()
        db.session.commit()
    except DatabaseNotEmptyError as exc:
        db.session.rollback()
        if if_empty:
            click.echo("数据库已有数据，跳过演示数据。")
            return
        raise click.ClickException(str(exc)) from exc
    except IntegrityError:
        # Another process loaded the demo at the same moment (unique usernames and region codes).
        db.session.rollback()
        if if_empty and database_has_data():
            click.echo("数据库已有数据，跳过演示数据。")
            return
        raise
    click.echo(f"已载入演示数据：{len(STATIONS)} 个联络站，{len(DEPUTIES)} 名代表。运行 flask demo urls 查看地址。")
    if history:
        click.echo(f"已写入过去{months}个月的 {items} 件留言及其办理记录。")


@demo_cli.command("urls")
def urls_command() -> None:
    """Print the demo's URLs and logins for a newcomer."""
    for line in demo_urls():
        click.echo(line)


def init_app(app: Flask) -> None:
    """Register ``flask demo load`` and ``flask demo urls``."""
    app.cli.add_command(demo_cli)
