"""``flask backup DIR`` and ``flask restore DIR``: a consistent snapshot of the database and the photo files, and
its restoration into an empty instance. With photos in S3, the bucket backs itself up (versioning, replication).

What a backup holds
    ``manifest.json`` (written last: a directory without it is not a backup): the format, the
    time, the engine, the schema revision, every table's row count and the items per status
    *as of the snapshot*, and the size and SHA-256 of every file. Beside it:

    - SQLite: ``database.sqlite3``, made through SQLite's online backup API
      (``sqlite3.Connection.backup`` in one step, inside one read transaction: in WAL mode the
      service's writers go on meanwhile, and the copy is the database as of one moment).
      Counts are read from the copy itself.
    - PostgreSQL: ``database.pgdump``, ``pg_dump --format=custom`` run on a snapshot that
      this process exported (``pg_export_snapshot()`` in a REPEATABLE READ transaction kept
      open while pg_dump runs), so the counts and figures it reads in that transaction are
      those of the dump. Client versions: ``pg_dump``'s major version must be at least the
      server's (it refuses to dump a newer server), and the ``pg_restore`` that restores it at
      least that ``pg_dump``'s (an archive of a newer pg_dump is refused); the manifest records
      both the server's and pg_dump's versions, and restore checks its own pg_restore.
    - ``photos/``: with the files photo store (``PHOTO_STORE=files``, the default), a copy of its
      folder (``PHOTOS_DIR``, by default ``<instance>/photos``; ``backend.items.photo_store``).
      It is copied after the database snapshot, and a photo's file is written before its item
      commits, so every photo of the snapshot is in the copy; a photo uploaded during the backup
      may be there without its item (an orphan: harmless, and ``flask photos sweep`` removes it
      after a restore). A photo deleted (retention) between the snapshot and the copy is the one
      way a row can lack its file; its item was being anonymised anyway.
    - With the S3 photo store (``PHOTO_STORE=s3``) the photos are *not* in the backup: the
      manifest names the bucket, and the bucket is backed up by the object storage itself — turn
      on its versioning (a deleted or overwritten photo can be brought back) and, for a second
      copy, its cross-region replication or the provider's bucket backup. A restore then only
      needs the database: the rows name the objects, which stay in the bucket.

Restoring
    Only into an empty instance: every table of this schema absent or without a row, and
    the photo folder (when the backup has photos) absent or empty; a backup with a photo folder
    restores into the files photo store only (an S3 instance is refused). Everything is checked before
    anything is written — the manifest (ours, whole, a format this code reads), every file's
    checksum, the engine (a SQLite backup restores into SQLite, a PostgreSQL one into
    PostgreSQL), the schema revision (one of this code's migrations; an older one is upgraded
    to head after the restore; a newer one is refused) — and a refusal changes nothing.
    After the restore the row counts are compared with the manifest's. Stop the web server
    and the workers while restoring.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

from backend.extensions import db
from backend.items.photo_store import photos_dir, store_kind
from backend.models import Base, utcnow

FORMAT = "mashanglian-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
PHOTOS = "photos"
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why in plain words (Chinese)."""


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did."""

    manifest: dict
    upgraded_from: list[str] | None  # the revision(s) upgraded from, when the backup was older


def table_names() -> list[str]:
    """The application's tables, parents first."""
    return [table.name for table in Base.metadata.sorted_tables]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _describe(path: Path) -> dict:
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


def _heads() -> list[str]:
    from backend.ops.health import migration_heads

    return sorted(migration_heads())


def _known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", current_app.extensions["migrate"].directory)
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def _snapshot_figures(execute) -> tuple[dict, dict, list[str]]:
    """Row counts per table, items per status, and the schema revision, read through ``execute(sql) → rows``."""
    counts = {name: int(execute(f'SELECT count(*) FROM "{name}"')[0][0]) for name in table_names()}  # noqa: S608 - the models' table names
    statuses = {
        str(status): int(count) for status, count in execute("SELECT status, count(*) FROM items GROUP BY status")
    }
    revision = sorted(row[0] for row in execute("SELECT version_num FROM alembic_version"))
    return counts, dict(sorted(statuses.items())), revision


