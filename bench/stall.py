"""A resident's submission while staff work: its p99 with no other load, then under six concurrent logins
and one 5,000-row import dry run, on SQLite and on PostgreSQL (issue 10, finding 2: below 100 ms under load).

On SQLite one write transaction runs at a time: slow work inside one (a password hash, parsing a
workbook) would hold every submission. The app does that work outside any write transaction
(``backend.database``); this bench shows whether a submission still waits for it. The server is
gunicorn with a sync worker (a process) for every request in flight, so that what is measured is
the database: not a queue for a free worker, nor Python's lock shared by a parse and a submission
in one process's threads.
"""

from __future__ import annotations

import http.client
import io
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.common import PG_ADMIN_URL, add_engines, arguments, engines_of, on_each_engine
from bench.submit import (
    Result,
    demo_database,
    fake_address,
    fresh_database,
    gunicorn,
    readable,
    submission_requests,
)

GUNICORN_SETTINGS = ["--workers", "10", "--worker-class", "sync", "--log-level", "warning"]
TARGET_MS = 100.0
DEMO_PASSWORD = "demo-2026"  # noqa: S105 - the demo's published password (backend/demo.py)
ADMIN = "station_admin"  # the demo's administrator of its first station
ROSTER_STATION = "霞阳镇人大代表联络站"  # that station (backend/demo.py), where the roster's deputies go
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass
class Options:
    """How many submissions per phase, how much load, which engines."""

    submissions: int = 300
    warmup: int = 30
    logins: int = 6
    roster_rows: int = 5000
    engines: tuple[str, ...] = ("sqlite", "postgresql")


def roster_xlsx(rows: int) -> bytes:
    """A roster of ``rows`` new deputies at the demo's first station, as Excel writes a workbook (shared strings)."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["姓名", "代表层级", "选区", "联络站", "联系电话", "职业", "任期"])
    for i in range(rows):
        sheet.append(
            [
                f"测试代表{i}",
                "乡镇人大代表",
                f"霞阳镇第{i % 40}选区",
                ROSTER_STATION,
                f"139{i:08d}",
                "农民",
                "2021.12-2026.12",
            ]
        )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def submit_series(port: int, requests_: list, out_result: Result) -> None:
    """Send the submissions one after another (a resident at a time), recording each one's latency."""
    for request in requests_:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/items", body=request.body, headers=request.headers)
            response = conn.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - start
            if response.status == 201:
                out_result.latencies.append(elapsed)
            else:
                out_result.errors += 1
                if len(out_result.error_samples) < 3:
                    out_result.error_samples.append(f"HTTP {response.status}: {readable(data)}")
        except (OSError, http.client.HTTPException) as exc:
            out_result.errors += 1
            if len(out_result.error_samples) < 3:
                out_result.error_samples.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
        out_result.sent += 1


class StaffLoad:
    """Six staff logging in again and again, and an administrator running a roster's dry run again and again."""

    def __init__(self, base: str, options: Options, rng: random.Random) -> None:
        self.base = base
        self.options = options
        self.roster = roster_xlsx(options.roster_rows)
        self.addresses = [fake_address(rng) for _ in range(options.logins + 1)]
        self.stop = threading.Event()
        self.started = threading.Barrier(options.logins + 2)  # every loop did one round, and the bench
        self.logins = 0
        self.dry_runs = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def _fail(self, what: str) -> None:
        with self.lock:
            if len(self.failures) < 3:
                self.failures.append(what)

    def _login_loop(self, address: str) -> None:
        http_ = requests.Session()
        first = True
        while first or not self.stop.is_set():
            answer = http_.post(
                self.base + "/api/v1/auth/token",
                json={"username": ADMIN, "password": DEMO_PASSWORD},
                headers={"X-Forwarded-For": address},
                timeout=60,
            )
            with self.lock:
                self.logins += answer.status_code == 201
            if answer.status_code != 201:
                self._fail(f"login HTTP {answer.status_code}: {answer.text[:200]}")
            if first:
                first = False
                self.started.wait(timeout=300)

    def _import_loop(self, address: str) -> None:
        http_ = requests.Session()
        http_.headers["X-Forwarded-For"] = address
        page = http_.get(self.base + "/staff/login", timeout=60).text
        http_.post(
            self.base + "/staff/login",
            data={"username": ADMIN, "password": DEMO_PASSWORD, "csrf_token": CSRF_RE.search(page)[1]},
            timeout=60,
        )
        first = True
        while first or not self.stop.is_set():
            token = CSRF_RE.search(http_.get(self.base + "/admin/import", timeout=60).text)[1]
            answer = http_.post(
                self.base + "/admin/import",
                data={"csrf_token": token},
                files={"file": ("代表名册.xlsx", self.roster)},
                timeout=120,
            )
            checked = f"共{self.options.roster_rows}位代表" in answer.text
            with self.lock:
                self.dry_runs += answer.status_code == 200 and checked
            if answer.status_code != 200 or not checked:
                self._fail(f"dry run HTTP {answer.status_code}: {answer.text[:200]}")
            if first:
                first = False
                self.started.wait(timeout=300)

    @contextmanager
    def running(self) -> Iterator[None]:
        """The load runs inside the block, every loop past its first round (warm) when it begins."""
        threads = [threading.Thread(target=self._login_loop, args=(a,)) for a in self.addresses[:-1]]
        threads.append(threading.Thread(target=self._import_loop, args=(self.addresses[-1],)))
        for thread in threads:
            thread.start()
        try:
            self.started.wait(timeout=300)
            yield
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=180)


