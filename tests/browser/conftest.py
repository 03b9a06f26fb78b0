"""Fixtures for the browser tests: the app served as ``make run`` serves it (migrated, demo loaded,
gunicorn, the local WeChat sandbox beside it at /_wechat/), and a phone-sized headless Chromium that records
console errors and CSP violations."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import expect

from backend.demo import DEMO_PASSWORD
from tests.conftest import PG_URL, create_pg_database, drop_pg_database
from tests.helpers import missing_tool, run_to_end
from wechat_sandbox.config import APPID, SECRET

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "test-output" / "screenshots"
VENV_BIN = Path(sys.executable).parent

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE_WIDTH = 360
PHONE_HEIGHT = 740
# WeChat's in-app browser (XWEB) on Android, as residents scan with it.
WECHAT_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 13; V2218A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 Weixin "
    "NetType/WIFI Language/zh_CN ABI/arm64"
)
# Runs before the page's own scripts, outside the page's CSP: every violation becomes a console error.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""
# How long gunicorn may take to answer its first request: a deadline for failing, not a wait (the poll returns
# as soon as it answers). Under CI's quiet machine it answers in a few seconds; 30 s was met too often on a
# loaded one (seven checkouts testing side by side), failing every browser test of the session at once.
SERVER_START_SECONDS = 120


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium; skipped when absent, failed when absent under CI=true."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    reason = f"no Chromium at {path}: install Debian's chromium package or set CHROMIUM_PATH"
    missing_tool(reason)


@dataclass(frozen=True)
class DemoCode:
    """A code of the demo county as ``flask demo urls`` prints it: whose it is, and its URL."""

    owner_name: str
    url: str


# 代表码留言页（张秀英）：http://…/c/slug
_DEMO_URL_KINDS = {
    "代表码留言页": "deputy",
    "联络站码留言页": "station",
    "已离任代表的码": "former_deputy",
    "专题码留言页": "topic",
}
_DEMO_URL_LINE = re.compile(rf"^(?P<label>{'|'.join(_DEMO_URL_KINDS)})（(?P<name>[^，）]+)[^）]*）：(?P<url>\S+)$")


@dataclass
class LiveServer:
    """The app under gunicorn on a free port, with the environment its CLI runs in."""

    base_url: str
    env: dict[str, str]
    log_path: Path
    _codes: dict[str, DemoCode] = field(default_factory=dict)

    def flask(self, *args: str) -> str:
        """Run ``flask <args>`` against the server's database; return its output, fail the test on error."""
        return run_flask(self.env, *args)

    def demo_codes(self) -> dict[str, DemoCode]:
        """The demo's codes by kind ("deputy", "station", "former_deputy", "topic"), read from ``flask demo urls``."""
        if not self._codes:
            for line in self.flask("demo", "urls").splitlines():
                match = _DEMO_URL_LINE.match(line.strip())
                if match:
                    kind = _DEMO_URL_KINDS[match["label"]]
                    self._codes[kind] = DemoCode(match["name"], match["url"])
            assert {"deputy", "station"} <= self._codes.keys(), "flask demo urls printed no deputy or station code"
        return self._codes

    def log_tail(self, lines: int = 40) -> str:
        """The end of gunicorn's log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run_flask(env: dict[str, str], *args: str) -> str:
    """Run the venv's ``flask`` CLI in the repository; fail with its output when it exits non-zero."""
    return run_to_end([str(VENV_BIN / "flask"), *args], env, REPO_ROOT)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, server: LiveServer) -> None:
    """Poll ``url`` until it answers 200; fail early if the server exits."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http:// server)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = exc
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer {url} in {SERVER_START_SECONDS}s ({last_error}):\n{server.log_tail()}")


@contextlib.contextmanager
def demo_server(
    workdir: Path,
    env_overrides: dict[str, str | None] | None = None,
    ready_path: str = "/",
    app_spec: str = "wechat_sandbox.compose:create_app()",
    load_demo: bool = True,
) -> Iterator[LiveServer]:
    """What ``make run`` (scripts/run.sh) does, for real: its WeChat settings, a fresh database, ``flask db upgrade``,
    ``flask demo load``, and gunicorn serving the app with the sandbox beside it (``wechat_sandbox.compose``).

    ``env_overrides`` sets (or, with None, removes) variables of the server's environment; ``app_spec``
    is what gunicorn serves (``backend:create_app()``: the production app alone, as the Procfile's ``web:``);
    ``load_demo=False`` leaves the database empty (a fresh county, set up by the test).
    """
    database_url = create_pg_database(PG_URL) if PG_URL else "sqlite:///" + str(workdir / "live.sqlite3")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FLASK_APP": "backend",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(workdir / "instance"),
        "PUBLIC_BASE_URL": base_url,
        "WECHAT_SANDBOX": "1",
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        # Every browser test writes from 127.0.0.1 to one session's server: a resident's address limit (30 an
        # hour) would refuse the suite's later submissions. The throttle itself is tested in tests/test_throttle.py.
        "THROTTLE_PER_ADDRESS": "1000",
        "THROTTLE_PER_CODE": "1000",
    }
    for name, value in (env_overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    server = LiveServer(base_url=base_url, env=env, log_path=workdir / "gunicorn.log")
    process = None
    try:
        run_flask(env, "db", "upgrade")
        if load_demo:
            run_flask(env, "demo", "load")
        with server.log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(VENV_BIN / "gunicorn"),
                    "--workers",
                    "2",
                    "--worker-class",
                    "gthread",
                    "--threads",
                    "4",  # as `make run`: a request that calls the sandbox on this server needs a free thread
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--access-logfile",
                    "-",
                    app_spec,
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until_serving(base_url + ready_path, process, server)
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if PG_URL:
            drop_pg_database(database_url)


@pytest.fixture(scope="session")
def live_server(chromium_executable, tmp_path_factory) -> Iterator[LiveServer]:
    """The demo county served as ``make run`` serves it (``demo_server``), for the browser tests."""
    with demo_server(tmp_path_factory.mktemp("live_server")) as server:
        yield server


@pytest.fixture(scope="session")
def playwright_driver(chromium_executable):
    """Playwright's driver (sync API); it drives the system Chromium, it never downloads one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@dataclass
class Phone:
    """A page in a 360-px WeChat-like phone browser, with every console error and CSP violation it saw."""

    page: object
    problems: list[str]
    width: int = PHONE_WIDTH

    def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot under test-output/screenshots/ and return its path."""
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def scroll_width(self) -> int:
        """The page's full width in CSS pixels; more than the viewport means sideways scrolling."""
        return self.page.evaluate("document.scrollingElement.scrollWidth")


@pytest.fixture(scope="session")
def chromium(playwright_driver, chromium_executable):
    """One headless Chromium for the session. Each phone or desk is a context of its own (cookies, storage and
    cache apart, as a fresh profile): a context costs milliseconds, a browser's launch a second or more, which a
    hundred browser tests paid on every suite."""
    browser = playwright_driver.chromium.launch(executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def launch_phone(browser, width: int = PHONE_WIDTH, height: int = PHONE_HEIGHT, mobile: bool = True):
    """A fresh context of ``browser``, phone-sized and identified as WeChat's browser unless ``mobile`` is false,
    and its ``Phone`` (which records console errors and CSP violations). The caller closes the context."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=2 if mobile else 1,
        is_mobile=mobile,
        has_touch=mobile,
        user_agent=WECHAT_USER_AGENT if mobile else None,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(15_000)
    context.add_init_script(CSP_REPORTER)
    page = context.new_page()
    problems: list[str] = []

    def record_console(message) -> None:
        url = message.location.get("url", "")
        if message.type == "error":
            problems.append(f"console.error: {message.text} ({url})")

    page.on("console", record_console)
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    return context, Phone(page=page, problems=problems, width=width)


@pytest.fixture
def phone(chromium) -> Iterator[Phone]:
    """A fresh phone in WeChat's browser (a context of the session's Chromium)."""
    context, opened = launch_phone(chromium)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def phone_with_back_forward_cache(playwright_driver, chromium_executable) -> Iterator[Phone]:
    """The same phone with the back/forward cache a phone's browser has (Playwright's launch turns it off, so this
    one is a Chromium of its own): the back button may show a page as it was left, scripts' state and form
    fields included."""
    browser = playwright_driver.chromium.launch(
        executable_path=chromium_executable,
        headless=True,
        args=CHROMIUM_ARGS,
        ignore_default_args=["--disable-back-forward-cache"],
    )
    context, opened = launch_phone(browser)
    try:
        yield opened
    finally:
        context.close()
        browser.close()


@pytest.fixture
def open_phone(chromium) -> Iterator[Callable[[str], Phone]]:
    """Open further phones (a context each, ``name`` for the reader), closed at the end of the test."""
    contexts = []

    def _open(name: str) -> Phone:
        context, opened = launch_phone(chromium)
        contexts.append(context)
        return opened

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def open_browser(chromium) -> Iterator[Callable[..., Phone]]:
    """Open browsers of any size, a desk's or a phone's (a context each), closed at the end of the test."""
    contexts = []

    def _open(name: str, width: int, height: int, mobile: bool) -> Phone:
        context, opened = launch_phone(chromium, width, height, mobile)
        contexts.append(context)
        return opened

    yield _open
    for context in contexts:
        context.close()


def fits(phone: Phone) -> None:
    """The page needs no sideways scrolling on a 360-px phone."""
    assert phone.scroll_width() <= phone.width, phone.page.url


def log_in(page, base_url: str, username: str, next_path: str = "", password: str = DEMO_PASSWORD) -> None:
    """Log ``page`` in to the staff pages through the login form, as one of the demo's accounts (their published
    password) unless told; with ``next_path``, the page the form goes on to."""
    page.goto(base_url + "/staff/login" + (f"?next={next_path}" if next_path else ""))
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state("load")  # the page the login leads to, styled: a test may measure it at once


def write_to(page, url: str, body: str, category: str, **contact: str) -> str:
    """Open a code's form at ``url``, write ``body`` in ``category`` (its label), with ``name`` and ``phone`` and
    the consent when given, and submit; the reference shown on the confirmation (7K4P-9QXD)."""
    page.goto(url)
    page.locator("#body").fill(body)
    page.locator("#category").select_option(label=category)
    for field_id, value in contact.items():
        page.locator(f"#{field_id}").fill(value)
    if contact:
        page.locator("input[name=consent]").check()
    page.locator("#submit-button").click()
    expect(page.locator("h1")).to_have_text("提交成功")
    return page.locator("#ref").inner_text().strip()
