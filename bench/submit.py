"""Item submission (``POST /api/v1/items``) against a bare one-row insert, on SQLite and on PostgreSQL.

Both run under gunicorn with the same settings on the same database; the client sends a fixed
number of requests from a thread pool and reports requests/s, p50/p99 latency, errors, and two
ratios against the bare insert measured in the same run (targets of issue 12, on each engine):
throughput ≥ 0.5× the bare insert's, and p99 latency ≤ 3× the bare insert's p99.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.common import PG_ADMIN_URL, add_counts, add_engines, arguments, engines_of, on_each_engine

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
GUNICORN_SETTINGS = ["--workers", "4", "--worker-class", "sync", "--log-level", "warning"]
TARGET_THROUGHPUT = 0.5  # submissions/s ÷ bare inserts/s, at least
TARGET_P99 = 3.0  # submission p99 ÷ bare insert p99, at most
HUGE = "1000000000"
# Common characters for message bodies: random texts of 40–120 of them are never near-duplicates.
BODY_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
    "行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其"
    "些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建"
    "月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接"
    "知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器"
    "压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议"
)


@dataclass
class Options:
    """How much load, and how long it may take."""

    requests: int = 2000
    warmup: int = 200
    threads: int = 16
    rounds: int = 4
    time_limit: float = 75.0
    engines: tuple[str, ...] = ("sqlite", "postgresql")


@dataclass
class Result:
    """What one target did under load."""

    name: str
    sent: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0  # the server's processes', over the measured requests (Linux; 0 elsewhere)

    def merge(self, other: Result) -> None:
        """Add another batch's requests, time and latencies to this one."""
        self.sent += other.sent
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.add_errors(other)

    def add_errors(self, other: Result) -> None:
        """Count another batch's errors (warm-up errors count too)."""
        self.errors += other.errors
        self.error_samples = (self.error_samples + other.error_samples)[:3]

    @property
    def per_second(self) -> float:
        """Successful measured requests per second of wall time."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """The server's CPU time per successful measured request, in milliseconds (nan where unknown)."""
        return self.cpu_seconds / len(self.latencies) * 1000 if self.cpu_seconds and self.latencies else float("nan")

    def percentile(self, p: float) -> float:
        """Latency percentile in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))
        return ordered[rank] * 1000


@dataclass(frozen=True)
class Request:
    """One prepared request: body and headers, built before the clock starts."""

    body: bytes
    headers: dict[str, str]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def random_body(rng: random.Random) -> str:
    """A different message every time, as long as a typical one (40–120 characters)."""
    return "".join(rng.choices(BODY_CHARS, k=rng.randint(40, 120)))


def fake_address(rng: random.Random) -> str:
    """A resident's address as a reverse proxy would forward it."""
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def submission_requests(count: int, codes: list[str], rng: random.Random) -> list[Request]:
    """JSON submissions: codes round-robin, fresh client_id, a different body, contact details on every other one."""
    prepared = []
    for i in range(count):
        payload = {
            "code": codes[i % len(codes)],
            "body": random_body(rng),
            "category": "other",
            "client_id": uuid.uuid4().hex,
        }
        if i % 2:
            payload |= {"name": "王桂芳", "phone": f"139{rng.randint(0, 99_999_999):08d}", "consent": True}
        headers = {"Content-Type": "application/json", "X-Forwarded-For": fake_address(rng)}
        prepared.append(Request(json.dumps(payload, ensure_ascii=False).encode(), headers))
    return prepared


def bare_requests(count: int, rng: random.Random) -> list[Request]:
    """The baseline's requests: the same kind of body, the same headers."""
    return [
        Request(
            json.dumps({"body": random_body(rng)}, ensure_ascii=False).encode(),
            {"Content-Type": "application/json", "X-Forwarded-For": fake_address(rng)},
        )
        for _ in range(count)
    ]


def readable(data: bytes) -> str:
    """An error answer as a person reads it: JSON with its Chinese unescaped, cut short."""
    answer = data.decode("utf-8", "replace")
    with suppress(ValueError):
        answer = json.dumps(json.loads(answer), ensure_ascii=False)
    return answer[:300]