# --- backup -----------------------------------------------------------------------------------------------------


def create_backup(target: str | os.PathLike) -> dict:
    """Write a consistent snapshot of this instance into ``target`` (absent or empty); return the manifest."""
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"备份目录 {target} 已存在且不是空目录：请换一个新目录，以免覆盖以前的备份。")
    target.mkdir(parents=True, exist_ok=True)
    engine = db.engine.dialect.name
    started = utcnow()
    if engine == "sqlite":
        counts, statuses, revision, extra = _backup_sqlite(target)
    elif engine == "postgresql":
        counts, statuses, revision, extra = _backup_postgresql(target)
    else:  # pragma: no cover - the application runs on these two only
        raise BackupError(f"不支持的数据库：{engine}")
    files = {path.name: _describe(path) for path in target.iterdir() if path.is_file()}
    if store_kind() == "files":
        folder = photos_dir()
        (target / PHOTOS).mkdir()
        if folder.is_dir():  # copied after the snapshot: every photo of a committed row is in the folder
            shutil.copytree(folder, target / PHOTOS, ignore=shutil.ignore_patterns(".part-*"), dirs_exist_ok=True)
        for path in sorted((target / PHOTOS).rglob("*")):
            if path.is_file():
                files[path.relative_to(target).as_posix()] = _describe(path)
        photos = "folder"
    else:
        photos = f"s3://{current_app.config['S3_BUCKET']} (not in this backup: the bucket's own versioning/replication)"
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": started.isoformat(),
        "finished_at": utcnow().isoformat(),
        "engine": engine,
        "schema_revision": revision,
        "tables": counts,
        "items_by_status": statuses,
        "photos": photos,
        "files": files,
        **extra,
    }
    partial = target / (MANIFEST + ".part")
    partial.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(partial, target / MANIFEST)  # last: a directory with a manifest is a whole backup
    return manifest


def _sqlite_path() -> Path:
    database = db.engine.url.database
    if not database or database == ":memory:":
        raise BackupError("内存中的 SQLite 数据库无法备份。")
    return Path(database)


def _backup_sqlite(target: Path) -> tuple[dict, dict, list[str], dict]:
    """SQLite's online backup API, in one step (one read transaction: a consistent copy while writers go on)."""
    source = sqlite3.connect(_sqlite_path(), timeout=30)
    copy = sqlite3.connect(target / SQLITE_FILE)
    try:
        source.backup(copy)  # pages=-1: the whole database in one step, as of one moment
        copy.execute("PRAGMA journal_mode = DELETE")  # a self-contained file (the source runs in WAL mode)
        counts, statuses, revision = _snapshot_figures(lambda sql: copy.execute(sql).fetchall())
    finally:
        copy.close()
        source.close()
    return counts, statuses, revision, {"sqlite_version": sqlite3.sqlite_version}


