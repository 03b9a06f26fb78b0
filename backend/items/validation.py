"""Checks on what residents type: text fields, mobile numbers, client ids. Shared by the form and the API."""

from __future__ import annotations

import re
import unicodedata

from backend.errors import UserError

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Control characters other than tab and newline; U+FFFD marks bytes that were not UTF-8.
_BAD_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


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

    Length is counted in characters (code points after NFC), as the form shows it.
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
    if not text:
        if required:
            raise UserError("required", f"请填写{label}。", 400, field=field)
        return ""
    if len(text) < min_chars:
        raise UserError("too_short", f"{label}太短，请至少写{min_chars}个字。", 400, field=field)
    if len(text) > max_chars:
        raise UserError("too_long", f"{label}最多{max_chars}个字，现在有{len(text)}个字，请删减。", 400, field=field)
    return text


def clean_mobile(value: object) -> str:
    """A mainland mobile number (11 digits starting 13–19), or "" when none was given."""
    raw = clean_text(value, "phone", "手机号", max_chars=20)
    if not raw:
        return ""
    digits = re.sub(r"[\s\-]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not MOBILE_RE.match(digits):
        raise UserError("invalid_phone", "手机号格式不正确，请填写11位大陆手机号，如13812345678。", 400, field="phone")
    return digits


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
