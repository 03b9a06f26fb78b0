"""Handling departments (承办单位) of a supervisor's region: create, edit, deactivate and reactivate.

A department is never deleted: forwards point at it. A deactivated one is no longer offered
when an item is forwarded (``lifecycle._check_forward`` refuses it), and its old forwards stay.
Each function validates first, writes nothing when it refuses, then writes, audits and flushes.
"""

from __future__ import annotations

from sqlalchemy import select

from backend.access import manageable_region_ids
from backend.admin import apply_changes, clean_phone
from backend.audit import record_audit
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


def _clean(user: StaffUser, form, department: Department | None) -> dict:
    name = clean_text(form.get("name"), "name", "单位名称", max_chars=NAME_MAX_CHARS, required=True)
    region_ids = manageable_region_ids(user)
    raw_region = form.get("region_id") or (department.region_id if department else user.region_id)
    region_id = parse_id(raw_region)
    if region_id not in region_ids:
        raise UserError("invalid_region_id", "请选择您所辖的地区。", 400, field="region_id")
    contact_name = clean_text(form.get("contact_name"), "contact_name", "联系人", max_chars=CONTACT_NAME_MAX_CHARS)
    contact_phone = clean_phone(form.get("contact_phone"), "contact_phone", "联系电话")
    same = db.session.scalar(
        select(Department).where(
            Department.region_id == region_id,
            Department.name == name,
            Department.id != (department.id if department else 0),
        )
    )
    if same is not None:
        raise UserError("duplicate_name", f"本地区已有名为“{name}”的承办单位。", 400, field="name")
    return {"name": name, "region_id": region_id, "contact_name": contact_name, "contact_phone": contact_phone}


def create_department(user: StaffUser, form) -> Department:
    """A new active department in one of the supervisor's regions."""
    values = _clean(user, form, None)
    department = Department(**values, is_active=True)
    db.session.add(department)
    db.session.flush()
    record_audit("department_created", user=user, object_type="department", object_id=department.id, data=values)
    return department


def update_department(user: StaffUser, department: Department, form) -> list[str]:
    """Change a department's name, region or contact; return what changed."""
    values = _clean(user, form, department)
    return apply_changes(user, department, values, "department_updated", "department")


def set_active(user: StaffUser, department: Department, is_active: bool) -> None:
    """Deactivate (no longer offered for forwarding) or reactivate a department."""
    if department.is_active == is_active:
        return
    department.is_active = is_active
    db.session.flush()
    record_audit(
        "department_activated" if is_active else "department_deactivated",
        user=user,
        object_type="department",
        object_id=department.id,
        data={"name": department.name},
    )
