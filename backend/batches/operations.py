"""Poster batch jobs on the staff side: queue one, open one in scope, describe its progress.

Whoever may print a batch (``backend.admin.printing.print_target``) may queue it, watch it and
download its file; anyone else gets 404 and an ``admin_access_denied`` row, as for anything
out of scope. Operations flush; the request commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from flask import abort, url_for
from sqlalchemy import select

from backend.access import can_manage_region, can_manage_station, deny
from backend.admin.printing import BatchNames, PrintTarget, batch_names, print_target
from backend.audit import record_added
from backend.batches.worker import stored_file
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import MAX_ID
from backend.models import PosterBatch, PosterBatchKind, PosterBatchStatus, Region, StaffUser, Station
from backend.qr import posters
from backend.qr.codes import current_code

STATION_ID_RE = re.compile(r"[0-9]{1,10}")
REGION_CODE_RE = re.compile(r"[0-9]{2,12}")
UNFINISHED = (PosterBatchStatus.QUEUED, PosterBatchStatus.RUNNING)
RECENT = 5


def parse_batch_request(values: Mapping[str, str]) -> tuple[PosterBatchKind, int | str]:
    """The kind and the station id (station, cards) or region code (region) of a form; UserError 400 when unclear."""
    try:
        kind = PosterBatchKind((values.get("kind") or "").strip())
    except ValueError:
        raise UserError(
            "bad_kind", "请选择要生成的内容：联络站海报、代表桌牌或全部代表码海报。请返回页面重新点击生成按钮。", 400
        ) from None
    if kind is PosterBatchKind.REGION:
        code = (values.get("region") or "").strip()
        if not REGION_CODE_RE.fullmatch(code):
            raise UserError("bad_region", "请求有误：没有指明要打印哪个地区的海报。请返回页面重新点击生成按钮。", 400)
        return kind, code
    raw = (values.get("station_id") or "").strip()
    if not STATION_ID_RE.fullmatch(raw) or not 0 < int(raw) <= MAX_ID:
        raise UserError("bad_station", "请求有误：没有指明要打印哪个联络站。请返回页面重新点击生成按钮。", 400)
    return kind, int(raw)


def batch_target(user: StaffUser, kind: PosterBatchKind, key: int | str) -> PrintTarget:
    """What ``user`` asks to print, in scope and printable: 404 unknown, 404 + audit out of scope, UserError otherwise.

    The same refusals as the direct addresses: a closed station, a station without its code,
    nothing to print.
    """
    target = print_target(user, kind.value, key)
    if target is None:
        abort(404)
    station = target.station
    if station is not None:
        posters.require_active(station)
        if kind is PosterBatchKind.STATION and current_code(station) is None:
            raise UserError("no_code", f"{station.name}还没有联络站码，请先生成。", 404)
    if target.pages == 0:
        owner = station.name if station is not None else target.region.name
        what = "桌牌" if kind is PosterBatchKind.CARDS else "海报"
        raise UserError("no_deputies", f"{owner}暂无在任代表，没有可打印的{what}。", 404)
    return target


def request_batch(user: StaffUser, kind: PosterBatchKind, key: int | str) -> tuple[PosterBatch, bool]:
    """Queue a batch (flushes, audits; the caller commits) and return it with True.

    When the same batch is already queued or being rendered, that one is returned with False
    (a second click, or a colleague who asked first), so a county batch is never rendered twice at once.
    """
    target = batch_target(user, kind, key)
    scope = (
        PosterBatch.station_id == target.station.id
        if target.station is not None
        else PosterBatch.region_id == target.region.id
    )
    unfinished = db.session.scalar(
        select(PosterBatch)
        .where(PosterBatch.kind == kind, scope, PosterBatch.status.in_(UNFINISHED))
        .order_by(PosterBatch.id.desc())
        .limit(1)
    )
    if unfinished is not None:
        return unfinished, False
    batch = PosterBatch(
        requested_by_id=user.id,
        kind=kind,
        station_id=target.station.id if target.station is not None else None,
        region_id=target.region.id if target.region is not None else None,
        pages_total=target.pages,
    )
    record_added(
        batch,
        "poster_batch_requested",
        user=user,
        object_type="poster_batch",
        data={"kind": kind.value, "station_id": batch.station_id, "region_id": batch.region_id, "pages": target.pages},
    )
    return batch, True


def require_batch(user: StaffUser, batch_id: int) -> PosterBatch:
    """The batch if ``user`` may print what it holds; 404 when unknown, 404 and an audit row when out of scope."""
    batch = db.session.get(PosterBatch, batch_id)
    if batch is None:
        abort(404)
    if batch.station is not None:
        allowed = can_manage_station(user, batch.station)
    else:
        allowed = can_manage_region(user, batch.region)
    if not allowed:
        deny(user, "poster_batch", batch.id)
    return batch


def names_of(batch: PosterBatch) -> BatchNames:
    """The title and file names of the batch's PDF."""
    return batch_names(batch.kind.value, station=batch.station, region=batch.region)


def batch_file(batch: PosterBatch) -> Path | None:
    """The batch's finished file, or None (not done yet, failed, expired, or removed by hand)."""
    if batch.status != PosterBatchStatus.DONE:
        return None
    return stored_file(batch.file_path)


def progress_text(batch: PosterBatch) -> str:
    """One line saying how far the batch is ("已生成 k / N 页"), the same on the page and in its JSON."""
    done, total = batch.pages_done, batch.pages_total
    if batch.status == PosterBatchStatus.QUEUED:
        return f"排队等候生成（共 {total} 页）……"
    if batch.status == PosterBatchStatus.RUNNING:
        return f"正在生成：已生成 {done} / {total} 页"
    if batch.status == PosterBatchStatus.DONE:
        return f"已完成：共 {done} 页"
    if batch.status == PosterBatchStatus.FAILED:
        return f"生成失败（已生成 {done} / {total} 页）"
    return f"文件已过期删除（共 {total} 页）"


def batch_status(batch: PosterBatch) -> dict:
    """The batch's progress for the status page's script."""
    is_done = batch.status == PosterBatchStatus.DONE
    return {
        "id": batch.id,
        "status": batch.status.value,
        "status_label": batch.status_label,
        "pages_done": batch.pages_done,
        "pages_total": batch.pages_total,
        "text": progress_text(batch),
        "is_finished": batch.is_finished,
        "error": batch.error,
        "download_url": url_for("admin.poster_batch_download", batch_id=batch.id) if is_done else None,
    }


def recent_batches(station: Station | None = None, region: Region | None = None) -> list[PosterBatch]:
    """The latest batches of a station (its posters and cards) or of a region, newest first."""
    scope = PosterBatch.station_id == station.id if station is not None else PosterBatch.region_id == region.id
    return list(db.session.scalars(select(PosterBatch).where(scope).order_by(PosterBatch.id.desc()).limit(RECENT)))
