"""Where each role goes: the staff navigation bar on every staff page, and the page a login lands on.

One table, by role, so that the bar never offers a page the role's ``login_required`` refuses
(tests/test_staff_navigation.py walks every link of every role's bar). A deputy's bar has no
管理; a station administrator's and a supervisor's have it; a department's has its inbox only.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for

from backend.models import DeputyStatus, StaffRole, StaffUser


@dataclass(frozen=True)
class NavLink:
    """One link of the bar: what it says, the endpoint it opens, and the endpoints that count as being there."""

    label: str
    endpoint: str
    section: tuple[str, ...]  # endpoint prefixes marked aria-current on the bar


INBOX = NavLink("待办", "deputy.inbox", ("deputy.",))
PRESENCE = NavLink("签到", "deputy.presence_home", ("deputy.presence", "deputy.contacts"))
IN_PERSON = NavLink("接待录入", "deputy.in_person", ("deputy.in_person",))
TEMPLATES = NavLink("常用答复", "deputy.templates", ("deputy.templates",))
PROPOSALS = NavLink("建议", "proposals.index", ("proposals.",))
MY_CODE = NavLink("我的码", "posters.deputy_pdf", ("posters.",))
FIGURES = NavLink("履职", "supervision.dashboard", ("supervision.",))
SUPERVISION = NavLink("监督", "supervision.dashboard", ("supervision.",))
ADMIN = NavLink("管理", "admin.index", ("admin.",))
REVIEW = NavLink("待审核", "wechat_pages.review", ("wechat_pages.review", "wechat_pages.release"))
MINE = NavLink("我的", "staff.home", ("staff.", "wechat_pages.wechat_binding"))

NAV_BY_ROLE: dict[StaffRole, tuple[NavLink, ...]] = {
    StaffRole.DEPUTY: (INBOX, PRESENCE, IN_PERSON, TEMPLATES, PROPOSALS, MY_CODE, FIGURES, MINE),
    StaffRole.STATION_ADMIN: (INBOX, ADMIN, SUPERVISION, TEMPLATES, REVIEW, MINE),
    StaffRole.SUPERVISOR: (SUPERVISION, INBOX, PROPOSALS, ADMIN, REVIEW, MINE),
    StaffRole.DEPARTMENT: (INBOX, MINE),
}

# Where a login lands when no page was asked for: the page the role comes for.
LANDING_BY_ROLE: dict[StaffRole, str] = {
    StaffRole.DEPUTY: "deputy.inbox",
    StaffRole.STATION_ADMIN: "deputy.inbox",
    StaffRole.SUPERVISOR: "supervision.dashboard",
    StaffRole.DEPARTMENT: "deputy.inbox",
}


def landing_url(user: StaffUser) -> str:
    """The page a login lands on: a deputy straight to the inbox, not a page with one button to tap again."""
    return url_for(LANDING_BY_ROLE.get(user.role, "staff.home"))


def nav_links(user: StaffUser | None, endpoint: str | None) -> list[dict]:
    """The bar of ``user``'s role: each link's label, URL and whether the page shown (``endpoint``) is in it."""
    if user is None:
        return []
    links = []
    for link in NAV_BY_ROLE.get(user.role, (MINE,)):
        if link is MY_CODE:
            # A deputy's own poster, while they serve (a former deputy's code routes to the station).
            if user.deputy is None or user.deputy.status != DeputyStatus.SERVING:
                continue
            url = url_for(link.endpoint, deputy_id=user.deputy_id)
        else:
            url = url_for(link.endpoint)
        links.append({"label": link.label, "url": url, "current": False, "link": link})
    # The most specific match is current: 接待录入 rather than 待办 on the in-person page.
    best = max(
        (
            (len(prefix), entry)
            for entry in links
            for prefix in entry["link"].section
            if endpoint and endpoint.startswith(prefix)
        ),
        key=lambda pair: pair[0],
        default=None,
    )
    if best is not None:
        best[1]["current"] = True
    return [{key: entry[key] for key in ("label", "url", "current")} for entry in links]
