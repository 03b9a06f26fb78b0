"""QR images: decoded with a real decoder, sizes bounded, cached with strong ETags, rotated with the slug."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import cairosvg
import pytest
import zxingcpp
from PIL import Image

from backend.extensions import db
from backend.models import DeputyStatus
from backend.qr.codes import current_code, rotate_code
from backend.qr.render import qr_png, qr_svg

BASE = "https://msl.example.cn"
SVG_NS = "{http://www.w3.org/2000/svg}"


def decode(image: Image.Image) -> list[str]:
    """Every QR code zxing-cpp finds in the image."""
    return [barcode.text for barcode in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def decode_png(data: bytes) -> list[str]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return decode(image)


def decode_svg(data: bytes, width: int = 600) -> list[str]:
    png = cairosvg.svg2png(bytestring=data, output_width=width, output_height=width)
    return decode(Image.open(io.BytesIO(png)))


def expected_url(owner) -> str:
    return f"{BASE}/c/{current_code(owner).slug}"


# --- rendering -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 333, 600, 2000])
def test_png_is_black_on_white_at_the_size_asked(size):
    url = f"{BASE}/c/AbCdEfGhIjKl"
    image = Image.open(io.BytesIO(qr_png(url, size)))
    assert image.size == (size, size)
    assert {value for _count, value in image.convert("L").getcolors()} == {0, 255}  # sharp: no grey from smoothing
    assert image.convert("L").getpixel((0, 0)) == 255  # the quiet zone is white
    assert decode(image) == [url]


def test_png_keeps_a_four_module_quiet_zone():
    url = f"{BASE}/c/AbCdEfGhIjKl"
    # A 37-module symbol (29 + 2 × 4) at 10 px a module: the first 40 px of every edge are white.
    image = Image.open(io.BytesIO(qr_png(url, 370))).convert("L")
    assert image.getbbox() is not None
    inverted = image.point(lambda v: 255 - v)
    assert inverted.getbbox() == (40, 40, 330, 330)


def test_svg_is_standalone_with_viewbox_and_size():
    url = f"{BASE}/c/AbCdEfGhIjKl"
    data = qr_svg(url, 500)
    assert data.startswith(b"<?xml")
    root = ET.fromstring(data)  # noqa: S314 — our own output, not untrusted input
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("width") == "500"
    assert root.get("height") == "500"
    # 29 modules + 4 of quiet zone either side, one user unit per module.
    assert root.get("viewBox") == "0 0 37 37"
    assert root.find(f"{SVG_NS}rect").get("fill") == "white"
    assert len(root.findall(f"{SVG_NS}path")) == 1
    assert decode_svg(data) == [url]


# --- routes ----------------------------------------------------------------------------------


def test_deputy_png_decodes_to_current_code_url(client, create_deputy):
    deputy = create_deputy()
    response = client.get(f"/qr/deputy/{deputy.id}.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert Image.open(io.BytesIO(response.data)).size == (600, 600)
    assert decode_png(response.data) == [expected_url(deputy)]


def test_deputy_svg_decodes_to_current_code_url(client, create_deputy):
    deputy = create_deputy()
    response = client.get(f"/qr/deputy/{deputy.id}.svg?size=300")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.data)  # noqa: S314 — our own output
    assert root.tag == f"{SVG_NS}svg"
    assert (root.get("width"), root.get("height")) == ("300", "300")
    assert root.get("viewBox")
    assert decode_svg(response.data) == [expected_url(deputy)]


def test_station_png_and_svg_decode_to_station_code_url(client, create_station):
    station = create_station()
    png = client.get(f"/qr/station/{station.id}.png?size=400")
    svg = client.get(f"/qr/station/{station.id}.svg")
    assert png.status_code == svg.status_code == 200
    assert Image.open(io.BytesIO(png.data)).size == (400, 400)
    assert decode_png(png.data) == [expected_url(station)]
    assert decode_svg(svg.data) == [expected_url(station)]


def test_deputy_no_longer_serving_keeps_their_image(client, create_deputy):
    deputy = create_deputy(status=DeputyStatus.RESIGNED)
    response = client.get(f"/qr/deputy/{deputy.id}.png")
    assert response.status_code == 200
    assert decode_png(response.data) == [expected_url(deputy)]


@pytest.mark.parametrize(
    "query",
    [
        "size=99",
        "size=2001",
        "size=abc",
        "size=",
        "size=0",
        "size=-600",
        "size=%2B600",
        "size=600.0",
        "size=6_00",
        "size=%D9%A6%D9%A0%D9%A0",
        "size=%20600",
        "size=99999999999999999999",
        "size=600&size=600",
        "size=600&size=abc",
    ],
)
def test_bad_size_is_400_with_chinese_page(client, create_deputy, query):
    deputy = create_deputy()
    for path in (f"/qr/deputy/{deputy.id}.png", f"/qr/station/{deputy.station_id}.svg"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        assert "尺寸参数无效，应为100到2000之间的整数。" in response.get_data(as_text=True)
        assert "bad_size" in response.get_data(as_text=True)


@pytest.mark.parametrize("size", [100, 2000])
def test_size_bounds_are_inclusive(client, create_deputy, size):
    deputy = create_deputy()
    response = client.get(f"/qr/deputy/{deputy.id}.png?size={size}")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.data)).size == (size, size)


def test_max_size_follows_config(app, client, create_deputy):
    deputy = create_deputy()
    app.config["QR_MAX_SIZE"] = 800
    assert client.get(f"/qr/deputy/{deputy.id}.png?size=801").status_code == 400
    assert client.get(f"/qr/deputy/{deputy.id}.png?size=800").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/qr/deputy/{missing}.png",
        "/qr/deputy/{missing}.svg",
        "/qr/station/{missing}.png",
        "/qr/station/{missing}.svg",
        "/qr/deputy/0.png",
        "/qr/deputy/-1.png",
        "/qr/deputy/2147483648.png",
        "/qr/station/99999999999999999999.svg",
        "/qr/deputy/abc.png",
        "/qr/deputy/{deputy}.gif",
    ],
)
def test_unknown_id_is_404(client, create_deputy, path):
    deputy = create_deputy()
    response = client.get(path.format(missing=deputy.id + deputy.station_id + 1000, deputy=deputy.id))
    assert response.status_code == 404
    assert "找不到该页面或记录。" in response.get_data(as_text=True)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_strong_etag_cache_control_and_304(client, create_deputy, fmt):
    deputy = create_deputy()
    url = f"/qr/deputy/{deputy.id}.{fmt}"
    first = client.get(url)
    etag, is_weak = first.get_etag()
    assert etag and not is_weak
    assert not first.headers["ETag"].startswith("W/")
    assert first.cache_control.public
    assert first.cache_control.max_age == 86400

    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == first.headers["ETag"]

    other = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.data == first.data


def test_etag_differs_by_size_format_and_owner(client, create_deputy):
    deputy = create_deputy()
    station_id = deputy.station_id
    etags = {
        client.get(path).headers["ETag"]
        for path in (
            f"/qr/deputy/{deputy.id}.png",
            f"/qr/deputy/{deputy.id}.png?size=300",
            f"/qr/deputy/{deputy.id}.svg",
            f"/qr/station/{station_id}.png",
        )
    }
    assert len(etags) == 4
    # Same owner, size and format: same ETag, request after request.
    assert client.get(f"/qr/deputy/{deputy.id}.png").headers["ETag"] in etags


@pytest.mark.parametrize("kind", ["deputy", "station"])
def test_rotation_changes_etag_and_image(client, create_deputy, kind):
    deputy = create_deputy()
    owner = deputy if kind == "deputy" else deputy.station
    url = f"/qr/{kind}/{owner.id}.png"
    before = client.get(url)
    old_url = expected_url(owner)

    rotate_code(owner, "poster defaced")
    db.session.commit()
    new_url = expected_url(owner)
    assert new_url != old_url

    stale = client.get(url, headers={"If-None-Match": before.headers["ETag"]})
    assert stale.status_code == 200
    assert stale.headers["ETag"] != before.headers["ETag"]
    assert decode_png(stale.data) == [new_url]
    svg = client.get(f"/qr/{kind}/{owner.id}.svg")
    assert decode_svg(svg.data) == [new_url]
