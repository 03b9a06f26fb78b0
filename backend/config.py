"""Settings: every environment variable the app reads is a typed, documented field of one area's class below
(``Settings`` gathers them), with a safe default for local use. This module is the one list of them: an empty
variable counts as unset, a malformed number or JSON stops the start with its name, and a yes/no is yes only
for 1, true, yes or on. Flask's ``app.config`` keeps the
same names (``Settings.flask_config``), so code and tests read and set ``app.config[...]`` as before."""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import click
from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def load_secret_key(instance_path: str) -> str:
    """The key generated once and kept in instance/, for when ``SECRET_KEY`` is unset (local use)."""
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


def _yes(value: object) -> object:
    """A yes/no variable: "1", "true", "yes", "on" mean yes, anything else no (a typo never turns the sandbox on)."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return value


YesNo = Annotated[bool, BeforeValidator(_yes)]


class _Area(BaseSettings):
    """One area's settings, each field read from the environment variable of the same name."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True)


class CoreSettings(_Area):
    """Where the app runs: database, addresses, secrets, the client address."""

    DATABASE_URL: str | None = Field(
        None, description="SQLAlchemy URL; unset: SQLite in the instance folder. postgresql://… in production"
    )
    SECRET_KEY: str | None = Field(
        None, description="session and CSRF signing; unset: one generated once into <instance>/secret_key"
    )
    PORT: int = Field(5000, description="the port `make run` serves on; the default PUBLIC_BASE_URL follows it")
    PUBLIC_BASE_URL: str | None = Field(
        None, description="what printed QR codes and tracking links point at; unset: http://127.0.0.1:<PORT>"
    )
    INSTANCE_PATH: str | None = Field(None, description="where the SQLite file and the generated key live")
    REDIS_URL: str | None = Field(
        None, description="when set, throttle counters and WeChat's tokens live in Redis instead of the database"
    )
    SESSION_COOKIE_SECURE: YesNo | None = Field(
        None, description="secure cookies; unset: on exactly when PUBLIC_BASE_URL is https"
    )
    TRUSTED_PROXY_HOPS: int = Field(
        0,
        ge=0,
        description="reverse proxies in front of the app whose X-Forwarded-For and -Proto are trusted (werkzeug's "
        "ProxyFix); 0 for `make run`, 1 behind one nginx. Too many lets a client choose its address",
    )


class LimitSettings(_Area):
    """Request sizes (backend/security.py): refused before any parsing."""

    MAX_CONTENT_LENGTH: int = Field(16 * 1024 * 1024, description="a whole request body, bytes")
    MAX_FORM_MEMORY_SIZE: int = Field(
        1024 * 1024,
        description="one multipart part in memory, bytes: Werkzeug reads 64 KiB chunks, so well above 64 KiB",
    )
    MAX_URLENCODED_BODY: int = Field(64 * 1024, description="a url-encoded form body, bytes")
    MAX_JSON_BODY: int = Field(64 * 1024, description="a JSON body, bytes")


class SubmissionSettings(_Area):
    """What a resident sends, and how often (backend/items, backend/throttle.py)."""

    ITEM_BODY_MIN_CHARS: int = Field(5, description="shortest message")
    ITEM_BODY_MAX_CHARS: int = Field(1000, description="longest message")
    ITEM_MAX_PHOTOS: int = Field(3, description="photos per message")
    PHOTO_MAX_BYTES: int = Field(5 * 1024 * 1024, description="one photo's file size")
    PHOTO_MAX_PIXELS: int = Field(40_000_000, description="one photo's pixels (decompression bombs)")
    PHOTO_MAX_SIDE: int = Field(2048, description="photos are scaled down to this side, pixels")
    PHOTO_ATTACH_MINUTES: int = Field(
        30, description="how long after a message the mini-program may still send its photos (one a request)"
    )
    PHOTO_DECODES_PER_PROCESS: int = Field(
        1, description="photos a process decodes at once (a 40 MP PNG takes a few hundred MB)"
    )
    PHOTO_DECODE_WAIT_SECONDS: int = Field(20, description="how long one waits its turn before a 503")
    THROTTLE_WINDOW_SECONDS: int = Field(3600, description="the throttle's window")
    THROTTLE_PER_ADDRESS: int = Field(30, description="submissions per client address per window")
    THROTTLE_PER_CODE: int = Field(200, description="submissions per code per window")
    LOOKUP_MISSES_PER_ADDRESS: int = Field(
        20, description="item look-ups that miss (unknown reference, wrong key) before an address is refused"
    )
    LOOKUP_WINDOW_SECONDS: int = Field(900, description="the look-up misses' window")
    LOOKUP_PHONE_MISSES_PER_REF: int = Field(
        10,
        description="look-ups of one reference by the phone's last four digits that miss before it is refused"
        " (from every address: 10 a day make 10,000 guesses take years)",
    )
    LOOKUP_PHONE_WINDOW_SECONDS: int = Field(86400, description="the phone look-up misses' window, per reference")
    NEAR_DUPLICATE_MINUTES: int = Field(60, description="near-identical messages to one deputy within this are flagged")
    QR_MAX_SIZE: int = Field(2000, description="largest QR image asked for, pixels")


