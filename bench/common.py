"""What the benches do alike: read their options, skip an engine that does not answer, time a call.

Each bench keeps what it measures; the command line, the engine loop and the timing loop are
written once here so that ``python -m bench`` and ``python -m bench.<name>`` behave the same
way in every bench (the same ``--engines`` words, the same "skipped" line, the same error count).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Protocol

import psycopg

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ENGINES = ("sqlite", "postgresql")


class Timed(Protocol):
    """What :func:`timed` writes to: ``bench.submit.Result``."""

    errors: int
    latencies: list[float]
    error_samples: list[str]


def postgres_answers() -> bool:
    """True when the bench's PostgreSQL server accepts connections."""
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def arguments(module: str, doc: str) -> argparse.ArgumentParser:
    """The parser of ``python -m <module>``, described by the first line of the bench's docstring."""
    return argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])


def add_counts(parser: argparse.ArgumentParser, requests: int, warmup: int, what: str = "requests") -> None:
    """``--requests`` and ``--warmup``: how many measured and warm-up ``what`` per target."""
    parser.add_argument("--requests", type=int, default=requests, help=f"measured {what} per target")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"warm-up {what} per target")


def add_engines(parser: argparse.ArgumentParser) -> None:
    """``--engines sqlite,postgresql``: read back with :func:`engines_of`."""
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: sqlite, postgresql")


def engines_of(parser: argparse.ArgumentParser, names: str) -> tuple[str, ...]:
    """The engines of ``--engines`` ("sqlite,postgresql"); a usage error for any other name."""
    engines = tuple(e.strip() for e in names.split(",") if e.strip())
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(sorted(unknown))}")
    return engines


def on_each_engine(engines: tuple[str, ...], bench: Callable[[str], bool], out: Callable[[str], None]) -> int:
    """``bench(engine)`` on each engine that answers (PostgreSQL may not: said so); 0 when every run was clean."""
    ok = True
    for engine in engines:
        if engine == "postgresql" and not postgres_answers():
            out(f"\n== PostgreSQL: skipped, nothing answers at {PG_ADMIN_URL} (set BENCH_PG_URL)")
            continue
        ok = bench(engine) and ok
    return 0 if ok else 1


def on_postgres(bench: Callable[[], bool], out: Callable[[str], None]) -> int:
    """``bench()`` when PostgreSQL answers (a bench of PostgreSQL only); 0 when it was clean or skipped."""
    if not postgres_answers():
        out(f"skipped: nothing answers at {PG_ADMIN_URL} (set BENCH_PG_URL)")
        return 0
    return 0 if bench() else 1


def timed(result: Timed, call: Callable[[], object], count: int) -> None:
    """Call ``count`` times, one after the other; the latency of each call, or its error (the bench goes on)."""
    for _ in range(count):
        start = time.perf_counter()
        try:
            call()
        except Exception as exc:  # counted and shown; the bench goes on
            result.errors += 1
            result.error_samples = [*result.error_samples, repr(exc)][:3]
            continue
        result.latencies.append(time.perf_counter() - start)
