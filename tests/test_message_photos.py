"""The mini-program's photos (issue 14): one per request to POST /api/v1/items/<ref>/photos?key=, just after the
message, with the H5 form's checks. Bad inputs tried: no file, a text file, an empty file, a photo over the size
limit, a fourth photo, a photo half an hour late, a wrong key, no key, another item's key, staff credentials."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from backend.extensions import db
from backend.models import Item, ItemPhoto, utcnow
from tests.factories import make_item
from tests.helpers import api_token, jpeg_bytes

pytestmark = pytest.mark.usefixtures("count_in_database")


@pytest.fixture
def item(world):
    """A message written a minute ago, without photos."""
    return make_item(world.d1, created_ago=timedelta(minutes=1))


def upload(client, item, data: bytes, name: str = "photo.jpg", key: str | None = None, headers=None):
    """What wx.uploadFile sends: one file under ``photo``, multipart."""
    return client.post(
        f"/api/v1/items/{item.ref}/photos?key={item.access_key if key is None else key}",
        data={"photo": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers=headers or {},
    )


def photo_count() -> int:
    return db.session.scalar(select(func.count()).select_from(ItemPhoto))


def noisy_jpeg(size: tuple[int, int]) -> bytes:
    """A photo that compresses as badly as a real one (kept under Werkzeug's 500 kB in-memory limit: a test
    body above it is a temporary file the test client leaves open)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_photos_join_the_message_and_show_to_the_key_holder(client, item):
    first = upload(client, item, jpeg_bytes((2400, 1800), "gray"))
    second = upload(client, item, jpeg_bytes((300, 200), "blue"), name="b.png")
    assert (first.status_code, second.status_code) == (201, 201)
    assert [first.json["position"], second.json["position"]] == [0, 1] and second.json["photos"] == 2
    shown = client.get(f"/api/v1/items/{item.ref}?key={item.access_key}").json["photos"]
    assert shown == [first.json["url"], second.json["url"]]
    stored = Image.open(io.BytesIO(client.get(first.json["url"]).data))
    assert stored.format == "JPEG" and max(stored.size) == 2048  # scaled as the H5 form's photos are


def test_the_same_photo_sent_again_is_the_one_already_taken(client, item):
    data = jpeg_bytes((120, 90), "green")
    first, again = upload(client, item, data), upload(client, item, data)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json and photo_count() == 1


@pytest.mark.parametrize(
    ("data", "name", "status", "code", "says"),
    [
        pytest.param(b"not a photo at all", "a.jpg", 400, "photo_bad_type", "只能上传 JPG 或 PNG", id="a text file"),
        pytest.param(b"", "a.jpg", 400, "photo_bad_type", "照片文件是空的", id="an empty file"),
        pytest.param(b"GIF89a" + b"\0" * 64, "a.gif", 400, "photo_bad_type", "只能上传 JPG 或 PNG", id="a GIF"),
        pytest.param(None, "big.jpg", 400, "photo_too_large", "照片太大", id="over the size limit"),
    ],
)
def test_bad_photos_are_refused_in_chinese_and_write_nothing(app, client, item, data, name, status, code, says):
    app.config["PHOTO_MAX_BYTES"] = 50_000
    answer = upload(client, item, noisy_jpeg((300, 300)) if data is None else data, name=name)
    assert answer.status_code == status and answer.json["error"]["code"] == code
    assert says in answer.json["error"]["message"] and photo_count() == 0


def test_no_file_is_a_400(client, item):
    answer = client.post(
        f"/api/v1/items/{item.ref}/photos?key={item.access_key}", data={}, content_type="multipart/form-data"
    )
    assert answer.status_code == 400 and answer.json["error"]["code"] == "photo_missing"
    assert client.post(f"/api/v1/items/{item.ref}/photos?key={item.access_key}").status_code == 400


def test_at_most_the_form_s_number_of_photos(client, item):
    for n in range(3):
        assert upload(client, item, jpeg_bytes((50 + n, 50), "red")).status_code == 201
    fourth = upload(client, item, jpeg_bytes((90, 50), "red"))
    assert fourth.status_code == 409 and fourth.json["error"]["code"] == "too_many_photos"
    assert "最多上传3张照片" in fourth.json["error"]["message"] and photo_count() == 3


def test_only_just_after_the_message(client, item):
    db.session.execute(update(Item).where(Item.id == item.id).values(created_at=utcnow() - timedelta(minutes=31)))
    db.session.commit()
    late = upload(client, item, jpeg_bytes())
    assert late.status_code == 409 and late.json["error"]["code"] == "photo_too_late"
    assert "30 分钟内" in late.json["error"]["message"] and photo_count() == 0


def test_only_the_key_holder_and_never_staff(app, client, world, item):
    other = make_item(world.d1, body="另一件留言：菜市场门口积水。", created_ago=timedelta(minutes=1))
    for key in ("WRONGKEY1234", "", other.access_key):
        assert upload(client, item, jpeg_bytes(), key=key).status_code == 404
    for username in ("deputy_d1", "admin_a", "sup_county"):
        refused = upload(client, item, jpeg_bytes(), headers=api_token(app, username))
        assert refused.status_code == 403 and refused.json["error"]["code"] == "staff_cannot_answer"
    assert photo_count() == 0