class DeadlineSettings(_Area):
    """Item deadlines (backend/items/deadlines.py) and department links."""

    ACCEPT_DUE_DAYS: int = Field(2, description="days to accept an item")
    ANSWER_DUE_DAYS: int = Field(15, description="days to answer once accepted")
    RESOLVE_DUE_DAYS: int = Field(30, description="days to resolve once answered")
    DEADLINE_WORKING_DAYS: YesNo = Field(
        True, description="count working days as China does (holidays off, 调休 weekend days worked); 0: calendar days"
    )
    DEPARTMENT_LINK_GRACE_DAYS: int = Field(
        7,
        description="a department link (/d/…) stops working this long after its forward is answered and the "
        "item resolved",
    )
    DEPARTMENT_EXTENSION_MAX_DAYS: int = Field(
        15,
        description="the most days one request of a department for more time may add, unless the station sets "
        "its own (stations.department_extension_max_days)",
    )
    RETENTION_DAYS: int = Field(
        1095,
        description="items closed more than this many days ago are anonymised (backend/items/retention.py): the "
        "consent text promises deletion three years after an item is closed",
    )
    ACTIVATION_DAYS: int = Field(14, description="how long a one-time activation link for an account stays good")


DEFAULT_WECHAT_TEMPLATES: dict[str, Any] = {
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
# The service account's subscribe notices (订阅通知, sent with bizsend to an H5 resident's official-account openid):
# a resident purpose without its own template uses item_progress's, so one long-term acceptance covers every step.
DEFAULT_WECHAT_MP_TEMPLATES: dict[str, Any] = {
    "item_progress": {  # 办理进度通知 (long-term, 政务民生)
        "id": "tpl-oa-item-progress",
        "kind": "long_term",
        "fields": {"character_string1": "ref", "phrase2": "status", "thing3": "summary", "time4": "at"},
    },
}


class WeChatSettings(_Area):
    """WeChat (backend/wechat) and its subscribe messages."""

    WECHAT_SANDBOX: YesNo = Field(
        False,
        description="1: every WeChat call goes to the local sandbox at <PUBLIC_BASE_URL>/_wechat/ (`make run`); "
        "refused unless PUBLIC_BASE_URL is loopback. Never in production",
    )
    WECHAT_SANDBOX_STAGING: YesNo = Field(
        False,
        description="1: allow WECHAT_SANDBOX=1 on a non-loopback address, for a staging server only testers reach",
    )
    WECHAT_APPID: str | None = Field(None, description="the mini-program's app id; unset, every WeChat call is refused")
    WECHAT_SECRET: str | None = Field(None, description="the mini-program's secret")
    WECHAT_MP_APPID: str | None = Field(None, description="an official account (silent OAuth in WeChat's browser)")
    WECHAT_MP_SECRET: str | None = Field(None, description="the official account's secret")
    WECHAT_API_BASE: str | None = Field(
        None, description="WeChat's API; unset: https://api.weixin.qq.com/, or the sandbox's under WECHAT_SANDBOX"
    )
    WECHAT_OAUTH_BASE: str | None = Field(
        None, description="the OAuth authorize page; unset: WeChat's, or <WECHAT_API_BASE>connect/ for another API"
    )
    WECHAT_TIMEOUT_SECONDS: float = Field(5, description="one WeChat call's timeout")
    WECHAT_TOKEN_REFRESH_LIMIT: int = Field(
        3, description="token fetches in one call while WeChat keeps answering 40001/40014/42001"
    )
    WECHAT_MINIPROGRAM_STATE: Literal["developer", "trial", "formal"] | None = Field(
        None,
        description="the mini-program version subscribe messages open; unset: developer in the sandbox, else formal",
    )
    WECHAT_TEMPLATES: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEFAULT_WECHAT_TEMPLATES),
        description="JSON: purpose → template id, its kind (one_time: one acceptance, one message; long_term: "
        "one acceptance, every message until switched off, for 政务民生 accounts) and its keys, each mapped to "
        "the value filled in (ref, status, summary, deputy, at), as chosen in the mini-program's console",
    )
    WECHAT_MP_TEMPLATES: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEFAULT_WECHAT_MP_TEMPLATES),
        description="JSON: the official account's subscribe-notice templates (bizsend to H5 residents), as above",
    )
    WECHAT_PUSH_TOKEN: str | None = Field(
        None,
        description="the token of WeChat's message push to <PUBLIC_BASE_URL>/wechat/push, as set in the console; "
        "unset: every push is refused (nothing can check its signature); the sandbox's under WECHAT_SANDBOX",
    )
    WECHAT_MINIPROGRAM_PAGE_LANDING: str = Field(
        "pages/landing/landing", description="the page a deputy's or station's code opens (scene c=<slug>)"
    )
    WECHAT_MINIPROGRAM_PAGE_BIND: str = Field("pages/bind/bind", description="the page a binding code opens (b=<code>)")
    WECHAT_MINIPROGRAM_ENV_VERSION: Literal["release", "trial", "develop"] = Field(
        "release", description="the version mini-program codes open"
    )
    WECHAT_QR_VERIFY_FILENAME: str | None = Field(
        None,
        description="扫普通链接二维码打开小程序: the verification file's name from WeChat's console; unset: not served",
    )
    WECHAT_QR_VERIFY_CONTENT: str = Field("", description="that file's content")
    WECHAT_QR_VERIFY_PATH: str = Field("/", description="where that file is served (the rule's last sub-directory)")
    RESIDENT_TOKEN_DAYS: int = Field(30, description="how long a resident's mini-program login token lives")


