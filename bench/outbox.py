"""Outbox delivery: two ``flask outbox run`` workers drain 10,000 rows through the local WeChat sandbox,
against the raw rate of the same wechatpy call (``send_subscribe_message``) in a loop, in one run.

The sandbox is served by gunicorn (its own app, ``wechat_sandbox:create_app()``, 4 sync workers), its
state in its own SQLite file. The baseline is one loop in this process calling
``backend.wechat.api.send_subscribe_message`` — the call the workers make, with the same client, token
store and database — half of it before the workers run and half after. The workers' rate counts
from their start to the moment no row is left unfinished (process start-up included); the ratio
is workers/raw (target ≥ 0.5). Duplicates are read from the sandbox's own record of what it
received: any (openid, template, page, data) received more than once.

Since the deputies' notices are coalesced (``NOTICE_COALESCE_SECONDS``, ``outbox/queue.py``), the
seeded deputy rows — one account, all due at once — are folded into a digest per claim (``merged``),
sent to the inbox page: a run is right when every row ends sent or merged into a sent message and the
sandbox received each sent message once. ``NOTICE_COALESCE_SECONDS=0`` in the environment sends every
row as its own message (the workload before coalescing).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.common import add_engines, arguments, engines_of, on_each_engine
from bench.submit import REPO_ROOT, VENV_BIN, fresh_database, gunicorn, run_cli
from wechat_sandbox.config import APPID as SANDBOX_APPID
from wechat_sandbox.config import SECRET as SANDBOX_SECRET

TARGET_RATIO = 0.5
RAW_OPENID = "o-bench-raw"
ITEMS_PER_RESIDENT = 5
PAGES = "pages/item/item,pages/inbox/item,pages/inbox/inbox"  # the last: a deputy's digest (miniprogram_stub/app.json)


@dataclass
class Options:
    """How much to send, and where."""

    rows: int = 10_000
    raw: int = 2_000
    workers: int = 2
    batch: int = 20
    time_limit: float = 300.0
    engines: tuple[str, ...] = ("sqlite", "postgresql")


def parse_args(argv: list[str] | None) -> Options:
    """Command-line options (all optional)."""
    parser = arguments("bench.outbox", __doc__)
    parser.add_argument("--rows", type=int, default=Options.rows, help="outbox rows to drain")
    parser.add_argument("--raw", type=int, default=Options.raw, help="calls in the raw loop (half before, half after)")
    parser.add_argument("--workers", type=int, default=Options.workers, help="worker processes")
    parser.add_argument("--batch", type=int, default=Options.batch, help="OUTBOX_BATCH of the workers")
    parser.add_argument("--drain-limit", type=float, default=Options.time_limit, help="seconds for the drain, at most")
    add_engines(parser)
    args, _unknown = parser.parse_known_args(argv)
    engines = engines_of(parser, args.engines)
    return Options(args.rows, max(2, args.raw), args.workers, args.batch, args.drain_limit, engines)


def base_env(url: str, workdir: Path) -> dict[str, str]:
    """Settings shared by the server, the workers and this process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "OUTBOX_")) and k != "REDIS_URL"}
    env |= {
        "FLASK_APP": "backend",
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(workdir / "instance"),
        "SECRET_KEY": "bench-outbox",
        "WECHAT_APPID": SANDBOX_APPID,  # the mini-program the sandbox knows
        "WECHAT_SECRET": SANDBOX_SECRET,
        "WECHAT_SANDBOX_DB": str(workdir / "wechat_sandbox.sqlite3"),
        "WECHAT_SANDBOX_PAGES": PAGES,
        "WECHAT_SANDBOX_TOKEN_DAILY_LIMIT": "100000",
        "WECHAT_TIMEOUT_SECONDS": "10",
        "OUTBOX_IDLE_SECONDS": "0.05",
    }
    return env


