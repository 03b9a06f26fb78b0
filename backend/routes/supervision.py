"""Supervision pages (监督): the dashboard of a region, station or deputy, the items behind each figure,
督办 on overdue items, the monthly export; and the same figures as JSON (``GET /api/v1/stats``).

Who sees what: a supervisor their region and everything under it, a station administrator
their station and its deputies, a deputy their own figures. Anything else answers 404,
exactly as something unknown, and the refusal is written to the audit log
(``stats.resolve_scope``). The figures and their definitions live in
``backend.supervision.stats``; this module reads the request and draws the page.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta

from flask import Blueprint, jsonify, make_response, redirect, render_template, request, send_file, url_for
from sqlalchemy import func, select

from backend import pagination, replica
from backend.access import find_item_for_staff, region_subtree
from backend.api_schemas import STAFF, describe
from backend.api_schemas import models as m
from backend.audit import record_audit
from backend.auth.sessions import api_auth_required, current_staff, is_safe_next, login_required
from backend.errors import UserError
from backend.extensions import csrf, db
from backend.items import inbox as inbox_query
from backend.items.deadlines import is_overdue
from backend.items.lifecycle import SUPERVISE_REPEAT_AFTER, perform_action
from backend.items.refs import format_ref
from backend.items.validation import clean_id, parse_day
from backend.models import Code, Deputy, Item, ItemEvent, ItemEventKind, Region, StaffRole, StaffUser, Station, utcnow
from backend.models.item import ITEM_STATUS_LABELS
from backend.qr import scans
from backend.routes.api_staff import STAFF_ERRORS
from backend.stations.calendar import today_in_china
from backend.supervision import departments, export, points, stats

bp = Blueprint("supervision", __name__, url_prefix="/supervision")
api_bp = Blueprint("supervision_api", __name__, url_prefix="/api/v1")
csrf.exempt(api_bp)  # bearer tokens only

VIEWERS = (StaffRole.DEPUTY, StaffRole.STATION_ADMIN, StaffRole.SUPERVISOR)
ITEMS_PER_PAGE = 20


# --- reading the request ---------------------------------------------------------------------------


def _scope_args() -> dict[str, str]:
    """``region=``/``station=``/``deputy=`` from links, or the picker's ``scope=<kind>:<key>``."""
    args = {kind: request.args[kind] for kind in stats.SCOPE_KINDS if request.args.get(kind)}
    picked = request.args.get("scope", "")
    if not args and ":" in picked:
        kind, _, key = picked.partition(":")
        if kind in stats.SCOPE_KINDS:
            args[kind] = key
    return args


def _range_or_default() -> tuple[stats.DateRange, str | None]:
    """The requested range, or the default one with the reason when the request's was not valid."""
    try:
        args = request.args
        return stats.parse_range(args.get("from"), args.get("to"), raw_until=args.get("until")), None
    except UserError as exc:
        return stats.default_range(), exc.message + "下面显示最近12个月。"


def _scope_and_range(user: StaffUser) -> tuple[stats.Scope, stats.DateRange, str | None]:
    """The requested scope (404 outside the user's, audited) and range (or the default one, with why)."""
    scope = stats.resolve_scope(user, _scope_args())
    rng, range_error = _range_or_default()
    return scope, rng, range_error


def _link_args(scope: stats.Scope, rng: stats.DateRange, **extra) -> dict:
    return {**scope.params(), **rng.params(), **extra}


# How every supervision page shows an item in a list: its number, its first line, how late it is.
ITEM_WORDS = {
    "format_ref": format_ref,
    "first_line": inbox_query.first_line,
    "overdue_label": inbox_query.overdue_label,
}


def _page(
    template: str,
    *,
    user: StaffUser,
    rng: stats.DateRange,
    range_error: str | None,
    scope: stats.Scope | None = None,
    **context,
):
    """A supervision page: its user, its range (and why it is the default one), the words of its item lists;
    with a scope, ``link(**extra)`` keeps the scope and the range in every link of the page."""
    if scope is not None:
        context |= {"scope": scope, "link": lambda **extra: _link_args(scope, rng, **extra)}
    return make_response(
        render_template(template, user=user, rng=rng, range_error=range_error, **ITEM_WORDS, **context)
    )


