"""Station administration: stations, reception calendars, deputies, departments, imports and printing.

Who may manage what is decided in ``backend.access``; the operations in ``stations``, ``deputies``,
``departments`` and ``importer`` validate first and write nothing when they refuse (a
``UserError`` with a Chinese message and the field it concerns), then write, audit and
flush. The request (``backend.routes.admin``) is the single commit point.

Shared here: the phone numbers staff type for deputies, stations and departments, which
may be a mainland mobile or a landline; writing an edit form's changes with its audit row; and
replacing a station's or deputy's code.
"""

from __future__ import annotations

import re

from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import ascii_digits, clean_mobile, clean_text
from backend.models import Station
from backend.qr.codes import current_code, rotate_code

PHONE_MAX_CHARS = 30  # Deputy.phone, Station.contact_phone, Department.contact_phone
# 0731-26200101, 073126200101, (0731)26200101, 010-12345678-801 (extension)
_LANDLINE_RE = re.compile(
    r"^\(?(0[0-9]{2,3})\)?[\s-]?([0-9]{7,8})(?:[\s-]?(?:转|-|ext\.?)\s?([0-9]{1,6}))?$", re.IGNORECASE
)  # [0-9], not \d: other scripts' digits are not a phone number
PHONE_FORMAT_HINT = "请填写11位手机号（如13812345678）或带区号的固定电话（如0731-26200101）。"


def clean_phone(value: object, field: str = "phone", label: str = "联系电话") -> str:
    """A mainland mobile (13812345678) or a landline with area code (0731-26200101), or "" when empty.

    Mobiles are kept as 11 digits, landlines as ``区号-号码`` (and ``-分机``).
    """
    raw = clean_text(value, field, label, max_chars=PHONE_MAX_CHARS)
    if not raw:
        return ""
    compact = ascii_digits(raw).replace("（", "(").replace("）", ")").replace("－", "-").replace("—", "-")
    digits_only = re.sub(r"[\s\-]", "", compact)
    if digits_only.startswith(("1", "+86", "0086")):
        try:
            return clean_mobile(digits_only)
        except UserError:
            raise UserError("invalid_phone", f"{label}格式不正确：{PHONE_FORMAT_HINT}", 400, field=field) from None
    match = _LANDLINE_RE.match(compact.strip())
    if match is None:
        raise UserError("invalid_phone", f"{label}格式不正确：{PHONE_FORMAT_HINT}", 400, field=field)
    area, number, extension = match.groups()
    return f"{area}-{number}" + (f"-{extension}" if extension else "")


def apply_changes(user, obj, values: dict, action: str, object_type: str) -> list[str]:
    """Write the ``values`` that differ onto ``obj``, flush, audit ``action`` with before and after; their names."""
    changed = {name: value for name, value in values.items() if getattr(obj, name) != value}
    if not changed:
        return []
    before = {name: getattr(obj, name) for name in changed}
    for name, value in changed.items():
        setattr(obj, name, value)
    db.session.flush()
    record_audit(
        action, user=user, object_type=object_type, object_id=obj.id, data={"before": before, "after": changed}
    )
    return list(changed)


def rotate_owner_code(user, owner, reason: str):
    """Retire the code of ``owner`` (a station or a deputy) and issue a new one; audited with ``reason``."""
    old = current_code(owner)
    new = rotate_code(owner, reason)
    record_audit(
        "code_rotated",
        user=user,
        object_type="station" if isinstance(owner, Station) else "deputy",
        object_id=owner.id,
        data={"old_code_id": old.id if old else None, "new_code_id": new.id, "reason": reason},
    )
    return new
