"""The audit log: one append-only row per staff action and per reveal of personal data."""

from __future__ import annotations

from typing import Any

from flask import has_request_context

from backend import database
from backend.extensions import db
from backend.models import AuditEntry, StaffUser


def record_audit(
    action: str,
    *,
    user: StaffUser | None = None,
    object_type: str = "",
    object_id: object = "",
    data: dict | None = None,
    keep: bool = False,
) -> AuditEntry:
    """Write an audit row in the caller's transaction (flushes; the caller commits).

    Refusals are audited too (a deputy opening another deputy's item): ``keep=True`` keeps the
    row even when the request answers with an error (``database.keep_through_error``: the
    request's commit point makes it again after the error's rollback). An audit row is a write in any request,
    a GET's included (``database.writing``: a GET's read transaction ends here and a write
    one begins).
    """
    address = ""
    if has_request_context():
        from backend.security import client_address

        address = client_address()
    values = {
        "staff_user_id": user.id if user is not None else None,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "address": address,
        "data": data or {},
    }

    def write() -> AuditEntry:
        entry = AuditEntry(**values)
        db.session.add(entry)
        db.session.flush()
        return entry

    with database.writing():
        entry = write()
    if keep:
        database.keep_through_error(write)
    return entry


def record_added(
    row: Any, action: str, *, user: StaffUser | None = None, object_type: str, data: dict | None = None
) -> AuditEntry:
    """Add a new row and audit its creation: the flush gives the row the id its audit row names."""
    db.session.add(row)
    db.session.flush()
    return record_audit(action, user=user, object_type=object_type, object_id=row.id, data=data)
