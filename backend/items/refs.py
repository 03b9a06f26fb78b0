"""Reference numbers residents can read out over the phone, and the keys that go with them."""

from __future__ import annotations

import hmac
import re
import secrets

from flask import current_app

# Digits and capitals without the look-alikes 0/O, 1/I/L and U: 30 symbols.
REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REF_LENGTH = 8  # 30^8 ≈ 6.6e11 references
ACCESS_KEY_LENGTH = 17  # 30^17 ≈ 2^83.4: at least 80 random bits, typeable without look-alikes
_REF_RE = re.compile(rf"^[{REF_ALPHABET}]{{{REF_LENGTH}}}$")


_UNBIASED_LIMIT = 256 - 256 % len(REF_ALPHABET)  # bytes at or above it would favour the first symbols


def _random_symbols(length: int) -> str:
    """``length`` uniformly random symbols of the alphabet, from one read of the system's random source."""
    symbols: list[str] = []
    while len(symbols) < length:
        symbols.extend(
            REF_ALPHABET[b % len(REF_ALPHABET)] for b in secrets.token_bytes(length * 2) if b < _UNBIASED_LIMIT
        )
    return "".join(symbols[:length])


def new_ref() -> str:
    """A random reference number (stored without the display hyphen)."""
    return _random_symbols(REF_LENGTH)


def new_access_key() -> str:
    """A random access key for looking an item up without an account (same alphabet as references)."""
    return _random_symbols(ACCESS_KEY_LENGTH)


def format_ref(ref: str) -> str:
    """Show a reference in two groups of four, as read out over the phone: 7K4P-9QXD."""
    return f"{ref[:4]}-{ref[4:]}" if len(ref) == REF_LENGTH else ref


def normalize_ref(raw: str) -> str | None:
    """Parse what a person typed (any case, spaces, hyphens); None when it cannot be a reference."""
    if not isinstance(raw, str):
        return None
    cleaned = re.sub(r"[\s\-_]", "", raw).upper()
    return cleaned if _REF_RE.match(cleaned) else None


def keys_match(given: str | None, expected: str) -> bool:
    """Compare access keys in constant time; an item whose key is void ("": entered in person, not yet claimed) matches nothing."""
    if not expected or not isinstance(given, str) or not given or len(given) > 64:
        return False
    typed = re.sub(r"[\s\-_]", "", given).upper()  # as typed from a notification or read out
    return hmac.compare_digest(typed.encode("utf-8", "replace"), expected.encode())


def tracking_url(ref: str, access_key: str) -> str:
    """The tracking page's absolute address, key included: what the confirmation page, the API's answers and
    the service account's notices all hand the resident. Built from the route (``resident.track``) on a bare
    URL map, since the outbox worker that sends notices has no request to build it from."""
    path = current_app.url_map.bind("").build("resident.track", {"ref": ref, "k": access_key})
    return current_app.config["PUBLIC_BASE_URL"] + path
