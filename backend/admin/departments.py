"""Handling departments (承办单位) of a supervisor's region and their units: create, edit, deactivate, reactivate.

A department is never deleted: forwards point at it. A deactivated one is no longer offered
when an item is forwarded (``lifecycle._check_forward`` refuses it), and its old forwards stay;
its units are deactivated with it (``set_active``).
Each function validates first, writes nothing when it refuses, then writes, audits and flushes.

A unit (下属单位, ``Department.parent_id``) is where its department may pass an item on to
(the second hop, ``lifecycle.department_pass_on``). That hop is one level deep — a unit may not
pass an item further — so units are one level deep too: a unit's parent is a department that
is not itself a unit, and a department with units cannot become one (which also rules out
cycles). A unit lies in its department's region or one under it (a town's office of a county
bureau), within the supervisor's regions.
"""

from __future__ import annotations

from sqlalchemy import select

from backend.access import manageable_region_ids
from backend.admin import apply_changes, clean_phone
from backend.audit import record_added, record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.items.validation import clean_text, parse_id
from backend.models import Department, Region, StaffUser

NAME_MAX_CHARS = 100  # Department.name
CONTACT_NAME_MAX_CHARS = 50  # Department.contact_name


def manageable_regions(user: StaffUser) -> list[Region]:
    """The supervisor's region and the regions under it, by code (theirs first)."""
    ids = manageable_region_ids(user)
    if not ids:
        return []
    regions = db.session.scalars(select(Region).where(Region.id.in_(ids))).all()
    return sorted(regions, key=lambda r: (r.id != user.region_id, r.code))


def departments_of(user: StaffUser) -> list[Department]:
    """Every department in the supervisor's regions, active first, then by region and name."""
    ids = manageable_region_ids(user)
    if not ids:
        return []
    rows = db.session.scalars(select(Department).where(Department.region_id.in_(ids))).all()
    return sorted(rows, key=lambda d: (not d.is_active, d.region.code, d.name, d.id))


def department_tree(user: StaffUser) -> list[tuple[Department, list[Department]]]:
    """The supervisor's departments, each with its units beneath it (the list page's rows).

    A unit whose department lies outside the supervisor's regions (a township supervisor's view
    of a county bureau's office) is listed on its own.
    """
    rows = departments_of(user)
    shown = {d.id for d in rows}
    units: dict[int, list[Department]] = {}
    for d in rows:
        if d.parent_id is not None and d.parent_id in shown:
            units.setdefault(d.parent_id, []).append(d)
    return [(d, units.get(d.id, [])) for d in rows if d.parent_id is None or d.parent_id not in shown]


def parent_choices(user: StaffUser, department: Department | None = None) -> list[Department]:
    """The departments a unit may be put under: active, not units themselves, not ``department`` itself."""
    return [
        d
        for d in departments_of(user)
        if d.is_active and d.parent_id is None and (department is None or d.id != department.id)
    ]


def _has_units(department: Department) -> bool:
    return db.session.scalar(select(Department.id).where(Department.parent_id == department.id).limit(1)) is not None


def _clean_parent(user: StaffUser, form, department: Department | None, region_ids: set[int]) -> Department | None:
    """The department a unit is put under (None: a department of its own), refused unless the chain allows it."""
    raw = form.get("parent_id")
    if raw in (None, ""):
        return None
    message = "请选择您所辖地区的一个承办单位作为上级单位。"
    parent_id = parse_id(raw)
    parent = db.session.get(Department, parent_id) if parent_id is not None else None
    if parent is None or parent.region_id not in region_ids:
        raise UserError("invalid_parent_id", message, 400, field="parent_id")
    node: Department | None = parent
    while node is not None:  # no cycles: not under itself, nor under one of its own units
        if department is not None and node.id == department.id:
            raise UserError("parent_cycle", "不能把单位设为它自己或它的下属单位的下属单位。", 400, field="parent_id")
        node = db.session.get(Department, node.parent_id) if node.parent_id is not None else None
    if parent.parent_id is not None:
        raise UserError(
            "too_deep",
            f"“{parent.name}”已是下属单位，下属单位下不能再设单位（转交只到下属单位一级）。",
            400,
            field="parent_id",
        )
    if department is not None and _has_units(department):
        raise UserError(
            "has_units", f"“{department.name}”有自己的下属单位，不能再设为其他单位的下属单位。", 400, field="parent_id"
        )
    if not parent.is_active:
        raise UserError("inactive_parent", f"“{parent.name}”已停用，不能在其下添加单位。", 400, field="parent_id")
    return parent


