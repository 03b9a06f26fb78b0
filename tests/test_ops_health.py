"""Health and doctor: /healthz, /readyz with real worker processes started and stopped, ``flask doctor`` on the
default and on production-like settings, the workers' admin page, and the banner on the printing pages.

Bad input and faults tried: no worker ever started; the outbox worker stopped (SIGTERM) and killed (SIGKILL,
its heartbeat going stale); the database's schema revision behind the code's; the default public address; a
private address; plain http; the sandbox left on, its app id and template ids on a public address; a short
secret key; the workers' page opened by a deputy and a department user; PUBLIC_BASE_URL left unset on the command
line."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, text

from backend.extensions import db
from backend.models import OutboxMessage, OutboxStatus, WorkerHeartbeat, utcnow
from backend.ops import doctor, heartbeat
from tests import helpers
from tests.factories import admin_world, make_item
from tests.helpers import flask_process_env, login

FLASK = str(helpers.BIN / "flask")


def worker_env(app, tmp_path: Path) -> dict[str, str]:
    """The environment of the worker processes (heartbeats and idle waits short) on the test's database."""
    return flask_process_env(
        app,
        tmp_path,
        SECRET_KEY="worker-test-key-worker-test-key-0123",
        WORKER_HEARTBEAT_SECONDS="0.2",
        OUTBOX_IDLE_SECONDS="0.1",
        POSTER_BATCH_IDLE_SECONDS="0.1",
    )


def start(kind: str, env: dict, log: Path) -> subprocess.Popen:
    """A ``flask <kind> run`` worker; its output in ``log``."""
    return helpers.start_flask(env, log, kind, "run")


def wait_until(condition, what: str, logs=(), seconds: float = 60) -> None:
    """Poll the database (what the workers write) until ``condition`` holds; fail with the workers' logs."""

    def fresh() -> bool:
        db.session.rollback()  # a fresh look at what the workers committed
        return condition()

    def tails() -> str:
        return "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in logs if p.exists())

    helpers.wait_until(fresh, what, seconds, tails)


def beats(pid: int):
    """The worker's heartbeat row (last_seen_at, stopped_at) or None, read in a transaction ended at once: on
    SQLite an open one of this process would hold the workers' writes back."""
    row = db.session.execute(
        select(WorkerHeartbeat.last_seen_at, WorkerHeartbeat.stopped_at).where(WorkerHeartbeat.pid == pid)
    ).first()
    db.session.rollback()
    return row


def test_healthz_answers_without_asking_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "alive"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_follows_real_workers(app, client, tmp_path):
    app.config["WORKER_ALIVE_SECONDS"] = 3
    # No worker ever seen.
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready" and body["checks"]["database"] and body["checks"]["migrations"]
    assert {p["check"] for p in body["problems"]} == {"outbox_worker", "posters_worker"}
    assert all("从未见到" in p["message"] for p in body["problems"])

    env = worker_env(app, tmp_path)
    logs = [tmp_path / "outbox.log", tmp_path / "posters.log"]
    outbox = start("outbox", env, logs[0])
    posters = start("posters", env, logs[1])
    try:
        wait_until(lambda: beats(outbox.pid) and beats(posters.pid), "both workers' first heartbeat", logs)
        response = client.get("/readyz")
        assert response.status_code == 200, response.get_json()
        assert response.get_json() == {
            "status": "ready",
            "checks": {"database": True, "migrations": True, "outbox_worker": True, "posters_worker": True},
        }
        first = beats(outbox.pid).last_seen_at
        wait_until(lambda: beats(outbox.pid).last_seen_at > first, "a later heartbeat of the running loop", logs)

        # Stopped cleanly: its row says so at once.
        outbox.send_signal(signal.SIGTERM)
        assert outbox.wait(timeout=30) == 0
        assert beats(outbox.pid).stopped_at is not None
        response = client.get("/readyz")
        assert response.status_code == 503
        assert [p["check"] for p in response.get_json()["problems"]] == ["outbox_worker"]

        # Killed: no goodbye; it is taken for stopped once its heartbeat is older than WORKER_ALIVE_SECONDS.
        outbox = start("outbox", env, logs[0])
        wait_until(lambda: beats(outbox.pid) is not None, "the second outbox worker's heartbeat", logs)
        assert client.get("/readyz").status_code == 200
        outbox.send_signal(signal.SIGKILL)
        outbox.wait(timeout=30)
        last = beats(outbox.pid).last_seen_at
        assert beats(outbox.pid).stopped_at is None
        wait_until(lambda: client.get("/readyz").status_code == 503, "the killed worker's heartbeat going stale", logs)
        assert (utcnow() - last).total_seconds() >= 3
    finally:
        for process in (outbox, posters):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)


def test_readyz_names_a_schema_behind_the_code(app, client):
    heartbeat.beat("outbox", force=True)
    heartbeat.beat("posters", force=True)
    current = db.session.scalar(text("SELECT version_num FROM alembic_version"))
    db.session.execute(text("UPDATE alembic_version SET version_num = '75246af8fb6b'"))
    db.session.commit()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        problems = response.get_json()["problems"]
        assert [p["check"] for p in problems] == ["migrations"] and "flask db upgrade" in problems[0]["message"]
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
        db.session.commit()
    assert client.get("/readyz").status_code == 200


def test_doctor_flags_the_default_public_address(app, runner):
    app.config["PUBLIC_BASE_URL"] = "http://127.0.0.1:5000"  # config.py's default
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 1
    assert "[public_address]" in result.output and "指向本机或内部网络" in result.output
    assert "[https]" in result.output and "怎么改" in result.output
    assert "[outbox_worker]" in result.output  # no worker running either


