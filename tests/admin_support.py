"""Builders shared by the administration tests: the staff world of ``staff_world`` plus a township under
the county (a station there), a sibling county with its supervisor, and a form poster for logged-in clients."""

from __future__ import annotations

import codecs
import io
from types import SimpleNamespace

from flask import g
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import AuditEntry, Region, RegionLevel, StaffRole, StaffUser
from tests.staff_world import build_world, fresh_token, login, password_hash

SIBLING_COUNTY = "430224"  # 茶陵县, beside 炎陵县 under 株洲市


def build_admin_world(create_county, create_station, create_deputy) -> SimpleNamespace:
    """``build_world`` plus 霞阳镇 under the county with station T and deputy d5, and 茶陵县 with station S and its supervisor."""
    world = build_world(create_county, create_station, create_deputy)
    city_id = world.county.parent_id
    township = Region(code="430225100", name="霞阳镇", level=RegionLevel.TOWNSHIP, parent_id=world.county.id)
    sibling = Region(code=SIBLING_COUNTY, name="茶陵县", level=RegionLevel.COUNTY, parent_id=city_id)
    db.session.add_all([township, sibling])
    db.session.commit()
    world.township = township
    world.sibling = sibling
    world.station_t = create_station(name="霞阳镇城东社区联络站", region=township)
    world.station_s = create_station(name="茶陵县城关联络站", region=sibling)
    world.d5 = create_deputy(name="罗开华", station=world.station_t)
    world.d6 = create_deputy(name="谭茶陵", station=world.station_s)
    for username, role, scope in (
        ("sup_sibling", StaffRole.SUPERVISOR, {"region": sibling}),
        ("sup_township", StaffRole.SUPERVISOR, {"region": township}),
    ):
        user = StaffUser(username=username, display_name=username, password_hash=password_hash(), role=role, **scope)
        db.session.add(user)
        world.users[username] = user
    db.session.commit()
    return world


def post_form(client, path: str, data: dict | None = None, page: str = "/staff/", **kwargs):
    """POST a form with a CSRF token taken from a page the client may open."""
    _, token = fresh_token(client, page)
    g.pop("csrf_token", None)
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def audit_count(*actions: str) -> int:
    """Audit rows of the given actions."""
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.in_(actions)))


def logged_in(app, username: str):
    """A client logged in as ``username``."""
    return login(app, username)


def csv_bytes(rows, encoding: str = "utf-8", bom: bool = False) -> bytes:
    text = "\r\n".join(",".join(_quote(v) for v in row) for row in rows) + "\r\n"
    data = text.encode(encoding)
    return (codecs.BOM_UTF8 + data) if bom else data


def _quote(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ',"\n') else value


def dry_run(client, data: bytes, filename: str = "名册.csv"):
    g.pop("csrf_token", None)
    _, token = fresh_token(client, "/admin/import")
    return client.post(
        "/admin/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )
