"""``flask doctor``: the settings that matter in production, each problem with its fix in plain words.

A finding is ``problem`` (fix it before residents use the service) or ``warning`` (works,
but not as it should in production); a problem that makes printed codes or WeChat notices
fail (``breaks``) makes the command exit with status 1, so a deployment script can stop on
it. What counts as production: a public address that is not this machine's own.

| check             | problem when                                                        | breaks codes/notices |
|-------------------|---------------------------------------------------------------------|----------------------|
| public_address    | loopback or a private address; not reachable at ``/healthz``        | yes                  |
| https             | plain http                                                          | yes (WeChat refuses) |
| secret_key        | the generated one (instance/secret_key) in production; too short    | no                   |
| engine            | SQLite in production (a warning)                                    | no                   |
| wechat            | the sandbox switched on, or the sandbox's app id, secret, API base   | yes                  |
|                   | or template ids, on a public address                                |                      |
| database, schema  | no answer; migrations not at head                                   | yes                  |
| workers           | the outbox or poster worker not seen within a minute                | yes                  |
| fonts             | no CJK font for posters                                             | yes                  |
| work_calendar     | this year's holidays unknown; next year's from November on (warning) | no                   |
| photo_store       | the photo folder or S3 bucket cannot be written and read back       | no                   |
| replica           | DATABASE_REPLICA_URL set, but it does not answer, lags beyond       | no (reads go to the  |
|                   | REPLICA_MAX_LAG_SECONDS or is not a standby (a warning)              | primary meanwhile)   |
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from flask import current_app

from backend.config import CoreSettings
from backend.ops import health

SANDBOX_APPID = "wx-sandbox-app"
SANDBOX_SECRET = "sandbox-secret"  # noqa: S105 - the sandbox default config.py falls back to, recognised here
SANDBOX_TEMPLATE_PREFIX = "tpl-"
WECHAT_API = "https://api.weixin.qq.com/"
REACH_TIMEOUT_SECONDS = 5
MIN_SECRET_KEY_CHARS = 32


@dataclass(frozen=True)
class Finding:
    """One thing wrong: which check, how bad, what is wrong, how to fix it."""

    check: str
    level: str  # "problem" | "warning"
    message: str
    fix: str
    breaks: bool = False  # printed codes or notices would fail: exit status 1


def _host_is_local(host: str) -> bool:
    """True for localhost, loopback, private, link-local or unspecified addresses (as typed or resolved)."""
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        return False  # a name: judged by whether it is reachable
    return any(a.is_loopback or a.is_private or a.is_link_local or a.is_unspecified for a in addresses)


def is_local_address(base_url: str) -> bool:
    """True when ``base_url`` (PUBLIC_BASE_URL) points at this machine or a private network: no phone reaches it."""
    return _host_is_local((urlsplit(base_url).hostname or "").lower())


def public_address_warning(base_url: str) -> str | None:
    """The banner poster and batch pages show, or None: a printed code must not point at a laptop or plain http."""
    if is_local_address(base_url):
        return (
            f"注意：本系统的对外地址是 {base_url}，指向这台电脑或内部网络，群众的手机打不开。"
            "现在打印的二维码扫出来无法使用，请系统管理员先设置正式的 https 域名（PUBLIC_BASE_URL）再打印。"
        )
    if urlsplit(base_url).scheme != "https":
        return (
            f"注意：本系统的对外地址 {base_url} 没有使用 https，微信可能拦截或提示不安全。"
            "请系统管理员改用 https 域名（PUBLIC_BASE_URL）后再打印二维码。"
        )
    return None


def check_public_address(config, *, offline: bool) -> list[Finding]:
    """PUBLIC_BASE_URL: not loopback or private, https, and answering ``/healthz`` as this application."""
    base = config["PUBLIC_BASE_URL"]
    parts = urlsplit(base)
    findings = []
    fix = "设置环境变量 PUBLIC_BASE_URL 为群众手机能打开的正式地址，例如 PUBLIC_BASE_URL=https://rd.example.gov.cn，然后重启服务。"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [Finding("public_address", "problem", f"对外地址 PUBLIC_BASE_URL={base!r} 不是网址。", fix, True)]
    if is_local_address(base):
        findings.append(
            Finding(
                "public_address",
                "problem",
                f"对外地址 PUBLIC_BASE_URL={base} 指向本机或内部网络：打印出的二维码和通知里的链接在群众手机上打不开。",
                fix,
                True,
            )
        )
    elif not offline:
        try:
            answer = requests.get(base + "/healthz", timeout=REACH_TIMEOUT_SECONDS, allow_redirects=False)
            reached = answer.status_code == 200 and answer.headers.get("Content-Type", "").startswith(
                "application/json"
            )
            why = f"返回 HTTP {answer.status_code}" if not reached else ""
        except requests.RequestException as exc:
            reached, why = False, f"{type(exc).__name__}"
        if not reached:
            findings.append(
                Finding(
                    "public_address",
                    "problem",
                    f"从这台服务器访问 {base}/healthz 不成功（{why}）：二维码指向的地址可能打不开。",
                    "检查域名解析、防火墙和反向代理（nginx）是否把该地址转到本服务；"
                    "服务器本身不能访问外网时用 flask doctor --offline 跳过这一项。",
                    True,
                )
            )
    if parts.scheme != "https":
        findings.append(
            Finding(
                "https",
                "problem",
                f"对外地址 {base} 使用明文 http：微信要求业务域名和小程序服务器使用 https，登录 Cookie 也不安全。",
                "为域名申请证书，在反向代理上启用 https，并把 PUBLIC_BASE_URL 改为 https:// 开头。",
                True,
            )
        )
    return findings


def check_secret_key(config, production: bool) -> list[Finding]:
    """SECRET_KEY from the environment (kept with the deployment), not the one generated into instance/."""
    from_env = CoreSettings().SECRET_KEY
    if from_env:
        if len(from_env) < MIN_SECRET_KEY_CHARS:
            return [
                Finding(
                    "secret_key",
                    "problem",
                    f"SECRET_KEY 太短（少于{MIN_SECRET_KEY_CHARS}个字符），登录会话容易被伪造。",
                    'python3 -c "import secrets; print(secrets.token_urlsafe(48))" 生成一个，设为 SECRET_KEY。',
                )
            ]
        return []
    if not production:
        return []
    return [
        Finding(
            "secret_key",
            "problem",
            "SECRET_KEY 没有设置，用的是自动生成在 instance/secret_key 里的密钥：换一台服务器、重建目录或多台服务器时，"
            "所有人的登录会失效，备份里也不含它。",
            'python3 -c "import secrets; print(secrets.token_urlsafe(48))" 生成一个，作为环境变量 SECRET_KEY '
            "与其他配置一起保管，每台服务器相同。",
        )
    ]


def check_engine(config, production: bool) -> list[Finding]:
    """SQLite in production is a warning: one machine only, and the figures of a county strain it."""
    if production and config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return [
            Finding(
                "engine",
                "warning",
                "数据库是 SQLite：只能在一台服务器上运行，全县数据量大时统计页会变慢。",
                "正式使用请改用 PostgreSQL：DATABASE_URL=postgresql://用户@主机/库名，"
                "用 flask backup 备份后在新库上 flask db upgrade、flask restore。",
            )
        ]
    return []


def check_wechat(config, production: bool) -> list[Finding]:
    """WeChat: the real app id, secret, API and template ids on a public address; never the sandbox there."""
    if not production:
        return []
    findings = []
    fix_ids = "在微信公众平台（小程序后台）取得 AppID、AppSecret，设置 WECHAT_APPID、WECHAT_SECRET，重启服务。"
    if config.get("WECHAT_SANDBOX"):
        findings.append(
            Finding(
                "wechat",
                "problem",
                "WECHAT_SANDBOX 开着：通知发到本机的模拟微信，群众收不到；/_wechat/ 模拟页面也对外开放。",
                "设置 WECHAT_SANDBOX=0 并配置真实的 WECHAT_APPID、WECHAT_SECRET。",
                True,
            )
        )
    if config.get("WECHAT_APPID") == SANDBOX_APPID or config.get("WECHAT_SECRET") == SANDBOX_SECRET:
        findings.append(
            Finding("wechat", "problem", "微信 AppID 或 AppSecret 还是模拟微信的默认值，通知发不出去。", fix_ids, True)
        )
    if not str(config.get("WECHAT_API_BASE", "")).startswith(WECHAT_API):
        findings.append(
            Finding(
                "wechat",
                "problem",
                f"微信接口地址 WECHAT_API_BASE={config.get('WECHAT_API_BASE')} 不是微信的 {WECHAT_API}，通知发不到群众。",
                "删除 WECHAT_API_BASE 设置（默认即微信接口），或改为经过审核的代理地址。",
                True,
            )
        )
    sandbox_templates = sorted(
        purpose
        for purpose, spec in (config.get("WECHAT_TEMPLATES") or {}).items()
        if str(spec.get("id", "")).startswith(SANDBOX_TEMPLATE_PREFIX)
    )
    if sandbox_templates:
        findings.append(
            Finding(
                "wechat",
                "problem",
                f"订阅消息模板还是示例编号（{'、'.join(sandbox_templates)}）：微信会拒收这些通知。",
                "在小程序后台“订阅消息”里选用模板，把模板 ID 和字段写进 WECHAT_TEMPLATES（JSON，见 backend/config.py）。",
                True,
            )
        )
    return findings


def check_readiness() -> list[Finding]:
    """Database, schema revision and workers, as /readyz sees them."""
    fixes = {
        "database": "检查 DATABASE_URL、数据库服务是否启动、账号密码和网络。",
        "migrations": "在部署目录运行 flask db upgrade。",
        "outbox_worker": "启动通知发送进程：flask outbox run（Procfile 的 worker:，用 systemd 或 supervisor 常驻）。",
        "posters_worker": "启动批量海报进程：flask posters run（Procfile 的 posters:，用 systemd 或 supervisor 常驻）。",
    }
    return [
        Finding(check.name, "problem", check.message, fixes.get(check.name, ""), True)
        for check in health.readiness()
        if not check.ok
    ]


def check_fonts() -> list[Finding]:
    """A CJK font for posters (without it no poster or table card prints)."""
    from backend.qr import fonts

    try:
        fonts.poster_face("bold")
        fonts.poster_face("regular")
    except fonts.FontMissingError as exc:
        return [
            Finding(
                "fonts",
                "problem",
                f"找不到海报用的中文字体：{exc}",
                "安装 Noto Sans CJK（Debian/Ubuntu：apt-get install fonts-noto-cjk），或用 POSTER_FONT_PATH 指定字体文件。",
                True,
            )
        ]
    return []


def check_work_calendar(today) -> list[Finding]:
    """This year's holidays must be known; next year's from November on (the State Council publishes them then)."""
    from backend.items import workcalendar

    calendar = workcalendar.current()
    findings = []
    fix = "督导账号登录后在“管理 → 节假日安排”录入国务院办公厅公布的放假和调休上班日期。"
    if not calendar.knows(today.year):
        findings.append(
            Finding(
                "work_calendar",
                "problem",
                f"{today.year}年的节假日安排未录入：办理期限按周一至周五计算，节假日也算工作日。",
                fix,
            )
        )
    if today.month >= 11 and not calendar.knows(today.year + 1):
        findings.append(
            Finding(
                "work_calendar",
                "warning",
                f"{today.year + 1}年的节假日安排未录入：跨入{today.year + 1}年的办理期限暂按周一至周五计算。",
                fix,
            )
        )
    return findings


def check_photo_store() -> list[Finding]:
    """The photo store keeps a photo (a probe written, read back, deleted): else every submission with a photo
    fails."""
    from backend.items import photo_store

    try:
        photo_store.probe()
    except photo_store.PhotoStoreError as exc:
        fix = (
            "PHOTO_STORE=files：让运行服务的用户能写 PHOTOS_DIR（默认 instance/photos），所有进程共用同一目录；"
            "PHOTO_STORE=s3：检查 S3_BUCKET（先建好桶）、S3_ENDPOINT_URL、S3_REGION 和访问密钥。"
        )
        return [Finding("photo_store", "problem", str(exc), fix)]
    return []


def check_replica() -> list[Finding]:
    """The read replica, when one is set, answers and keeps up: else its reads go to the primary (they work, but
    the primary carries the dashboards and exports the replica is there to take)."""
    from backend import replica

    engine = replica.replica_engine()
    if engine is None:
        return []
    state = replica.measure(engine)
    if state.is_usable:
        return []
    fix = (
        "检查只读副本（DATABASE_REPLICA_URL）是否在运行、能否连接，以及复制是否跟上主库"
        "（在副本上看 pg_stat_wal_receiver，在主库上看 pg_stat_replication）；在此之前统计页和导出都从主库读。"
    )
    return [Finding("replica", "warning", f"只读副本现在不可用：{state.reason}", fix)]


def diagnose(*, offline: bool = False) -> list[Finding]:
    """Every check, problems first."""
    from backend.stations.calendar import today_in_china

    config = current_app.config
    production = not is_local_address(config["PUBLIC_BASE_URL"])
    findings = [
        *check_public_address(config, offline=offline),
        *check_secret_key(config, production),
        *check_engine(config, production),
        *check_wechat(config, production),
        *check_readiness(),
    ]
    if not any(f.check == "database" for f in findings):
        findings += check_work_calendar(today_in_china())
    findings += check_fonts()
    findings += check_photo_store()
    findings += check_replica()
    return sorted(findings, key=lambda f: (f.level != "problem", not f.breaks))


def hostname() -> str:
    """This machine's name, for the report's first line."""
    return socket.gethostname()
