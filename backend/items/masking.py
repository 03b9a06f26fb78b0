"""How a resident's contact is hidden from everyone not handling their item: 王**, 138****1234.

The contact fields are masked by :func:`mask_name` and :func:`mask_phone`. A resident also
writes their number into the message itself, and not always as eleven digits together: with
spaces or dashes (``138 1234 5678``, ``138-1234-5679``), dots, full-width digits from a Chinese
keyboard (``１３８１２３４５６７８``), or after ``+86`` / ``0086`` / ``(+86)``.
:func:`mask_phones_in_text` finds all of these with one pattern and masks each the way the
contact field is masked. It leaves longer runs of digits alone — an 18-digit ID number, a bank
card, an order number — because a mobile number never sits inside one: a match may not touch
another digit on either side.

Used wherever the resident's contact would be masked: the monthly export, the department's
page, the receipt (回执) a claim link opens, and any other page shown to someone who is not
handling the item.
"""

from __future__ import annotations

import re
import unicodedata

_DIGIT = "0-9\uff10-\uff19"  # ASCII and full-width digits
# What people put between the groups of a number: spaces (also no-break and ideographic), hyphens and
# dashes of every width, dots, middle dots.
_SEPARATOR = r"[\s\-.\u00b7\u2010-\u2015\u2212\u30fb\uff0d\uff0e]"
_GAP = _SEPARATOR + "{0,3}"  # "138 - 1234 - 5678" has three between groups
_PLUS_OR_00 = "(?:[+\uff0b]|[0\uff10]{2})"
_EIGHTY_SIX = "[8\uff18][6\uff16]"
_COUNTRY_CODE = (
    rf"(?:[(\uff08]{_PLUS_OR_00}?{_EIGHTY_SIX}[)\uff09]{_GAP}"  # (+86) 138…
    rf"|(?:{_PLUS_OR_00}[ \u3000]?)?{_EIGHTY_SIX}{_GAP})"  # +86 138…, 0086-138…, 86138…
)
MOBILE_IN_TEXT = re.compile(
    rf"(?<![{_DIGIT}])"
    rf"(?P<prefix>{_COUNTRY_CODE})?"
    rf"(?P<number>[1\uff11][3-9\uff13-\uff19](?:{_GAP}[{_DIGIT}]){{9}})"
    rf"(?![{_DIGIT}])"
)


def mask_phone(phone: str) -> str:
    """138****1234: how a number is shown to anyone not handling the item."""
    if len(phone) == 11:
        return f"{phone[:3]}****{phone[-4:]}"
    return "****" if phone else ""


def mask_name(name: str) -> str:
    """张** : how a name is shown to anyone not handling the item."""
    return name[0] + "*" * min(len(name) - 1, 2) if name else ""


def _masked_match(match: re.Match) -> str:
    digits = unicodedata.normalize("NFKC", re.sub(_SEPARATOR, "", match["number"]))
    return (match["prefix"] or "") + mask_phone(digits)


def mask_phones_in_text(text: str) -> str:
    """Every mainland mobile number written inside ``text``, masked as the contact number is (138****1234)."""
    return MOBILE_IN_TEXT.sub(_masked_match, text) if text else text


def mask_message(text: str, contact_name: str = "") -> str:
    """A message as someone not handling the item may read it: mobile numbers masked, and the
    resident's own name (from the contact field, two characters or more) masked where the text repeats it."""
    masked = mask_phones_in_text(text)
    if contact_name and len(contact_name) >= 2:
        masked = masked.replace(contact_name, mask_name(contact_name))
    return masked