# --- the picker ------------------------------------------------------------------------------------


def picker_options(user: StaffUser, scope: stats.Scope) -> list[tuple[str, list[tuple[str, str]]]]:
    """The picker's choices within the user's scope, as (group label, [(value, label)]); none for a deputy."""
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    if user.role == StaffRole.DEPUTY:
        return groups
    if user.role == StaffRole.SUPERVISOR and user.region_id is not None:
        regions = db.session.scalars(
            select(Region).where(Region.id.in_(region_subtree(user.region_id))).order_by(Region.code)
        ).all()
        groups.append(("地区", [(f"region:{r.code}", r.name) for r in regions]))
        # Stations of the chosen region (all of the user's when a station or deputy is chosen).
        region_id = scope.region.id if scope.kind == "region" else user.region_id
        stations = db.session.scalars(
            select(Station)
            .where(Station.region_id.in_(region_subtree(region_id)))
            .order_by(Station.id)
            .limit(stats.BREAKDOWN_MAX_STATIONS)
        ).all()
        groups.append(("联络站", [(f"station:{s.id}", s.name) for s in stations]))
    elif user.role == StaffRole.STATION_ADMIN and user.station is not None:
        groups.append(("联络站", [(f"station:{user.station.id}", user.station.name)]))
    station = scope.station if scope.kind in ("station", "deputy") else None
    if station is not None:
        deputies = db.session.scalars(select(Deputy).where(Deputy.station_id == station.id).order_by(Deputy.id))
        groups.append((f"{station.name}的代表", [(f"deputy:{d.id}", f"{d.name}代表") for d in deputies]))
    if scope.kind == "deputy" and not any(
        value == f"deputy:{scope.deputy.id}" for _, options in groups for value, _ in options
    ):
        groups.append(("代表", [(f"deputy:{scope.deputy.id}", scope.label)]))
    return groups


# --- charts (server-rendered SVG) --------------------------------------------------------------------

CHART_WIDTH = 360
CHART_HEIGHT = 200
CHART_LEFT = 40
CHART_RIGHT = 8
CHART_TOP = 12
CHART_BOTTOM = 30
CHART_LABELS = 6  # month labels along the x axis, at most
RATE_SERIES = (("answer_rate", "答复率"), ("resolve_rate", "办结率"), ("satisfaction_rate", "满意率"))


AXIS_MAX_STEPS = 5  # gridlines above zero on a count axis, at most


