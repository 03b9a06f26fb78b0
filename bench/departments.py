"""The departments' league table and a station's 公示 on PostgreSQL over the dashboard bench's 1,000,000 items.

The county is the dashboard bench's (``bench/inbox.py``'s generator, then ``bench/dashboard.py``'s
lifecycle columns), with 20 more county departments and 5 units of them, and the forwards a county
of that size would have: every item in 已交办 and three in ten of those answered or resolved, each
forwarded a little after acceptance, due in 15 days, answered within 0–500 hours (some late), one in
fifty returned instead, the resident's verdict recorded on the forward answered (``ItemForward.verdict``)
where the item was rated; and one resident in five agreed to publish (``publish_consented_at``).
``VACUUM ANALYZE`` follows.

Measured, one request or call after the other (latency, not throughput):

- ``departments.league`` in-process for the county over the default range (the last twelve months),
  against ``SELECT count(*)`` of the same forwards; ``disclosure.station_disclosure`` for the demo
  deputy's station against ``count(*)`` of that station's items over the same range;
- ``GET /supervision/departments`` under gunicorn against ``/bench/count`` (the dashboard bench's
  baseline: the same login and session around a ``count(*)``), and ``GET /gongshi/stations/<id>`` and
  ``GET /api/v1/public/stations/<id>`` (no login) against ``/bench/public-count`` (the same ``count(*)``
  of the station's items, no login).

Target from the issue: the league table and the station 公示 page under 300 ms (p95), printed met / MISSED.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import dashboard, inbox
from bench.common import add_counts, arguments, on_postgres, timed
from bench.submit import Result, gunicorn, server_env

TARGET_MS = 300.0
MORE_DEPARTMENTS = 20
UNITS = 5

FORWARDS = """
INSERT INTO item_forwards (item_id, department_id, link_version, instructions, due_at, share_contact, created_at,
                           answer, return_reason, extension_reason, answered_at, returned_at, promised_by,
                           verdict, verdict_at)
SELECT i.id, d.ids[1 + (i.id * 13) % d.n], 1, '', f.at + interval '15 days', false, f.at,
       CASE WHEN f.returned THEN '' WHEN f.answered IS NOT NULL THEN '已派人现场处理。' ELSE '' END,
       CASE WHEN f.returned THEN '非本单位职责。' ELSE '' END, '',
       CASE WHEN f.returned THEN NULL ELSE f.answered END,
       CASE WHEN f.returned THEN f.answered END,
       CASE WHEN NOT f.returned AND f.answered IS NOT NULL AND i.id % 7 = 0 THEN (f.at + interval '60 days')::date END,
       CASE WHEN NOT f.returned AND f.answered IS NOT NULL THEN i.satisfaction END,
       CASE WHEN NOT f.returned AND f.answered IS NOT NULL AND i.satisfaction IS NOT NULL THEN i.rated_at END
FROM items i
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids, count(*)::int AS n FROM departments) d
CROSS JOIN LATERAL (
    SELECT COALESCE(i.accepted_at, i.created_at) + interval '2 hours' AS at,
           CASE WHEN i.status IN ('answered', 'resolved')
                THEN LEAST(now(), COALESCE(i.accepted_at, i.created_at) + ((i.id * 7) % 500 + 3) * interval '1 hour')
           END AS answered,
           i.id % 50 = 1 AS returned
) f
WHERE i.status = 'forwarded' OR (i.status IN ('answered', 'resolved') AND i.id % 10 < 3)
"""
PUBLISH = "UPDATE items SET publish_consented_at = created_at WHERE id % 5 = 0"


def bench_app():
    """The dashboard bench's app (``/bench/count`` behind the login) and ``/bench/public-count`` without one."""
    from flask import request
    from sqlalchemy import func, select

    from backend.extensions import db
    from backend.models import Item, Station
    from backend.supervision import stats

    app = dashboard.bench_app()

    @app.get("/bench/public-count")
    def public_count():
        """The baseline of the public pages: the station looked up, ``count(*)`` of its items over the range."""
        station = db.session.get(Station, int(request.args["station"]))
        where = stats.in_range(stats.Scope("station", station=station), stats.default_range())
        return str(db.session.scalar(select(func.count()).select_from(Item).where(*where)))

    return app


@dataclass
class Options(dashboard.Options):
    """The dashboard bench's measurements, and how many items (the issue's figure is 1,000,000)."""

    county_items: int = inbox.COUNTY_ITEMS


def fill_departments(url: str, out: Callable[[str], None]) -> None:
    """More departments and units, the forwards, the consents to publish; then VACUUM ANALYZE."""
    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        county = conn.execute("SELECT id FROM regions WHERE code = %s", (dashboard.COUNTY_CODE,)).fetchone()[0]
        inbox._insert(
            conn,
            "departments",
            {"name": "'县第' || g || '局'", "region_id": str(county), "is_active": "true"},
            f"generate_series(1, {MORE_DEPARTMENTS}) g",
        )
        inbox._insert(
            conn,
            "departments",
            {
                "name": "'县第' || g || '局某镇所'",
                "region_id": str(county),
                "is_active": "true",
                "parent_id": "(SELECT id FROM departments WHERE name = '县第' || g || '局')",
            },
            f"generate_series(1, {UNITS}) g",
        )
        forwards = conn.execute(FORWARDS).rowcount
        published = conn.execute(PUBLISH).rowcount
        conn.execute("VACUUM ANALYZE item_forwards")
        conn.execute("VACUUM ANALYZE items")
    out(
        f"{forwards:,} forwards to {MORE_DEPARTMENTS + UNITS + 5} departments, {published:,} items agreed to publish, "
        f"in {time.perf_counter() - started:.1f} s"
    )