class OutboxSettings(_Area):
    """Delivery of WeChat notices (backend/outbox/worker.py)."""

    OUTBOX_LEASE_SECONDS: float = Field(60, description="a worker's lease on a message: must outlast one WeChat call")
    OUTBOX_MAX_ATTEMPTS: int = Field(8, description="attempts before a message is dead")
    OUTBOX_BACKOFF_BASE_SECONDS: float = Field(5, description="first retry delay, doubled each time")
    OUTBOX_BACKOFF_MAX_SECONDS: float = Field(3600, description="longest retry delay")
    OUTBOX_QUOTA_HOLD_SECONDS: float | None = Field(
        None, description="after 45009 nothing is sent for this long; unset: until midnight China time (WeChat's reset)"
    )
    OUTBOX_BATCH: int = Field(20, description="messages claimed at once")
    OUTBOX_IDLE_SECONDS: float = Field(1, description="how long an idle worker sleeps")
    OUTBOX_OVERDUE_SCAN_SECONDS: float = Field(
        600, description="how often a worker queues reminders for overdue items; 0: never"
    )
    SCAN_FOLD_SECONDS: float = Field(
        10, description="with REDIS_URL, how often a worker folds the scans counted in Redis into code_scan_days"
    )
    NOTICE_COALESCE_SECONDS: float = Field(
        3600, description="a deputy's notices within this many seconds of the last one go as one (outbox/queue.py)"
    )
    NOTICE_DUE_SOON_HOURS: float = Field(
        24, description="a deputy is reminded this many hours before a deadline; 0: never"
    )


