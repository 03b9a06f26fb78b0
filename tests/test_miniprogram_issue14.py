"""The mini-program of issue 14: photos, times in the timeline, a former deputy's code. The photos in the Node scenarios of miniprogram_stub/test/scenarios.js against the
backend over real HTTP: chosen with wx.chooseMedia, shrunk on the phone with wx.compressImage (long side 2,048,
JPEG), sent with wx.uploadFile one a request after the message; refused on the phone with a Chinese message when
of the wrong type or still too big, and by the backend (a dialog; the message is kept)."""

# ruff: noqa: F811 - the fixtures imported from test_miniprogram_stub are named as parameters

from __future__ import annotations

import io
import os
import sys

import pytest
import requests
from PIL import Image
from sqlalchemy import select

from backend.extensions import db
from backend.models import DeputyStatus, Item
from backend.models.deputy import DEPUTY_STATUS_LABELS
from backend.timefmt import china_time
from tests.test_miniprogram_stub import STUB, backend_url, deputy_env, node, scenario, stub_env  # noqa: F401
from tests.wechat_server import wechat_sandbox  # noqa: F401

pytestmark = pytest.mark.engine_independent(
    reason="the mini-program's JavaScript against the API: the API's engine part is tested in both suites by the API tests"
)


def camera_photo(path) -> int:
    """A 4,000×3,000 photo as a phone camera writes it (noise compresses as badly as a real scene): over 12 MB."""
    width, height = 4000, 3000
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(path, "JPEG", quality=95)
    return path.stat().st_size


def photo_files(tmp_path) -> tuple[dict[str, str], int]:
    """The files the resident picks from the album, by name; and the camera photo's size."""
    camera = tmp_path / "IMG_20261203_101500.jpg"
    size = camera_photo(camera)
    png = tmp_path / "截图.png"
    Image.new("RGB", (1080, 2340), (30, 120, 200)).save(png, "PNG")
    small = tmp_path / "small.jpg"
    Image.new("RGB", (400, 300), (200, 40, 40)).save(small, "JPEG")
    gif = tmp_path / "动图.gif"
    Image.new("P", (40, 40)).save(gif, "GIF")
    text = tmp_path / "notes.jpg"
    text.write_text("这不是照片", encoding="utf-8")
    files = {"camera": camera, "png": png, "small": small, "gif": gif, "text": text}
    return {name: str(path) for name, path in files.items()}, size


def test_photos_are_shrunk_on_the_phone_and_sent_after_the_message(
    scenario, backend_url, wechat_sandbox, world, tmp_path
):
    files, camera_bytes = photo_files(tmp_path)
    assert camera_bytes > 12 * 1024 * 1024
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1), python=sys.executable, files=files)
    result = scenario("photos", **env, cameraBytes=camera_bytes)
    assert all(size < 2 * 1024 * 1024 for size in result["uploaded"])  # what went over the network
    db.session.expire_all()
    item = db.session.scalar(select(Item).where(Item.ref == result["ref"]))
    assert item.channel.value == "miniprogram" and [p.position for p in item.photos] == [0, 1]
    # As the server keeps them (its own photo store), fetched as the key's holder would.
    stored = [
        Image.open(
            io.BytesIO(
                requests.get(
                    f"{backend_url}/t/{item.ref}/photos/{p.position}.jpg?k={result['key']}", timeout=10
                ).content
            )
        )
        for p in item.photos
    ]
    assert [image.size for image in stored] == [(2048, 1536), (945, 2048)]
    assert all(image.format == "JPEG" for image in stored)
    assert result["when"] == china_time(item.created_at)  # the timeline's time, in China time


def test_photos_are_refused_in_chinese_on_the_phone_and_by_the_backend(
    scenario, backend_url, wechat_sandbox, world, tmp_path
):
    files, _ = photo_files(tmp_path)
    served = wechat_sandbox.app
    saved = {key: served.config[key] for key in ("PHOTO_MAX_BYTES", "PHOTO_MAX_PIXELS")}
    # Small enough that the shrunk camera photo is still too big on the phone; the backend then refuses the small
    # photo the phone accepted, by its pixels (what only the backend checks).
    served.config.update(PHOTO_MAX_BYTES=300_000, PHOTO_MAX_PIXELS=100_000)
    try:
        env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1), python=sys.executable, files=files)
        assert scenario("photos_refused", **env, maxBytes=300_000)["uploads"] == 1
    finally:
        served.config.update(saved)
    db.session.expire_all()
    item = db.session.scalar(select(Item))
    assert item is not None and item.photos == []  # the message is in, without the refused photo


def test_a_former_deputys_code_shows_the_station_and_says_why(scenario, backend_url, wechat_sandbox, world):
    world.d1.status = DeputyStatus.RESIGNED
    db.session.commit()
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1))
    label = DEPUTY_STATUS_LABELS[DeputyStatus.RESIGNED]
    notice = scenario("landing_retired", **env, statusLabel=label)["notice"]
    assert notice == f"{world.d1.name}{label}，不再接收新的留言。您的留言将交给{world.d1.station.name}的代表办理。"


def test_the_backends_address_comes_from_configuration(scenario, backend_url, wechat_sandbox, world):
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1))
    seen = scenario("config_base_url", **env, extBaseUrl=backend_url)
    assert seen["ext"] == backend_url and seen["release"] == ""
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (STUB / "pages").rglob("*.js"))
    assert ":5000" not in pages and ":5000" not in (STUB / "utils" / "api.js").read_text(encoding="utf-8")
