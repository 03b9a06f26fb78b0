"""Poster batches (批量海报): a long PDF asked for on a page and rendered by the poster worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, LabeledStrEnum, UTCDateTime, enum_column, utcnow
from backend.models.region import Region
from backend.models.staff import StaffUser
from backend.models.station import Station


class PosterBatchKind(LabeledStrEnum):
    """What a batch prints: the same three batches as ``GET /posters/station|region/…``."""

    # the station's poster (双码), then one poster per serving deputy
    STATION = "station", "联络站海报（双码）和代表码海报"
    CARDS = "cards", "代表桌牌"  # a table card per serving deputy of the station
    # one poster per serving deputy of every active station in the region and below
    REGION = "region", "全部代表码海报"


POSTER_BATCH_KIND_LABELS = PosterBatchKind.labels()  # {member: label} for templates and callers


class PosterBatchStatus(LabeledStrEnum):
    """Where a batch is: waiting for the worker, being rendered, ready, failed, or its file removed."""

    QUEUED = "queued", "排队等候生成"
    RUNNING = "running", "正在生成"
    DONE = "done", "已完成"
    FAILED = "failed", "生成失败"
    EXPIRED = "expired", "文件已过期删除"  # was done; the file was removed after POSTER_BATCH_KEEP_HOURS


POSTER_BATCH_STATUS_LABELS = PosterBatchStatus.labels()  # {member: label} for templates and callers


class PosterBatch(Base):
    """One batch PDF: who asked, for which station or region, how far the worker got, and where the file is.

    ``attempts`` counts the worker's claims and is the lease token: every write of the
    worker that holds the lease is guarded by ``attempts = <its claim>`` (``backend.batches.worker``).
    """

    __tablename__ = "poster_batches"
    __table_args__ = (
        # A region batch names a region, a station or cards batch a station; never both.
        CheckConstraint(
            "(kind = 'region' AND region_id IS NOT NULL AND station_id IS NULL)"
            " OR (kind <> 'region' AND station_id IS NOT NULL AND region_id IS NULL)",
            name="scope_matches_kind",
        ),
        Index("ix_poster_batches_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    kind: Mapped[PosterBatchKind] = mapped_column(enum_column(PosterBatchKind, 10))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    status: Mapped[PosterBatchStatus] = mapped_column(
        enum_column(PosterBatchStatus, 10), default=PosterBatchStatus.QUEUED
    )
    pages_done: Mapped[int] = mapped_column(default=0)
    pages_total: Mapped[int] = mapped_column(default=0)
    file_path: Mapped[str] = mapped_column(String(255), default="")  # under the instance folder, once done
    error: Mapped[str] = mapped_column(Text, default="")  # in Chinese, shown on the page
    attempts: Mapped[int] = mapped_column(default=0)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    requested_by: Mapped[StaffUser] = relationship()
    station: Mapped[Station | None] = relationship()
    region: Mapped[Region | None] = relationship()

    @property
    def kind_label(self) -> str:
        """What the batch prints, in words."""
        return self.kind.label

    @property
    def status_label(self) -> str:
        """Where the batch is, in words."""
        return self.status.label

    @property
    def is_finished(self) -> bool:
        """True once the worker will not touch the batch again (done, failed or expired)."""
        return self.status in (PosterBatchStatus.DONE, PosterBatchStatus.FAILED, PosterBatchStatus.EXPIRED)
