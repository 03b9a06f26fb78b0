"""The deputy's inbox page (``GET /staff/inbox``) on PostgreSQL: a deputy with 10,000 items in a county of 1,000,000.

The data is generated in a fresh database with set-based ``INSERT … SELECT generate_series``
(the ORM would take an hour): the demo county, then 20 more townships, 100 stations and
1,500 deputies, then the items — 10,000 of the demo ``deputy`` and 990,000 spread over the
others — with the mix of states a county has after three years (about 10 % open, a third
of those overdue; most resolved). The items table's secondary indexes are dropped during
the load and rebuilt from their own definitions afterwards, then ``VACUUM ANALYZE``.

The app runs under gunicorn as in production, with one extra route for the baseline:
``/bench/select1`` does ``SELECT 1`` behind the same ``login_required`` (the same session
lookup, cookie, headers and error handling), so the difference is the inbox's own work.
One client sends the requests one after the other (latency, not throughput), targets
interleaved in rounds. Target from the issue: the deputy's inbox p95 under 100 ms.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg

from backend.items.refs import REF_ALPHABET
from bench.common import add_counts, arguments, on_postgres
from bench.submit import Result, fresh_database, gunicorn, run_cli

TARGET_P95_MS = 100.0
DEPUTY_ITEMS = 10_000
COUNTY_ITEMS = 1_000_000
OTHER_DEPUTIES = 1_500
STATIONS = 100
TOWNSHIPS = 20
DEMO_PASSWORD = "demo-2026"  # noqa: S105 - the demo's published password (backend/demo.py)
PHRASES = [
    "村口路灯坏了三个月，晚上出行很不方便，老人孩子容易摔倒，希望尽快修复。",
    "小区门口的垃圾站每天傍晚才清运，夏天气味很大，建议改为上午清运。",
    "学校门口上下学时段车辆乱停，孩子过马路很危险，建议增设护学岗。",
    "镇卫生院周末没有儿科医生，孩子发烧只能跑到县城，希望周末安排值班。",
    "十都村到镇上的班车下午四点以后就没有了，学生放学回家不方便。",
    "农田灌溉渠多处破损漏水，春耕前需要修补，请协调水利部门。",
    "菜市场周边占道经营严重，早上通行困难，建议规范摊位。",
    "养老金认证手续复杂，老人不会用手机，希望社区上门帮助办理。",
]


def bench_app():
    """The real app plus the baseline route (``gunicorn 'bench.inbox:bench_app()'``)."""
    from sqlalchemy import text

    from backend import create_app
    from backend.auth.sessions import login_required
    from backend.extensions import db

    app = create_app()

    @app.get("/bench/select1")
    @login_required
    def select1():
        """The baseline: the same stack and session check, and one ``SELECT 1``."""
        return str(db.session.execute(text("SELECT 1")).scalar())

    return app


@dataclass
class Options:
    """How many requests, and how much data."""

    requests: int = 300
    warmup: int = 30
    rounds: int = 5
    deputy_items: int = DEPUTY_ITEMS
    county_items: int = COUNTY_ITEMS


# --- data ------------------------------------------------------------------------------------


def _ref_sql(number: str) -> str:
    """SQL for an 8-character reference number that encodes ``number`` in base 30 (unique per number)."""
    digits = [f"substr('{REF_ALPHABET}', (({number}) / {30**k} % 30)::int + 1, 1)" for k in reversed(range(8))]
    return " || ".join(digits)


def _filler_columns(conn: psycopg.Connection, table: str, given: set[str]) -> dict[str, str]:
    """NOT NULL columns without a server default that the INSERT does not name: a neutral value for each.

    Other work adds columns to these tables; the bench keeps up without being edited.
    """
    rows = conn.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL""",
        (table,),
    ).fetchall()
    neutral = {"boolean": "false", "integer": "0", "bigint": "0", "json": "'{}'", "jsonb": "'{}'"}
    fillers = {}
    for name, data_type in rows:
        if name in given:
            continue
        if data_type.startswith("timestamp"):
            fillers[name] = "now()"
        else:
            fillers[name] = neutral.get(data_type, "''")
    return fillers


def _insert(conn: psycopg.Connection, table: str, columns: dict[str, str], source: str) -> int:
    """``INSERT INTO table (…) SELECT … FROM source``, neutral values for the columns not given; rows inserted.

    The SQL is built from this module's constants and integers read from the database only.
    """
    columns = {**_filler_columns(conn, table, set(columns)), **columns}
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM {source}"
    return conn.execute(sql.encode()).rowcount