class PosterSettings(_Area):
    """Posters and their batch jobs (backend/qr, backend/batches)."""

    POSTER_FONT_PATH: str | None = Field(
        None, description="a font with Chinese glyphs instead of the Noto Sans CJK SC fontconfig finds"
    )
    POSTER_STREAM_MAX_PAGES: int = Field(
        120, description="past this many pages a PDF is a batch job, not a response (gunicorn's 30 s timeout)"
    )
    POSTER_BATCH_LEASE_SECONDS: float = Field(120, description="a worker's lease on a batch, renewed with progress")
    POSTER_BATCH_PROGRESS_PAGES: int = Field(5, description="progress written every this many pages")
    POSTER_BATCH_MAX_ATTEMPTS: int = Field(3, description="claims of a batch whose worker died before it fails")
    POSTER_BATCH_KEEP_HOURS: float = Field(24, description="how long a finished file is kept")
    POSTER_BATCH_DIR: str | None = Field(
        None,
        description="where finished batch files are kept; unset: <instance>/poster-batches. With several hosts, "
        "one folder every web host and poster worker mounts",
    )
    POSTER_BATCH_SWEEP_SECONDS: float = Field(600, description="how often old files are removed")
    POSTER_BATCH_IDLE_SECONDS: float = Field(2, description="how long an idle worker sleeps")


class OpsSettings(_Area):
    """Workers' heartbeats, backups, supervision's statistics."""

    WORKER_HEARTBEAT_SECONDS: float = Field(5, description="how often a worker writes that it is alive")
    WORKER_ALIVE_SECONDS: float = Field(
        60, description="a worker not seen for this long counts as stopped (/readyz, flask doctor, /admin/workers)"
    )
    PHOTO_STORE: Literal["files", "s3"] = Field(
        "files",
        description="where photos' bytes live (backend/items/photo_store.py): files under PHOTOS_DIR, or an "
        "S3-compatible bucket (its own versioning or replication backs it up)",
    )
    PHOTOS_DIR: str | None = Field(
        None, description="the photo files' folder (`flask backup` copies it); unset: <instance>/photos"
    )
    S3_BUCKET: str | None = Field(None, description="the bucket, with PHOTO_STORE=s3")
    S3_ENDPOINT_URL: str | None = Field(None, description="an S3-compatible service other than AWS (MinIO, OSS, COS …)")
    S3_REGION: str | None = Field(None, description="the bucket's region")
    S3_ACCESS_KEY_ID: str | None = Field(None, description="the access key")
    S3_SECRET_ACCESS_KEY: str | None = Field(None, description="the secret key")
    STATS_MIN_SAMPLE: int = Field(10, description="a rate over fewer items is shown as 样本不足, not a percentage")


class ReplicaSettings(_Area):
    """Reads from a PostgreSQL streaming replica (backend/replica.py): dashboards, exports, public pages and the
    supervisor's lists, while it keeps up."""

    DATABASE_REPLICA_URL: str | None = Field(
        None,
        description="a hot standby of DATABASE_URL (postgresql://…, made with pg_basebackup -R); unset: every read "
        "goes to DATABASE_URL. Refused with SQLite",
    )
    REPLICA_MAX_LAG_SECONDS: float = Field(
        10,
        ge=0,
        description="a replica further behind than this (time since the last change it replayed, while it has "
        "changes to replay) is not read from until it catches up; 0: only a replica that has replayed everything",
    )
    REPLICA_CHECK_SECONDS: float = Field(
        2, ge=0, description="how often each process measures the replica's lag (cached in between); 0: every read"
    )
    REPLICA_READ_OWN_WRITES_SECONDS: float = Field(
        30,
        ge=0,
        description="after a change made through a page, that browser reads from the primary for this long, so "
        "whoever just acted sees what they did",
    )
    REPLICA_CONNECT_TIMEOUT_SECONDS: int = Field(
        2, ge=1, description="how long a connection to the replica may take before its reads go to the primary"
    )


AREAS: tuple[type[_Area], ...] = (
    CoreSettings,
    LimitSettings,
    SubmissionSettings,
    DeadlineSettings,
    WeChatSettings,
    OutboxSettings,
    PosterSettings,
    OpsSettings,
    ReplicaSettings,
)


