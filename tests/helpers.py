"""Small helpers shared by tests."""

from __future__ import annotations

import io
import re

from PIL import Image


def csrf_token_from(html: str) -> str:
    """The CSRF token a rendered form carries."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form has no CSRF token"
    return match.group(1)


def hidden_value(html: str, name: str) -> str:
    """The value of a hidden input."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"form has no hidden {name}"
    return match.group(1)


def jpeg_bytes(size=(40, 30), color=(200, 30, 30)) -> bytes:
    """A small real JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def stored_photo(item_id: int, position: int = 0, data: bytes | None = None, sha256: str = "x"):
    """An ``ItemPhoto`` (not yet added) whose bytes (a small real JPEG unless given) are in the app's photo store."""
    from backend.items.photo_store import JPEG, new_key, photo_store
    from backend.models import ItemPhoto

    data = jpeg_bytes() if data is None else data
    key = new_key()
    photo_store().put(key, data, JPEG)
    return ItemPhoto(
        item_id=item_id, position=position, width=40, height=30, storage_key=key, size=len(data), sha256=sha256
    )


def give_deputy_photo(deputy, data: bytes | None = None) -> None:
    """Give ``deputy`` a portrait (a small real JPEG unless given) in the app's photo store, as version 1."""
    from backend.items.photo_store import DEPUTY_PREFIX, store_jpeg

    deputy.photo_key = store_jpeg(jpeg_bytes() if data is None else data, DEPUTY_PREFIX)
    deputy.photo_version = 1