def count_axis(value: int) -> list[int]:
    """Round ticks for a count axis from 0 to at or above ``value``: steps of 1, 2 or 5 × 10ⁿ, never 0/2/5.

    The smallest such step that reaches ``value`` in at most ``AXIS_MAX_STEPS`` steps: 3 → 0,1,2,3;
    7 → 0,2,4,6,8; 23 → 0,5,…,25; 0 → 0,1.
    """
    value = max(int(value), 1)
    magnitude = 1
    while True:
        for unit in (1, 2, 5):
            step = unit * magnitude
            steps = -(-value // step)
            if steps <= AXIS_MAX_STEPS:
                return [step * n for n in range(steps + 1)]
        magnitude *= 10


def _month_label(month: date, index: int) -> str:
    """Short x-axis labels: 3月, with the year at January and at the first month."""
    if index == 0 or month.month == 1:
        return f"{month.year % 100:02d}年{month.month}月"
    return f"{month.month}月"


def _x_slots(count: int) -> tuple[float, float]:
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    slot = plot_width / max(count, 1)
    return slot, plot_width


def received_chart(groups: list[stats.Group]) -> dict:
    """Bars of items received per month: coordinates for the template."""
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    axis = count_axis(max((g.counts.received for g in groups), default=0))
    top = axis[-1]
    slot, _ = _x_slots(len(groups))
    label_every = max(1, -(-len(groups) // CHART_LABELS))
    bars = []
    for index, group in enumerate(groups):
        height = plot_height * group.counts.received / top
        x = CHART_LEFT + index * slot
        bars.append(
            {
                "x": round(x + slot * 0.15, 1),
                "y": round(CHART_TOP + plot_height - height, 1),
                "width": round(slot * 0.7, 1),
                "height": round(height, 1),
                "cx": round(x + slot / 2, 1),
                "value": group.counts.received,
                "label": _month_label(group.key, index) if index % label_every == 0 else "",
                "title": f"{group.label}：收到{group.counts.received}件",
            }
        )
    ticks = [{"y": round(CHART_TOP + plot_height * (1 - tick / top), 1), "label": str(tick)} for tick in axis]
    return {
        "bars": bars,
        "ticks": ticks,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_WIDTH - CHART_RIGHT,
        "baseline": CHART_TOP + plot_height,
        "label_y": CHART_HEIGHT - 10,
    }


def rates_chart(groups: list[stats.Group]) -> dict:
    """Lines of the three rates per month (0–100 %); a month below the minimum sample leaves a gap."""
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    slot, _ = _x_slots(len(groups))
    label_every = max(1, -(-len(groups) // CHART_LABELS))
    series = []
    for key, label in RATE_SERIES:
        segments: list[list[tuple[float, float]]] = [[]]
        points_ = []
        for index, group in enumerate(groups):
            value = group.rates[key].value
            if value is None:
                if segments[-1]:
                    segments.append([])
                continue
            x = round(CHART_LEFT + index * slot + slot / 2, 1)
            y = round(CHART_TOP + plot_height * (1 - value), 1)
            segments[-1].append((x, y))
            points_.append({"x": x, "y": y, "title": f"{group.label}{label}：{value * 100:.1f}%"})
        series.append(
            {
                "key": key,
                "label": label,
                "lines": [" ".join(f"{x},{y}" for x, y in seg) for seg in segments if len(seg) > 1],
                "points": points_,
            }
        )
    ticks = [
        {"y": round(CHART_TOP + plot_height * (1 - fraction), 1), "label": f"{int(fraction * 100)}%"}
        for fraction in (0, 0.5, 1)
    ]
    labels = [
        {
            "x": round(CHART_LEFT + index * slot + slot / 2, 1),
            "label": _month_label(g.key, index) if index % label_every == 0 else "",
        }
        for index, g in enumerate(groups)
    ]
    return {
        "series": series,
        "ticks": ticks,
        "labels": labels,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_WIDTH - CHART_RIGHT,
        "baseline": CHART_TOP + plot_height,
        "label_y": CHART_HEIGHT - 10,
    }


# --- page parts ------------------------------------------------------------------------------------


def code_scans(scope: stats.Scope, today: date) -> list[dict]:
    """Every code of the station (its own and its deputies', then each topic's as a group of its own named by the
    topic's title: ``scans.code_groups``), or of the deputy: all its scans and the items it led to, and the last
    ``scans.WEEKS_SHOWN`` weeks of both for the chart (whatever the date range). A list of groups, each
    ``{"title", "is_topic", "rows"}``."""
    if scope.kind == "station":
        codes = scans.station_codes(scope.station)
    elif scope.kind == "deputy":
        codes = list(db.session.scalars(select(Code).where(Code.deputy_id == scope.deputy.id).order_by(Code.id)))
    else:
        return []
    if not codes:
        return []
    groups = scans.code_groups(codes)
    codes = [code for group in groups for code in group.codes]
    ids = [c.id for c in codes]
    totals = scans.total_scans(ids)
    items = dict(
        db.session.execute(select(Item.code_id, func.count()).where(Item.code_id.in_(ids)).group_by(Item.code_id)).all()
    )
    weeks = scans.last_weeks(today)
    weekly = scans.weekly(scans.days_of(codes, weeks[0], today + timedelta(days=1)), weeks)
    top = max((w["scans"] for row in weekly for w in row["weeks"]), default=0)
    rows = []
    for code, week_row in zip(codes, weekly, strict=True):
        led, scanned = items.get(code.id, 0), totals.get(code.id, 0)
        rows.append(
            {
                "kind": "专题码" if code.topic_id else ("联络站码" if code.station_id else "代表码"),
                "name": code.topic.title
                if code.topic_id
                else (code.station.name if code.station_id else code.deputy.name),
                "slug": code.slug,
                "is_current": code.is_current,
                "retired_at": code.retired_at,
                "scans": scanned,
                "item_count": led,
                "per_hundred": f"{led * 100 / scanned:.0f}" if scanned else "—",
                "chart": weekly_chart(week_row["weeks"], top),
            }
        )
    shown, start = [], 0
    for group in groups:
        shown.append(
            {
                "title": group.title,
                "is_topic": group.topic_id is not None,
                "rows": rows[start : start + len(group.codes)],
            }
        )
        start += len(group.codes)
    return shown


WEEK_CHART_WIDTH = 300
WEEK_CHART_HEIGHT = 64


def weekly_chart(weeks: list[dict], top: int) -> dict:
    """One code's weeks as bars: scans (light) with the items they led to (dark) inside, on a scale shared by
    every code of the page so that posters compare at a glance."""
    scale = count_axis(top)[-1]
    slot = WEEK_CHART_WIDTH / max(len(weeks), 1)
    plot = WEEK_CHART_HEIGHT - 14
    bars = []
    for index, week in enumerate(weeks):
        scan_height = plot * week["scans"] / scale
        item_height = plot * min(week["items"], scale) / scale
        x = round(index * slot + slot * 0.15, 1)
        bars.append(
            {
                "x": x,
                "width": round(slot * 0.7, 1),
                "scan_y": round(plot - scan_height, 1),
                "scan_height": round(scan_height, 1),
                "item_y": round(plot - item_height, 1),
                "item_height": round(item_height, 1),
                "title": f"{week['week'].month}月{week['week'].day}日起一周：扫码{week['scans']}次，留言{week['items']}件",
                "label": f"{week['week'].month}/{week['week'].day}" if index % 3 == 0 else "",
                "cx": round(index * slot + slot / 2, 1),
            }
        )
    return {"bars": bars, "width": WEEK_CHART_WIDTH, "height": WEEK_CHART_HEIGHT, "baseline": plot, "top": scale}


def last_supervised(items: list[Item]) -> dict[int, tuple[int, datetime]]:
    """For each listed item: how many times it was supervised, and when last."""
    if not items:
        return {}
    rows = db.session.execute(
        select(ItemEvent.item_id, func.count(), func.max(ItemEvent.created_at))
        .where(ItemEvent.item_id.in_([i.id for i in items]), ItemEvent.kind == ItemEventKind.SUPERVISED)
        .group_by(ItemEvent.item_id)
    ).all()
    return {item_id: (count, latest) for item_id, count, latest in rows}


def _export_months(rng: stats.DateRange) -> list[date]:
    """Months offered for export: those of the range, newest first."""
    return list(reversed(rng.months()))


NOTICES = {
    "supervised": "已督办：代表会收到提醒，督办记录已写入该件的办理过程（群众看不到）。",
    "recently_supervised": (
        f"该件刚刚已督办，代表已收到提醒；{SUPERVISE_REPEAT_AFTER.seconds // 60} 分钟内不重复督办。"
    ),
}


# --- pages -----------------------------------------------------------------------------------------


@bp.get("/")
@login_required(*VIEWERS)
@replica.reads_from_replica()
def dashboard():
    """The figures of the chosen scope and range, with definitions, trends, breakdown and the overdue list."""
    user = current_staff()
    scope, rng, range_error = _scope_and_range(user)
    now = utcnow()
    figures = stats.compute(scope, rng, now=now, overdue_list=stats.OVERDUE_LIST_SIZE)
    overdue = figures.overdue_items
    return _page(
        "supervision/dashboard.html",
        user=user,
        scope=scope,
        rng=rng,
        range_error=range_error,
        figures=figures,
        definitions=stats.DEFINITIONS,
        labels=stats.FIGURE_LABELS,
        overdue=overdue,
        supervised=last_supervised(overdue),
        can_supervise=user.role == StaffRole.SUPERVISOR,
        options=picker_options(user, scope),
        picked=f"{scope.kind}:{scope.key}",
        received_chart=received_chart(figures.months),
        rates_chart=rates_chart(figures.months),
        codes=code_scans(scope, today_in_china(now)),
        points=points.deputy_points(figures) if scope.kind == "deputy" else None,
        point_rules_not_counted=points.NOT_COUNTED,
        export_months=_export_months(rng),
        child_link=lambda key: {scope.child_kind: key, **rng.params()},
        notice=NOTICES.get(request.args.get("done", ""), ""),
        today=today_in_china(),
    )


@bp.get("/items")
@login_required(*VIEWERS)
@replica.reads_from_replica()
def figure_items():
    """The items behind one figure (``figure=``), in the same scope and range, a page at a time."""
    user = current_staff()
    scope, rng, range_error = _scope_and_range(user)
    figure = request.args.get("figure", "received")
    if figure not in stats.LISTABLE:
        raise UserError("invalid_figure", "没有这项统计。", 400, field="figure")
    page = pagination.page_number(request.args.get("page"))
    now = utcnow()
    items, total = stats.figure_items_page(scope, rng, figure, page, ITEMS_PER_PAGE, now)
    pages = pagination.page_count(total, ITEMS_PER_PAGE)
    return _page(
        "supervision/items.html",
        user=user,
        scope=scope,
        rng=rng,
        range_error=range_error,
        figure=figure,
        figure_label=stats.FIGURE_LABELS.get(figure, "待内容审核"),
        definitions=stats.DEFINITIONS,
        items=items,
        total=total,
        page=page,
        pages=pages,
        now=now,
        status_labels=ITEM_STATUS_LABELS,
        is_overdue=is_overdue,
    )


@bp.post("/items/<ref>/supervise")
@login_required(StaffRole.SUPERVISOR)
def supervise(ref: str):
    """督办 an item: the lifecycle's ``supervise`` (notice to the deputy, a private event, an audit row)."""
    user = current_staff()
    item = find_item_for_staff(user, ref)
    if item is None:
        raise UserError("unknown_item", "找不到该留言，请核对编号。", 404)
    done = "supervised"
    try:
        perform_action(item, user, "supervise", text=request.form.get("text", ""))
    except UserError as error:
        if error.code != "recently_supervised":
            raise
        done = "recently_supervised"  # a double click: the first one went through; say so, remind nobody twice
    target = request.form.get("next", "")
    if not is_safe_next(target) or not target.startswith("/supervision"):
        target = url_for("supervision.dashboard")
    separator = "&" if "?" in target else "?"
    return redirect(f"{target}{separator}done={done}#overdue", 303)


@bp.get("/export.xlsx")
@login_required(*VIEWERS)
@replica.reads_from_replica()
def export_month():
    """The month's .xlsx for the 专报 (``month=YYYY-MM``), contact details masked; the download is audited."""
    user = current_staff()
    scope = stats.resolve_scope(user, _scope_args())
    raw = request.args.get("month", "")
    month = parse_day(f"{raw}-01", "month", "导出月份") if len(raw) == 7 else None  # 9999-12 has no next month
    if month is None:
        raise UserError("invalid_month", "请选择要导出的月份，例如2026-03。", 400, field="month")
    out = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - send_file closes it with the response
    try:
        export.write_month(scope, month, out)  # in the read: no write lock held while it is written
        out.seek(0)
    except BaseException:
        out.close()
        raise
    record_audit(  # committed by the request with the answer that carries the file
        "stats_exported",
        user=user,
        object_type=scope.kind,
        object_id=scope.key,
        data={"month": month.strftime("%Y-%m")},
    )
    name = f"{scope.label}-{month.year}年{month.month:02d}月-群众意见办理情况.xlsx"
    response = send_file(
        out,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=name,
    )
    return response


# --- departments (承办单位) ---------------------------------------------------------------------------


@bp.get("/departments")
@login_required(StaffRole.SUPERVISOR)
def department_league():
    """The league table of the supervisor's region's departments (units rolled in), ranked, with the sample rule."""
    user = current_staff()
    departments.require_supervisor(user)
    rng, range_error = _range_or_default()
    return _page(
        "supervision/departments.html",
        user=user,
        region=user.region,
        rng=rng,
        range_error=range_error,
        table=departments.league(user.region_id, rng),
        labels=departments.FIGURE_LABELS,
        definitions=departments.DEFINITIONS,
    )


@bp.get("/departments/<int:department_id>")
@login_required(StaffRole.SUPERVISOR)
def department_page(department_id: int):
    """One department's figures over the range and its 台账 of open commitments (most overdue first)."""
    user = current_staff()
    department = departments.resolve_department(user, str(department_id))
    rng, range_error = _range_or_default()
    now = utcnow()
    return _page(
        "supervision/department.html",
        user=user,
        department=department,
        units=departments.units_of(department),
        rng=rng,
        range_error=range_error,
        figures=departments.department_figures(department, rng, now),
        ledger=departments.ledger(department, now),
        labels=departments.FIGURE_LABELS,
        definitions=departments.DEFINITIONS,
    )


# --- JSON ------------------------------------------------------------------------------------------


@api_bp.get("/stats")
@api_auth_required(*VIEWERS)
@describe(tags=("监督",), security=STAFF, query=m.StatsQuery, responses={200: m.AnyStatsAnswer, **STAFF_ERRORS})
def stats_api():
    """``?region=<code>|station=<id>|deputy=<id>|department=<id>&from=YYYY-MM-DD&to=YYYY-MM-DD`` (``to`` exclusive)
    → the figures.

    400 with a code for bad parameters (no scope, two scopes, bad dates, ``from`` not before
    ``to``, unknown region); 404 outside the caller's scope (a department: supervisors of its
    region only). A rate is null when its denominator is below ``STATS_MIN_SAMPLE``.
    """
    user = current_staff()
    rng = stats.parse_range(request.args.get("from"), request.args.get("to"))
    if request.args.get("department") not in (None, ""):
        if any(request.args.get(kind) not in (None, "") for kind in stats.SCOPE_KINDS):
            raise UserError("too_many_scopes", "请只选择一个范围：地区、联络站、代表或承办单位之一。", 400)
        department = departments.resolve_department(user, request.args["department"])
        return jsonify(departments.figures_json(departments.department_figures(department, rng), rng))
    scope = stats.resolve_scope(user, request.args, required=True)
    return jsonify(stats.figures_json(stats.compute(scope, rng, with_children=False)))


@api_bp.get("/stats/scans")
@api_auth_required(*VIEWERS)
@describe(tags=("监督",), security=STAFF, query=m.ScansQuery, responses={200: m.ScansAnswer, **STAFF_ERRORS})
def scans_api():
    """``?station=<id>&from=YYYY-MM-DD&to=YYYY-MM-DD`` (``to`` exclusive) → per code of the station and day: scans and items.

    Every code of the station and of its deputies, current and retired, with the days that had a scan
    or an item. 400 without a station or with bad dates; 404 for a station outside the caller's scope
    (a deputy: their own station only), as for an unknown one, with an audit row.
    """
    user = current_staff()
    rng = stats.parse_range(request.args.get("from"), request.args.get("to"))
    raw = request.args.get("station", "")
    if not raw:
        raise UserError("station_required", "请指定联络站：station=联络站编号。", 400, field="station")
    if user.role == StaffRole.DEPUTY:
        station_id = clean_id(raw.strip(), "station", "联络站编号应为数字。")
        if user.deputy is None or user.deputy.station_id != station_id:
            raise stats.deny(user, "station", station_id)
        station = user.deputy.station
    else:
        station = stats.resolve_scope(user, {"station": raw}).station
    codes = scans.station_codes(station)
    rows = []
    for entry in scans.days_of(codes, rng.start, rng.end):
        code = entry.code
        days = [
            {"day": day.isoformat(), "scans": entry.scans.get(day, 0), "items": entry.items.get(day, 0)}
            for day in entry.days
        ]
        rows.append(
            {
                "code_id": code.id,
                "slug": code.slug,
                "kind": "station" if code.station_id else "deputy",
                "name": code.station.name if code.station_id else code.deputy.name,
                "is_current": code.is_current,
                "scans": sum(entry.scans.values()),
                "items": sum(entry.items.values()),
                "days": days,
            }
        )
    return jsonify(
        {
            "station": {"kind": "station", "key": str(station.id), "label": station.name},
            "from": rng.start.isoformat(),
            "to": rng.end.isoformat(),
            "codes": rows,
        }
    )
