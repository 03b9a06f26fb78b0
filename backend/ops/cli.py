"""``flask doctor``, ``flask backup DIR``, ``flask restore DIR``, ``flask retention run``, ``flask region create``."""

from __future__ import annotations

import sys
from datetime import date

import click
from flask import current_app
from flask.cli import AppGroup

from backend.ops import doctor


@click.command("doctor")
@click.option("--offline", is_flag=True, help="不从本机访问对外地址（服务器不能上外网时）。")
def doctor_command(offline: bool) -> None:
    """Check the settings that matter in production; exit 1 when printed codes or notices would fail."""
    findings = doctor.diagnose(offline=offline)
    config = current_app.config
    click.echo(f"码上联 配置检查（{doctor.hostname()}，对外地址 {config['PUBLIC_BASE_URL']}）")
    for finding in findings:
        mark = "✗ 问题" if finding.level == "problem" else "! 提醒"
        click.echo(f"\n{mark} [{finding.check}] {finding.message}")
        if finding.fix:
            click.echo(f"  怎么改：{finding.fix}")
        if finding.breaks:
            click.echo("  后果：打印的二维码或微信通知会失败。")
    problems = sum(1 for f in findings if f.level == "problem")
    warnings = len(findings) - problems
    breaking = sum(1 for f in findings if f.breaks)
    if not findings:
        click.echo("\n全部检查通过。")
    else:
        click.echo(f"\n共 {problems} 个问题、{warnings} 个提醒；其中 {breaking} 个会让二维码或通知失败。")
    if breaking:
        sys.exit(1)


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=str))
def backup_command(directory: str) -> None:
    """Write a consistent snapshot of the database and the photo files with a manifest into DIRECTORY (new or empty).

    With photos in S3 (PHOTO_STORE=s3) the backup holds the database only: the bucket is backed up by the
    object storage itself (turn on its versioning, and replication or the provider's bucket backup)."""
    from backend.ops import backup

    try:
        manifest = backup.create_backup(directory)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    items = manifest["tables"].get("items", 0)
    click.echo(
        f"备份完成：{directory}（{manifest['engine']}，结构版本 {', '.join(manifest['schema_revision'])}，"
        f"留言 {items} 件，{len(manifest['files'])} 个文件；照片：{'在备份里' if manifest['photos'] == 'folder' else '在对象存储里，不在备份中（由存储桶的版本控制或复制备份）'}）"
    )


@click.command("restore")
@click.argument("directory", type=click.Path(file_okay=False, path_type=str))
def restore_command(directory: str) -> None:
    """Restore the backup in DIRECTORY into this instance, which must be empty (stop the server and workers first).

    Photo files come back into the files photo store; with photos in S3 the rows point into the bucket as it
    is (bring deleted objects back from the bucket's versions first if needed)."""
    from backend.ops import backup

    try:
        result = backup.restore_backup(directory)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    manifest = result.manifest
    click.echo(
        f"恢复完成：{directory}（备份于 {manifest['created_at']}，留言 {manifest['tables'].get('items', 0)} 件）"
    )
    if result.upgraded_from:
        click.echo(f"备份的结构版本 {', '.join(result.upgraded_from)} 较旧，已升级到当前版本。")


retention_cli = AppGroup("retention", help="按同意书承诺的保存期限删除群众的个人信息。")


@retention_cli.command("run")
@click.option("--as-of", "as_of", default=None, help="按哪一天执行（YYYY-MM-DD，北京时间），默认今天；不能晚于今天。")
def retention_run_command(as_of: str | None) -> None:
    """Anonymise the items closed more than RETENTION_DAYS before the day (the outbox worker runs this daily)."""
    from backend.errors import UserError
    from backend.extensions import db
    from backend.items import retention

    day = None
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of.strip())
        except ValueError:
            raise click.ClickException(f"--as-of 应为日期，例如 2026-12-03，而不是“{as_of}”；未做任何更改。") from None
    try:
        count = retention.run_retention(day, by="cli")
        db.session.commit()
    except UserError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    click.echo(
        f"保存期限已过的留言：本次匿名化 {count} 件（按 {(day or retention.today_in_china()).isoformat()} 计）。"
    )


@click.group("photos")
def photos_cli() -> None:
    """The photo store (files under the instance folder, or an S3 bucket)."""


@photos_cli.command("sweep")
def photos_sweep_command() -> None:
    """Remove stored photos no item names, older than an hour (a process died between writing a photo and
    committing its item). Safe to run at any time, e.g. daily from cron."""
    from backend.items.photo_store import sweep_orphans

    removed = sweep_orphans()
    click.echo(f"已清理 {removed} 张没有对应留言的照片（写入超过一小时）。")


region_cli = AppGroup("region", help="本系统的最上级地区（县、市或省）。")


@region_cli.command("create")
@click.option("--code", required=True, help="行政区划代码，6位数字，如 430225。")
@click.option("--name", required=True, help="地区名称，如 炎陵县。")
@click.option("--level", default="county", show_default=True, help="county（县）、city（市）或 province（省）。")
def region_create_command(code: str, name: str, level: str) -> None:
    """Create the install's own region, so that its first supervisor can be made and set up the rest in the browser."""
    from backend.admin.regions import create_root_region
    from backend.errors import UserError
    from backend.extensions import db

    try:
        region = create_root_region(code, name, level)
    except UserError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc.message}未做任何更改。") from None
    db.session.commit()
    click.echo(
        f"已建立 {region.name}（{region.code}）。下一步：flask user create --role supervisor --region {region.code} 用户名"
    )