def _libpq(url) -> tuple[str, dict]:
    """A libpq connection URL without the password, and the environment carrying it (never on the command line)."""
    url = make_url(url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _client_major(program: str) -> tuple[int, str]:
    """The major version of ``pg_dump`` / ``pg_restore`` on PATH, and its version line."""
    path = shutil.which(program)
    if path is None:
        raise BackupError(
            f"找不到 {program}：请安装与数据库服务器同一大版本的 PostgreSQL 客户端（Debian：postgresql-client）。"
        )
    line = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
    match = re.search(r"(\d+)(?:\.\d+)?", line)
    return (int(match.group(1)) if match else 0), line


def _backup_postgresql(target: Path) -> tuple[dict, dict, list[str], dict]:
    """pg_dump (custom format) on a snapshot exported by a REPEATABLE READ transaction that reads the counts."""
    major, dump_version = _client_major("pg_dump")
    url, env = _libpq(db.engine.url)
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        server_num = int(conn.execute(text("SHOW server_version_num")).scalar())
        server_major = server_num // 10000
        if major < server_major:
            raise BackupError(
                f"pg_dump 是 {major} 版，数据库服务器是 {server_major} 版：pg_dump 的大版本不能低于服务器，"
                f"请安装 postgresql-client-{server_major}。"
            )
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar()
        counts, statuses, revision = _snapshot_figures(lambda sql: conn.execute(text(sql)).all())
        # The exporting transaction stays open until pg_dump has taken the snapshot and finished.
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell; the password goes in the environment
            [
                shutil.which("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={target / PG_FILE}",
                f"--dbname={url}",
            ],
            capture_output=True,
            text=True,
            env=env,
        )
    if result.returncode != 0:
        raise BackupError(f"pg_dump 失败：{result.stderr.strip()[:500]}")
    return counts, statuses, revision, {"pg_dump_version": dump_version, "server_version_num": server_num}


# --- restore ----------------------------------------------------------------------------------------------------


REQUIRED = {"format", "format_version", "created_at", "engine", "schema_revision", "tables", "files"}


def read_manifest(source: str | os.PathLike) -> dict:
    """The manifest of the backup in ``source``, checked: ours, whole, and every file matching its checksum."""
    source = Path(source)
    if not source.is_dir():
        raise BackupError(f"找不到备份目录 {source}。")
    path = source / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} 里没有 {MANIFEST}：不是码上联的备份，或备份没有完成。")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{MANIFEST} 已损坏（不是有效的 JSON）。") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST} 不是码上联备份的清单（format 应为 {FORMAT}）。")
    if not isinstance(manifest.get("format_version"), int) or manifest["format_version"] > FORMAT_VERSION:
        raise BackupError(
            f"备份格式版本 {manifest.get('format_version')!r} 不是本程序能读的（{FORMAT_VERSION}）：请用更新的程序恢复。"
        )
    missing = sorted(REQUIRED - set(manifest))
    if missing or not isinstance(manifest["files"], dict) or not isinstance(manifest["tables"], dict):
        raise BackupError(f"{MANIFEST} 不完整，缺少：{', '.join(missing) or 'files/tables'}。")
    database_file = SQLITE_FILE if manifest["engine"] == "sqlite" else PG_FILE
    if database_file not in manifest["files"]:
        raise BackupError(f"{MANIFEST} 没有列出数据库文件 {database_file}。")
    root = source.resolve()
    for name, expected in manifest["files"].items():
        file = (source / name).resolve()
        if root not in file.parents:
            raise BackupError(f"{MANIFEST} 列出的文件 {name} 不在备份目录里。")
        if not file.is_file():
            raise BackupError(f"备份缺少文件 {name}。")
        if not isinstance(expected, dict) or _describe(file) != {
            "bytes": expected.get("bytes"),
            "sha256": expected.get("sha256"),
        }:
            raise BackupError(f"备份文件 {name} 已损坏（大小或校验值与清单不符）。")
    return manifest


def instance_rows() -> dict[str, int]:
    """Tables of this instance that hold rows (absent tables count as empty)."""
    # Through the session's own connection: on SQLite a second connection of this thread would wait for
    # the write gate that the session's transaction holds.
    present = set(inspect(db.session.connection()).get_table_names())
    rows = {}
    for name in table_names():
        if name in present:
            count = db.session.scalar(select(func.count()).select_from(text(f'"{name}"')))
            if count:
                rows[name] = count
    db.session.rollback()
    return rows


def _check_revision(manifest: dict) -> list[str] | None:
    """None when the backup's schema is this code's head; its revision when older (upgraded after the restore)."""
    revision = manifest["schema_revision"]
    if not isinstance(revision, list) or not revision:
        raise BackupError(f"{MANIFEST} 没有数据库结构版本（schema_revision）。")
    if sorted(revision) == _heads():
        return None
    unknown = sorted(set(revision) - _known_revisions())
    if unknown:
        raise BackupError(
            f"备份的数据库结构版本 {', '.join(unknown)} 不在本程序的迁移里（备份来自更新的程序）：请先部署与备份相同或更新的版本。"
        )
    return revision


