"""Paging of every list, pages and API alike: the limits, the reading of ``?page=`` and ``?per_page=``, and the
arithmetic. Pages clamp what they are given (a hand-edited link still shows a page); the API refuses it with a
400 naming the parameter (``PAGING_ERRORS``, through the query schemas in backend/api_schemas)."""

from __future__ import annotations

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 50
# A bound on the page number, so the OFFSET it makes stays an integer every engine takes (page=1e999 is refused
# or clamped, never a 500); 100,000 pages of 50 is more than any list here holds.
MAX_PAGE = 100_000

PAGING_ERRORS: dict[str, tuple[str, str]] = {
    "page": ("invalid_page", f"page 须为 1 到 {MAX_PAGE} 之间的整数。"),
    "per_page": ("invalid_per_page", f"per_page 须为 1 到 {MAX_PER_PAGE} 之间的整数。"),
}


def _int_or_none(value: object) -> int | None:
    """``value`` as a whole number written in ASCII digits (a sign allowed), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isascii() and value.strip().lstrip("+-").isdigit():
        return int(value.strip()[:20])  # more digits than any bound: clamped below anyway
    return None


def page_number(value: object) -> int:
    """A page's 1-based page number from its query string: 1 when missing or bad, clamped to 1…``MAX_PAGE``."""
    number = _int_or_none(value)
    return 1 if number is None else min(max(number, 1), MAX_PAGE)


def offset(page: int, per_page: int) -> int:
    """The rows before ``page``."""
    return (page - 1) * per_page


def page_count(total: int, per_page: int) -> int:
    """How many pages ``total`` rows make (at least one: an empty list is one empty page)."""
    return max(1, -(-total // per_page))
