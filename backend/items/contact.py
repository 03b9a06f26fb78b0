"""A resident's contact on staff pages: masked until a handler reveals it, and every reveal audited."""

from __future__ import annotations

from backend.audit import record_audit
from backend.items.masking import mask_name, mask_phone
from backend.models import Item, StaffUser


def masked_contact(item: Item) -> dict:
    """The resident's name and number as shown before a reveal: 王** / 138****1234."""
    return {"name": mask_name(item.contact_name), "phone": mask_phone(item.contact_phone)}


def revealed_contact(item: Item, user: StaffUser) -> dict:
    """The resident's full name and number; when there are any, a ``reveal_contact`` audit row, kept whatever
    the answer (the request commits it before the page goes out, or makes it again after an error's rollback)."""
    revealed = {"name": item.contact_name, "phone": item.contact_phone}
    if item.has_contact:
        record_audit(
            "reveal_contact",
            user=user,
            object_type="item",
            object_id=item.id,
            data={"ref": item.ref, "fields": [k for k, v in revealed.items() if v]},
            keep=True,
        )
    return revealed
