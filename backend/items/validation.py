"""Checks on what people type: text fields, mobile numbers, ids, dates, client ids. Shared by the form pages and the API.

One rule each, used by both: the API's schemas (``backend.api_schemas``) describe the same
types and call these functions, so a form and a JSON request are refused alike.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from backend.errors import UserError

# The database's integer: a bigger id cannot exist, and PostgreSQL refuses to compare with one (a 500).
MAX_ID = 2**31 - 1
# The calendar the system works in: dates outside it are typing mistakes or probes, and the far ends
# (0001-01-01, 9999-12-31) overflow when moved between time zones.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)

MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")  # [0-9], not \d: \d also matches Arabic-Indic and other digits
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ID_RE = re.compile(r"^[0-9]{1,10}$")
# Control characters other than tab and newline; U+FFFD marks bytes that were not UTF-8.
_BAD_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
# Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): in a name they
# reverse what follows ("张三\u202e" …), so a one-line field that shows someone's identity refuses them.
BIDI_CONTROLS_RE = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Characters that show nothing: format characters (zero-width space, joiners, BOM), separators, controls,
# unassigned and private-use code points, combining marks with nothing to combine with.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
# Full-width digits and signs as Chinese input methods type them (１３８－１２３４) become ASCII.
_FULL_WIDTH = str.maketrans({chr(0xFF10 + n): str(n) for n in range(10)} | {"＋": "+", "－": "-", "　": " "})


def visible_length(text: str) -> int:
    """How many characters of ``text`` a reader sees (zero-width and other invisible characters not counted)."""
    return sum(1 for char in text if unicodedata.category(char) not in _INVISIBLE_CATEGORIES)


def clean_text(
    value: object,
    field: str,
    label: str,
    *,
    max_chars: int,
    min_chars: int = 0,
    required: bool = False,
    multiline: bool = False,
) -> str:
    """Return the trimmed text, or raise a UserError naming the field in Chinese.

    Length is counted in characters (code points after NFC), as the form shows it; the minimum
    counts only visible ones, and a text with none (six zero-width spaces) is no text. A one-line
    field (a name, a title) refuses bidirectional controls.
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserError("invalid_type", f"{label}格式不正确。", 400, field=field)
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not multiline:
        text = " ".join(text.split())
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON "\ud800"
        raise UserError(
            "invalid_characters", f"{label}中含有无法识别的字符，请删除后重试。", 400, field=field
        ) from None
    if _BAD_CHARS_RE.search(text):
        raise UserError("invalid_characters", f"{label}中含有无法识别的字符，请删除后重试。", 400, field=field)
    if not multiline and BIDI_CONTROLS_RE.search(text):
        raise UserError("invalid_characters", f"{label}中含有改变文字方向的控制字符，请删除后重试。", 400, field=field)
    visible = visible_length(text)
    if not visible:
        if required:
            raise UserError("required", f"请填写{label}。", 400, field=field)
        return ""
    if visible < min_chars:
        raise UserError("too_short", f"{label}太短，请至少写{min_chars}个字。", 400, field=field)
    if len(text) > max_chars:
        raise UserError("too_long", f"{label}最多{max_chars}个字，现在有{len(text)}个字，请删减。", 400, field=field)
    return text


def ascii_digits(text: str) -> str:
    """``text`` with full-width digits, plus and minus signs and spaces made ASCII; other digits stay as they are."""
    return text.translate(_FULL_WIDTH)


def clean_mobile(value: object) -> str:
    """A mainland mobile number (11 ASCII digits starting 13–19), or "" when none was given.

    Full-width digits are taken as typed by a Chinese input method and stored as ASCII; any
    other digits (Arabic-Indic ٠١٢, Devanagari …) are refused.
    """
    raw = clean_text(value, "phone", "手机号", max_chars=20)
    if not raw:
        return ""
    digits = re.sub(r"[\s\-]", "", ascii_digits(raw))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not MOBILE_RE.match(digits):
        raise UserError("invalid_phone", "手机号格式不正确，请填写11位大陆手机号，如13812345678。", 400, field="phone")
    return digits


def parse_id(value: object) -> int | None:
    """A row id: a JSON integer or a string of ASCII digits ("12", as forms send it), 1 to ``MAX_ID``; else None.

    Strict on purpose: ``True``, ``2.5``, ``1e999``, ``"٢"``, ``"+3"`` and ``" 3"`` are not ids.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and ID_RE.match(value):
        number = int(value)
    else:
        return None
    return number if 0 < number <= MAX_ID else None


def clean_id(value: object, field: str, message: str, code: str | None = None) -> int:
    """:func:`parse_id`, or a 400 UserError on ``field`` (code ``invalid_<field>`` unless given)."""
    number = parse_id(value)
    if number is None:
        raise UserError(code or f"invalid_{field}", message, 400, field=field)
    return number


def check_date_window(day: date, field: str, message: str, code: str | None = None) -> date:
    """``day`` when it lies between ``EARLIEST_DATE`` and ``LATEST_DATE``, else a 400 UserError on ``field``."""
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise UserError(code or f"invalid_{field}", message, 400, field=field)
    return day


def parse_day(raw: object, field: str, label: str) -> date:
    """A date typed as YYYY-MM-DD inside the system's calendar, or a 400 UserError ``invalid_<field>``."""
    message = f"{label}不是有效的日期，请写成2026-03-01这样。"
    text = raw.strip() if isinstance(raw, str) else ""
    if len(text) != 10 or not text.isascii():
        raise UserError(f"invalid_{field}", message, 400, field=field)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"invalid_{field}", message, 400, field=field) from None
    return check_date_window(day, field, message)


def clean_client_id(value: object) -> str | None:
    """The client's idempotency key (16–64 URL-safe characters), or None when not given."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not CLIENT_ID_RE.match(value):
        raise UserError("invalid_client_id", "client_id 应为16到64位字母、数字、-或_。", 400, field="client_id")
    return value


def parse_bool(value: object) -> bool:
    """Read a checkbox or JSON boolean."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in {"1", "true", "on", "yes", "y"}