def restore_backup(source: str | os.PathLike) -> RestoreResult:
    """Restore the backup in ``source`` into this instance, which must be empty; refuses (changing nothing) otherwise."""
    source = Path(source)
    manifest = read_manifest(source)
    engine = db.engine.dialect.name
    if manifest["engine"] != engine:
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupError(
            f"这是 {names.get(manifest['engine'], manifest['engine'])} 的备份，本实例用的是 {names.get(engine, engine)}："
            "只能恢复到同一种数据库。"
        )
    older = _check_revision(manifest)
    if engine == "postgresql":
        major, _line = _client_major("pg_restore")
        wrote = re.search(r"(\d+)", str(manifest.get("pg_dump_version", "")))
        if wrote and major < int(wrote.group(1)):
            raise BackupError(
                f"备份由 {manifest['pg_dump_version']} 写成，本机的 pg_restore 是 {major} 版：请安装不低于它的版本。"
            )
    occupied = instance_rows()
    if occupied:
        listed = "、".join(f"{name} {count}行" for name, count in list(occupied.items())[:5])
        raise BackupError(f"本实例已有数据（{listed}）：只能恢复到空的实例，没有做任何改动。")
    has_photos = any(name.startswith(PHOTOS + "/") for name in manifest["files"])
    folder = photos_dir()
    if has_photos:
        if store_kind() != "files":
            raise BackupError(
                "备份里有照片文件夹，本实例的照片存放在对象存储（PHOTO_STORE=s3）：请以 PHOTO_STORE=files 恢复，"
                "没有做任何改动。"
            )
        if folder.exists() and any(folder.iterdir()):
            raise BackupError(f"照片目录 {folder} 不是空的：只能恢复到空的实例，没有做任何改动。")

    if engine == "sqlite":
        _restore_sqlite(source)
    else:
        _restore_postgresql(source)
    if has_photos:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source / PHOTOS, folder, dirs_exist_ok=True)
    if older is not None:
        from flask_migrate import upgrade

        upgrade()
    restored = {
        name: db.session.scalar(select(func.count()).select_from(text(f'"{name}"'))) for name in manifest["tables"]
    }
    db.session.rollback()
    if older is None and restored != manifest["tables"]:
        differ = sorted(name for name in manifest["tables"] if restored.get(name) != manifest["tables"][name])
        raise BackupError(f"恢复后的行数与清单不符：{', '.join(differ)}。请检查后重新恢复到空实例。")
    return RestoreResult(manifest, older)


def _restore_sqlite(source: Path) -> None:
    """Put the backup's file in place of this instance's (empty) database file, atomically."""
    destination = _sqlite_path()
    destination.parent.mkdir(parents=True, exist_ok=True)
    db.session.remove()
    db.engine.dispose()  # no connection of ours keeps the old file open
    with tempfile.NamedTemporaryFile(dir=destination.parent, prefix=destination.name + ".", delete=False) as tmp:
        with (source / SQLITE_FILE).open("rb") as fh:
            shutil.copyfileobj(fh, tmp, CHUNK)
        tmp.flush()
        os.fsync(tmp.fileno())
    for suffix in ("-wal", "-shm", "-journal"):
        Path(str(destination) + suffix).unlink(missing_ok=True)
    os.replace(tmp.name, destination)


def _restore_postgresql(source: Path) -> None:
    """pg_restore in one transaction; empty tables of a migrated instance are dropped first (``--clean``)."""
    url, env = _libpq(db.engine.url)
    has_tables = bool(
        set(inspect(db.session.connection()).get_table_names()) & (set(table_names()) | {"alembic_version"})
    )
    db.session.remove()
    db.engine.dispose()
    command = [
        shutil.which("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={url}",
    ]
    if has_tables:
        command += ["--clean", "--if-exists"]
    result = subprocess.run([*command, str(source / PG_FILE)], capture_output=True, text=True, env=env)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"pg_restore 失败（没有写入任何数据）：{result.stderr.strip()[:500]}")
