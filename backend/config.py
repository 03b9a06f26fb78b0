"""Settings, every one read from the environment with a safe default for local use."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit


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


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is this machine only: ``localhost``, 127.0.0.0/8 or ::1."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_wechat_sandbox(config) -> None:
    """Refuse to start pointed at the local WeChat sandbox on a public address: ``make run`` serves the sandbox
    at the same ``PUBLIC_BASE_URL``, and it lists every openid and mints login codes for any of them."""
    if not config.get("WECHAT_SANDBOX") or config.get("WECHAT_SANDBOX_STAGING"):
        return
    if is_loopback_url(config["PUBLIC_BASE_URL"]):
        return
    raise RuntimeError(
        f"WECHAT_SANDBOX=1 but PUBLIC_BASE_URL={config['PUBLIC_BASE_URL']} is not a loopback address. The local "
        "WeChat sandbox lists every openid and mints login codes for any of them: unset WECHAT_SANDBOX in "
        "production, or on a staging server that only testers reach set WECHAT_SANDBOX_STAGING=1 as well."
    )


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
        # Werkzeug's multipart parser reads 64 KiB chunks and refuses a part once its buffer plus
        # one chunk passes this: it must be well above 64 KiB or every real photo is a 413.
        # Text fields are limited by validation; url-encoded bodies by MAX_URLENCODED_BODY.
        self.MAX_FORM_MEMORY_SIZE = _env_int("MAX_FORM_MEMORY_SIZE", 1024 * 1024)
        self.MAX_URLENCODED_BODY = _env_int("MAX_URLENCODED_BODY", 64 * 1024)
        self.MAX_JSON_BODY = _env_int("MAX_JSON_BODY", 64 * 1024)
        self.WTF_CSRF_TIME_LIMIT = None  # a resident may keep the form open for a long time
        # Resident submissions.
        self.ITEM_BODY_MIN_CHARS = _env_int("ITEM_BODY_MIN_CHARS", 5)
        self.ITEM_BODY_MAX_CHARS = _env_int("ITEM_BODY_MAX_CHARS", 1000)
        self.ITEM_MAX_PHOTOS = _env_int("ITEM_MAX_PHOTOS", 3)
        self.PHOTO_MAX_BYTES = _env_int("PHOTO_MAX_BYTES", 5 * 1024 * 1024)
        self.PHOTO_MAX_PIXELS = _env_int("PHOTO_MAX_PIXELS", 40_000_000)
        self.PHOTO_MAX_SIDE = _env_int("PHOTO_MAX_SIDE", 2048)
        # Photos decoded at once per process (a 40 MP PNG takes a few hundred MB), and how long one waits its turn.
        self.PHOTO_DECODES_PER_PROCESS = _env_int("PHOTO_DECODES_PER_PROCESS", 1)
        self.PHOTO_DECODE_WAIT_SECONDS = _env_int("PHOTO_DECODE_WAIT_SECONDS", 20)
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
        # A department's link (/d/…) stops working this many days after its forward is answered and the
        # item resolved (the later of the two; a renewal by the deputy starts the days again).
        self.DEPARTMENT_LINK_GRACE_DAYS = _env_int("DEPARTMENT_LINK_GRACE_DAYS", 7)
        # Items closed more than this many days ago are anonymised (backend/items/retention.py): the consent
        # text on the form promises deletion three years (1,095 days) after an item is closed.
        self.RETENTION_DAYS = _env_int("RETENTION_DAYS", 1095)
        # The most days one request of a department for more time may add to its due date, unless the
        # station sets its own (stations.department_extension_max_days).
        self.DEPARTMENT_EXTENSION_MAX_DAYS = _env_int("DEPARTMENT_EXTENSION_MAX_DAYS", 15)
        # WeChat subscribe messages (backend/outbox): purpose → template id, its kind and its keys, each key mapped
        # to the value the notification fills in (ref, status, summary, deputy, at). Override with WECHAT_TEMPLATES
        # as JSON; the key names and their order come from the templates chosen in the mini-program's console.
        # "kind": "one_time" (one acceptance, one message; the default) or "long_term" (one acceptance, every
        # message until the user switches it off: 政务民生 mini-programs may use long-term templates).
        import json

        self.WECHAT_TEMPLATES = (
            json.loads(os.environ["WECHAT_TEMPLATES"])
            if os.environ.get("WECHAT_TEMPLATES")
            else {
                "item_progress": {  # 办理进度通知: received, accepted, forwarded, declined …
                    "id": "tpl-item-progress",
                    "kind": "long_term",
                    "fields": {"character_string1": "ref", "phrase2": "status", "thing3": "summary", "time4": "at"},
                },
                "item_answered": {  # 留言回复通知: the beginning of the deputy's answer
                    "id": "tpl-item-answered",
                    "kind": "one_time",
                    "fields": {"character_string1": "ref", "thing2": "deputy", "thing3": "summary", "time4": "at"},
                },
                "item_resolved": {  # 办结评价提醒: resolved, please rate
                    "id": "tpl-item-resolved",
                    "kind": "one_time",
                    "fields": {"character_string1": "ref", "phrase2": "status", "thing3": "summary", "time4": "at"},
                },
                "deputy_task": {  # 待办提醒 for deputies: new, overdue, reopened, department replied
                    "id": "tpl-deputy-task",
                    "kind": "long_term",
                    "fields": {"character_string1": "ref", "phrase2": "status", "thing3": "summary", "time4": "at"},
                },
            }
        )
        # The service account's subscribe notices (订阅通知, sent with bizsend to an H5 resident's official-account
        # openid): purpose → template, as WECHAT_TEMPLATES. A resident purpose without its own template uses
        # item_progress's, so one long-term acceptance on the confirmation page covers every step. JSON to override.
        self.WECHAT_MP_TEMPLATES = (
            json.loads(os.environ["WECHAT_MP_TEMPLATES"])
            if os.environ.get("WECHAT_MP_TEMPLATES")
            else {
                "item_progress": {  # 办理进度通知 (long-term, 政务民生)
                    "id": "tpl-oa-item-progress",
                    "kind": "long_term",
                    "fields": {"character_string1": "ref", "phrase2": "status", "thing3": "summary", "time4": "at"},
                },
            }
        )
        # The token of WeChat's message push (消息推送) to <PUBLIC_BASE_URL>/wechat/push, as set in the console;
        # unset, every push is refused (nothing can check its signature).
        self.WECHAT_PUSH_TOKEN = os.environ.get("WECHAT_PUSH_TOKEN") or None
        # Deputies' notices within this many seconds of the last one become one notice (backend/outbox/queue.py).
        self.NOTICE_COALESCE_SECONDS = float(os.environ.get("NOTICE_COALESCE_SECONDS") or 3600)
        # A deputy is reminded of an item this many hours before its deadline (0: never).
        self.NOTICE_DUE_SOON_HOURS = float(os.environ.get("NOTICE_DUE_SOON_HOURS") or 24)
        # Outbox delivery (backend/outbox/worker.py). The lease must outlast one WeChat call (its timeout).
        self.OUTBOX_LEASE_SECONDS = float(os.environ.get("OUTBOX_LEASE_SECONDS") or 60)
        self.OUTBOX_MAX_ATTEMPTS = _env_int("OUTBOX_MAX_ATTEMPTS", 8)
        self.OUTBOX_BACKOFF_BASE_SECONDS = float(os.environ.get("OUTBOX_BACKOFF_BASE_SECONDS") or 5)
        self.OUTBOX_BACKOFF_MAX_SECONDS = float(os.environ.get("OUTBOX_BACKOFF_MAX_SECONDS") or 3600)
        # After 45009 nothing is sent until WeChat's daily quota resets: unset (the default) means the next
        # midnight China time; a number of seconds overrides it (tests, demos).
        self.OUTBOX_QUOTA_HOLD_SECONDS = (
            float(os.environ["OUTBOX_QUOTA_HOLD_SECONDS"]) if os.environ.get("OUTBOX_QUOTA_HOLD_SECONDS") else None
        )
        self.OUTBOX_BATCH = _env_int("OUTBOX_BATCH", 20)
        self.OUTBOX_IDLE_SECONDS = float(os.environ.get("OUTBOX_IDLE_SECONDS") or 1)
        # How often a worker queues reminders for items that became overdue (seconds; 0: never).
        self.OUTBOX_OVERDUE_SCAN_SECONDS = float(os.environ.get("OUTBOX_OVERDUE_SCAN_SECONDS") or 600)
        # WeChat (backend/wechat). WECHAT_SANDBOX=1 (`make run` sets it, never production) points every WeChat
        # call at the local WeChat sandbox under <PUBLIC_BASE_URL>/_wechat/, which `make run` serves beside this
        # app (wechat_sandbox/compose.py): this app itself never serves or imports it. Allowed only on a loopback
        # PUBLIC_BASE_URL, or with WECHAT_SANDBOX_STAGING=1 on a staging server (check_wechat_sandbox).
        self.WECHAT_SANDBOX = _env_bool("WECHAT_SANDBOX", False)
        self.WECHAT_SANDBOX_STAGING = _env_bool("WECHAT_SANDBOX_STAGING", False)
        if self.WECHAT_SANDBOX and not self.WECHAT_PUSH_TOKEN:
            self.WECHAT_PUSH_TOKEN = "sandbox-push-token"  # noqa: S105 - the sandbox's, public by design
        # The mini-program (unset: none, and WeChat refuses every call; `make run` gives the sandbox's).
        self.WECHAT_APPID = os.environ.get("WECHAT_APPID") or None
        self.WECHAT_SECRET = os.environ.get("WECHAT_SECRET") or None
        self.WECHAT_API_BASE = os.environ.get("WECHAT_API_BASE") or (
            self.PUBLIC_BASE_URL + "/_wechat/" if self.WECHAT_SANDBOX else "https://api.weixin.qq.com/"
        )
        # The OAuth authorize page; unset: WeChat's for WeChat's API base, else <WECHAT_API_BASE>connect/.
        self.WECHAT_OAUTH_BASE = os.environ.get("WECHAT_OAUTH_BASE") or None
        self.WECHAT_TIMEOUT_SECONDS = float(os.environ.get("WECHAT_TIMEOUT_SECONDS") or 5)
        # Token fetches allowed in one call while WeChat keeps answering 40001/40014/42001.
        self.WECHAT_TOKEN_REFRESH_LIMIT = _env_int("WECHAT_TOKEN_REFRESH_LIMIT", 3)
        # An official account (silent OAuth in WeChat's browser, template messages); optional.
        self.WECHAT_MP_APPID = os.environ.get("WECHAT_MP_APPID") or None
        self.WECHAT_MP_SECRET = os.environ.get("WECHAT_MP_SECRET") or None
        self.WECHAT_MINIPROGRAM_STATE = os.environ.get("WECHAT_MINIPROGRAM_STATE") or (
            "developer" if self.WECHAT_SANDBOX else "formal"
        )
        # Posters: a font file (.ttc/.otf/.ttf) with Chinese glyphs, instead of the Noto Sans CJK SC that
        # fontconfig finds (Debian's fonts-noto-cjk, installed by scripts/system-deps.sh).
        self.POSTER_FONT_PATH = os.environ.get("POSTER_FONT_PATH") or None
        # A batch PDF streamed in the response must end within gunicorn's 30 s worker timeout (about 0.2 s a
        # page): past this many pages the direct addresses send people to a batch job (backend/batches).
        self.POSTER_STREAM_MAX_PAGES = _env_int("POSTER_STREAM_MAX_PAGES", 120)
        # Batch jobs (`flask posters run`): the lease a worker holds on a batch (renewed with every progress
        # write), progress written every N pages, claims of a batch whose worker died before it is failed,
        # how long a finished file is kept, how often old files are removed, how long an idle worker sleeps.
        self.POSTER_BATCH_LEASE_SECONDS = float(os.environ.get("POSTER_BATCH_LEASE_SECONDS") or 120)
        self.POSTER_BATCH_PROGRESS_PAGES = _env_int("POSTER_BATCH_PROGRESS_PAGES", 5)
        self.POSTER_BATCH_MAX_ATTEMPTS = _env_int("POSTER_BATCH_MAX_ATTEMPTS", 3)
        self.POSTER_BATCH_KEEP_HOURS = float(os.environ.get("POSTER_BATCH_KEEP_HOURS") or 24)
        self.POSTER_BATCH_SWEEP_SECONDS = float(os.environ.get("POSTER_BATCH_SWEEP_SECONDS") or 600)
        self.POSTER_BATCH_IDLE_SECONDS = float(os.environ.get("POSTER_BATCH_IDLE_SECONDS") or 2)
        # Worker heartbeats (backend/ops/heartbeat.py): how often a worker's loop writes that it is alive.
        self.WORKER_HEARTBEAT_SECONDS = float(os.environ.get("WORKER_HEARTBEAT_SECONDS") or 5)
        # A worker not seen for this long is taken for stopped (/readyz, flask doctor, /admin/workers).
        self.WORKER_ALIVE_SECONDS = float(os.environ.get("WORKER_ALIVE_SECONDS") or 60)
        # Where item photos' bytes live (backend/items/photo_store.py): "files" under PHOTOS_DIR (unset:
        # <instance>/photos; `flask backup` copies it), or "s3", an S3-compatible bucket (its own versioning
        # or replication backs it up). S3_ENDPOINT_URL for a service other than AWS (MinIO, OSS, COS …).
        self.PHOTO_STORE = os.environ.get("PHOTO_STORE") or "files"
        self.PHOTOS_DIR = os.environ.get("PHOTOS_DIR") or None
        self.S3_BUCKET = os.environ.get("S3_BUCKET") or None
        self.S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL") or None
        self.S3_REGION = os.environ.get("S3_REGION") or None
        self.S3_ACCESS_KEY_ID = os.environ.get("S3_ACCESS_KEY_ID") or None
        self.S3_SECRET_ACCESS_KEY = os.environ.get("S3_SECRET_ACCESS_KEY") or None
        # WeChat identity (backend/wechat/identity.py): how long a resident's mini-program login token lives.
        self.RESIDENT_TOKEN_DAYS = _env_int("RESIDENT_TOKEN_DAYS", 30)
        # Mini-program codes (backend/wechat/wxacode.py): the page a deputy's or station's code opens (it reads
        # the scene "c=<slug>"), the page a deputy's binding code opens ("b=<code>"), and the version they open
        # (release, trial, develop; WeChat checks that the page is published only for release).
        self.WECHAT_MINIPROGRAM_PAGE_LANDING = (
            os.environ.get("WECHAT_MINIPROGRAM_PAGE_LANDING") or "pages/landing/landing"
        )
        self.WECHAT_MINIPROGRAM_PAGE_BIND = os.environ.get("WECHAT_MINIPROGRAM_PAGE_BIND") or "pages/bind/bind"
        self.WECHAT_MINIPROGRAM_ENV_VERSION = os.environ.get("WECHAT_MINIPROGRAM_ENV_VERSION") or "release"
        # 扫普通链接二维码打开小程序: the verification file WeChat's console gives (name and content), served at
        # WECHAT_QR_VERIFY_PATH + name (the rule's last sub-directory, or the host root "/"); unset: not served.
        self.WECHAT_QR_VERIFY_FILENAME = os.environ.get("WECHAT_QR_VERIFY_FILENAME") or None
        self.WECHAT_QR_VERIFY_CONTENT = os.environ.get("WECHAT_QR_VERIFY_CONTENT") or ""
        self.WECHAT_QR_VERIFY_PATH = os.environ.get("WECHAT_QR_VERIFY_PATH") or "/"
        # Supervision (backend/supervision): a rate over fewer items than this is not shown as a percentage
        # ("样本不足") and is null in the stats API.
        self.STATS_MIN_SAMPLE = _env_int("STATS_MIN_SAMPLE", 10)