def generate(url: str, options: Options, out: Callable[[str], None]) -> int:
    """Fill the county; return the bench deputy's id."""
    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=False) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        county_id, deputy_id, deputy_station = conn.execute(
            """SELECT r.id, d.id, d.station_id FROM regions r, staff_users u JOIN deputies d ON d.id = u.deputy_id
               WHERE r.code = '430225' AND u.username = 'deputy'"""
        ).fetchone()
        _insert(
            conn,
            "regions",
            {
                "code": "'430225' || (200 + g)",
                "name": "'第' || g || '镇'",
                "level": "'township'",
                "parent_id": str(county_id),
            },
            f"generate_series(1, {TOWNSHIPS}) g",
        )
        _insert(
            conn,
            "stations",
            {
                "name": "'第' || g || '人大代表联络站'",
                "region_id": f"(SELECT id FROM regions WHERE code = '430225' || (200 + 1 + g % {TOWNSHIPS}))",
                "address": "'某镇某路' || g || '号'",
                "is_active": "true",
                "created_at": "now()",
            },
            f"generate_series(1, {STATIONS}) g",
        )
        _insert(
            conn,
            "deputies",
            {
                "name": "'代表' || g",
                "station_id": "s.id",
                "status": "'serving'",
                "constituency": "'第' || g || '选区'",
                "photo_version": "0",
                "created_at": "now()",
            },
            f"""generate_series(1, {OTHER_DEPUTIES}) g
                JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM stations) s
                  ON s.k = g % (SELECT count(*) FROM stations)""",
        )

        # Drop the secondary indexes of items for the load; rebuild them from their own definitions.
        indexes = conn.execute(
            """SELECT indexname, indexdef FROM pg_indexes i WHERE tablename = 'items'
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"""
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')

        phrases = "ARRAY[" + ", ".join(f"'{p}'" for p in PHRASES) + "]"
        categories = "ARRAY['urban','transport','education','health','social_security','environment','rural','public_safety','other']"
        # g % 100: 0–1 submitted, 2–4 accepted, 5–7 forwarded, 8–9 answered, 10–11 declined, 12 duplicate, rest resolved.
        status = """CASE WHEN g % 100 < 2 THEN 'submitted' WHEN g % 100 < 5 THEN 'accepted'
                         WHEN g % 100 < 8 THEN 'forwarded' WHEN g % 100 < 10 THEN 'answered'
                         WHEN g % 100 < 12 THEN 'declined' WHEN g % 100 < 13 THEN 'duplicate' ELSE 'resolved' END"""
        is_open = "g % 100 < 10"
        # Open items are recent (≤ 30 days); closed ones spread over three years.
        created = f"""now() - CASE WHEN {is_open} THEN ((g * 7919) % 720) * interval '1 hour'
                                   ELSE ((g * 7919) % 26280) * interval '1 hour' + interval '30 days' END"""
        # A third of the open items are overdue (due 1–3 days ago), the rest due within 1–7 days.
        due = f"""CASE WHEN {is_open} THEN now() + ((g / 100) % 10 - 3) * interval '1 day' + interval '1 hour'
                       ELSE now() - ((g * 7919) % 26280) * interval '1 hour' END"""
        item_columns = {
            "ref": _ref_sql("g"),
            "access_key": "'K' || lpad(g::text, 16, '0')",
            "station_id": "station",
            "deputy_id": "deputy",
            "channel": "'qr_h5'",
            "category": f"({categories})[g % 9 + 1]",
            "body": f"'第' || g || '件：' || ({phrases})[g % {len(PHRASES)} + 1]",
            "contact_name": "CASE WHEN g % 2 = 0 THEN '王桂芳' ELSE '' END",
            "contact_phone": "CASE WHEN g % 2 = 0 THEN '139' || lpad((g % 100000000)::text, 8, '0') ELSE '' END",
            "status": status,
            "due_at": due,
            "reopen_count": "CASE WHEN g % 100 BETWEEN 2 AND 4 AND g % 7 = 0 THEN 1 ELSE 0 END",
            "created_at": created,
            "updated_at": created,
        }
        deputy_rows = _insert(
            conn,
            "items",
            item_columns,
            f"(SELECT g::bigint AS g, {deputy_id} AS deputy, {deputy_station} AS station "
            f"FROM generate_series(1, {options.deputy_items}) g) AS src",
        )
        county_rows = _insert(
            conn,
            "items",
            item_columns,
            f"""(SELECT g::bigint AS g, d.id AS deputy, d.station_id AS station
                 FROM generate_series({options.deputy_items + 1}, {options.county_items}) g
                 JOIN (SELECT id, station_id, row_number() OVER (ORDER BY id) - 1 AS k FROM deputies
                       WHERE id <> {deputy_id} AND status = 'serving') d
                   ON d.k = g % (SELECT count(*) FROM deputies WHERE id <> {deputy_id} AND status = 'serving')) AS src""",
        )
        for _, definition in indexes:
            conn.execute(definition)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        open_rows, overdue_rows = conn.execute(
            """SELECT count(*) FILTER (WHERE status IN ('submitted','accepted','forwarded','answered')),
                      count(*) FILTER (WHERE status IN ('submitted','accepted','forwarded','answered') AND due_at < now())
               FROM items WHERE deputy_id = %s""",
            (deputy_id,),
        ).fetchone()
    out(
        f"generated {deputy_rows + county_rows:,} items ({deputy_rows:,} of the deputy: {open_rows:,} open, "
        f"{overdue_rows:,} overdue), {STATIONS + 3} stations, {OTHER_DEPUTIES + 12} deputies "
        f"in {time.perf_counter() - started:.1f} s; {len(indexes)} item indexes rebuilt"
    )
    return deputy_id


# --- the client ------------------------------------------------------------------------------


def _request(port: int, method: str, path: str, headers: dict | None = None, body: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def _cookie(headers) -> str:
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith("session="):
            return value.split(";", 1)[0]
    return ""


def web_login(port: int, username: str) -> str:
    """Log in through the login form as a phone does; the session cookie to send."""
    status, headers, page = _request(port, "GET", "/staff/login")
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    form = urlencode({"csrf_token": token, "username": username, "password": DEMO_PASSWORD})
    status, headers, _ = _request(
        port,
        "POST",
        "/staff/login",
        {"Cookie": _cookie(headers), "Content-Type": "application/x-www-form-urlencoded"},
        form,
    )
    if status != 303:
        raise RuntimeError(f"login as {username} answered {status}")
    return _cookie(headers)


def api_token(port: int, username: str) -> str:
    """A bearer token for the JSON API."""
    body = f'{{"username": "{username}", "password": "{DEMO_PASSWORD}"}}'
    status, _, data = _request(port, "POST", "/api/v1/auth/token", {"Content-Type": "application/json"}, body)
    if status != 201:
        raise RuntimeError(f"token for {username} answered {status}")
    return re.search(rb'"token":\s*"([^"]+)"', data).group(1).decode()


@dataclass(frozen=True)
class Target:
    """One page under test: its label, path and headers."""

    name: str
    path: str
    headers: dict


def measure(port: int, target: Target, count: int, result: Result, expect: bytes) -> None:
    """Send ``count`` requests one after the other; record latencies of correct answers, errors otherwise."""
    for _ in range(count):
        start = time.perf_counter()
        try:
            status, _, data = _request(port, "GET", target.path, target.headers)
        except (OSError, http.client.HTTPException) as exc:
            result.sent += 1
            result.errors += 1
            result.error_samples = [*result.error_samples, repr(exc)][:3]
            continue
        elapsed = time.perf_counter() - start
        result.sent += 1
        if status == 200 and expect in data:
            result.latencies.append(elapsed)
        else:
            result.errors += 1
            result.error_samples = [*result.error_samples, f"HTTP {status}: {data[:200]!r}"][:3]


def measure_interleaved(
    port: int, targets: list[tuple[Target, bytes]], warmup: int, requests: int, rounds: int
) -> list[Result]:
    """Warm each target up, then ``requests`` per target in ``rounds`` rounds that take the targets in turn.

    Taking them in turn spreads any slow moment of the machine over every target alike.
    """
    results = [Result(t.name) for t, _ in targets]
    for target, expect in targets:
        measure(port, target, warmup, Result("warm-up"), expect)
    chunk = -(-requests // rounds)
    for _ in range(rounds):
        for (target, expect), result in zip(targets, results, strict=True):
            measure(port, target, chunk, result, expect)
    return results


def run(options: Options, out: Callable[[str], None]) -> bool:
    """Generate, serve, measure, print; True when the target is met and nothing failed."""
    with (
        tempfile.TemporaryDirectory(prefix="msl-bench-inbox-") as tmp,
        fresh_database("postgresql", Path(tmp)) as url,
    ):
        workdir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # throttle counters in the database
        env |= {
            "FLASK_APP": "backend",
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(workdir / "instance"),
            "PUBLIC_BASE_URL": "http://127.0.0.1",
        }
        run_cli(env, "db", "upgrade")
        run_cli(env, "demo", "load")
        generate(url, options, out)

        with gunicorn("bench.inbox:bench_app()", env, workdir / "gunicorn.log") as port:
            deputy = {"Cookie": web_login(port, "deputy")}
            admin = {"Cookie": web_login(port, "station_admin")}
            supervisor = {"Cookie": web_login(port, "supervisor")}
            bearer = {"Authorization": f"Bearer {api_token(port, 'deputy')}"}
            targets = [
                (Target("baseline: SELECT 1 behind login", "/bench/select1", deputy), b"1"),
                (Target("GET /staff/inbox (deputy)", "/staff/inbox", deputy), b"inbox-list"),
                (Target("  … ?state=resolved&page=200", "/staff/inbox?state=resolved&page=200", deputy), b"inbox-list"),
                (Target("  … ?q=路灯 (text search)", "/staff/inbox?q=%E8%B7%AF%E7%81%AF", deputy), b"inbox-list"),
                (Target("GET /api/v1/inbox (deputy)", "/api/v1/inbox", bearer), b'"items"'),
                (Target("GET /staff/inbox (station admin)", "/staff/inbox", admin), b"inbox-list"),
            ]
            supervisor_target = (Target("GET /staff/inbox (supervisor, 1M)", "/staff/inbox", supervisor), b"inbox-list")
            results = measure_interleaved(port, targets, options.warmup, options.requests, options.rounds)
            # The county-wide view is measured apart, with fewer requests: it is not the deputy's page.
            supervisor_result = Result(supervisor_target[0].name)
            measure(port, supervisor_target[0], 3, Result("warm-up"), supervisor_target[1])
            measure(
                port, supervisor_target[0], max(10, options.requests // 10), supervisor_result, supervisor_target[1]
            )

        out(f"{'target':<38}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for r in [*results, supervisor_result]:
            n = len(r.latencies)
            out(
                f"{r.name:<38}{n:>6}{r.percentile(50):>9.1f}{r.percentile(95):>9.1f}{r.percentile(99):>9.1f}{r.errors:>8}"
            )
            for sample in r.error_samples:
                out(f"    error: {sample}")
        baseline, inbox = results[0], results[1]
        p95 = inbox.percentile(95)
        verdict = "met" if p95 < TARGET_P95_MS else "NOT MET"
        out(
            f"deputy inbox p95 {p95:.1f} ms (baseline {baseline.percentile(95):.1f} ms; the inbox's own work "
            f"≈ {inbox.percentile(50) - baseline.percentile(50):.1f} ms at p50) — target p95 < {TARGET_P95_MS:.0f} ms: {verdict}"
        )
        failed = any(r.errors for r in [*results, supervisor_result])
        return not failed and p95 < TARGET_P95_MS


def parse_args(argv: list[str] | None) -> Options:
    """Command-line options (all optional)."""
    parser = arguments("bench.inbox", __doc__)
    add_counts(parser, Options.requests, Options.warmup)
    parser.add_argument("--rounds", type=int, default=Options.rounds, help="interleaved rounds")
    parser.add_argument("--deputy-items", type=int, default=Options.deputy_items)
    parser.add_argument("--county-items", type=int, default=Options.county_items)
    args = parser.parse_args(argv)
    return Options(args.requests, args.warmup, max(1, args.rounds), args.deputy_items, args.county_items)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the inbox bench when PostgreSQL answers; 0 when the target is met and no request failed."""
    options = parse_args(argv)
    out(
        f"\n## inbox: GET /staff/inbox for a deputy with {options.deputy_items:,} items in a county of "
        f"{options.county_items:,} (PostgreSQL)"
    )
    out(
        "gunicorn --workers 4 (sync); one client, requests one after the other, one connection each, "
        f"{options.requests} per target after {options.warmup} warm-up, in {options.rounds} interleaved rounds"
    )
    return on_postgres(lambda: run(options, out), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