def seed(url: str, rows: int, raw: int, sandbox_db: str) -> None:
    """A deputy with a bound WeChat, residents, ``rows // 2`` items, one resident and one deputy message each.

    Credits are counted on both sides: here (``subscription_credits``) and in the sandbox.
    """
    from sqlalchemy import insert, select

    from backend import create_app
    from backend.extensions import db
    from backend.items.refs import new_access_key, new_ref
    from backend.models import (
        Deputy,
        Item,
        OutboxMessage,
        Resident,
        StaffRole,
        StaffUser,
        SubscriptionCredit,
        utcnow,
    )
    from wechat_sandbox.state import SandboxState

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    templates = {purpose: entry["id"] for purpose, entry in app.config["WECHAT_TEMPLATES"].items()}
    items = rows // 2
    residents = max(1, items // ITEMS_PER_RESIDENT)
    with app.app_context():
        deputy = db.session.scalars(select(Deputy).order_by(Deputy.id)).first()
        user = StaffUser(
            username="bench-deputy",
            password_hash="x",  # noqa: S106 - no login
            role=StaffRole.DEPUTY,
            deputy=deputy,
            wechat_openid="o-bench-dep",
        )
        db.session.add(user)
        db.session.flush()
        resident_rows = [{"openid": f"o-bench-{i}"} for i in range(residents)]
        db.session.execute(insert(Resident), resident_rows)
        resident_ids = db.session.scalars(select(Resident.id).order_by(Resident.id)).all()
        now = utcnow()
        item_rows = [
            {
                "ref": new_ref(),
                "access_key": new_access_key(),
                "station_id": deputy.station_id,
                "deputy_id": deputy.id,
                "resident_id": resident_ids[i % residents],
                "channel": "miniprogram",
                "category": "other",
                "body": f"第{i}条：村口路灯坏了三个月，晚上出行很不方便，请尽快修复。",
                "due_at": now + timedelta(days=2),
                "created_at": now,
                "updated_at": now,
            }
            for i in range(items)
        ]
        db.session.execute(insert(Item), item_rows)
        item_ids = db.session.execute(select(Item.id, Item.resident_id).order_by(Item.id)).all()
        outbox = []
        for item_id, resident_id in item_ids:
            outbox.append({"kind": "item_received", "item_id": item_id, "resident_id": resident_id})
            outbox.append({"kind": "deputy_new_item", "item_id": item_id, "staff_user_id": user.id})
        for message in outbox:
            message |= {"payload": {}, "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        db.session.execute(insert(OutboxMessage), outbox)
        per_resident = -(-items // residents)
        credits = [
            {"openid": r["openid"], "template_id": templates["item_progress"], "credits": per_resident}
            for r in resident_rows
        ]
        credits.append({"openid": "o-bench-dep", "template_id": templates["deputy_task"], "credits": items})
        db.session.execute(insert(SubscriptionCredit), credits)
        db.session.commit()
        db.engine.dispose()
    sandbox = SandboxState(sandbox_db)
    for row in credits:
        sandbox.subscribe(row["openid"], row["template_id"], row["credits"])
    sandbox.subscribe(RAW_OPENID, templates["item_progress"], raw + 50)


def raw_loop(url: str, api_base: str, calls: int) -> float:
    """Seconds for ``calls`` sequential ``send_subscribe_message`` calls, as the worker makes them."""
    from backend import create_app
    from backend.wechat.api import send_subscribe_message

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "WECHAT_API_BASE": api_base,
            "WECHAT_APPID": SANDBOX_APPID,
            "WECHAT_SECRET": SANDBOX_SECRET,
            "WECHAT_TIMEOUT_SECONDS": 10,
        }
    )
    template = app.config["WECHAT_TEMPLATES"]["item_progress"]["id"]
    data = {
        "character_string1": {"value": "BENCHRAW"},
        "phrase2": {"value": "已提交"},
        "thing3": {"value": "已送达张秀英代表，请留意答复"},
        "time4": {"value": "2026年11月21日 15:01"},
    }
    with app.app_context():
        send_subscribe_message(RAW_OPENID, template, data, page="pages/item/item?ref=BENCHRAW")  # token fetched
        start = time.perf_counter()
        for _ in range(calls):
            send_subscribe_message(RAW_OPENID, template, data, page="pages/item/item?ref=BENCHRAW")
        elapsed = time.perf_counter() - start
        from backend.extensions import db

        db.engine.dispose()
    return elapsed


def unfinished(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM outbox_messages WHERE status IN ('pending', 'held')")
            ).scalar()
    finally:
        engine.dispose()


def outbox_summary(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT status, count(*) FROM outbox_messages GROUP BY status")).all())
    finally:
        engine.dispose()


def sandbox_received(sandbox_db: str) -> tuple[int, int]:
    """Messages the sandbox received for the drained rows, and how many of them were duplicates."""
    conn = sqlite3.connect(sandbox_db)
    try:
        total = conn.execute("SELECT count(*) FROM messages WHERE openid != ?", (RAW_OPENID,)).fetchone()[0]
        duplicates = conn.execute(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM messages WHERE openid != ? "
            "GROUP BY openid, template_id, page, data HAVING count(*) > 1)",
            (RAW_OPENID,),
        ).fetchone()[0]
    finally:
        conn.close()
    return total, duplicates


def bench_engine(engine: str, options: Options, out: Callable[[str], None]) -> bool:
    """Seed, serve the sandbox, run the raw loop and the workers; print one table; True when all went out once."""
    out(f"\n== {engine}")
    with (
        tempfile.TemporaryDirectory(prefix=f"msl-bench-outbox-{engine}-") as tmp,
        fresh_database(engine, Path(tmp)) as url,
    ):
        workdir = Path(tmp)
        env = base_env(url, workdir)
        run_cli(env, "db", "upgrade")
        run_cli(env, "demo", "load")
        seed(url, options.rows, options.raw, env["WECHAT_SANDBOX_DB"])
        with gunicorn("wechat_sandbox:create_app()", env, workdir / "gunicorn.log") as port:
            api_base = f"http://127.0.0.1:{port}/"
            half = options.raw // 2
            raw_seconds = raw_loop(url, api_base, half)
            worker_env = env | {
                "WECHAT_API_BASE": api_base,
                "WECHAT_MINIPROGRAM_STATE": "developer",
                "OUTBOX_BATCH": str(options.batch),
            }
            logs = [workdir / f"worker{i}.log" for i in range(options.workers)]
            started = time.perf_counter()
            workers = []
            for log_path in logs:
                with log_path.open("ab") as log:
                    workers.append(
                        subprocess.Popen(
                            [str(VENV_BIN / "flask"), "outbox", "run"],
                            cwd=REPO_ROOT,
                            env=worker_env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            timed_out = False
            try:
                while unfinished(url):
                    if time.perf_counter() - started > options.time_limit:
                        timed_out = True
                        break
                    if any(w.poll() is not None for w in workers):
                        break
                    time.sleep(0.1)
                drain_seconds = time.perf_counter() - started
            finally:
                for process in workers:
                    if process.poll() is None:
                        process.send_signal(signal.SIGTERM)
                for process in workers:
                    try:
                        process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            raw_seconds += raw_loop(url, api_base, options.raw - half)
        received, duplicates = sandbox_received(env["WECHAT_SANDBOX_DB"])
        summary = outbox_summary(url)
        tails = {log_path.name: log_path.read_text(errors="replace")[-1500:] for log_path in logs}
    raw_rate = options.raw / raw_seconds
    rate = summary.get("sent", 0) / drain_seconds
    ratio = rate / raw_rate
    out(f"raw send_subscribe_message loop : {options.raw:>6} calls  {raw_rate:8.1f} msg/s")
    out(
        f"outbox, {options.workers} workers            : {summary.get('sent', 0):>6} sent   {rate:8.1f} msg/s"
        f"  ({drain_seconds:.1f} s, start-up included)"
    )
    verdict = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
    out(f"ratio outbox/raw                : {ratio:.2f}  (target ≥ {TARGET_RATIO}: {verdict})")
    out(f"received by the sandbox         : {received}  duplicates: {duplicates}")
    out(f"outbox rows by status           : {json.dumps(summary, sort_keys=True)}")
    if timed_out:
        out(f"time limit of {options.time_limit:.0f} s reached")
    told = summary.get("sent", 0) + summary.get("merged", 0)  # every step, in its own message or a digest
    out(f"rows told (sent + merged)       : {told} of {options.rows}")
    ok = not timed_out and duplicates == 0 and told == options.rows and summary.get("sent", 0) == received
    if not ok:
        for name, tail in tails.items():
            out(f"--- {name} (tail)\n{tail}")
    return ok


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the outbox bench on every engine available; 0 when every row went out exactly once."""
    options = parse_args(argv)
    out(f"\n## outbox: {options.rows:,} rows, {options.workers} `flask outbox run` workers, vs a raw call loop")
    return on_each_engine(options.engines, lambda engine: bench_engine(engine, options, out), out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
