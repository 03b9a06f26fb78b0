"""Looking an item up by its reference and the last four digits of the phone number the resident gave.

Why this exists: most residents keep the reference (it is short, read out, written down) but lose the
17-character key. Why it is weaker, and what makes it safe enough:

- The key has about 83 random bits; four digits have 10,000 values. What stops guessing is the
  throttle, not the digits: a miss counts against the asking address (``LOOKUP_MISSES_PER_ADDRESS``
  per ``LOOKUP_WINDOW_SECONDS``, shared with key look-ups) AND against the reference itself, from
  every address at once (``LOOKUP_PHONE_MISSES_PER_REF`` per ``LOOKUP_PHONE_WINDOW_SECONDS``: 10 a
  day by default, so 10,000 guesses take years even from many addresses, and one day's guesses
  find the digits with a chance of 1 in 1,000). The per-reference limit can lock the phone route
  of one item for a day; the key link keeps working.
- A wrong pair answers exactly like an unknown reference: the same 404, the same body, and the
  same path (the item is read, the digits compared in constant time — against nothing when
  there is no item or no phone — and the miss counted on both counters and committed).
- What it opens is less than the key: the item's status and public timeline, read only. The
  deputy and the staff handling the item see the resident's phone number, and they must never
  hold what rates or writes as the resident (PRODUCT.md: "no staff member ever holds a key that
  rates"), so the key is never shown to a phone look-up and rating, answering back, withdrawing
  and the notices stay with the key.
- An item without a phone number (none given, or erased), and an item entered in person that the
  resident has not claimed yet, cannot be found this way.
"""

from __future__ import annotations

import hmac
import re

from sqlalchemy import select

from backend import throttle
from backend.extensions import db
from backend.items.refs import normalize_ref
from backend.items.validation import ascii_digits
from backend.models import Item

PHONE_LAST4_RE = re.compile(r"^[0-9]{4}$")
_NO_PHONE = "\x00" * 4  # what an item without a phone is compared with: never four digits


def clean_phone_last4(value: object) -> str | None:
    """Four ASCII digits from what a person typed (full-width digits and spaces allowed), else None."""
    if not isinstance(value, str) or len(value) > 20:
        return None
    digits = re.sub(r"\s", "", ascii_digits(value))
    return digits if PHONE_LAST4_RE.match(digits) else None


def _last4_of(item: Item | None) -> str:
    """The last four digits of the item's phone, or what no typed digits can match."""
    if item is None or item.awaits_claim or len(item.contact_phone) < 4:
        return _NO_PHONE
    return item.contact_phone[-4:]


def find_item_by_phone(ref: object, phone_last4: object, address: str) -> Item | None:
    """The item with this reference when ``phone_last4`` ends the phone number its resident gave; None otherwise.

    Throttled per address and per reference before and after (see the module's docstring); the
    caller shows what it finds read only, never with the access key.
    """
    normalized = normalize_ref(ref) if isinstance(ref, str) else None
    throttle.guard_lookup(address, phone_ref=normalized)
    item = db.session.scalar(select(Item).where(Item.ref == normalized)) if normalized else None
    typed = clean_phone_last4(phone_last4) or ""
    if not hmac.compare_digest(typed.encode(), _last4_of(item).encode()):
        throttle.register_failed_lookup(address, phone_ref=normalized)
        return None
    return item