def run_load(name: str, port: int, path: str, requests: list[Request], options: Options, deadline: float) -> Result:
    """Send every request from ``options.threads`` threads; those not sent by ``deadline`` count as errors."""
    result = Result(name)
    lock = threading.Lock()

    def send(request: Request) -> None:
        if time.monotonic() > deadline:
            outcome, elapsed = "not sent: time limit reached", None
        else:
            # gunicorn's sync workers close every connection, so each request opens its own.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            start = time.perf_counter()
            try:
                conn.request("POST", path, body=request.body, headers=request.headers)
                response = conn.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - start
                outcome = None if response.status == 201 else f"HTTP {response.status}: {readable(data)}"
            except (OSError, http.client.HTTPException) as exc:
                outcome, elapsed = f"{type(exc).__name__}: {exc}", None
            finally:
                conn.close()
        with lock:
            result.sent += 1
            if elapsed is not None and outcome is None:
                result.latencies.append(elapsed)
            if outcome is not None:
                result.errors += 1
                if len(result.error_samples) < 3:
                    result.error_samples.append(outcome)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=options.threads) as pool:
        list(pool.map(send, requests))
    result.seconds = time.perf_counter() - start
    return result


def server_cpu_seconds(pid_file: Path) -> float:
    """CPU time (user + system) used so far by a gunicorn master, read from its pid file, and its workers; 0 without
    /proc. What separates a request's own cost from its waiting: the client's CPU is not in it."""
    try:
        master = pid_file.read_text().strip()
        pids = [master, *Path(f"/proc/{master}/task/{master}/children").read_text().split()]
        ticks = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run the venv's ``flask`` CLI; raise with its output when it fails."""
    done = subprocess.run(
        [str(VENV_BIN / "flask"), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextmanager
def gunicorn(
    app_spec: str, env: dict[str, str], log_path: Path, settings: list[str] = GUNICORN_SETTINGS
) -> Iterator[int]:
    """Serve ``app_spec`` with the bench's gunicorn settings; yield the port once it answers."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), *settings, "--bind", f"127.0.0.1:{port}", app_spec],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120  # a loaded machine starts ten workers slowly
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn {app_spec} exited; see {log_path}:\n{log_path.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()  # any answer: a worker is up
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {app_spec} did not answer; see {log_path}") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def fresh_database(engine: str, workdir: Path) -> Iterator[str]:
    """A new empty database on ``engine``; its SQLAlchemy URL. A PostgreSQL one is dropped afterwards."""
    if engine == "sqlite":
        yield "sqlite:///" + str(workdir / "bench.sqlite3")
        return
    name = f"msl_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, sql: str) -> list[tuple]:
    """Rows of one read-only query (outside the servers, to pick codes and check what was stored)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def server_env(url: str, workdir: Path) -> dict[str, str]:
    """The environment the app's servers and CLI run in: the database ``url``, an instance folder in
    ``workdir``, and every counter in the database (no REDIS_URL)."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {
        "FLASK_APP": "backend",
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(workdir / "instance"),
        "PUBLIC_BASE_URL": "http://127.0.0.1",
    }
    return env


def demo_database(url: str, workdir: Path) -> tuple[dict[str, str], list[str]]:
    """Migrate ``url`` and load the demo county; the servers' environment and the slugs of the demo's current deputy
    and station codes (a topic's code asks a question of its own, which the bench's form does not answer).

    The environment (``server_env``) sets the throttle's limits out of reach and trusts one proxy
    hop, so that requests can come from many addresses."""
    env = server_env(url, workdir) | {
        "THROTTLE_PER_ADDRESS": HUGE,
        "THROTTLE_PER_CODE": HUGE,
        "TRUSTED_PROXY_HOPS": "1",
    }
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "load")
    return env, [
        row[0] for row in query(url, "SELECT slug FROM codes WHERE retired_at IS NULL AND topic_id IS NULL ORDER BY id")
    ]


@dataclass(frozen=True)
class Target:
    """One server under test and the requests prepared for it."""

    name: str
    app_spec: str
    path: str
    requests: list[Request]


def bench_engine(engine: str, options: Options, out: Callable[[str], None]) -> bool:
    """Benchmark both targets on one engine; print the table; True when no request failed."""
    label = {"sqlite": "SQLite (WAL, file in a temp dir)", "postgresql": f"PostgreSQL ({PG_ADMIN_URL})"}[engine]
    out(f"\n== {label}")
    rng = random.Random(20261121)
    with tempfile.TemporaryDirectory(prefix=f"msl-bench-{engine}-") as tmp, fresh_database(engine, Path(tmp)) as url:
        workdir = Path(tmp)
        env, codes = demo_database(url, workdir)

        total = options.warmup + options.requests
        targets = [
            Target("bare insert (bench_rows)", "bench.bare_app:create_app()", "/rows", bare_requests(total, rng)),
            Target(
                "POST /api/v1/items", "backend:create_app()", "/api/v1/items", submission_requests(total, codes, rng)
            ),
        ]
        results = [Result(t.name) for t in targets]
        log = workdir / "gunicorn.log"
        pid_files = [workdir / f"gunicorn-{i}.pid" for i in range(len(targets))]
        bare_settings, app_settings = ([*GUNICORN_SETTINGS, "--pid", str(pid_file)] for pid_file in pid_files)
        with (
            gunicorn(targets[0].app_spec, env, log, bare_settings) as bare_port,
            gunicorn(targets[1].app_spec, env, log, app_settings) as app_port,
        ):
            ports = [bare_port, app_port]
            deadline = time.monotonic() + options.time_limit
            for target, port, result in zip(targets, ports, results, strict=True):
                warm = run_load(target.name, port, target.path, target.requests[: options.warmup], options, deadline)
                result.add_errors(warm)
            # Interleaved rounds: a slower moment of a shared machine weighs on both targets alike.
            chunk = -(-options.requests // options.rounds)
            for start in range(options.warmup, total, chunk):
                for target, port, result, pid_file in zip(targets, ports, results, pid_files, strict=True):
                    batch = target.requests[start : start + chunk]
                    cpu = server_cpu_seconds(pid_file)
                    result.merge(run_load(target.name, port, target.path, batch, options, deadline))
                    result.cpu_seconds += server_cpu_seconds(pid_file) - cpu

        out(f"{'target':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'server CPU ms/req':>19}")
        for r in results:
            out(
                f"{r.name:<28}{r.per_second:>9.1f}{r.percentile(50):>9.1f}{r.percentile(99):>9.1f}{r.errors:>8}"
                f"{r.cpu_ms:>19.2f}"
            )
            for sample in r.error_samples:
                out(f"    error: {sample}")
        bare, submission = results
        throughput = submission.per_second / bare.per_second if bare.per_second else 0.0
        p99 = submission.percentile(99) / bare.percentile(99)
        met = {True: "met", False: "NOT MET"}
        out(
            f"throughput submission/bare: {throughput:.2f}  (target ≥ {TARGET_THROUGHPUT}: {met[throughput >= TARGET_THROUGHPUT]})"
        )
        out(f"p99 submission/bare: {p99:.2f}  (target ≤ {TARGET_P99}: {met[p99 <= TARGET_P99]})")

        stored, flagged = query(
            url, "SELECT COUNT(*), COALESCE(SUM(CASE WHEN needs_review THEN 1 ELSE 0 END), 0) FROM items"
        )[0]
        rows = query(url, "SELECT COUNT(*) FROM bench_rows")[0][0]
        expected_items = total - submission.errors
        out(
            f"stored: {stored} items for {expected_items} answers 201, {flagged} flagged as near-duplicate; {rows} bench rows"
        )
        if stored != expected_items:
            out("ERROR: the number of stored items differs from the number of 201 answers")
        if bare.errors or submission.errors:
            out(f"gunicorn's log ends with:\n{log.read_text(errors='replace')[-3000:]}")
        return bare.errors == 0 and submission.errors == 0 and stored == expected_items


def describe(options: Options) -> list[str]:
    """The run's settings, printed above the numbers."""
    return [
        f"gunicorn {' '.join(GUNICORN_SETTINGS)} for both targets; client: {options.threads} threads, "
        f"{options.requests} requests per target after {options.warmup} warm-up, in {options.rounds} alternating "
        "rounds, one connection per request",
        "submission: every current demo code round-robin, fresh client_id and a random 40–120-character body each, "
        "contact details on every other one, X-Forwarded-For varies (TRUSTED_PROXY_HOPS=1), "
        "throttle limits 10^9 with counters in the database (REDIS_URL unset)",
    ]


def parse_args(argv: list[str] | None) -> Options:
    """Command-line options (all optional)."""
    parser = arguments("bench", __doc__)
    add_counts(parser, Options.requests, Options.warmup)
    parser.add_argument("--threads", type=int, default=Options.threads, help="client threads")
    parser.add_argument("--rounds", type=int, default=Options.rounds, help="alternating rounds per target")
    parser.add_argument("--time-limit", type=float, default=Options.time_limit, help="seconds per engine, at most")
    add_engines(parser)
    args = parser.parse_args(argv)
    engines = engines_of(parser, args.engines)
    return Options(args.requests, args.warmup, args.threads, max(1, args.rounds), args.time_limit, engines)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the submission bench on every engine available; 0 when no request failed."""
    options = parse_args(argv)
    out("## submit: POST /api/v1/items vs a bare one-row insert")
    for line in describe(options):
        out(line)
    return on_each_engine(options.engines, lambda engine: bench_engine(engine, options, out), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
