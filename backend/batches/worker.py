"""The poster batch worker (``flask posters run``): claims a queued batch, renders it into a file, cleans up.

Why a process of its own, beside ``flask outbox run``
    Rendering is CPU-bound and long (about 30 ms a page, a minute or more for a county's
    2,435 pages; ``bench/posters.py``), and the font subset made at the end of a document
    takes some 50 MB for a moment. In the outbox loop it would hold back every WeChat notice
    for as long as a county batch takes; in a thread of that process it would take the GIL
    from it. A process of its own keeps notices on time, and a batch that exhausts
    memory takes down only itself (its lease expires and it is retried, then failed).
    ``scripts/run.sh`` and the Procfile's ``posters:`` start it.

Claiming
    One short transaction takes the oldest batch that is queued, or running with its lease
    expired (its worker died), in the order of the ``(status, id)`` index: PostgreSQL locks
    it ``FOR UPDATE SKIP LOCKED``, so two workers never take the same row; SQLite serialises
    the transaction with ``BEGIN IMMEDIATE`` (``backend.database``). The claim sets
    ``status = running``, ``lease_expires_at = now + POSTER_BATCH_LEASE_SECONDS`` and
    ``attempts + 1``. The new ``attempts`` is the claim's lease token: every later write is
    ``UPDATE … WHERE id = :id AND attempts = :token AND status = 'running'``, so a worker whose
    lease was taken over writes nothing, stops, and removes its own temporary file. A batch
    whose workers died ``POSTER_BATCH_MAX_ATTEMPTS`` times is failed rather than retried again.

Rendering
    Pages are rendered one at a time (``backend.qr.posters``' generators) and written to
    ``<instance>/poster-batches/<id>-<random>.pdf.part`` as each is ready
    (``backend.qr.pdf.PdfWriter``): memory holds one page whatever the batch. Every
    ``POSTER_BATCH_PROGRESS_PAGES`` pages (or 2 s) ``pages_done`` is written and committed,
    which also renews the lease. On SQLite the reads of those pages run in a DEFERRED
    transaction (``reading``), so rendering never holds the write lock the web workers need.
    At the end the file is synced, renamed to ``….pdf`` and the batch marked done in one
    guarded write: a done batch always has its whole file, and a partial one is never named
    ``.pdf``. An exception marks the batch failed with a Chinese message and removes the
    partial file; a stop signal puts the batch back in the queue.

Cleaning up
    Every ``POSTER_BATCH_SWEEP_SECONDS``: files of batches done more than
    ``POSTER_BATCH_KEEP_HOURS`` ago are removed and the batches marked expired; files in the
    folder that no done batch names (a worker killed between rename and commit, or mid-page)
    are removed once untouched for twice the lease.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import and_, or_, select, update

from backend.admin.printing import batch_names, printable_count, region_batch_pages, station_batch_pages
from backend.database import committed, reading
from backend.errors import UserError
from backend.extensions import db
from backend.models import PosterBatch, PosterBatchKind, PosterBatchStatus, utcnow
from backend.ops import heartbeat
from backend.qr import fonts, posters
from backend.qr.codes import current_code
from backend.qr.pdf import PdfWriter

log = logging.getLogger("backend.batches")

FOLDER = "poster-batches"  # under the instance folder unless POSTER_BATCH_DIR says where; and in file_path
PART_SUFFIX = ".part"
PROGRESS_SECONDS = 2.0  # progress (and the lease) is written at least this often while pages are rendered
ERROR_TEXT_MAX = 500

INTERRUPTED = "生成过程多次中断（服务器进程被停止或内存不足），已停止重试。请重新生成；全县批量可分站生成。"
DISK_FAILED = "保存文件失败（服务器磁盘已满或无法写入），请联系系统管理员。"
UNEXPECTED = "生成时服务器出错，请稍后重新生成；如仍失败，请联系系统管理员。"

_batches = PosterBatch.__table__


@dataclass(frozen=True)
class Claim:
    """A batch this worker holds the lease of."""

    id: int
    token: int  # ``attempts`` after the claim


class LeaseLost(Exception):
    """Another worker took the batch over (this one's lease expired): stop without writing."""


class Stopping(Exception):
    """The worker was asked to stop in the middle of a batch."""


# --- files -------------------------------------------------------------------------------------


def batch_folder() -> Path:
    """``POSTER_BATCH_DIR``, or ``<instance>/poster-batches``; created on first use, readable by this user only.

    Several hosts (web hosts that hand the file out, poster workers that write it) mount one folder
    and name it here: a file on one host's own disk is not found by a request served by another."""
    configured = current_app.config.get("POSTER_BATCH_DIR")
    path = Path(configured) if configured else Path(current_app.instance_path) / FOLDER
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def stored_file(file_path: str) -> Path | None:
    """The file a done batch names (``file_path`` is ``poster-batches/<name>``: a name in the batch folder), if it
    is there."""
    folder_name, _, name = (file_path or "").partition("/")
    if folder_name != FOLDER or not name or "/" in name or name in (".", ".."):
        return None
    path = batch_folder() / name
    return path if path.is_file() else None


def _unlink(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --- what a batch prints ----------------------------------------------------------------------


def batch_sheets(batch: PosterBatch) -> tuple[Iterator[posters.Sheet], int]:
    """The pages of ``batch``, drawn one by one when asked for, and how many there will be.

    Checked again here, as the direct addresses check them: a station closed or a code lost
    since the batch was queued fails it with the reason (UserError).
    """
    fonts.poster_face("bold")
    fonts.poster_face("regular")
    if batch.kind is PosterBatchKind.REGION:
        region = batch.region
        deputy_ids = posters.region_deputy_ids(region)
        if not deputy_ids:
            raise UserError("no_deputies", f"{region.name}暂无在任代表，没有可打印的海报。", 404)
        return posters.deputy_posters(deputy_ids), region_batch_pages(region)
    station = batch.station
    posters.require_active(station)
    if batch.kind is PosterBatchKind.CARDS:
        pages = printable_count(station)
        if not pages:
            raise UserError("no_deputies", f"{station.name}暂无在任代表，没有可打印的桌牌。", 404)
        return posters.station_cards(station), pages
    if current_code(station) is None:
        raise UserError("no_code", f"{station.name}还没有联络站码，请先生成。", 404)
    return posters.station_batch(station), station_batch_pages(station)


def failure_message(exc: BaseException) -> str:
    """What the page says when rendering failed: the reason for a refused batch, a plain sentence otherwise."""
    if isinstance(exc, UserError):
        message = exc.message
    elif isinstance(exc, fonts.FontMissingError):
        message = fonts.FONT_MISSING_MESSAGE
    elif isinstance(exc, OSError):
        message = DISK_FAILED
    else:
        message = UNEXPECTED
    return message if len(message) <= ERROR_TEXT_MAX else message[: ERROR_TEXT_MAX - 1] + "…"


# --- claiming and guarded writes --------------------------------------------------------------


def _lease() -> timedelta:
    return timedelta(seconds=current_app.config["POSTER_BATCH_LEASE_SECONDS"])


def claim_batch(now: datetime | None = None) -> Claim | None:
    """Take the oldest queued batch (or one whose worker's lease expired) and commit the claim; None when idle.

    A batch whose lease expired after ``POSTER_BATCH_MAX_ATTEMPTS`` claims is failed instead.
    """
    now = now or utcnow()
    max_attempts = current_app.config["POSTER_BATCH_MAX_ATTEMPTS"]
    try:
        while True:
            batch = db.session.scalars(
                select(PosterBatch)
                .where(
                    or_(
                        PosterBatch.status == PosterBatchStatus.QUEUED,
                        and_(PosterBatch.status == PosterBatchStatus.RUNNING, PosterBatch.lease_expires_at <= now),
                    )
                )
                .order_by(PosterBatch.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if batch is None:
                db.session.rollback()
                return None
            if batch.status == PosterBatchStatus.RUNNING and batch.attempts >= max_attempts:
                log.error("poster batch %s: its worker stopped %s times; failed", batch.id, batch.attempts)
                batch.status = PosterBatchStatus.FAILED
                batch.error = INTERRUPTED
                batch.lease_expires_at = None
                batch.finished_at = now
                db.session.commit()
                continue
            batch.attempts += 1
            batch.status = PosterBatchStatus.RUNNING
            batch.lease_expires_at = now + _lease()
            batch.started_at = now
            batch.pages_done = 0
            claim = Claim(batch.id, batch.attempts)
            db.session.commit()
            return claim
    except Exception:
        db.session.rollback()
        raise


def _guarded(claim: Claim):
    return update(_batches).where(
        _batches.c.id == claim.id,
        _batches.c.attempts == claim.token,
        _batches.c.status == PosterBatchStatus.RUNNING,
    )


def _write(claim: Claim, **values) -> None:
    """A guarded write of the lease holder, committed; LeaseLost when the batch is no longer this claim's."""
    try:
        result = db.session.execute(_guarded(claim).values(**values))
        if result.rowcount != 1:
            db.session.rollback()
            raise LeaseLost(claim.id)
        db.session.commit()
    except LeaseLost:
        raise
    except Exception:
        db.session.rollback()
        raise


def record_progress(claim: Claim, pages_done: int, pages_total: int) -> None:
    """Write how far the batch got and renew the lease (LeaseLost when it was taken over)."""
    _write(claim, pages_done=pages_done, pages_total=pages_total, lease_expires_at=utcnow() + _lease())
    heartbeat.beat("posters")  # a county batch renders for minutes: the worker is alive meanwhile


def release(claim: Claim) -> None:
    """Put a batch back in the queue (the worker is stopping); nothing when it was already taken over."""
    with contextlib.suppress(LeaseLost):
        _write(claim, status=PosterBatchStatus.QUEUED, lease_expires_at=None, pages_done=0)


# --- rendering --------------------------------------------------------------------------------


def render(claim: Claim, stop_event: threading.Event | None = None) -> PosterBatchStatus | None:
    """Render the claimed batch into its file; return how it ended (None: taken over, or given back to the queue)."""
    every = max(1, current_app.config["POSTER_BATCH_PROGRESS_PAGES"])
    folder = batch_folder()
    final = folder / f"{claim.id}-{secrets.token_hex(8)}.pdf"
    part = final.with_name(final.name + PART_SUFFIX)
    done = 0
    renamed = False
    try:
        batch = db.session.get(PosterBatch, claim.id)
        names = batch_names(batch.kind.value, station=batch.station, region=batch.region)
        pages, total = batch_sheets(batch)
        record_progress(claim, 0, total)
        writer = PdfWriter(names.title)
        with part.open("wb") as out:
            out.write(writer.header())
            finished = False
            while not finished:
                started = time.monotonic()
                # The pages' reads without SQLite's write lock; the progress write after it is short.
                with reading():
                    while True:
                        sheet = next(pages, None)
                        if sheet is None:
                            finished = True
                            break
                        out.write(writer.page(sheet.pdf_page()))
                        done += 1
                        if done % every == 0 or time.monotonic() - started >= PROGRESS_SECONDS:
                            break
                if not finished and stop_event is not None and stop_event.is_set():
                    raise Stopping
                out.flush()
                record_progress(claim, done, max(total, done))
            out.write(writer.trailer())
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, final)
        renamed = True
        relative = f"{FOLDER}/{final.name}"
        _write(
            claim,
            status=PosterBatchStatus.DONE,
            pages_done=done,
            pages_total=done,
            file_path=relative,
            lease_expires_at=None,
            finished_at=utcnow(),
        )
        log.info("poster batch %s: %s page(s) written to %s", claim.id, done, relative)
        return PosterBatchStatus.DONE
    except LeaseLost:
        log.warning("poster batch %s: lease taken over by another worker; stopped", claim.id)
        _unlink(final if renamed else part)
        return None
    except Stopping:
        log.info("poster batch %s: worker stopping; the batch goes back to the queue", claim.id)
        _unlink(part)
        release(claim)
        return None
    except Exception as exc:
        db.session.rollback()
        _unlink(final if renamed else part)
        if isinstance(exc, UserError):
            log.info("poster batch %s refused: %s", claim.id, exc.message)
        else:
            log.exception("poster batch %s failed after %s page(s)", claim.id, done)
        with contextlib.suppress(LeaseLost):
            _write(
                claim,
                status=PosterBatchStatus.FAILED,
                error=failure_message(exc),
                pages_done=done,
                lease_expires_at=None,
                finished_at=utcnow(),
            )
        return PosterBatchStatus.FAILED


def run_once() -> PosterBatchStatus | None:
    """Claim one batch and render it; None when nothing was waiting (or the batch was taken over)."""
    claim = claim_batch()
    if claim is None:
        return None
    return render(claim)


# --- cleaning up ------------------------------------------------------------------------------


def sweep(now: datetime | None = None) -> int:
    """Remove files past ``POSTER_BATCH_KEEP_HOURS`` (their batches become expired) and stray files; return how many."""
    now = now or utcnow()
    cutoff = now - timedelta(hours=current_app.config["POSTER_BATCH_KEEP_HOURS"])
    with committed():
        old = db.session.execute(
            select(PosterBatch.id, PosterBatch.file_path)
            .where(PosterBatch.status == PosterBatchStatus.DONE, PosterBatch.finished_at < cutoff)
            .with_for_update(skip_locked=True)
        ).all()
        if old:
            db.session.execute(
                update(_batches)
                .where(_batches.c.id.in_([row.id for row in old]), _batches.c.status == PosterBatchStatus.DONE)
                .values(status=PosterBatchStatus.EXPIRED, file_path="")
            )
        kept = set(
            db.session.scalars(select(PosterBatch.file_path).where(PosterBatch.status == PosterBatchStatus.DONE))
        )
    removed = 0
    for row in old:  # after the commit: a batch never says done without its file
        path = stored_file(row.file_path)
        if path is not None:
            _unlink(path)
            removed += 1
    stray_after = 2 * current_app.config["POSTER_BATCH_LEASE_SECONDS"]
    folder = batch_folder()
    for path in folder.iterdir():
        if f"{FOLDER}/{path.name}" in kept:
            continue
        with contextlib.suppress(FileNotFoundError):
            if time.time() - path.stat().st_mtime > stray_after:
                path.unlink()
                removed += 1
    if removed:
        log.info("poster batches: %s old file(s) removed", removed)
    return removed


# --- the loop ---------------------------------------------------------------------------------


def run_forever(stop_event: threading.Event) -> None:
    """Render batches until ``stop_event`` is set; sweep old files every ``POSTER_BATCH_SWEEP_SECONDS``."""
    idle = current_app.config["POSTER_BATCH_IDLE_SECONDS"]
    sweep_every = current_app.config["POSTER_BATCH_SWEEP_SECONDS"]
    next_sweep = time.monotonic()
    while not stop_event.is_set():
        try:
            heartbeat.beat("posters")  # every few seconds: /readyz and the admin page see the worker alive
            if sweep_every and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + sweep_every
                sweep()
            claim = claim_batch()
            if claim is not None:
                render(claim, stop_event)
                continue
        except Exception:  # the database restarted, a lock timed out…: wait and go on
            log.exception("poster batches: worker step failed; retrying shortly")
            db.session.rollback()
        stop_event.wait(idle)
    heartbeat.stop("posters")