def bench_engine(engine: str, options: Options, out: Callable[[str], None]) -> bool:
    """Both phases on one engine; print them; True when nothing failed and the target is met."""
    label = {"sqlite": "SQLite (WAL, file in a temp dir)", "postgresql": f"PostgreSQL ({PG_ADMIN_URL})"}[engine]
    out(f"\n== {label}")
    rng = random.Random(20261202)
    with tempfile.TemporaryDirectory(prefix=f"msl-stall-{engine}-") as tmp, fresh_database(engine, Path(tmp)) as url:
        workdir = Path(tmp)
        env, codes = demo_database(url, workdir)
        count = options.warmup + 2 * options.submissions
        prepared = submission_requests(count, codes, rng)
        warm, quiet_requests, loaded_requests = (
            prepared[: options.warmup],
            prepared[options.warmup : options.warmup + options.submissions],
            prepared[options.warmup + options.submissions :],
        )
        quiet, loaded = Result("no other load"), Result(f"{options.logins} logins + a dry run")
        load = StaffLoad("", options, rng)
        log = workdir / "gunicorn.log"
        with gunicorn("backend:create_app()", env, log, GUNICORN_SETTINGS) as port:
            load.base = f"http://127.0.0.1:{port}"
            submit_series(port, warm, Result("warm-up"))
            started = time.perf_counter()
            submit_series(port, quiet_requests, quiet)
            quiet.seconds = time.perf_counter() - started
            with load.running():
                logins, dry_runs = load.logins, load.dry_runs
                started = time.perf_counter()
                submit_series(port, loaded_requests, loaded)
                loaded.seconds = time.perf_counter() - started
                logins, dry_runs = load.logins - logins, load.dry_runs - dry_runs

        out(f"{'submissions':<30}{'count':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}")
        for r in (quiet, loaded):
            slowest = max(r.latencies) * 1000 if r.latencies else float("nan")
            out(
                f"{r.name:<30}{len(r.latencies):>7}{r.percentile(50):>9.1f}{r.percentile(99):>9.1f}{slowest:>9.1f}{r.errors:>8}"
            )
            for sample in r.error_samples:
                out(f"    error: {sample}")
        out(
            f"during the loaded phase ({loaded.seconds:.1f} s): {logins} logins, {dry_runs} dry runs of "
            f"{options.roster_rows} rows (an .xlsx of {len(load.roster) // 1024} KB)"
        )
        for failure in load.failures:
            out(f"    load error: {failure}")
        met = loaded.percentile(99) < TARGET_MS
        out(
            f"p99 under load: {loaded.percentile(99):.1f} ms  (target < {TARGET_MS:.0f} ms: {'met' if met else 'NOT MET'})"
        )
        if quiet.errors or loaded.errors or load.failures:
            out(f"gunicorn's log ends with:\n{log.read_text(errors='replace')[-3000:]}")
        return not (quiet.errors or loaded.errors or load.failures) and dry_runs > 0


def parse_args(argv: list[str] | None) -> Options:
    """Command-line options (all optional)."""
    parser = arguments("bench.stall", __doc__)
    parser.add_argument("--submissions", type=int, default=Options.submissions, help="measured submissions per phase")
    parser.add_argument("--logins", type=int, default=Options.logins, help="staff logging in at once")
    parser.add_argument("--roster-rows", type=int, default=Options.roster_rows, help="rows of the dry run's roster")
    add_engines(parser)
    args, _others = parser.parse_known_args(argv)  # `python -m bench` hands every bench the same arguments
    engines = engines_of(parser, args.engines)
    return Options(args.submissions, Options.warmup, args.logins, args.roster_rows, engines)


def describe(options: Options) -> list[str]:
    """The run's settings, printed above the numbers."""
    return [
        f"gunicorn {' '.join(GUNICORN_SETTINGS)}; submissions one at a time, {options.submissions} per phase after "
        f"{options.warmup} warm-up, as in bench.submit (random body, fresh client_id, contact details on every other one)",
        f"load: {options.logins} clients logging in through POST /api/v1/auth/token (right password) and one "
        f"administrator posting a {options.roster_rows}-row .xlsx to the dry run (POST /admin/import), each in a loop",
    ]


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the stall bench on every engine available; 0 when nothing failed."""
    options = parse_args(argv)
    out("## stall: a submission's p99 alone and under staff load")
    for line in describe(options):
        out(line)
    return on_each_engine(options.engines, lambda engine: bench_engine(engine, options, out), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
