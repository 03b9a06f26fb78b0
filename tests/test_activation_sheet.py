"""A station's activation sheet (issue 13): an A4 PDF with each not-yet-activated account's name, role and the QR
code of a fresh one-time link. Printing it issues new links and ends the older ones (a link is printed once);
its administrator and the supervisors of its region may print it, nobody else. The PDF is read back by poppler,
its codes by zxing-cpp, and one decoded link activates its account."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import zxingcpp
from flask import g
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import ActivationLink, StaffUser
from tests.factories import admin_world
from tests.helpers import audit_rows, csv_bytes, dry_run, fresh_token, login
from tests.test_admin_accounts import activate
from tests.test_admin_import import A, B, confirm
from tests.test_import_accounts import HEADER
from tests.test_posters import pdf_info, pdf_page_image

SHEETS_DIR = Path(__file__).resolve().parents[1] / "test-output" / "activation-sheets"


WORLD = admin_world  # the world fixture (tests/conftest.py)


def import_accounts(app, count: int = 12) -> None:
    """``count`` new deputies at station A and its administrator, with accounts, imported by the county's supervisor."""
    rows = [HEADER, ["李红梅", "", "", A, "13700000000", "", "", "联络站管理员"]]
    rows += [[f"代表{i:02d}", "乡镇", "某选区", A, f"1370000{i:04d}", "", "", ""] for i in range(1, count + 1)]
    rows.append(["沔渡代表", "乡镇", "某选区", B, "13600000001", "", "", ""])
    client = login(app, "sup_county")
    html = dry_run(client, csv_bytes(rows)).get_data(as_text=True)
    assert confirm(client, html).status_code == 303


def post_sheet(client, station_id: int):
    g.pop("csrf_token", None)
    _, token = fresh_token(client, "/staff/")
    return client.post(f"/admin/stations/{station_id}/activation-sheet", data={"csrf_token": token})


def live_links() -> set[int]:
    return set(db.session.scalars(select(ActivationLink.id).where(ActivationLink.revoked_at.is_(None))))


def decode_pages(data: bytes, tmp_path: Path, name: str) -> list[str]:
    """Every code on every page, as printed: each page rendered by pdftoppm at 150 dpi and kept to be looked at."""
    SHEETS_DIR.mkdir(parents=True, exist_ok=True)
    urls = []
    for page in range(1, pdf_info(data, tmp_path)["pages"] + 1):
        image = pdf_page_image(data, tmp_path, page, dpi=150)
        image.save(SHEETS_DIR / f"{name}-{page}.png")
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        urls += sorted((code.position.top_left.y, code.position.top_left.x, code.text) for code in found)
    return [text for _, _, text in urls]


def test_the_sheet_gives_each_pending_account_a_fresh_link_that_activates_it(app, world, poppler, tmp_path):
    import_accounts(app)
    station_a = world.station_a.id
    before = live_links()
    client = login(app, "sup_county")
    page = client.get(f"/admin/stations/{station_a}").get_data(as_text=True)
    assert 'id="pending-accounts">13<' in page and "打印激活单" in page

    response = post_sheet(client, station_a)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert f'filename="station-{station_a}-activation.pdf"' in response.headers["Content-Disposition"]
    info = pdf_info(response.data, tmp_path)
    assert info["pages"] == 2 and info["sizes"] == ["595.28 x 841.89"] * 2  # A4: ten slips a page
    urls = decode_pages(response.data, tmp_path, "station-a")
    assert len(urls) == 13 and len(set(urls)) == 13
    assert all(re.fullmatch(r"https://msl\.example\.cn/staff/activate/[A-Za-z0-9_-]{32}", url) for url in urls)

    # The import's links ended; 13 new ones live, one per account of station A; station B's stayed as they were.
    accounts_a = set(
        db.session.scalars(
            select(StaffUser.id).where(StaffUser.username.like("1370%"))  # A's administrator and deputies
        )
    )
    now_live = live_links()
    assert len(now_live - before) == 13 and len(before - now_live) == 13
    new_links = db.session.scalars(select(ActivationLink).where(ActivationLink.id.in_(now_live - before))).all()
    assert {link.staff_user_id for link in new_links} == accounts_a
    [row] = audit_rows("activation_sheet_printed")
    assert row.object_id == str(station_a) and {a["id"] for a in row.data["accounts"]} == accounts_a
    # The administrator first, then the deputies in the order of the file.
    assert "李红梅" in pdf_text(response.data, tmp_path).split("代表01")[0]

    # The first code, opened on a phone: the person sets their password and is logged in.
    token = urls[0].rsplit("/", 1)[1]
    phone, activation, done = activate(app, f"/staff/activate/{token}", "my own pass 2026")
    assert activation.status_code == 200 and "李红梅" in activation.get_data(as_text=True)
    assert done.status_code == 303
    assert phone.get("/admin/").status_code == 200  # logged in, as station A's administrator
    assert phone.get(f"/staff/activate/{token}").status_code == 410  # once only

    # Printing again lists the twelve still pending, and voids the first sheet's other links.
    response = post_sheet(client, station_a)
    assert len(decode_pages(response.data, tmp_path, "station-a-again")) == 12
    assert app.test_client().get(f"/staff/activate/{urls[1].rsplit('/', 1)[1]}").status_code == 410


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The PDF's text as poppler extracts it (the embedded font maps its glyphs back to Unicode)."""
    import subprocess

    path = tmp_path / "sheet.pdf"
    path.write_bytes(data)
    result = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    return re.sub(r"[ \t]+", "", result.stdout)  # poppler spaces out the layout


