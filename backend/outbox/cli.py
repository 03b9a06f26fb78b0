"""``flask outbox``: run the delivery worker, see and retry dead letters."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select, update

from backend.audit import record_audit
from backend.extensions import db
from backend.models import Item, OutboxMessage, OutboxStatus, utcnow
from backend.outbox import worker

outbox_cli = AppGroup("outbox", help="微信通知发件箱：运行发送进程，查看、重试失败的通知。")

RETRYABLE = (OutboxStatus.DEAD, OutboxStatus.FAILED, OutboxStatus.SKIPPED)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (like logging's last resort)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def stop_on_signal(logger_name: str, message: str) -> threading.Event:
    """An event that SIGTERM or SIGINT sets (logging ``message`` % the signal): a worker loop's stop."""
    stop = threading.Event()

    def _stop(signum, _frame):
        logging.getLogger(logger_name).info(message, signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def log_to_stderr(name: str = "backend.outbox") -> None:
    """Show a worker's log lines (logger ``name``) when nothing else configured logging."""
    logger = logging.getLogger(name)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


@outbox_cli.command("run")
@click.option("--once", is_flag=True, help="发送当前到期的全部通知后退出。")
@click.option("--batch", type=click.IntRange(1, 1000), default=None, help="每次领取的条数（默认 OUTBOX_BATCH）。")
def run_command(once: bool, batch: int | None) -> None:
    """Deliver outbox messages: until stopped (SIGTERM/SIGINT), or with --once until nothing is due."""
    log_to_stderr()
    batch = batch or current_app.config["OUTBOX_BATCH"]
    if once:
        total = 0
        while done := worker.run_once(batch):
            total += done
        click.echo(f"outbox: {total} message(s) settled")
        return
    stop = stop_on_signal("backend.outbox", "outbox: signal %s, stopping after the current message")
    logging.getLogger("backend.outbox").info("outbox: worker started (batch %s)", batch)
    worker.run_forever(stop, batch)


@outbox_cli.command("status")
def status_command() -> None:
    """Count outbox rows per status, and say whether a WeChat hold is in force."""
    counts = worker.status_counts()
    for status in OutboxStatus:
        click.echo(f"{status.value:8} {counts.get(status.value, 0)}")
    hold = worker.active_hold()
    db.session.rollback()
    if hold is not None:
        click.echo(f"held until {hold.isoformat()} (WeChat quota or access token)")


@outbox_cli.command("overdue")
def overdue_command() -> None:
    """Queue reminders for items that became overdue (the running worker also does this every few minutes)."""
    click.echo(f"{worker.queue_overdue()} overdue reminder(s) queued")


@outbox_cli.command("dead")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
def dead_command(limit: int) -> None:
    """List dead and failed messages with the reason, newest first."""
    rows = db.session.execute(
        select(OutboxMessage, Item.ref)
        .outerjoin(Item, Item.id == OutboxMessage.item_id)
        .where(OutboxMessage.status.in_((OutboxStatus.DEAD, OutboxStatus.FAILED)))
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    ).all()
    if not rows:
        click.echo("no dead or failed messages")
        return
    for message, ref in rows:
        click.echo(
            f"{message.id}\t{message.status.value}\t{message.kind}\titem {ref or '-'}\t"
            f"sends {message.attempts} (claims {message.lease_token}, released {message.releases}, "
            f"held {message.quota_holds})\t{message.last_error}"
        )
    db.session.rollback()


@outbox_cli.command("retry")
@click.argument("message_ids", nargs=-1, type=int)
@click.option("--all-dead", is_flag=True, help="重试所有 dead 状态的通知。")
def retry_command(message_ids: tuple[int, ...], all_dead: bool) -> None:
    """Put dead (or failed, or skipped, by id) messages back to pending with a fresh retry budget."""
    if bool(message_ids) == all_dead:
        raise click.UsageError("give message ids, or --all-dead")
    table = OutboxMessage.__table__
    if all_dead:
        condition = table.c.status == OutboxStatus.DEAD
    else:
        found = dict(
            db.session.execute(
                select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.id.in_(message_ids))
            ).all()
        )
        missing = sorted(set(message_ids) - set(found))
        if missing:
            raise click.ClickException(f"no outbox message {', '.join(map(str, missing))}")
        wrong = sorted(i for i, status in found.items() if status not in RETRYABLE)
        if wrong:
            raise click.ClickException(f"only dead, failed or skipped messages can be retried: {wrong}")
        condition = table.c.id.in_(message_ids)
    ids = db.session.scalars(select(table.c.id).where(condition)).all()
    # attempts (sends) back to 0: a fresh retry budget. A dead or failed row gave its credit back, so the
    # next claim reserves one again; the lease token keeps counting, so a stale claim still writes nothing.
    db.session.execute(
        update(table)
        .where(table.c.id.in_(ids), table.c.status.in_(RETRYABLE))
        .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=utcnow(), lease_expires_at=None)
    )
    if ids:
        record_audit(
            "outbox_retry",
            object_type="outbox_message",
            object_id=str(ids[0]) if len(ids) == 1 else "",
            data={"ids": list(ids), "all_dead": all_dead},
        )
    db.session.commit()
    click.echo(f"{len(ids)} message(s) back to pending")
