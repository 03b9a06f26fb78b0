"""Mini-program codes of deputies and stations (getwxacodeunlimit through the local WeChat sandbox, decoded
with a real QR decoder), fetched once and kept; and the verification file for 扫普通链接二维码打开小程序."""

# ruff: noqa: F811 - the wechat_sandbox fixture is imported, then named as a parameter

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from backend import create_app
from backend.extensions import db
from backend.models import DeputyStatus, MiniProgramCode
from backend.qr.codes import current_code, rotate_code
from backend.wechat.wxacode import SCENE_RE, binding_scene, code_scene
from tests.helpers import wait_until
from tests.test_sqlite_concurrency import write_lock_is_free
from tests.wechat_server import wechat_sandbox  # noqa: F401

CALL = "wxa/getwxacodeunlimit"


def decode_png(data: bytes) -> list[str]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def owner_and_url(create_deputy, kind: str):
    deputy = create_deputy()
    owner = deputy if kind == "deputy" else deputy.station
    return owner, f"/qr/{kind}/{owner.id}/wxacode.png"


@pytest.mark.parametrize("kind", ["deputy", "station"])
def test_a_code_is_fetched_once_and_kept(client, wechat_sandbox, create_deputy, kind):
    owner, url = owner_and_url(create_deputy, kind)
    slug = current_code(owner).slug
    first = client.get(url)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.mimetype == "image/png"
    assert decode_png(first.data) == [f"c={slug}"]
    etag, weak = first.get_etag()
    assert etag and not weak
    assert first.headers["Cache-Control"] == "public, max-age=86400"
    assert wechat_sandbox.stats()[CALL] == 1

    again = client.get(url)
    assert again.data == first.data and again.get_etag() == first.get_etag()
    assert client.get(url, headers={"If-None-Match": f'"{etag}"'}).status_code == 304
    assert wechat_sandbox.stats()[CALL] == 1  # kept: WeChat is asked once per slug
    row = db.session.scalar(select(MiniProgramCode))
    assert row.scene == f"c={slug}" and row.code_id == current_code(owner).id


@pytest.mark.parametrize("kind", ["deputy", "station"])
def test_a_rotated_slug_gets_a_new_code(client, wechat_sandbox, create_deputy, kind):
    owner, url = owner_and_url(create_deputy, kind)
    old = client.get(url)
    rotate_code(owner, "海报被涂改")
    db.session.commit()
    new = client.get(url)
    assert new.status_code == 200
    assert decode_png(new.data) == [f"c={current_code(owner).slug}"]
    assert new.get_etag() != old.get_etag()
    assert wechat_sandbox.stats()[CALL] == 2
    assert db.session.scalar(select(func.count()).select_from(MiniProgramCode)) == 2


def test_a_former_deputys_code_still_works(client, wechat_sandbox, create_deputy):
    deputy = create_deputy()
    deputy.status = DeputyStatus.RESIGNED
    db.session.commit()
    assert client.get(f"/qr/deputy/{deputy.id}/wxacode.png").status_code == 200


@pytest.mark.parametrize("kind", ["http500", "timeout", "busy"])
def test_wechat_failing_is_a_503_and_nothing_is_kept(client, wechat_sandbox, create_deputy, kind):
    _owner, url = owner_and_url(create_deputy, "deputy")
    wechat_sandbox.fault(CALL, kind, times=1)
    failed = client.get(url)
    assert failed.status_code == 503
    assert failed.headers["Retry-After"]
    assert "小程序码" in failed.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(MiniProgramCode)) == 0
    assert client.get(url).status_code == 200  # WeChat is back


def test_no_write_lock_is_held_while_wechat_answers(app, wechat_sandbox, create_deputy):
    """On SQLite a transaction that writes holds the database's write lock: none may be open during the WeChat call."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    _owner, url = owner_and_url(create_deputy, "deputy")
    db.session.commit()
    wechat_sandbox.fault(CALL, "timeout", times=1, seconds=2.5)  # longer than the client's 2-second timeout
    answers = []
    request = threading.Thread(target=lambda: answers.append(app.test_client().get(url).status_code))
    request.start()
    wait_until(lambda: wechat_sandbox.stats().get(CALL, 0) == 1, "the request to be waiting for WeChat")
    assert write_lock_is_free(Path(db.engine.url.database))  # taken at once, with no busy timeout to wait in
    assert answers == [], "the request had answered before the lock was probed: nothing was tested"
    request.join(timeout=30)
    assert answers == [503]


def test_unknown_owners_are_404(client, wechat_sandbox):
    assert client.get("/qr/deputy/999/wxacode.png").status_code == 404
    assert client.get("/qr/station/999/wxacode.png").status_code == 404
    assert client.get(f"/qr/deputy/{2**31}/wxacode.png").status_code == 404
    assert wechat_sandbox.stats().get(CALL, 0) == 0


def test_scenes_fit_wechats_rules():
    assert code_scene("AbC-d_E1234x") == "c=AbC-d_E1234x"
    assert len(code_scene("A" * 12)) <= 32
    assert binding_scene("A" * 16) == "b=" + "A" * 16
    for bad in ("c=" + "x" * 31, "c=中文", "c=a%20b", ""):
        assert not SCENE_RE.fullmatch(bad)
    with pytest.raises(ValueError):
        code_scene("x" * 31)


def test_the_page_opened_is_a_published_page_of_the_mini_program(app, client, wechat_sandbox, create_deputy):
    # The sandbox checks the page against miniprogram_stub/app.json (check_path on for release).
    app.config["WECHAT_MINIPROGRAM_PAGE_LANDING"] = "pages/nowhere/nowhere"
    _, url = owner_and_url(create_deputy, "deputy")
    assert client.get(url).status_code == 503
    app.config["WECHAT_MINIPROGRAM_PAGE_LANDING"] = "pages/landing/landing"
    assert client.get(url).status_code == 200


# --- the verification file ------------------------------------------------------------------


@pytest.mark.parametrize(("directory", "path"), [(None, "/"), ("/", "/"), ("/c/", "/c/"), ("c", "/c/")])
def test_the_verification_file_is_served_where_the_settings_say(database_url, create_deputy, directory, path):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WECHAT_QR_VERIFY_FILENAME": "Xk3LmQ9aZt.txt",
        "WECHAT_QR_VERIFY_CONTENT": "b1946ac92492d2347c6235b4d2611184",
    }
    if directory is not None:
        config["WECHAT_QR_VERIFY_PATH"] = directory
    app = create_app(config)
    with app.app_context():
        client = app.test_client()
        response = client.get(f"{path}Xk3LmQ9aZt.txt")
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "b1946ac92492d2347c6235b4d2611184"
        assert response.mimetype == "text/plain"
        assert client.get("/Other.txt").status_code == 404
        if path == "/c/":  # the form behind a code still works beside it
            slug = current_code(create_deputy()).slug
            assert client.get(f"/c/{slug}").status_code == 200
        db.session.remove()
        db.engine.dispose()


def test_no_verification_file_unless_configured(client):
    assert client.get("/Xk3LmQ9aZt.txt").status_code == 404


def test_a_verification_file_name_with_a_path_is_refused(database_url):
    with pytest.raises(ValueError, match="WECHAT_QR_VERIFY_FILENAME"):
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "WECHAT_QR_VERIFY_FILENAME": "../x.txt"})