def test_the_sheet_names_each_person_their_role_and_username(app, world, poppler, tmp_path):
    import_accounts(app, count=2)
    response = post_sheet(login(app, "admin_a"), world.station_a.id)  # the station's own administrator
    assert response.status_code == 200
    text = pdf_text(response.data, tmp_path)
    assert "账号激活单" in text and "第1/1页" in text
    for expected in ("李红梅", "联络站管理员", "用户名：13700000000", "代表01", "人大代表", "用户名：13700000001"):
        assert expected in text


@pytest.mark.parametrize("username", ["admin_b", "deputy_d1", "dept_user", "sup_sibling", "sup_far", "sup_township"])
def test_nobody_else_may_print_it(app, world, username):
    import_accounts(app, count=2)
    before = live_links()
    refusals = ("admin_access_denied", "forbidden")  # out of scope; not an administrator at all
    denied = sum(len(audit_rows(action)) for action in refusals)
    response = post_sheet(login(app, username), world.station_a.id)
    assert response.status_code == 404
    assert live_links() == before  # no link issued, none ended
    assert sum(len(audit_rows(action)) for action in refusals) == denied + 1
    assert audit_rows("activation_sheet_printed") == []


def test_anonymous_and_without_csrf_and_by_get(app, world):
    import_accounts(app, count=1)
    before = live_links()
    anonymous = app.test_client()
    assert anonymous.post(f"/admin/stations/{world.station_a.id}/activation-sheet").status_code in (302, 303, 400)
    client = login(app, "sup_county")
    assert client.post(f"/admin/stations/{world.station_a.id}/activation-sheet").status_code == 400  # no CSRF token
    assert client.get(f"/admin/stations/{world.station_a.id}/activation-sheet").status_code == 405
    assert post_sheet(client, 2**31).status_code == 404
    assert live_links() == before


def test_nothing_to_activate_says_so(app, world):
    client = login(app, "sup_county")
    before = db.session.scalar(select(func.count(ActivationLink.id)))
    response = post_sheet(client, world.station_b.id)  # station B's accounts were made with passwords
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/admin/stations/{world.station_b.id}#activation"
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "本站没有待激活的账号" in page and 'id="pending-accounts-none"' in page
    assert db.session.scalar(select(func.count(ActivationLink.id))) == before


def test_a_disabled_or_activated_account_is_not_listed(app, world, poppler, tmp_path):
    import_accounts(app, count=3)
    client = login(app, "sup_county")
    disabled = db.session.scalar(select(StaffUser).where(StaffUser.username == "13700000001"))
    g.pop("csrf_token", None)
    _, token = fresh_token(client, "/admin/accounts")
    assert (
        client.post(f"/admin/accounts/{disabled.id}/active", data={"csrf_token": token, "active": "0"}).status_code
        == 303
    )
    response = post_sheet(client, world.station_a.id)
    text = pdf_text(response.data, tmp_path)
    assert "代表01" not in text and "代表02" in text and "李红梅" in text
