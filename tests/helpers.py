"""Small helpers shared by tests."""

from __future__ import annotations

import io
import os
import re
import time
from typing import NoReturn

import pytest
from PIL import Image

# The tests' password hash method (``PASSWORD_HASH_METHOD``): Werkzeug's scrypt at a trivial cost, where
# production's costs ~70 ms of CPU a hash or a check; the suites log in thousands of times.
# tests/test_passwords.py checks that production's method is the default and works end to end.
TEST_PASSWORD_HASH_METHOD = "scrypt:128:8:1"  # the least N OpenSSL accepts with werkzeug's memory bound


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


def missing_tool(message: str) -> NoReturn:
    """A test needs a tool or service this machine lacks (Chromium, poppler, Node, Redis, the CJK font): under
    CI=true that is a failure, since CI must have everything; locally the test is skipped and `make test` lists
    the reason (pytest -rs), so a missing tool never passes silently as a green run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


def redis_or_skip(url: str) -> None:
    """Fail (CI) or skip (locally) unless a Redis answers at ``url``."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError:
        missing_tool(f"Redis does not answer at {url} (start redis-server, or set TEST_REDIS_URL)")


def wait_until(condition, what: str, seconds: float = 60, describe=lambda: "", progress=None) -> None:
    """Poll ``condition`` until it holds: tests wait on what happened, never for a fixed time. ``seconds`` is only
    the point past which the wait is a failure (generous, so a loaded machine is slow, never wrong); with
    ``progress`` (a callable whose value changes as work gets done) it counts from the last change, so a long job
    fails only when it stalls. The message names ``what`` was awaited, with ``describe()`` (e.g. workers' logs)."""
    deadline = time.monotonic() + seconds
    seen = progress() if progress else None
    while not condition():
        if progress is not None and (now := progress()) != seen:
            seen, deadline = now, time.monotonic() + seconds
        if time.monotonic() > deadline:
            raise AssertionError(f"no progress for {seconds} s waiting for {what}\n{describe()}")
        time.sleep(0.02)
