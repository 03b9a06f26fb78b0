"""The province bench (issue 16 part 1) on PostgreSQL: 14 cities, 122 counties, 2,000 stations, 100,000 deputies,
10,000,000 items over three years with their events, forwards and ratings.

The province is generated once into a database of its own, ``msl_bench_province`` (``BENCH_PROVINCE_DB`` names
another, for a trial build beside the kept one) on ``BENCH_PG_URL``'s server, and kept between runs: a run finds it by the row
``bench_province`` holds (the scale it was built at and how long it took) and only migrates it; ``--drop``
drops it first, and a database built at another scale, or whose build did not finish, is dropped and built
again. ``--scale 0.01`` builds a province of the same shape with 1 % of the deputies' items (100,000), for
development; stations, deputies and regions keep their numbers.

The data: the demo county (炎陵县, under 株洲市 in 湖南省, with the demo's accounts), then 13 more cities and 121
more counties, one township per generated station (2,000 stations in all, spread evenly over the counties),
100,000 deputies spread over the stations with a current code each, five departments per county, and a province
supervisor (``province``, the demo's password). Items are spread over every deputy across three years, with the
mix of states a province has (about 10 % open, recent, a third of those overdue; most resolved) and the columns
the lifecycle writes (accepted, first answered, resolved, outcome, rating), an event for each step of their
history (submitted, accepted, forwarded, answered, resolved, rated, reopened, declined, duplicate), a forward for
every 已交办 item and three in ten of the answered or resolved ones (answered by the department, one in fifty
returned, the resident's verdict on the forward). The demo deputy gets one item in a thousand (10,000 at full
scale), and the demo county a month of 30,000 items (the last full month, scaled, at least 3,000) for the export.
The frame (regions, stations, deputies, codes, departments) is shaped in Python and sent with COPY (psycopg's
``cursor.copy``); the items, events and forwards (about 61 million rows at full scale) are made by PostgreSQL
itself, ``INSERT … SELECT`` over ``generate_series`` in chunks of item numbers from ``--jobs`` sessions (default 2),
every column a function of the item's number by the rules above (``chunk_sql``): on this 2-core machine the Python
generator and COPY's text parsing were the CPU the build spent, and a row made where it is stored spends neither.
The items', events' and forwards' secondary indexes and unique constraints are dropped for the load and rebuilt
from their own definitions, foreign keys are not checked during it (``session_replication_role = replica``); then
each table is ``VACUUM ANALYZE``-d (the visibility map the pages' index-only scans need) and its indexes built, in
two sessions side by side. ``--build-only`` builds (or keeps) the province and measures nothing.

Measured, through the real code (the Flask app's test client, logged in through the login form, in this process),
each against a baseline measured in the same run: the same request on an empty database (a fresh one with the demo
county and the same province supervisor):

- submission p99 with 16 clients (``POST /api/v1/items`` under gunicorn, as ``bench.submit``): ≤ 1.5× the same on
  the empty database;
- the deputy's inbox (``GET /staff/inbox`` as ``deputy``) p95 < 50 ms;
- a county supervisor's inbox (``GET /staff/inbox`` as ``supervisor``) p95 < 100 ms;
- the county dashboard (``GET /supervision/`` as ``supervisor``) p95 < 150 ms;
- the province dashboard (``GET /supervision/`` as ``province``) p95 < 1 s;
- the county's monthly export (``GET /supervision/export.xlsx?month=…`` as ``supervisor``, the export month's
  items) in constant memory: each export runs in a child process, after a login and a warm-up export of an empty
  month; its peak RSS (``VmHWM``, reset when the export begins: the login's scrypt hash leaves a higher peak) less
  its RSS when it began is its growth; the target is met when the big month's growth exceeds a small month's (the
  county's ordinary month, three months before) by less than 32 MB.

Each run's submissions stay in the kept database (900 items a run), and its open items' due dates are those of the
day it was built: after a week the bench says so, and ``--drop`` builds it afresh.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bench import submit
from bench.common import postgres_answers
from bench.inbox import PHRASES, _ref_sql
from bench.submit import PG_ADMIN_URL, Result, fresh_database, run_cli

DATABASE = os.environ.get("BENCH_PROVINCE_DB", "msl_bench_province")  # another name keeps a trial build apart
CITIES = 14
COUNTIES = 122
STATIONS = 2_000
DEPUTIES = 100_000
ITEMS = 10_000_000
EXPORT_ITEMS = 30_000
DEPARTMENTS_PER_COUNTY = 5
YEARS = 3
DEMO_COUNTY = "430225"
PROVINCE_USER = "province"
DEMO_PASSWORD = "demo-2026"  # noqa: S105 - the demo's published password (backend/demo.py)
COPY_BLOCK = 20_000  # rows of the frame sent to COPY at a time

TARGETS = {
    "submission_ratio": 1.5,
    "deputy_inbox_ms": 50.0,
    "county_inbox_ms": 100.0,
    "county_dashboard_ms": 150.0,
    "province_dashboard_ms": 1000.0,
    "export_growth_mb": 32.0,
}
CATEGORIES = (
    "urban",
    "transport",
    "education",
    "health",
    "social_security",
    "environment",
    "rural",
    "public_safety",
    "other",
)
HOUR = 3600


@dataclass
class Options:
    """The province's size, what to do with a kept one, and how many measurements."""

    scale: float = 1.0
    drop: bool = False
    requests: int = 40
    warmup: int = 5
    submissions: int = 800
    submission_warmup: int = 100
    jobs: int = 2
    build_only: bool = False

    @property
    def items(self) -> int:
        """Items in the province at this scale."""
        return max(1_000, round(ITEMS * self.scale))

    @property
    def export_items(self) -> int:
        """Items of the demo county's export month at this scale (at least 3,000: memory to measure)."""
        return max(3_000, round(EXPORT_ITEMS * self.scale))


# --- the database, kept between runs ---------------------------------------------------------------


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def province_url() -> str:
    """The SQLAlchemy URL of the kept province database."""
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=DATABASE)
    return url.render_as_string(hide_password=False)


