"""Settings, every one read from the environment with a safe default for local use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    """Read an integer setting, falling back to ``default`` when unset."""
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    """Read a yes/no setting ("1", "true", "yes" mean yes)."""
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def load_secret_key(instance_path: str) -> str:
    """Return ``SECRET_KEY`` from the environment, or one generated once and kept in instance/."""
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        return from_env
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several gunicorn workers start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        import time

        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty")


class Config:
    """The application's settings; ``create_app`` fills the instance-dependent ones."""

    def __init__(self, instance_path: str) -> None:
        self.SECRET_KEY = load_secret_key(instance_path)
        default_db = "sqlite:///" + str(Path(instance_path) / "mashanglian.sqlite3")
        self.SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or default_db
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgres://"):
            self.SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://" + self.SQLALCHEMY_DATABASE_URI[11:]
        elif self.SQLALCHEMY_DATABASE_URI.startswith("postgresql://"):
            self.SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://" + self.SQLALCHEMY_DATABASE_URI[13:]
        default_base = f"http://127.0.0.1:{os.environ.get('PORT') or 5000}"
        self.PUBLIC_BASE_URL = (os.environ.get("PUBLIC_BASE_URL") or default_base).rstrip("/")
        self.REDIS_URL = os.environ.get("REDIS_URL") or None
        # Secure cookies everywhere but plain-http local development.
        self.SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", self.PUBLIC_BASE_URL.startswith("https://"))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        # Request size: photos are limited one by one in items/photos.py; this caps the whole body.
        self.MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)
        self.MAX_FORM_MEMORY_SIZE = _env_int("MAX_FORM_MEMORY_SIZE", 64 * 1024)
        self.MAX_JSON_BODY = _env_int("MAX_JSON_BODY", 64 * 1024)
        self.WTF_CSRF_TIME_LIMIT = None  # a resident may keep the form open for a long time
        # Resident submissions.
        self.ITEM_BODY_MIN_CHARS = _env_int("ITEM_BODY_MIN_CHARS", 5)
        self.ITEM_BODY_MAX_CHARS = _env_int("ITEM_BODY_MAX_CHARS", 1000)
        self.ITEM_MAX_PHOTOS = _env_int("ITEM_MAX_PHOTOS", 3)
        self.PHOTO_MAX_BYTES = _env_int("PHOTO_MAX_BYTES", 5 * 1024 * 1024)
        self.PHOTO_MAX_PIXELS = _env_int("PHOTO_MAX_PIXELS", 40_000_000)
        self.PHOTO_MAX_SIDE = _env_int("PHOTO_MAX_SIDE", 2048)
        # Throttling: at most N submissions per window, per address and per code.
        self.THROTTLE_WINDOW_SECONDS = _env_int("THROTTLE_WINDOW_SECONDS", 3600)
        self.THROTTLE_PER_ADDRESS = _env_int("THROTTLE_PER_ADDRESS", 30)
        self.THROTTLE_PER_CODE = _env_int("THROTTLE_PER_CODE", 200)
        # Looking items up: after this many misses (unknown reference or wrong key) per address
        # in the window, every look-up from that address is refused until the window ends.
        self.LOOKUP_MISSES_PER_ADDRESS = _env_int("LOOKUP_MISSES_PER_ADDRESS", 20)
        self.LOOKUP_WINDOW_SECONDS = _env_int("LOOKUP_WINDOW_SECONDS", 900)
        # Near-identical messages to one deputy within this many minutes are flagged for review.
        self.NEAR_DUPLICATE_MINUTES = _env_int("NEAR_DUPLICATE_MINUTES", 60)
        # Behind a reverse proxy, how many X-Forwarded-For hops to trust (0 = none).
        self.TRUSTED_PROXY_HOPS = _env_int("TRUSTED_PROXY_HOPS", 0)
        self.QR_MAX_SIZE = _env_int("QR_MAX_SIZE", 2000)
        # Item deadlines (items/deadlines.py): days to accept, to answer once accepted, to resolve once
        # answered; counted in working days (Monday–Friday, China time) unless DEADLINE_WORKING_DAYS=0.
        self.ACCEPT_DUE_DAYS = _env_int("ACCEPT_DUE_DAYS", 2)
        self.ANSWER_DUE_DAYS = _env_int("ANSWER_DUE_DAYS", 15)
        self.RESOLVE_DUE_DAYS = _env_int("RESOLVE_DUE_DAYS", 30)
        self.DEADLINE_WORKING_DAYS = _env_bool("DEADLINE_WORKING_DAYS", True)