def measure_in_process(url: str, workdir: Path, options: Options, out: Callable[[str], None]) -> tuple[list, int]:
    """``departments.league`` and ``disclosure.station_disclosure`` against ``count(*)`` of what each reads."""
    os.environ["INSTANCE_PATH"] = str(workdir / "instance")
    from sqlalchemy import func, select

    from backend import create_app
    from backend.extensions import db
    from backend.models import Item, ItemForward, Region, StaffUser
    from backend.supervision import departments, disclosure, stats

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        county = db.session.scalar(select(Region).where(Region.code == dashboard.COUNTY_CODE))
        deputy = stats.home_scope(db.session.scalar(select(StaffUser).where(StaffUser.username == "deputy")))
        station = deputy.station
        rng = stats.default_range()
        table = departments.league(county.id, rng)
        page = disclosure.station_disclosure(station)
        out(
            f"league of {county.name}, last 12 months: {len(table.ranked)} ranked, {len(table.under_sample)} under "
            f"the sample, {sum(r.received for r in table.ranked + table.under_sample):,} forwards; "
            f"{station.name}: {page.figures.counts.received:,} items, {len(page.published)} published shown"
        )
        db.session.rollback()

        def run(call):
            def timed():
                call()
                db.session.rollback()

            return timed

        def count_forwards():
            return db.session.scalar(
                select(func.count()).select_from(ItemForward).where(*departments.forwards_in_range(rng))
            )

        def count_station():
            scope = stats.Scope("station", station=station)
            return db.session.scalar(select(func.count()).select_from(Item).where(*stats.in_range(scope, rng)))

        targets = [
            ("baseline: count(*) forwards, 12 months", run(count_forwards)),
            ("departments.league county, 12 months", run(lambda: departments.league(county.id, rng))),
            ("baseline: count(*) station, 12 months", run(count_station)),
            ("disclosure.station_disclosure", run(lambda: disclosure.station_disclosure(station))),
        ]
        results = []
        for name, call in targets:
            timed(Result("warm-up"), call, options.warmup)
            result = Result(name)
            timed(result, call, options.requests)
            results.append(result)
        return results, station.id


def measure_pages(url: str, workdir: Path, options: Options, station_id: int) -> list[Result]:
    """The league page and the station's 公示 (page and JSON) under gunicorn, against their baselines."""
    env = server_env(url, workdir)
    with gunicorn("bench.departments:bench_app()", env, workdir / "gunicorn.log") as port:
        cookie = {"Cookie": inbox.web_login(port, "supervisor")}
        targets = [
            (inbox.Target("baseline: count(*) behind login", "/bench/count", cookie), b""),
            (inbox.Target("GET /supervision/departments", "/supervision/departments", cookie), b'id="league"'),
            (inbox.Target("baseline: public count(*)", f"/bench/public-count?station={station_id}", {}), b""),
            (
                inbox.Target(f"GET /gongshi/stations/{station_id}", f"/gongshi/stations/{station_id}", {}),
                b'id="disclosure"',
            ),
            (
                inbox.Target("GET /api/v1/public/stations/<id>", f"/api/v1/public/stations/{station_id}", {}),
                b'"published"',
            ),
        ]
        return inbox.measure_interleaved(port, targets, options.warmup, options.requests, rounds=4)


def run(options: Options, out: Callable[[str], None]) -> bool:
    """Generate, measure, print; True when both targets are met and nothing failed."""
    items = inbox.Options(county_items=options.county_items)
    with dashboard.generated_county("departments", items, out) as (url, workdir):
        fill_departments(url, out)
        functions, station_id = measure_in_process(url, workdir, options, out)
        pages = measure_pages(url, workdir, options, station_id)
    dashboard.report(functions + pages, out)
    verdicts = []
    for label, function, page in (
        ("league table", functions[1], pages[1]),
        ("station 公示", functions[3], pages[3]),
    ):
        met = function.percentile(95) < TARGET_MS and page.percentile(95) < TARGET_MS
        verdicts.append(met)
        out(
            f"{label}: in-process p50 {function.percentile(50):.0f} ms / p95 {function.percentile(95):.0f} ms, "
            f"page p50 {page.percentile(50):.0f} ms / p95 {page.percentile(95):.0f} ms — target < {TARGET_MS:.0f} ms: "
            f"{'met' if met else 'MISSED'}"
        )
    return not any(r.errors for r in functions + pages) and all(verdicts)


def parse_args(argv: list[str] | None) -> Options:
    """Command-line options (all optional)."""
    parser = arguments("bench.departments", __doc__)
    add_counts(parser, Options.requests, Options.warmup, "calls")
    parser.add_argument("--items", type=int, default=Options.county_items, help="items in the county (1,000,000)")
    args = parser.parse_args(argv)
    return Options(args.requests, args.warmup, args.items)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the bench when PostgreSQL answers; 0 when both targets are met and nothing failed."""
    options = parse_args(argv)
    out("\n## departments and 公示: the league table and a station's public page over 1,000,000 items (PostgreSQL)")
    return on_postgres(lambda: run(options, out), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