def test_doctor_flags_the_public_address_an_install_gets_when_none_is_set(app, tmp_path):
    """The same through the real command line, with PUBLIC_BASE_URL left unset as ``make run`` leaves it: the
    default the settings derive (http://127.0.0.1:<PORT>) is what is flagged, and the exit code says so."""
    env = {k: v for k, v in worker_env(app, tmp_path).items() if k not in ("PUBLIC_BASE_URL", "PORT")}
    result = subprocess.run(
        [FLASK, "doctor", "--offline"],
        cwd=helpers.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[public_address]" in result.stdout and "http://127.0.0.1:5000" in result.stdout
    assert "指向本机或内部网络" in result.stdout


@pytest.mark.parametrize(
    ("base", "flagged"),
    [
        ("http://192.168.1.20:8000", ["public_address", "https"]),
        ("http://localhost:5000", ["public_address", "https"]),
        ("http://rd.example.gov.cn", ["https"]),
        ("https://rd.example.gov.cn", []),
    ],
)
def test_public_address_checks(app, base, flagged):
    found = sorted({f.check for f in doctor.check_public_address(app.config | {"PUBLIC_BASE_URL": base}, offline=True)})
    assert found == sorted(flagged)
    assert (doctor.public_address_warning(base) is None) == (flagged == [])


def _production(app, monkeypatch):
    app.config.update(
        PUBLIC_BASE_URL="https://rd.example.gov.cn",
        WECHAT_SANDBOX=False,
        WECHAT_APPID="wx1234567890abcdef",
        WECHAT_SECRET="0123456789abcdef0123456789abcdef",
        WECHAT_API_BASE="https://api.weixin.qq.com/",
        WECHAT_TEMPLATES={"item_progress": {"id": "Xy9-real-template-id", "fields": {}}},
    )
    monkeypatch.setenv("SECRET_KEY", "k" * 48)


def test_doctor_passes_production_settings_with_running_workers(app, runner, monkeypatch, cjk_font):
    _production(app, monkeypatch)
    heartbeat.beat("outbox", force=True)
    heartbeat.beat("posters", force=True)
    result = runner.invoke(args=["doctor", "--offline"])
    assert result.exit_code == 0, result.output
    assert "✗" not in result.output
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        assert "[engine]" in result.output and "PostgreSQL" in result.output  # a warning, not a failure


def test_doctor_flags_the_sandbox_and_a_weak_key_on_a_public_address(app, runner, monkeypatch):
    _production(app, monkeypatch)
    app.config.update(
        WECHAT_SANDBOX=True,
        WECHAT_APPID="wx-sandbox-app",
        WECHAT_API_BASE="https://rd.example.gov.cn/_wechat/",
        WECHAT_TEMPLATES={"item_progress": {"id": "tpl-item-progress", "fields": {}}},
    )
    monkeypatch.setenv("SECRET_KEY", "short")
    heartbeat.beat("outbox", force=True)
    heartbeat.beat("posters", force=True)
    result = runner.invoke(args=["doctor", "--offline"])
    assert result.exit_code == 1
    assert "WECHAT_SANDBOX 开着" in result.output and "模拟微信的默认值" in result.output
    assert "不是微信的" in result.output and "item_progress" in result.output
    assert "SECRET_KEY 太短" in result.output
    monkeypatch.delenv("SECRET_KEY")
    assert any(f.check == "secret_key" and "自动生成" in f.message for f in doctor.diagnose(offline=True))


# --- pages ---------------------------------------------------------------------------------------------------


WORLD = admin_world  # the world fixture (tests/conftest.py)


def test_the_workers_page_shows_heartbeats_and_the_oldest_waiting_notice(app, world):
    item = make_item(world.d1)
    db.session.add(OutboxMessage(kind="deputy_new_item", item_id=item.id, staff_user_id=world.users["deputy"].id))
    db.session.add(
        OutboxMessage(
            kind="deputy_new_item", item_id=item.id, staff_user_id=world.users["deputy"].id, status=OutboxStatus.SENT
        )
    )
    db.session.commit()
    heartbeat.beat("outbox", force=True)
    for username in ("sup_county", "admin_a"):
        page = login(app, username).get("/admin/workers")
        assert page.status_code == 200
        html = page.text
        assert 'id="worker-outbox"' in html and "运行中（1个）" in html
        assert "已停止" in html and 'id="worker-down"' in html  # the poster worker was never seen
        assert "<strong>1</strong>条等待发送" in html and item.ref in html
    heartbeat.stop("outbox")
    html = login(app, "sup_county").get("/admin/workers").text
    assert "运行中" not in html and "已正常退出" in html


@pytest.mark.parametrize("who", ["deputy", "department"])
def test_the_workers_page_is_refused_to_others(app, world, who):
    assert login(app, world.users[who].username).get("/admin/workers").status_code == 404


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://127.0.0.1:5000", "指向这台电脑或内部网络"),
        ("http://rd.example.gov.cn", "没有使用 https"),
        ("https://rd.example.gov.cn", None),
    ],
)
def test_printing_pages_warn_about_the_public_address(app, world, base, expected):
    app.config["PUBLIC_BASE_URL"] = base
    client = login(app, "sup_county")
    for path in ("/admin/", f"/admin/stations/{world.station_a.id}", f"/admin/deputies/{world.d1.id}"):
        html = client.get(path).text
        if expected is None:
            assert 'id="public-address-warning"' not in html, path
        else:
            assert 'id="public-address-warning"' in html and expected in html, path