def drop_database(out: Callable[[str], None]) -> None:
    """Drop the kept province database (``--drop``, or before building at another scale)."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    out(f"dropped {DATABASE}")


def kept_build(url: str) -> dict | None:
    """What the kept database says of its build (scale, items, seconds), or None when there is no finished one."""
    try:
        with psycopg.connect(_plain(url)) as conn:
            row = conn.execute("SELECT to_regclass('bench_province') IS NOT NULL").fetchone()
            if not row[0]:
                return None
            found = conn.execute("SELECT info FROM bench_province").fetchone()
            return json.loads(found[0]) if found else None
    except psycopg.OperationalError:
        return None


def ensure_database(options: Options, workdir: Path, out: Callable[[str], None]) -> str:
    """The province database at ``options.scale``: kept from an earlier run, or built now. Its URL."""
    url = province_url()
    if options.drop:
        drop_database(out)
    build = kept_build(url)
    if build is not None and build.get("scale") != options.scale:
        out(f"{DATABASE} was built at scale {build.get('scale')}, not {options.scale}: building it again")
        drop_database(out)
        build = None
    env = submit.server_env(url, workdir)
    if build is None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')  # a build that did not finish
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        run_cli(env, "db", "upgrade")
        run_cli(env, "demo", "load")
        add_province_user(url)
        generate(url, options, out)
    else:
        run_cli(env, "db", "upgrade")  # the kept data, at the code's schema
        built = datetime.strptime(build["built_at"], "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
        if datetime.now(UTC) - built > timedelta(days=7):
            out(f"note: built {build['built_at']}: its open items have aged since (overdue grows); --drop to rebuild")
        out(
            f"kept {DATABASE}: scale {build['scale']}, {build['items']:,} items, {build['events']:,} events, "
            f"{build['forwards']:,} forwards, built {build['built_at']} in {build['seconds']:.0f} s "
            "(--drop builds it again)"
        )
    return url


def add_province_user(url: str) -> None:
    """The province's supervisor (``province``, the demo's password hash), as the admin page would add one."""
    with psycopg.connect(_plain(url)) as conn:
        conn.execute(
            """INSERT INTO staff_users (username, display_name, password_hash, role, region_id, is_active, created_at)
               SELECT %s, '湖南省人大常委会选联工委', password_hash, 'supervisor',
                      (SELECT id FROM regions WHERE code = '430000'), true, now()
               FROM staff_users WHERE username = 'supervisor'""",
            (PROVINCE_USER,),
        )


# --- generation ------------------------------------------------------------------------------------


class Copier:
    """One COPY … FROM STDIN per table, each on a connection of its own, open side by side: rows are sent in
    blocks as they are made, and PostgreSQL parses each table's rows in a backend of its own."""

    def __init__(self, url: str, table: str, columns: list[str]) -> None:
        self.conn = psycopg.connect(_plain(url))
        self.conn.execute("SET synchronous_commit = off")
        self.conn.execute("SET session_replication_role = replica")  # no foreign-key triggers during the load
        self.cursor = self.conn.cursor()
        self._copy_cm = self.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
        self.copy = self._copy_cm.__enter__()
        self.rows = 0

    def write(self, lines: list[str]) -> None:
        """Send rows already in COPY's text format."""
        if lines:
            self.copy.write("".join(lines).encode())
            self.rows += len(lines)

    def close(self) -> None:
        """End the COPY and commit."""
        self._copy_cm.__exit__(None, None, None)
        self.conn.commit()
        self.conn.close()


