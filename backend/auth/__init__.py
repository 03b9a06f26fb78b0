"""Staff accounts: password login, server-side sessions and API tokens, role checks, the user CLI.

Other areas call the interface in ``backend.auth.sessions``: ``current_staff()``,
``login_required(*roles)`` for pages and ``api_auth_required(*roles)`` for the JSON API.
"""

from __future__ import annotations

from backend.models import StaffRole, StaffUser

ROLE_LABELS = StaffRole.labels()  # {member: label} for templates and callers


def describe_scope(user: StaffUser) -> str:
    """Where a staff user works, in Chinese: the deputy and station, the station, the region, or the department."""
    if user.role == StaffRole.DEPUTY and user.deputy is not None:
        return user.deputy.station.name
    if user.role == StaffRole.STATION_ADMIN and user.station is not None:
        return user.station.name
    if user.role == StaffRole.SUPERVISOR and user.region is not None:
        return user.region.name
    if user.role == StaffRole.DEPARTMENT and user.department is not None:
        return user.department.name
    return ""
