"""Times as people in China read them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask

CHINA = ZoneInfo("Asia/Shanghai")


def china_time(value: datetime | None, fmt: str = "%Y年%m月%d日 %H:%M") -> str:
    """Format an aware UTC datetime in China time."""
    if value is None:
        return ""
    return value.astimezone(CHINA).strftime(fmt)


def iso_or_none(moment: datetime | None) -> str | None:
    """A moment as the JSON API writes it (ISO 8601 with its offset), None for none: one form in every answer."""
    return moment.isoformat() if moment is not None else None


def init_app(app: Flask) -> None:
    """Register the ``china_time`` template filter."""
    app.add_template_filter(china_time, "china_time")
