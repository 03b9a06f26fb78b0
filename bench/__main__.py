"""``python -m bench``: run every benchmark, print the results and keep them in bench/results/latest.txt."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import dashboard, departments, inbox, outbox, posters, province, scans, stall, submit

RESULTS = Path(__file__).resolve().parent / "results" / "latest.txt"


def git_revision() -> str:
    """The commit the run measured, marked when the tree has uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return rev.strip() + (" + uncommitted changes" if dirty.strip() else "") if rev.strip() else "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run the benches; the exit code is non-zero when any request failed."""
    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    cpus = len(os.sched_getaffinity(0))
    out(
        f"码上联 bench · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.node()} · {cpus} CPUs · "
        f"Python {platform.python_version()} · commit {git_revision()}"
    )
    status = submit.main(argv, out)
    status = stall.main(argv, out) or status  # --engines; its own defaults otherwise
    status = inbox.main([], out) or status  # PostgreSQL only; its own defaults
    status = dashboard.main([], out) or status  # PostgreSQL only; its own defaults
    status = departments.main([], out) or status  # PostgreSQL only; its own defaults
    status = posters.main(out) or status
    status = outbox.main(argv, out) or status
    status = scans.main(argv, out) or status  # --engines; its own defaults otherwise
    # PostgreSQL only; the province is kept between runs (BENCH_PROVINCE_SCALE=0.01 for a small one)
    status = province.main(["--scale", os.environ.get("BENCH_PROVINCE_SCALE", "1")], out) or status
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\n(written to {RESULTS.relative_to(RESULTS.parents[2])})")
    return status


if __name__ == "__main__":
    sys.exit(main())