def _database_uri(url: str) -> str:
    """SQLAlchemy's name for psycopg 3 (hosting services hand out postgres:// and postgresql://)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings:
    """Every setting, read from the environment once, by area (``settings.wechat.WECHAT_APPID``)."""

    def __init__(self) -> None:
        self.core = CoreSettings()
        self.limits = LimitSettings()
        self.submissions = SubmissionSettings()
        self.deadlines = DeadlineSettings()
        self.wechat = WeChatSettings()
        self.outbox = OutboxSettings()
        self.posters = PosterSettings()
        self.ops = OpsSettings()
        self.replica = ReplicaSettings()

    def flask_config(self, instance_path: str) -> dict[str, Any]:
        """Flask's ``app.config``: every field under its own name, the defaults that follow other settings filled
        in, and the few Flask keys that are no environment variable's."""
        core, wechat = self.core, self.wechat
        config: dict[str, Any] = {}
        for area in (
            self.limits,
            self.submissions,
            self.deadlines,
            wechat,
            self.outbox,
            self.posters,
            self.ops,
            self.replica,
        ):
            config.update(area.model_dump())
        config["TRUSTED_PROXY_HOPS"] = core.TRUSTED_PROXY_HOPS
        config["REDIS_URL"] = core.REDIS_URL
        config["SECRET_KEY"] = core.SECRET_KEY or load_secret_key(instance_path)
        default_db = "sqlite:///" + str(Path(instance_path) / "mashanglian.sqlite3")
        config["SQLALCHEMY_DATABASE_URI"] = _database_uri(core.DATABASE_URL or default_db)
        replica = self.replica.DATABASE_REPLICA_URL
        config["DATABASE_REPLICA_URL"] = _database_uri(replica) if replica else None
        base = (core.PUBLIC_BASE_URL or f"http://127.0.0.1:{core.PORT}").rstrip("/")
        config["PUBLIC_BASE_URL"] = base
        secure = core.SESSION_COOKIE_SECURE
        config["SESSION_COOKIE_SECURE"] = base.startswith("https://") if secure is None else secure
        config["SESSION_COOKIE_HTTPONLY"] = True
        config["SESSION_COOKIE_SAMESITE"] = "Lax"
        config["WTF_CSRF_TIME_LIMIT"] = None  # a resident may keep the form open for a long time
        config["WECHAT_API_BASE"] = wechat.WECHAT_API_BASE or (
            base + "/_wechat/" if wechat.WECHAT_SANDBOX else "https://api.weixin.qq.com/"
        )
        config["WECHAT_MINIPROGRAM_STATE"] = wechat.WECHAT_MINIPROGRAM_STATE or (
            "developer" if wechat.WECHAT_SANDBOX else "formal"
        )
        if wechat.WECHAT_SANDBOX and not wechat.WECHAT_PUSH_TOKEN:
            config["WECHAT_PUSH_TOKEN"] = "sandbox-push-token"  # noqa: S105 - the sandbox's, public by design
        return config


class Config:
    """The application's settings as attributes, for ``app.config.from_object`` (``create_app``)."""

    def __init__(self, instance_path: str) -> None:
        for name, value in Settings().flask_config(instance_path).items():
            setattr(self, name, value)


def documented() -> list[tuple[str, str, Any, str]]:
    """(area, variable, default, meaning) for every environment variable: what ``flask settings`` prints, so an
    operator reads the list from the code that reads the variables, never from a copy that drifted."""
    rows = []
    for area in AREAS:
        for name, field in area.model_fields.items():
            default = field.default_factory() if field.default_factory else field.default
            rows.append((area.__name__.removesuffix("Settings"), name, default, field.description or ""))
    return rows


@click.command("settings")
def settings_command() -> None:
    """Every environment variable the app reads: its area, default and meaning (from backend/config.py)."""
    for area, name, default, meaning in documented():
        shown = "unset" if default is None else json.dumps(default, ensure_ascii=False)
        if len(shown) > 40:
            shown = shown[:39] + "…"
        click.echo(f"{area:<11} {name:<32} {shown:<20} {meaning}")
