"""Builders shared by the tests of the staff pages, the department link and the rating: a small county
with staff of every role, items in any state reached through the real lifecycle, and logged-in clients."""

from __future__ import annotations

import functools
from datetime import timedelta
from types import SimpleNamespace

from flask import g
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from backend.extensions import db
from backend.items.lifecycle import forward_link_token, perform_action
from backend.items.refs import new_access_key, new_ref
from backend.models import (
    AuditEntry,
    Department,
    Item,
    ItemCategory,
    ItemChannel,
    ItemEvent,
    ItemForward,
    OutboxMessage,
    StaffRole,
    StaffUser,
    utcnow,
)
from backend.stations.calendar import today_in_china
from tests.helpers import TEST_PASSWORD_HASH_METHOD, csrf_token_from

PASSWORD = "correct horse 2026"


@functools.cache
def password_hash() -> str:
    """One hash for every test user, made with the tests' cheap method (checking it at each login is cheap too)."""
    return generate_password_hash(PASSWORD, method=TEST_PASSWORD_HASH_METHOD)


def build_world(create_county, create_station, create_deputy) -> SimpleNamespace:
    """Two stations in 炎陵县 (A, B), one in 南山区 (C); deputies d1, d2 (A), d3 (B), d4 (C); a user per role."""
    county = create_county()
    other_county = create_county(code="440305", name="南山区")
    station_a = create_station(name="霞阳镇人大代表联络站", region=county)
    station_b = create_station(name="沔渡镇人大代表之家", region=county)
    station_c = create_station(name="南山区某街道联络站", region=other_county)
    d1 = create_deputy(name="张秀英", station=station_a)
    d2 = create_deputy(name="李建国", station=station_a)
    d3 = create_deputy(name="周桂兰", station=station_b)
    d4 = create_deputy(name="赵外站", station=station_c)
    department = Department(name="炎陵县住房和城乡建设局", region=county, contact_name="王志刚")
    department2 = Department(name="炎陵县交通运输局", region=county)
    far_department = Department(name="南山区城管局", region=other_county)
    db.session.add_all([department, department2, far_department])
    db.session.flush()

    def user(username, role, **scope):
        staff = StaffUser(username=username, display_name=username, password_hash=password_hash(), role=role, **scope)
        db.session.add(staff)
        return staff

    users = {
        "deputy": user("deputy_d1", StaffRole.DEPUTY, deputy=d1),
        "deputy2": user("deputy_d2", StaffRole.DEPUTY, deputy=d2),
        "deputy_b": user("deputy_d3", StaffRole.DEPUTY, deputy=d3),
        "deputy_far": user("deputy_d4", StaffRole.DEPUTY, deputy=d4),
        "station_admin": user("admin_a", StaffRole.STATION_ADMIN, station=station_a),
        "station_admin_b": user("admin_b", StaffRole.STATION_ADMIN, station=station_b),
        "supervisor": user("sup_county", StaffRole.SUPERVISOR, region=county),
        "supervisor_far": user("sup_far", StaffRole.SUPERVISOR, region=other_county),
        "department": user("dept_user", StaffRole.DEPARTMENT, department=department),
    }
    db.session.commit()
    return SimpleNamespace(
        county=county,
        station_a=station_a,
        station_b=station_b,
        station_c=station_c,
        d1=d1,
        d2=d2,
        d3=d3,
        d4=d4,
        department=department,
        department2=department2,
        far_department=far_department,
        users=users,
    )


def make_item(
    deputy,
    *,
    body: str = "村口路灯坏了三个月，晚上出行很不方便。",
    category: ItemCategory = ItemCategory.URBAN,
    name: str = "王桂芳",
    phone: str = "13812341234",
    created_ago: timedelta = timedelta(hours=1),
    due_in: timedelta = timedelta(days=2),
) -> Item:
    """A submitted item of ``deputy`` with the resident's contact details (committed)."""
    now = utcnow()
    item = Item(
        ref=new_ref(),
        access_key=new_access_key(),
        station_id=deputy.station_id,
        deputy_id=deputy.id,
        channel=ItemChannel.QR_H5,
        category=category,
        body=body,
        contact_name=name,
        contact_phone=phone,
        consented_at=now if (name or phone) else None,
        created_at=now - created_ago,
        updated_at=now - created_ago,
        due_at=now - created_ago + due_in,
    )
    db.session.add(item)
    db.session.commit()
    return item


def act(item: Item, actor: StaffUser, action: str, **inputs):
    """Take an action through the lifecycle and commit; return the event."""
    event = perform_action(item, actor, action, **inputs)
    db.session.commit()
    return event


def due_in_days(days: int) -> str:
    """A due date ``days`` ahead, as the forms send it."""
    return (today_in_china() + timedelta(days=days)).isoformat()


def forward(item: Item, actor: StaffUser, department: Department) -> tuple[ItemForward, str]:
    """Accept (if needed) and forward ``item``; return the forward and its raw link token."""
    if item.status.value == "submitted":
        act(item, actor, "accept")
    event = perform_action(item, actor, "forward", department_id=department.id, due=due_in_days(10), text="请核实。")
    token = forward_link_token(event)
    db.session.commit()
    return db.session.get(ItemForward, event.data["forward_id"]), token


def fresh_token(client, path: str) -> tuple[str, str]:
    """GET ``path`` and return (page html, its CSRF token).

    The test's app context is shared by every request of every client, and Flask-WTF keeps
    the token it issued in ``g``: forget it first, or one client gets another's token.
    """
    g.pop("csrf_token", None)
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.text, csrf_token_from(response.text)


def login(app, username: str):
    """A new test client logged in to the staff pages as ``username``."""
    client = app.test_client()
    _, token = fresh_token(client, "/staff/login")
    response = client.post("/staff/login", data={"csrf_token": token, "username": username, "password": PASSWORD})
    assert response.status_code == 303, response.text
    g.pop("csrf_token", None)
    return client


def api_token(app, username: str) -> dict:
    """The Authorization header of a fresh API token for ``username``."""
    response = app.test_client().post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json['token']}"}


def counts() -> dict[str, int]:
    """Rows in the tables that an action writes to."""
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (ItemEvent, OutboxMessage, ItemForward)
    }


def audit_rows(action: str) -> list[AuditEntry]:
    """Audit rows of one action, oldest first."""
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))
