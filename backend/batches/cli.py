"""``flask posters``: run the poster batch worker."""

from __future__ import annotations

import logging

import click
from flask.cli import AppGroup

from backend.batches import worker
from backend.outbox.cli import log_to_stderr, stop_on_signal

posters_cli = AppGroup("posters", help="批量海报：运行后台生成进程。")


@posters_cli.command("run")
@click.option("--once", is_flag=True, help="生成当前排队的全部批量海报后退出。")
def run_command(once: bool) -> None:
    """Render queued poster batches: until stopped (SIGTERM/SIGINT), or with --once until none is waiting."""
    log_to_stderr("backend.batches")
    if once:
        worker.sweep()
        count = 0
        while (claim := worker.claim_batch()) is not None:
            worker.render(claim)
            count += 1
        click.echo(f"posters: {count} batch(es) rendered")
        return
    stop = stop_on_signal("backend.batches", "posters: signal %s, stopping after the current page")
    logging.getLogger("backend.batches").info("posters: batch worker started")
    worker.run_forever(stop)
