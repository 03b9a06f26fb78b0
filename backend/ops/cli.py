"""``flask doctor``, ``flask backup DIR``, ``flask restore DIR``."""

from __future__ import annotations

import sys

import click
from flask import current_app

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