def _copy_rows(url: str, table: str, columns: list[str], rows: Iterator[tuple]) -> int:
    """COPY small reference tables (regions, stations, deputies, codes …) in one go."""
    copier = Copier(url, table, columns)
    block = []
    for row in rows:
        block.append("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
        if len(block) >= COPY_BLOCK:
            copier.write(block)
            block = []
    copier.write(block)
    copier.close()
    return copier.rows


def _next_id(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT COALESCE(max(id), 0) + 1 FROM {table}").fetchone()[0]


@dataclass
class World:
    """The ids the items are spread over."""

    deputies: list[tuple[int, int, int]]  # (deputy id, station id, county index)
    demo_deputy: tuple[int, int]
    demo_county_deputies: list[tuple[int, int]]
    departments: dict[int, list[int]]  # county index -> department ids
    staff_user: int


def generate_places(url: str, out: Callable[[str], None]) -> World:
    """Cities, counties, townships, stations, deputies, their codes, departments: the province's frame."""
    started = time.perf_counter()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S+00")
    with psycopg.connect(_plain(url)) as conn:
        province, demo_city, demo_county = (
            conn.execute("SELECT id FROM regions WHERE code = %s", (code,)).fetchone()[0]
            for code in ("430000", "430200", DEMO_COUNTY)
        )
        region_id = _next_id(conn, "regions")
        station_id = _next_id(conn, "stations")
        deputy_id = _next_id(conn, "deputies")
        code_id = _next_id(conn, "codes")
        department_id = _next_id(conn, "departments")
        demo_stations = [r[0] for r in conn.execute("SELECT id FROM stations ORDER BY id")]
        demo_deputies = conn.execute(
            "SELECT id, station_id FROM deputies WHERE status = 'serving' ORDER BY id"
        ).fetchall()
        demo_deputy = conn.execute(
            "SELECT d.id, d.station_id FROM deputies d JOIN staff_users u ON u.deputy_id = d.id WHERE u.username = 'deputy'"
        ).fetchone()
        demo_departments = [r[0] for r in conn.execute("SELECT id FROM departments ORDER BY id")]
        staff_user = conn.execute("SELECT id FROM staff_users WHERE username = 'deputy'").fetchone()[0]

    regions: list[tuple] = []
    cities = [demo_city]
    for c in range(1, CITIES + 1):
        if c == 2:
            continue
        regions.append((region_id, f"43{c:02d}00", f"第{c}市", "city", province))
        cities.append(region_id)
        region_id += 1
    counties = [demo_county]  # county index 0 is the demo county
    for k in range(1, COUNTIES):
        city_index = k % CITIES
        regions.append((region_id, f"43{city_index + 1:02d}{50 + k:03d}", f"第{k}县", "county", cities[city_index]))
        counties.append(region_id)
        region_id += 1
    stations: list[tuple] = []
    station_county: dict[int, int] = {s: 0 for s in demo_stations}
    for s in range(STATIONS - len(demo_stations)):
        county = s % COUNTIES
        regions.append((region_id, f"P{s:06d}", f"第{s}镇", "township", counties[county]))
        stations.append((station_id, f"第{s}人大代表联络站", region_id, f"某镇某路{s}号", "", "", "t", now))
        station_county[station_id] = county
        region_id += 1
        station_id += 1
    all_stations = demo_stations + [s[0] for s in stations]
    deputies: list[tuple] = []
    spread: list[tuple[int, int, int]] = [(d, s, 0) for d, s in demo_deputies]
    for d in range(DEPUTIES - len(demo_deputies)):
        station = all_stations[d % len(all_stations)]
        deputies.append((deputy_id, f"代表{d}", station, f"第{d}选区", "", "", "serving", 0, now))
        spread.append((deputy_id, station, station_county[station]))
        deputy_id += 1
    codes = [(code_id + i, f"pd{d[0]:010x}", d[0], None, now, "") for i, d in enumerate(deputies)]
    code_id += len(codes)
    codes += [(code_id + i, f"ps{s[0]:010x}", None, s[0], now, "") for i, s in enumerate(stations)]
    departments_rows = []
    by_county: dict[int, list[int]] = {0: demo_departments}
    for k in range(1, COUNTIES):
        by_county[k] = []
        for j in range(DEPARTMENTS_PER_COUNTY):
            departments_rows.append((department_id, f"第{k}县第{j}局", counties[k], "", "", "t"))
            by_county[k].append(department_id)
            department_id += 1

    _copy_rows(url, "regions", ["id", "code", "name", "level", "parent_id"], iter(regions))
    _copy_rows(
        url,
        "stations",
        ["id", "name", "region_id", "address", "contact_name", "contact_phone", "is_active", "created_at"],
        iter(stations),
    )
    _copy_rows(
        url,
        "deputies",
        ["id", "name", "station_id", "constituency", "occupation", "phone", "status", "photo_version", "created_at"],
        iter(deputies),
    )
    _copy_rows(url, "codes", ["id", "slug", "deputy_id", "station_id", "created_at", "retired_reason"], iter(codes))
    _copy_rows(
        url,
        "departments",
        ["id", "name", "region_id", "contact_name", "contact_phone", "is_active"],
        iter(departments_rows),
    )
    out(
        f"province frame: {len(regions):,} regions, {len(all_stations):,} stations, {len(spread):,} deputies, "
        f"{len(codes):,} codes, {sum(len(v) for v in by_county.values())} departments in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return World(
        deputies=spread,
        demo_deputy=tuple(demo_deputy),
        demo_county_deputies=[(d, s) for d, s, county in spread if county == 0],
        departments=by_county,
        staff_user=staff_user,
    )


# The items, their events and forwards are made by PostgreSQL itself (INSERT … SELECT over generate_series): every
# column is a function of the item's number g, computed in SQL by the same rules a Python generator would apply,
# so no row passes through Python or COPY's text parser (the two CPU-bound halves of a COPY load on two cores).
# Python shapes only the frame above (COPY) and the two small tables the items are spread over (below).
SPREAD_TABLE = "bench_province_spread"  # k -> deputy, station, county, departments; dropped when the build ends
SPREAD_DEMO_DEPUTY = -1  # k of the demo deputy (one item in a thousand)
CHUNK = 100_000  # items a statement makes (with their events and forwards), one statement at a time per session
EVENTS_PER_ITEM = 10  # event ids are spaced by item (an item has at most 8): any process can number its own
OPEN_STATUSES = ("submitted", "accepted", "forwarded", "answered")


def _status_sql(g: str) -> str:
    """The mix of states (bench/inbox.py's): 10 % open, 2 % declined, 1 % duplicate, the rest resolved."""
    return f"""CASE WHEN {g} % 100 < 2 THEN 'submitted' WHEN {g} % 100 < 5 THEN 'accepted'
                    WHEN {g} % 100 < 8 THEN 'forwarded' WHEN {g} % 100 < 10 THEN 'answered'
                    WHEN {g} % 100 < 12 THEN 'declined' WHEN {g} % 100 < 13 THEN 'duplicate' ELSE 'resolved' END"""


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def chunk_sql(plan: Plan, first: int, last: int) -> str:
    """One statement making items ``first``–``last`` (their numbers g) with their events and forwards.

    Moments are Unix seconds until the rows are written. Per item g: its status from ``g % 100``; the export
    month's items (g below ``export_items``) go to the demo county's deputies in turn and fall inside the month;
    every thousandth other item goes to the demo deputy, the rest to a deputy picked by a multiplicative hash;
    open items are recent (≤ 30 days, due from 3 days ago to 6 days ahead: a third overdue), closed ones spread
    over three years before the last 30 days, due 15 days after they came; accepted within 1–60 h, first answered
    1–400 h after, resolved up to 900 h after that (8 in 10 solved), three in five rated (42 in 50 satisfied);
    one accepted item in seven reopened after an unsatisfied rating; 1 in 20 entered in person; half with a phone.
    A forward for every 已交办 item and for three in ten answered or resolved ones (the department answers 3–503 h
    after, one in fifty returns it; the resident's rating is the verdict on an answered forward).
    """
    now, hour, day = plan.now, HOUR, 86400
    categories = "ARRAY[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    phrases = "ARRAY[" + ", ".join(f"'{p}'" for p in PHRASES) + "]"
    spread_key = f"""CASE WHEN g < {plan.export_items} THEN -2 - g % {plan.county_deputies}
                          WHEN g % 1000 = 0 THEN {SPREAD_DEMO_DEPUTY}
                          ELSE (g * 2654435761) % {plan.deputies} END"""
    created = f"""CASE WHEN g < {plan.export_items} THEN {plan.export_start} + (g * 7919) % {plan.export_span}
                       WHEN g % 100 < 10 THEN {now} - ((g * 7919) % 720) * {hour}
                       ELSE {now} - ((g * 7919) % {plan.span_hours}) * {hour} - {30 * day} END"""
    base = f"""SELECT g, status, deputy, station, county, departments, created, due, accepted, reopened,
                      first_answered, resolved, rated, satisfaction,
                      CASE WHEN status = 'forwarded' OR (status IN ('answered', 'resolved') AND (g / 100) % 10 < 3)
                           THEN coalesce(accepted, created) + {2 * hour} END AS forwarded
               FROM (SELECT *, CASE WHEN status = 'resolved' AND g % 5 < 3
                                    THEN least({now}, resolved + ((g * 11) % 72 + 1) * {hour})
                                    WHEN reopened THEN least({now}, first_answered + {24 * hour}) END AS rated,
                               CASE WHEN status = 'resolved' AND g % 5 < 3
                                    THEN CASE WHEN g % 50 < 42 THEN 'satisfied' ELSE 'basically' END
                                    WHEN reopened THEN 'unsatisfied' END AS satisfaction
                     FROM (SELECT *, CASE WHEN status = 'resolved'
                                          THEN least({now}, accepted + ((g * 17) % 400 + 1) * {hour}
                                                     + ((g * 13) % 900) * {hour}) END AS resolved,
                                     CASE WHEN (status IN ('answered', 'resolved') AND g % 20 <> 0)
                                               OR (status = 'forwarded' AND g % 3 = 0) OR reopened
                                          THEN least({now}, accepted + ((g * 17) % 400 + 1) * {hour}) END
                                          AS first_answered
                           FROM (SELECT *, CASE WHEN {_in("status", OPEN_STATUSES)}
                                                THEN {now} + ((g / 100) % 10 - 3) * {day} + {hour}
                                                ELSE created + {15 * day} END AS due,
                                           CASE WHEN status IN ('accepted', 'forwarded', 'answered', 'resolved')
                                                THEN created + ((g * 31) % 60 + 1) * {hour} END AS accepted,
                                           status = 'accepted' AND g % 7 = 0 AS reopened
                                 FROM (SELECT g, {_status_sql("g")} AS status, p.deputy_id AS deputy,
                                              p.station_id AS station, p.county, p.departments, {created} AS created
                                       FROM generate_series({first}::bigint, {last}::bigint) g
                                       JOIN {SPREAD_TABLE} p ON p.k = {spread_key}) s0) s1) s2) s3"""
    # The department's answer (or return), 3–503 h after the forward, once the item is answered or resolved.
    base = f"""SELECT *, CASE WHEN forwarded IS NOT NULL AND status IN ('answered', 'resolved')
                           THEN least({now}, forwarded + ((g * 7) % 500 + 3) * {hour}) END AS department_answered
               FROM ({base}) s4"""
    # Each event's position among the item's events (which numbers it), for the steps after the first two.
    base = f"""SELECT *, accepted_position + (accepted IS NOT NULL)::int AS forwarded_position,
                         accepted_position + (accepted IS NOT NULL)::int + (forwarded IS NOT NULL)::int
                         + (department_answered IS NOT NULL)::int AS replied_position
               FROM (SELECT *, 1 + (status IN ('declined', 'duplicate'))::int AS accepted_position
                     FROM ({base}) s5) s6"""
    ts = "to_timestamp"
    item_columns = {
        "id": f"{plan.first_item} + g",
        "ref": f"'P' || {_ref_sql('g')}",
        "access_key": "'K' || lpad(g::text, 16, '0')",
        "station_id": "station",
        "deputy_id": "deputy",
        "channel": "CASE WHEN g % 20 = 7 THEN 'in_person' ELSE 'qr_h5' END",
        "category": f"({categories})[g % {len(CATEGORIES)} + 1]",
        "body": f"'第' || g || '件：' || ({phrases})[g % {len(PHRASES)} + 1]",
        "contact_name": "CASE WHEN g % 2 = 0 THEN '王桂芳' ELSE '' END",
        "contact_phone": "CASE WHEN g % 2 = 0 THEN '139' || lpad((g % 100000000)::text, 8, '0') ELSE '' END",
        "status": "status",
        "needs_review": "false",
        "review_reason": "''",
        "body_fingerprint": "''",
        "created_at": f"{ts}(created)",
        "updated_at": f"{ts}(greatest(created, accepted, first_answered, resolved, rated))",
        "due_at": f"{ts}(due)",
        "accepted_at": f"{ts}(accepted)",
        "first_answered_at": f"{ts}(first_answered)",
        "resolved_at": f"{ts}(resolved)",
        "outcome": "CASE WHEN resolved IS NOT NULL THEN CASE WHEN g % 10 < 8 THEN 'solved' "
        "WHEN g % 10 < 9 THEN 'partly' ELSE 'unsolved' END END",
        "satisfaction": "satisfaction",
        "rated_at": f"{ts}(rated)",
        "reopen_count": "reopened::int",
        "is_held": "false",
        "publish_consented_at": f"CASE WHEN g % 5 = 0 AND status = 'resolved' THEN {ts}(created) END",
    }
    department_answered = "department_answered"
    returned = "g % 50 = 1"
    verdict = f"CASE WHEN {department_answered} IS NOT NULL AND NOT {returned} THEN satisfaction END"
    forward_columns = {
        "id": f"{plan.ids['forward']} + g",
        "item_id": f"{plan.first_item} + g",
        "department_id": "departments[(g * 13) % cardinality(departments) + 1]",
        "instructions": "''",
        "due_at": f"{ts}(forwarded + {15 * day})",
        "share_contact": "false",
        "created_at": f"{ts}(forwarded)",
        "answered_at": f"CASE WHEN NOT {returned} THEN {ts}({department_answered}) END",
        "answer": f"CASE WHEN {returned} OR {department_answered} IS NULL THEN '' ELSE '已派人现场处理。' END",
        "returned_at": f"CASE WHEN {returned} THEN {ts}({department_answered}) END",
        "return_reason": f"CASE WHEN {returned} THEN '非本单位职责。' ELSE '' END",
        "verdict": verdict,
        "verdict_at": f"CASE WHEN ({verdict}) IS NOT NULL THEN {ts}(rated) END",
    }
    # An event per step, in the order the lifecycle writes them; its position among the item's events numbers it.
    user = plan.ids["user"]
    replied, resolved, rated = (
        "replied_position",
        "replied_position + (first_answered IS NOT NULL)::int",
        "replied_position + (first_answered IS NOT NULL)::int + (resolved IS NOT NULL)::int",
    )
    department_kind = f"CASE WHEN {returned} THEN 'department_returned' ELSE 'department_replied' END"
    events = [  # (kind, actor, actor user, public, body, moment, present, position)
        ("'submitted'", "'resident'", "NULL", "true", "''", "created", "true", "0"),
        (
            "'declined'",
            "'staff'",
            user,
            "true",
            "'不属于代表履职范围。'",
            f"created + {2 * hour}",
            "status = 'declined'",
            "1",
        ),
        ("'duplicate'", "'staff'", user, "true", "''", f"created + {2 * hour}", "status = 'duplicate'", "1"),
        ("'accepted'", "'staff'", user, "true", "''", "accepted", "accepted IS NOT NULL", "accepted_position"),
        ("'forwarded'", "'staff'", user, "false", "''", "forwarded", "forwarded IS NOT NULL", "forwarded_position"),
        (
            department_kind,
            "'department'",
            "NULL",
            "false",
            "''",
            "department_answered",
            "department_answered IS NOT NULL",
            "forwarded_position + 1",
        ),
        (
            "'replied'",
            "'staff'",
            user,
            "true",
            "'已联系相关部门，正在办理。'",
            "first_answered",
            "first_answered IS NOT NULL",
            replied,
        ),
        ("'resolved'", "'staff'", user, "true", "'已办结。'", "resolved", "resolved IS NOT NULL", resolved),
        ("'rated'", "'resident'", "NULL", "true", "''", "rated", "rated IS NOT NULL", rated),
        ("'reopened'", "'system'", "NULL", "true", "''", "rated", "reopened", f"{rated} + 1"),
    ]
    steps = ",\n".join(
        f"({kind}, {actor}, {actor_user}::int, {public}, {body}, {moment}, {present}, {position})"
        for kind, actor, actor_user, public, body, moment, present, position in events
    )

    def insert(table: str, columns: dict[str, str], source: str) -> str:
        return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM {source}"

    # The statement answers its rows (items, events, forwards): no count of 61 million rows after the load.
    return f"""WITH b AS MATERIALIZED ({base}),
        new_items AS ({insert("items", item_columns, "b")} RETURNING 1),
        new_forwards AS ({insert("item_forwards", forward_columns, "b WHERE forwarded IS NOT NULL")} RETURNING 1),
        new_events AS (
            INSERT INTO item_events (id, item_id, kind, actor_kind, actor_user_id, is_public, body, data, created_at)
            SELECT {plan.ids["event"]} + g * {EVENTS_PER_ITEM} + e.position, {plan.first_item} + g, e.kind,
                   e.actor, e.actor_user, e.public, e.body, '{{}}', {ts}(e.moment)
            FROM b CROSS JOIN LATERAL (VALUES {steps}) AS e (kind, actor, actor_user, public, body, moment,
                                                             present, position)
            WHERE e.present RETURNING 1)
        SELECT (SELECT count(*) FROM new_items), (SELECT count(*) FROM new_events),
               (SELECT count(*) FROM new_forwards)"""


def _drop_indexes(conn: psycopg.Connection, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """Drop the tables' secondary indexes and unique constraints (not their primary keys, which foreign keys
    need); return (table, statement) to rebuild each. A unique index checked row by row costs more than one
    built by a sort (``items.ref``: its text compared under the database's collation on every insert)."""
    rows = conn.execute(
        """SELECT tablename, format('DROP INDEX %%I', indexname), indexdef FROM pg_indexes i
           WHERE tablename = ANY(%(tables)s)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
           UNION ALL
           SELECT c.conrelid::regclass::text, format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.conrelid::regclass,
                                                     c.conname),
                  format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', c.conrelid::regclass, c.conname,
                         pg_get_constraintdef(c.oid))
           FROM pg_constraint c WHERE c.conrelid::regclass::text = ANY(%(tables)s) AND c.contype = 'u' """,
        {"tables": list(tables)},
    ).fetchall()
    for _, drop, _ in rows:
        conn.execute(drop)
    conn.commit()
    return [(table, definition) for table, _, definition in rows]


@dataclass
class Plan:
    """The numbers the item statement is written with."""

    total: int
    export_items: int
    first_item: int
    ids: dict
    now: int
    export_start: int
    deputies: int
    county_deputies: int
    export_span: int = 26 * 86400  # inside the month in China time too
    span_hours: int = YEARS * 365 * 24


def spread_tables(url: str, world: World) -> None:
    """What the items are spread over, as a small table the statement joins: k -> (deputy, station, county, the
    county's departments), k ≥ 0 every deputy, -1 the demo deputy, from -2 down the demo county's deputies (the
    export month's)."""
    with psycopg.connect(_plain(url)) as conn:
        conn.execute(
            f"""CREATE UNLOGGED TABLE {SPREAD_TABLE} (k int PRIMARY KEY, deputy_id int NOT NULL,
                station_id int NOT NULL, county int NOT NULL, departments int[] NOT NULL)"""
        )
    departments = {county: "{" + ",".join(map(str, ids)) + "}" for county, ids in world.departments.items()}
    demo_deputy, demo_station = world.demo_deputy
    rows = [(k, d, s, c, departments[c]) for k, (d, s, c) in enumerate(world.deputies)]
    rows.append((SPREAD_DEMO_DEPUTY, demo_deputy, demo_station, 0, departments[0]))
    rows += [(-2 - k, d, s, 0, departments[0]) for k, (d, s) in enumerate(world.demo_county_deputies)]
    _copy_rows(url, SPREAD_TABLE, ["k", "deputy_id", "station_id", "county", "departments"], iter(rows))
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute("ANALYZE")  # the frame's tables and this one (the items' three are analysed after the load)


def _session(url: str) -> psycopg.Connection:
    """A loading connection: no waiting for the WAL flush, no foreign-key triggers, room to sort and hash."""
    conn = psycopg.connect(_plain(url), autocommit=True)
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET session_replication_role = replica")  # no foreign-key triggers during the load
    conn.execute("SET work_mem = '256MB'")
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute("SET max_parallel_maintenance_workers = 0")  # two sessions already keep both cores busy
    return conn


def load_part(url: str, plan: Plan, part: int, parts: int, counts: list[tuple[int, int, int]]) -> None:
    """Run the item statement over every ``parts``-th chunk of item numbers, from chunk ``part``; add to
    ``counts`` the (items, events, forwards) each chunk made."""
    with _session(url) as conn:
        for first in range(part * CHUNK, plan.total, parts * CHUNK):
            counts.append(conn.execute(chunk_sql(plan, first, min(plan.total, first + CHUNK) - 1)).fetchone())


class Finish:
    """VACUUM ANALYZE of the three loaded tables, then their indexes, shared by two sessions side by side.

    VACUUM first: it sets the hint bits and the visibility map (which the pages' index-only scans need) once, so
    the index builds then read clean pages. One session vacuums the items and the other the events and forwards
    and builds their indexes; then both take the items' indexes from one queue, largest first (two CREATE INDEX
    on one table may run at once; neither may run beside its VACUUM).
    """

    def __init__(self, url: str, definitions: list[tuple[str, str]]) -> None:
        self.url = url
        self.by_table = {table: [d for t, d in definitions if t == table] for table, _ in definitions}
        self.item_indexes = queue.SimpleQueue()
        for definition in sorted(self.by_table.get("items", []), key=_index_weight, reverse=True):
            self.item_indexes.put(definition)
        self.items_vacuumed = threading.Event()
        self.seconds: dict[str, float] = {}

    def _timed(self, conn: psycopg.Connection, name: str, statements: list[str]) -> None:
        started = time.perf_counter()
        for statement in statements:
            conn.execute(statement)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def _item_indexes(self, conn: psycopg.Connection) -> None:
        self.items_vacuumed.wait()
        while True:
            try:
                definition = self.item_indexes.get_nowait()
            except queue.Empty:
                return
            self._timed(conn, "indexes items", [definition])

    def items(self) -> None:
        """The first session: VACUUM ANALYZE items, then items' indexes."""
        with _session(self.url) as conn:
            try:
                self._timed(conn, "vacuum items", ["VACUUM ANALYZE items"])
            finally:
                self.items_vacuumed.set()
            self._item_indexes(conn)

    def others(self) -> None:
        """The second session: the events and forwards (VACUUM ANALYZE, indexes), then items' indexes."""
        with _session(self.url) as conn:
            for table in ("item_events", "item_forwards"):
                self._timed(conn, f"vacuum {table}", [f"VACUUM ANALYZE {table}"])
                self._timed(conn, f"indexes {table}", self.by_table.get(table, []))
            self._item_indexes(conn)


def _index_weight(definition: str) -> int:
    """Roughly how much an index costs to build: its columns and included columns; a partial one much less."""
    return (definition.count(",") + 1) * (1 if " WHERE " in definition else 10)


def _in_threads(calls: list[Callable[[], None]]) -> None:
    """Run each call in a thread of its own (each holds a connection; PostgreSQL does the work) and wait."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


def generate(url: str, options: Options, out: Callable[[str], None]) -> None:
    """Build the province (the frame by COPY, then the items with their events and forwards made by PostgreSQL
    in ``options.jobs`` sessions, then VACUUM ANALYZE and the indexes); record the build."""
    started = time.perf_counter()
    world = generate_places(url, out)
    spread_tables(url, world)
    tables = ("items", "item_events", "item_forwards")
    with psycopg.connect(_plain(url)) as conn:
        definitions = _drop_indexes(conn, tables)
        first_item = _next_id(conn, "items")
        ids = {
            "event": _next_id(conn, "item_events"),
            "forward": _next_id(conn, "item_forwards"),
            "user": world.staff_user,
        }
    first_of_month = date.today().replace(day=1)
    last_month = (first_of_month - timedelta(days=1)).replace(day=1)
    plan = Plan(
        total=options.items,
        export_items=options.export_items,
        first_item=first_item,
        ids=ids,
        now=int(time.time()),
        export_start=int(datetime(last_month.year, last_month.month, 2, tzinfo=UTC).timestamp()),
        deputies=len(world.deputies),
        county_deputies=len(world.demo_county_deputies),
    )
    load_started = time.perf_counter()
    jobs = max(1, options.jobs)
    counts: list[tuple[int, int, int]] = []
    _in_threads([lambda part=part: load_part(url, plan, part, jobs, counts) for part in range(jobs)])
    load_seconds = time.perf_counter() - load_started
    item_rows_, event_rows, forward_rows = (sum(chunk[k] for chunk in counts) for k in range(3))
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE {SPREAD_TABLE}")
        for table in tables:
            conn.execute(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
    rows = item_rows_ + event_rows + forward_rows
    out(
        f"made by PostgreSQL in {jobs} sessions: {item_rows_:,} items, {event_rows:,} events, {forward_rows:,} "
        f"forwards ({rows:,} rows) in {load_seconds:.1f} s: {rows / load_seconds:,.0f} rows/s, "
        f"{item_rows_ / load_seconds:,.0f} items/s"
    )
    finish_started = time.perf_counter()
    finish = Finish(url, definitions)
    _in_threads([finish.items, finish.others])
    phases = finish.seconds
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        finish_seconds = time.perf_counter() - finish_started
        seconds = time.perf_counter() - started
        info = {
            "scale": options.scale,
            "items": item_rows_,
            "events": event_rows,
            "forwards": forward_rows,
            "export_items": options.export_items,
            "export_month": last_month.strftime("%Y-%m"),
            "load_seconds": round(load_seconds, 1),
            "finish_seconds": round(finish_seconds, 1),
            "phases": {name: round(value, 1) for name, value in phases.items()},
            "seconds": round(seconds, 1),
            "built_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        conn.execute("CREATE TABLE bench_province (info text NOT NULL)")
        conn.execute("INSERT INTO bench_province VALUES (%s)", (json.dumps(info),))
    out(
        f"VACUUM ANALYZE and {len(definitions)} indexes in two sessions: {finish_seconds:.1f} s ("
        + ", ".join(f"{name} {value:.1f} s" for name, value in phases.items())
        + f"); built in {seconds:.1f} s"
    )


# --- measurement ----------------------------------------------------------------------------------------


@contextmanager
def baseline_database(workdir: Path) -> Iterator[str]:
    """The baseline: a fresh database with the demo county and the same province supervisor (dropped after)."""
    with fresh_database("postgresql", workdir) as url:
        env = submit.server_env(url, workdir)
        run_cli(env, "db", "upgrade")
        run_cli(env, "demo", "load")
        add_province_user(url)
        yield url


def _app(url: str, workdir: Path):
    os.environ["INSTANCE_PATH"] = str(workdir / "instance")  # this process's app keeps its files there
    os.environ.pop("REDIS_URL", None)
    from backend import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url})


def login(app, username: str):
    """A test client logged in through the staff login form, as a phone logs in."""
    import re

    client = app.test_client()
    page = client.get("/staff/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/staff/login", data={"csrf_token": token, "username": username, "password": DEMO_PASSWORD})
    if response.status_code != 303:
        raise RuntimeError(f"login as {username} answered {response.status_code}")
    return client


PAGES = (
    ("deputy_inbox_ms", "GET /staff/inbox (deputy)", "deputy", "/staff/inbox", 'id="count-new"'),
    ("county_inbox_ms", "GET /staff/inbox (county supervisor)", "supervisor", "/staff/inbox", 'id="count-new"'),
    ("county_dashboard_ms", "GET /supervision/ (county)", "supervisor", "/supervision/", 'id="dashboard"'),
    ("province_dashboard_ms", "GET /supervision/ (province)", PROVINCE_USER, "/supervision/", 'id="dashboard"'),
)


def measure_pages(url: str, workdir: Path, options: Options, label: str) -> dict[str, Result]:
    """Each page through the app's test client, one request after the other (latency, not throughput)."""
    app = _app(url, workdir)
    clients = {user: login(app, user) for user in {p[2] for p in PAGES}}
    results = {key: Result(f"{name} {label}") for key, name, *_ in PAGES}

    def fetch(user: str, path: str, expect: str, result: Result) -> None:
        started = time.perf_counter()
        response = clients[user].get(path)
        elapsed = time.perf_counter() - started
        result.sent += 1
        if response.status_code == 200 and expect in response.text:
            result.latencies.append(elapsed)
        else:
            result.errors += 1
            result.error_samples = [*result.error_samples, f"HTTP {response.status_code}: {response.text[:200]!r}"][:3]

    for key, _, user, path, expect in PAGES:
        warm = Result("warm-up")
        for _ in range(options.warmup):
            fetch(user, path, expect, warm)
        results[key].add_errors(warm)
    rounds = 4
    for _ in range(rounds):  # interleaved: a slow moment of the machine weighs on every page alike
        for key, _, user, path, expect in PAGES:
            for _ in range(-(-options.requests // rounds)):
                fetch(user, path, expect, results[key])
    from backend.extensions import db

    with app.app_context():
        db.engine.dispose()
    return results


def _status_mb(field: str) -> float:
    """A size from /proc/self/status (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def export_child(url: str, month: str, workdir: str) -> None:
    """In a child process: one warm-up export of an empty month, then ``month``'s; print what it cost as JSON."""
    import resource

    app = _app(url, Path(workdir))
    client = login(app, "supervisor")
    warm = client.get("/supervision/export.xlsx?month=2020-01")
    warm.close()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The login's scrypt hash and the warm-up left a peak above the resting size: reset the peak (VmHWM) so that
    # the export's own peak is measured from where it starts.
    Path("/proc/self/clear_refs").write_text("5")
    current = _status_mb("VmRSS")
    started = time.perf_counter()
    response = client.get(f"/supervision/export.xlsx?month={month}", buffered=False)
    size = sum(len(chunk) for chunk in response.response)
    response.close()
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM")
    print(
        json.dumps(
            {
                "status": response.status_code,
                "bytes": size,
                "seconds": seconds,
                "rss_before_mb": before / 1024,
                "rss_current_mb": current,
                "growth_mb": peak - current,
            }
        )
    )


def measure_export(url: str, workdir: Path, month: str) -> dict:
    """The county's export of ``month`` in a fresh child process (``export_child``); its items and what it cost."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.province", "--export-child", url, month, str(workdir)],
        cwd=submit.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "REDIS_URL"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"export of {month} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    with psycopg.connect(_plain(url)) as conn:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
        following = date(year + number // 12, number % 12 + 1, 1)
        result["items"] = conn.execute(
            """SELECT count(*) FROM items i JOIN stations s ON s.id = i.station_id JOIN regions t ON t.id = s.region_id
               JOIN regions c ON c.id = t.parent_id
               WHERE c.code = %s AND NOT i.is_held
                 AND i.created_at >= (%s::date)::timestamp AT TIME ZONE 'Asia/Shanghai'
                 AND i.created_at < (%s::date)::timestamp AT TIME ZONE 'Asia/Shanghai'""",
            (DEMO_COUNTY, first, following),
        ).fetchone()[0]
    return result


def submission_load(url: str, base_url: str, workdir: Path, options: Options) -> tuple[Result, Result]:
    """``POST /api/v1/items`` from 16 client threads on the province and on the empty database, rounds alternating."""
    rng = random.Random(20261203)
    load = submit.Options(threads=16)
    total = options.submission_warmup + options.submissions
    province_codes = [
        row[0]
        for row in submit.query(
            url,
            "SELECT slug FROM codes WHERE retired_at IS NULL AND deputy_id IS NOT NULL ORDER BY md5(slug) LIMIT 500",
        )
    ]
    base_codes = [
        row[0] for row in submit.query(base_url, "SELECT slug FROM codes WHERE retired_at IS NULL AND topic_id IS NULL")
    ]
    requests = [
        submit.submission_requests(total, base_codes, rng),
        submit.submission_requests(total, province_codes, rng),
    ]
    results = [Result("POST /api/v1/items (empty database)"), Result("POST /api/v1/items (province)")]
    envs = [
        submit.server_env(target, workdir)
        | {"THROTTLE_PER_ADDRESS": submit.HUGE, "THROTTLE_PER_CODE": submit.HUGE, "TRUSTED_PROXY_HOPS": "1"}
        for target in (base_url, url)
    ]
    log = workdir / "gunicorn.log"
    with (
        submit.gunicorn("backend:create_app()", envs[0], log) as base_port,
        submit.gunicorn("backend:create_app()", envs[1], log) as port,
    ):
        ports = [base_port, port]
        deadline = time.monotonic() + 600
        for prepared, p, result in zip(requests, ports, results, strict=True):
            warm = submit.run_load(
                result.name, p, "/api/v1/items", prepared[: options.submission_warmup], load, deadline
            )
            result.add_errors(warm)
        chunk = -(-options.submissions // load.rounds)
        for start in range(options.submission_warmup, total, chunk):
            for prepared, p, result in zip(requests, ports, results, strict=True):
                result.merge(
                    submit.run_load(result.name, p, "/api/v1/items", prepared[start : start + chunk], load, deadline)
                )
    if any(r.errors for r in results):
        results[1].error_samples.append(f"gunicorn log: {log.read_text(errors='replace')[-1500:]}")
    return results[0], results[1]


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def run(options: Options, out: Callable[[str], None]) -> bool:
    """Build or reuse the province, measure every target against its baseline, print; True when nothing failed."""
    with tempfile.TemporaryDirectory(prefix="msl-bench-province-") as tmp:
        workdir = Path(tmp)
        url = ensure_database(options, workdir, out)
        if options.build_only:
            return True
        build = kept_build(url)
        export_month = build["export_month"]
        year, month = (int(part) for part in export_month.split("-"))
        small_month = f"{year - (month <= 2)}-{(month - 3) % 12 + 1:02d}"
        with baseline_database(workdir) as base_url:
            base_pages = measure_pages(base_url, workdir, options, "(empty database)")
            pages = measure_pages(url, workdir, options, "(province)")
            base_submit, province_submit = submission_load(url, base_url, workdir, options)
        big = measure_export(url, workdir, export_month)
        small = measure_export(url, workdir, small_month)

    results = [base_submit, province_submit]
    for key, *_ in PAGES:
        results += [base_pages[key], pages[key]]
    out(f"{'target':<50}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for r in results:
        out(
            f"{r.name:<50}{len(r.latencies):>6}{r.percentile(50):>9.1f}{r.percentile(95):>9.1f}"
            f"{r.percentile(99):>9.1f}{r.errors:>8}"
        )
        for sample in r.error_samples:
            out(f"    error: {sample}")
    for label, cost in ((f"export {export_month}", big), (f"export {small_month} (baseline)", small)):
        out(
            f"{label:<34} {cost['items']:>7,} items  {cost['bytes'] / 1e6:6.1f} MB file  {cost['seconds']:6.1f} s  "
            f"RSS {cost['rss_current_mb']:.0f} MB at its start (peak before it {cost['rss_before_mb']:.0f} MB, the login's hash), peak growth {cost['growth_mb']:.1f} MB  (HTTP {cost['status']})"
        )
    ratio = province_submit.percentile(99) / base_submit.percentile(99)
    out(
        f"submission p99 with 16 clients: {province_submit.percentile(99):.0f} ms vs {base_submit.percentile(99):.0f} ms "
        f"on an empty database: {ratio:.2f}× (target ≤ {TARGETS['submission_ratio']}×): "
        f"{_verdict(ratio <= TARGETS['submission_ratio'])}"
    )
    for key, name, *_ in PAGES:
        p95, base = pages[key].percentile(95), base_pages[key].percentile(95)
        out(
            f"{name} p95 {p95:.0f} ms (empty database {base:.0f} ms) — target < {TARGETS[key]:.0f} ms: "
            f"{_verdict(p95 < TARGETS[key])}"
        )
    growth = big["growth_mb"] - small["growth_mb"]
    out(
        f"monthly export of {big['items']:,} items: peak RSS growth {big['growth_mb']:.1f} MB, "
        f"{growth:+.1f} MB over the {small['items']:,}-item month's — target constant memory "
        f"(< {TARGETS['export_growth_mb']:.0f} MB more): {_verdict(growth < TARGETS['export_growth_mb'])}"
    )
    failed = any(r.errors for r in results) or big["status"] != 200 or small["status"] != 200
    return not failed


def parse_args(argv: list[str] | None) -> Options:
    """Command-line options (all optional)."""
    parser = argparse.ArgumentParser(prog="python -m bench.province", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=Options.scale, help="fraction of the 10,000,000 items")
    parser.add_argument("--drop", action="store_true", help="drop the kept province database and build it again")
    parser.add_argument("--requests", type=int, default=Options.requests, help="measured requests per page")
    parser.add_argument("--warmup", type=int, default=Options.warmup, help="warm-up requests per page")
    parser.add_argument("--jobs", type=int, default=Options.jobs, help="processes generating the items")
    parser.add_argument("--submissions", type=int, default=Options.submissions, help="measured submissions per target")
    parser.add_argument("--build-only", action="store_true", help="build (or keep) the province and measure nothing")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale is a fraction: more than 0, at most 1")
    return Options(
        args.scale, args.drop, args.requests, args.warmup, args.submissions, jobs=args.jobs, build_only=args.build_only
    )


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the province bench when PostgreSQL answers; 0 when no request failed (a target missed is printed)."""
    if argv and argv[0] == "--export-child":
        export_child(*argv[1:4])
        return 0
    options = parse_args(argv)
    out(
        f"\n## province: {CITIES} cities, {COUNTIES} counties, {STATIONS:,} stations, {DEPUTIES:,} deputies, "
        f"{options.items:,} items (scale {options.scale}) (PostgreSQL)"
    )
    if not postgres_answers():
        out(f"skipped: nothing answers at {PG_ADMIN_URL} (set BENCH_PG_URL)")
        return 0
    return 0 if run(options, out) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