def _clean(user: StaffUser, form, department: Department | None) -> dict:
    name = clean_text(form.get("name"), "name", "单位名称", max_chars=NAME_MAX_CHARS, required=True)
    region_ids = manageable_region_ids(user)
    parent = _clean_parent(user, form, department, region_ids)
    default_region = department.region_id if department else (parent.region_id if parent else user.region_id)
    region_id = parse_id(form.get("region_id") or default_region)
    if region_id not in region_ids:
        raise UserError("invalid_region_id", "请选择您所辖的地区。", 400, field="region_id")
    if parent is not None:
        region = db.session.get(Region, region_id)
        if region is None or parent.region_id not in {r.id for r in region.lineage()}:
            raise UserError(
                "invalid_region_id",
                f"下属单位须在“{parent.name}”所在的地区（{parent.region.name}）或其下级地区。",
                400,
                field="region_id",
            )
    contact_name = clean_text(form.get("contact_name"), "contact_name", "联系人", max_chars=CONTACT_NAME_MAX_CHARS)
    contact_phone = clean_phone(form.get("contact_phone"), "contact_phone", "联系电话")
    # Names are unique among a region's departments, and among one department's units.
    siblings = Department.parent_id == parent.id if parent else (Department.region_id == region_id)
    if parent is None:
        siblings = siblings & Department.parent_id.is_(None)
    same = db.session.scalar(
        select(Department).where(
            siblings, Department.name == name, Department.id != (department.id if department else 0)
        )
    )
    if same is not None:
        where = f"“{parent.name}”下已有名为“{name}”的下属单位。" if parent else f"本地区已有名为“{name}”的承办单位。"
        raise UserError("duplicate_name", where, 400, field="name")
    return {
        "name": name,
        "region_id": region_id,
        "parent_id": parent.id if parent else None,
        "contact_name": contact_name,
        "contact_phone": contact_phone,
    }


def create_department(user: StaffUser, form) -> Department:
    """A new active department in one of the supervisor's regions, or a unit under one (``parent_id``)."""
    values = _clean(user, form, None)
    department = Department(**values, is_active=True)
    record_added(department, "department_created", user=user, object_type="department", data=values)
    return department


def update_department(user: StaffUser, department: Department, form) -> list[str]:
    """Change a department's name, region, contact or the department it is a unit of; return what changed."""
    values = _clean(user, form, department)
    return apply_changes(user, department, values, "department_updated", "department")


def set_active(user: StaffUser, department: Department, is_active: bool) -> list[Department]:
    """Deactivate (no longer offered for forwarding) or reactivate a department; the units stopped with it.

    Deactivating a department stops its active units with it, each audited: a unit is its department's
    office (the second hop), and one left active would still be offered to a deputy forwarding, and be
    forwarded to, while its department is closed. Reactivating brings back the department alone: its
    units come back one by one (some may have been stopped for reasons of their own), and a unit cannot
    come back while its department is stopped (400 ``inactive_parent``, nothing written).
    """
    if department.is_active == is_active:
        return []
    if is_active and department.parent_id is not None:
        parent = db.session.get(Department, department.parent_id)
        if parent is not None and not parent.is_active:
            raise UserError(
                "inactive_parent", f"上级单位“{parent.name}”已停用，请先恢复上级单位，再恢复“{department.name}”。", 400
            )
    units: list[Department] = []
    if not is_active:
        units = list(
            db.session.scalars(
                select(Department)
                .where(Department.parent_id == department.id, Department.is_active.is_(True))
                .order_by(Department.id)
            )
        )
    department.is_active = is_active
    for unit in units:
        unit.is_active = False
    db.session.flush()
    record_audit(
        "department_activated" if is_active else "department_deactivated",
        user=user,
        object_type="department",
        object_id=department.id,
        data={"name": department.name} | ({"units": [unit.id for unit in units]} if units else {}),
    )
    for unit in units:
        record_audit(
            "department_deactivated",
            user=user,
            object_type="department",
            object_id=unit.id,
            data={"name": unit.name, "with_department": department.id},
        )
    return units
