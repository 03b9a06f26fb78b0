"""Administration pages for station administrators and county supervisors (Simplified Chinese, desktop and phone).

Every page is for logged-in staff of those two roles (``login_required``: others get 404 and
an audit row); every object is opened through ``backend.access`` (out of scope: 404 and
an ``admin_access_denied`` row, like something unknown); every POST carries a CSRF token
(CSRFProtect); every change is audited by the operation that makes it. Bad input shows the
page again with a Chinese message and what was typed, and nothing is written.
"""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    get_flashed_messages,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import func, select

from backend import database
from backend.access import (
    ADMIN_ROLES,
    manageable_stations_query,
    require_department,
    require_deputy,
    require_station,
    require_supervisor,
)
from backend.admin import departments as department_ops
from backend.admin import deputies as deputy_ops
from backend.admin import importer
from backend.admin import stations as station_ops
from backend.admin.activation_sheet import pending_count
from backend.admin.printing import batch_names, fits_a_stream, printable_count, region_batch_pages, station_batch_pages
from backend.auth import ROLE_LABELS, describe_scope
from backend.auth.sessions import current_staff, login_required
from backend.batches import operations as batch_ops
from backend.downloads import download, name_download
from backend.errors import UserError
from backend.extensions import db
from backend.items.refs import format_ref
from backend.items.validation import MAX_ID
from backend.models import CongressLevel, Deputy, DeputyStatus, PosterBatchStatus, StaffRole, StaffUser, Station
from backend.models.deputy import CONGRESS_LEVEL_LABELS, DEPUTY_STATUS_LABELS
from backend.qr.codes import code_url, current_code
from backend.routes.posters import require_fonts
from backend.stations import serving_deputies
from backend.stations.calendar import format_month_day, today_in_china

bp = Blueprint("admin", __name__, url_prefix="/admin")

WEEKDAY_LABELS = "一二三四五六日"


def _page(template: str, status: int = 200, **context) -> Response:
    user = current_staff()
    context.setdefault("user", user)
    context.setdefault("notices", get_flashed_messages())
    context.setdefault("error", None)
    context.setdefault("error_field", None)
    context.setdefault("error_form", None)
    context.setdefault("values", {})
    context.setdefault("is_supervisor", user is not None and user.role == StaffRole.SUPERVISOR)
    context.setdefault("format_day", format_day)
    context.setdefault("batch_keep_hours", f"{current_app.config['POSTER_BATCH_KEEP_HOURS']:g}")
    context.setdefault("stream_max_pages", current_app.config["POSTER_STREAM_MAX_PAGES"])
    return make_response(render_template(template, **context), status)


def format_day(day) -> str:
    """11月26日（星期三）."""
    return f"{format_month_day(day)}（星期{WEEKDAY_LABELS[day.weekday()]}）"


def _refused(exc: UserError, template_context, form_name: str):
    """Show the page again after a refused change: roll back, keep what was typed, say why."""
    if exc.status == 404:
        raise exc
    db.session.rollback()
    values = request.form.to_dict(flat=True)
    values["level"] = request.form.getlist("level")
    context = template_context()
    context.update(error=exc.message, error_field=exc.field, error_form=form_name, values=values)
    return context


def _refused_page(template: str, exc: UserError, template_context, form_name: str):
    """The form's page again after a refused change (``_refused``), answered with the refusal's status."""
    return _page(template, exc.status, **_refused(exc, template_context, form_name))


def _done(message: str, endpoint: str, **values):
    flash(message)
    return redirect(url_for(endpoint, **values), 303)


# --- overview ------------------------------------------------------------------------------------


def _station_rows(user: StaffUser) -> list[dict]:
    stations = list(db.session.scalars(manageable_stations_query(user).order_by(Station.region_id, Station.id)))
    counts = dict(
        db.session.execute(
            select(Deputy.station_id, func.count(Deputy.id))
            .where(Deputy.station_id.in_([s.id for s in stations]), Deputy.status == DeputyStatus.SERVING)
            .group_by(Deputy.station_id)
        ).all()
    )
    today = today_in_china()
    return [
        {
            "station": station,
            "serving": counts.get(station.id, 0),
            "next_days": station_ops.upcoming_days(station, today)[:2],
        }
        for station in stations
    ]


@bp.get("/")
@login_required(*ADMIN_ROLES)
def index():
    """The stations this user manages, and the way to import, departments and the county batch."""
    user = current_staff()
    region = user.region if user.role == StaffRole.SUPERVISOR else None
    return _page(
        "admin/index.html",
        rows=_station_rows(user),
        role_label=ROLE_LABELS[user.role],
        scope=describe_scope(user),
        region=region,
        region_pages=region_batch_pages(region) if region is not None else 0,
        region_batches=batch_ops.recent_batches(region=region) if region is not None else [],
    )


# --- a station -----------------------------------------------------------------------------------


def _station_context(station: Station) -> dict:
    code = current_code(station)
    deputies = list(db.session.scalars(select(Deputy).where(Deputy.station_id == station.id).order_by(Deputy.id)))
    return {
        "station": station,
        "code": code,
        "code_url": code_url(code.slug) if code else "",
        "deputies": deputies,
        "serving": [d for d in deputies if d.is_serving],
        "status_labels": DEPUTY_STATUS_LABELS,
        "rules": station_ops.calendar_rows(station),
        "next_days": station_ops.upcoming_days(station, today_in_china()),
        "kind_labels": station_ops.RULE_KIND_LABELS,
        "day_choices": station_ops.RULE_DAY_CHOICES,
        "batch_pages": station_batch_pages(station),
        "card_pages": printable_count(station),
        "recent_batches": batch_ops.recent_batches(station=station),
        "old_code_fate": station_ops.OLD_CODE_FATE,
        "pending_accounts": pending_count(station),
    }


def _station_refused(exc: UserError, station: Station, form_name: str):
    """The station's page again after one of its forms was refused."""
    return _refused_page("admin/station.html", exc, lambda: _station_context(station), form_name)


@bp.get(f"/stations/<int(max={MAX_ID}):station_id>")
@login_required(*ADMIN_ROLES)
def station(station_id: int):
    """A station: address and contact, reception calendar with the next days, deputies, posters, its code."""
    station = require_station(current_staff(), station_id)
    return _page("admin/station.html", **_station_context(station))


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>")
@login_required(*ADMIN_ROLES)
def station_update(station_id: int):
    """Save the station's address and contact."""
    user = current_staff()
    station = require_station(user, station_id)
    try:
        changed = station_ops.update_station(user, station, request.form)
    except UserError as exc:
        return _station_refused(exc, station, "info")
    return _done("已保存联络站信息。" if changed else "没有修改。", "admin.station", station_id=station.id)


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/rules")
@login_required(*ADMIN_ROLES)
def rule_add(station_id: int):
    """Add a reception day with an optional deputy on duty."""
    user = current_staff()
    station = require_station(user, station_id)
    try:
        rule = station_ops.add_rule(user, station, request.form)
    except UserError as exc:
        return _station_refused(exc, station, "rule")
    message = f"已添加接待日：{station_ops.describe_rule(rule)}"
    message += f"，值班代表{rule.deputy.name}。" if rule.deputy else "。"
    return _done(message, "admin.station", station_id=station.id, _anchor="calendar")


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/rules/<int(max={MAX_ID}):rule_id>/delete")
@login_required(*ADMIN_ROLES)
def rule_remove(station_id: int, rule_id: int):
    """Remove a reception day."""
    user = current_staff()
    station = require_station(user, station_id)
    rule = station_ops.remove_rule(user, station, rule_id)
    return _done(
        f"已删除接待日：{station_ops.describe_rule(rule)}。", "admin.station", station_id=station.id, _anchor="calendar"
    )


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/code")
@login_required(*ADMIN_ROLES)
def station_code_rotate(station_id: int):
    """Replace the station's code (a defaced poster); the old one stops taking messages."""
    user = current_staff()
    station = require_station(user, station_id)
    try:
        station_ops.rotate_station_code(user, station, request.form.get("reason"))
    except UserError as exc:
        return _station_refused(exc, station, "code")
    return _done(
        f"已更换联络站二维码。{station_ops.OLD_CODE_FATE}", "admin.station", station_id=station.id, _anchor="code"
    )


# --- poster batches ------------------------------------------------------------------------------


@bp.get("/poster-batches/new")
@login_required(*ADMIN_ROLES)
def poster_batch_new():
    """Where a batch too long to download directly is sent: its size, and the button that queues it."""
    user = current_staff()
    kind, key = batch_ops.parse_batch_request(request.args)
    target = batch_ops.batch_target(user, kind, key)
    return _page(
        "admin/poster_batch_new.html",
        kind=kind.value,
        key_field="region" if target.region is not None else "station_id",
        key=key,
        target=target,
        names=batch_names(kind.value, station=target.station, region=target.region),
        is_too_long=not fits_a_stream(target.pages),
    )


@bp.post("/poster-batches")
@login_required(*ADMIN_ROLES)
def poster_batch_create():
    """Queue a batch (a station's posters, its cards, or a region's posters) and show its progress page."""
    user = current_staff()
    kind, key = batch_ops.parse_batch_request(request.form)
    require_fonts()
    batch, is_new = batch_ops.request_batch(user, kind, key)
    location = url_for("admin.poster_batch", batch_id=batch.id)
    if not is_new:
        flash("同一批海报已在生成中，下面是它的进度，无需重复生成。")
    return redirect(location, 303)


def _batch_back(batch) -> tuple[str, str]:
    if batch.station is not None:
        return url_for("admin.station", station_id=batch.station.id, _anchor="print"), batch.station.name
    return url_for("admin.index", _anchor="region-print"), "全部联络站"


@bp.get(f"/poster-batches/<int(max={MAX_ID}):batch_id>")
@login_required(*ADMIN_ROLES)
def poster_batch(batch_id: int):
    """A batch's progress ("已生成 k / N 页"), then its download; the page's script follows the status below."""
    batch = batch_ops.require_batch(current_staff(), batch_id)
    back_url, back_label = _batch_back(batch)
    keep = timedelta(hours=current_app.config["POSTER_BATCH_KEEP_HOURS"])
    return _page(
        "admin/poster_batch.html",
        batch=batch,
        progress=batch_ops.batch_status(batch),
        names=batch_ops.names_of(batch),
        keep_until=batch.finished_at + keep if batch.finished_at is not None else None,
        back_url=back_url,
        back_label=back_label,
        key_field="region" if batch.region is not None else "station_id",
        key=batch.region.code if batch.region is not None else batch.station_id,
    )


@bp.get(f"/poster-batches/<int(max={MAX_ID}):batch_id>/status")
@login_required(*ADMIN_ROLES)
def poster_batch_status(batch_id: int):
    """The batch's progress as JSON, polled by the status page."""
    batch = batch_ops.require_batch(current_staff(), batch_id)
    return jsonify(batch_ops.batch_status(batch))


@bp.get(f"/poster-batches/<int(max={MAX_ID}):batch_id>.pdf")
@login_required(*ADMIN_ROLES)
def poster_batch_download(batch_id: int):
    """The finished PDF, for staff who may print what it holds."""
    batch = batch_ops.require_batch(current_staff(), batch_id)
    path = batch_ops.batch_file(batch)
    if path is None:
        if batch.status in (PosterBatchStatus.QUEUED, PosterBatchStatus.RUNNING):
            raise UserError("batch_not_ready", "这批海报还在生成中，完成后才能下载。请回到进度页面等待。", 409)
        if batch.status == PosterBatchStatus.FAILED:
            raise UserError("batch_failed", f"这批海报生成失败，没有可下载的文件：{batch.error}", 409)
        raise UserError("batch_expired", "文件已过期删除，请回到联络站页面重新生成。", 410)
    names = batch_ops.names_of(batch)
    response = send_file(path, mimetype="application/pdf", conditional=True, max_age=0)
    return name_download(response, names.filename, names.ascii_filename)


# --- deputies ------------------------------------------------------------------------------------


def _deputy_form_context(station: Station, deputy: Deputy | None = None) -> dict:
    return {
        "station": station,
        "deputy": deputy,
        "levels": [(level, CONGRESS_LEVEL_LABELS[level]) for level in CongressLevel],
        "deputy_field_names": [
            *deputy_ops.DEPUTY_FIELDS,
            "level",
            *(f"constituency_{lv.value}" for lv in CongressLevel),
        ],
    }


def _deputy_values(deputy: Deputy) -> dict:
    values = {
        "name": deputy.name,
        "constituency": deputy.constituency,
        "occupation": deputy.occupation,
        "phone": deputy.phone,
        "term_start": deputy.term_start.isoformat() if deputy.term_start else "",
        "term_end": deputy.term_end.isoformat() if deputy.term_end else "",
        "level": [lv.level.value for lv in deputy.levels],
    }
    for lv in deputy.levels:
        values[f"constituency_{lv.level.value}"] = lv.constituency
    return values


@bp.route(f"/stations/<int(max={MAX_ID}):station_id>/deputies/new", methods=["GET", "POST"])
@login_required(*ADMIN_ROLES)
def deputy_new(station_id: int):
    """Add a deputy to the station; they get a code of their own at once."""
    user = current_staff()
    station = require_station(user, station_id)
    if request.method == "GET":
        return _page("admin/deputy_new.html", **_deputy_form_context(station), values={"level": []})
    try:
        deputy = deputy_ops.create_deputy(user, station, deputy_ops.deputy_input_from_form(request.form))
    except UserError as exc:
        return _refused_page("admin/deputy_new.html", exc, lambda: _deputy_form_context(station), "deputy")
    return _done(f"已添加代表{deputy.name}，并生成了代表码。", "admin.deputy", deputy_id=deputy.id)


def _deputy_context(user: StaffUser, deputy: Deputy) -> dict:
    code = current_code(deputy)
    open_items = deputy_ops.open_items(deputy)
    other_stations = [
        s
        for s in db.session.scalars(manageable_stations_query(user).order_by(Station.id))
        if s.id != deputy.station_id and s.is_active
    ]
    return {
        **_deputy_form_context(deputy.station, deputy),
        "code": code,
        "code_url": code_url(code.slug) if code else "",
        "status_label": DEPUTY_STATUS_LABELS[deputy.status],
        "status_choices": {s: label for s, label in deputy_ops.STATUS_CHOICES.items() if s != deputy.status},
        "open_items": open_items,
        "format_ref": format_ref,
        "successors": [d for d in serving_deputies(deputy.station) if d.id != deputy.id],
        "other_stations": other_stations,
        "old_code_fate": station_ops.OLD_CODE_FATE,
        "code_keeps_routing": deputy_ops.CODE_KEEPS_ROUTING.format(station=deputy.station.name),
        "values": _deputy_values(deputy),
    }


@bp.get(f"/deputies/<int(max={MAX_ID}):deputy_id>")
@login_required(*ADMIN_ROLES)
def deputy(deputy_id: int):
    """A deputy: details, photo, posters, code, station, status in office."""
    user = current_staff()
    deputy = require_deputy(user, deputy_id)
    return _page("admin/deputy.html", **_deputy_context(user, deputy))


def _deputy_refused(exc: UserError, user: StaffUser, deputy: Deputy, form_name: str):
    context = _refused(exc, lambda: _deputy_context(user, db.session.get(Deputy, deputy.id)), form_name)
    if form_name != "deputy":  # only the details form shows typed values; the others keep theirs in place
        typed = context["values"]
        context["values"] = {**_deputy_values(context["deputy"]), **{k: typed[k] for k in typed if k != "level"}}
    return _page("admin/deputy.html", exc.status, **context)


@bp.post(f"/deputies/<int(max={MAX_ID}):deputy_id>")
@login_required(*ADMIN_ROLES)
def deputy_update(deputy_id: int):
    """Save a deputy's details."""
    user = current_staff()
    deputy = require_deputy(user, deputy_id)
    try:
        changed = deputy_ops.update_deputy(user, deputy, deputy_ops.deputy_input_from_form(request.form))
    except UserError as exc:
        return _deputy_refused(exc, user, deputy, "deputy")
    return _done("已保存代表信息。" if changed else "没有修改。", "admin.deputy", deputy_id=deputy.id)


@bp.post(f"/deputies/<int(max={MAX_ID}):deputy_id>/photo")
@login_required(*ADMIN_ROLES)
def deputy_photo(deputy_id: int):
    """Upload a deputy's photo (JPG or PNG; stored re-encoded, without location data)."""
    user = current_staff()
    deputy = require_deputy(user, deputy_id)
    upload = request.files.get("photo")
    try:
        if upload is None or not upload.filename:
            raise UserError("required", "请选择一张照片。", 400, field="photo")
        deputy_ops.set_photo(user, deputy, upload.read())
    except UserError as exc:
        exc.field = "photo"
        return _deputy_refused(exc, user, deputy, "photo")
    return _done("已更新照片，海报和留言页将显示新照片。", "admin.deputy", deputy_id=deputy.id)


@bp.post(f"/deputies/<int(max={MAX_ID}):deputy_id>/station")
@login_required(*ADMIN_ROLES)
def deputy_station(deputy_id: int):
    """Assign the deputy to another station the user manages; their code keeps working."""
    user = current_staff()
    deputy = require_deputy(user, deputy_id)
    try:
        target = deputy_ops.assign_station(user, deputy, request.form.get("station_id"))
    except UserError as exc:
        return _deputy_refused(exc, user, deputy, "station")
    return _done(
        f"已将{deputy.name}调整到{target.name}。原代表码继续有效，群众扫码会找到新联络站；请重新打印海报。",
        "admin.deputy",
        deputy_id=deputy.id,
    )


@bp.post(f"/deputies/<int(max={MAX_ID}):deputy_id>/status")
@login_required(*ADMIN_ROLES)
def deputy_status(deputy_id: int):
    """Record a deputy leaving office (or serving again); their open items go to the deputy chosen."""
    user = current_staff()
    deputy = require_deputy(user, deputy_id)
    try:
        change = deputy_ops.change_status(user, deputy, request.form)
    except UserError as exc:
        return _deputy_refused(exc, user, deputy, "status")
    return _done(deputy_ops.status_sentence(change), "admin.deputy", deputy_id=deputy.id)


@bp.post(f"/deputies/<int(max={MAX_ID}):deputy_id>/code")
@login_required(*ADMIN_ROLES)
def deputy_code_rotate(deputy_id: int):
    """Replace the deputy's code (a defaced or tampered poster); the old one stops taking messages."""
    user = current_staff()
    deputy = require_deputy(user, deputy_id)
    try:
        deputy_ops.rotate_deputy_code(user, deputy, request.form.get("reason"))
    except UserError as exc:
        return _deputy_refused(exc, user, deputy, "code")
    return _done(
        f"已更换{deputy.name}的代表码。{station_ops.OLD_CODE_FATE}", "admin.deputy", deputy_id=deputy.id, _anchor="code"
    )


# --- departments (supervisors) -------------------------------------------------------------------


def _departments_context(user: StaffUser) -> dict:
    return {
        "tree": department_ops.department_tree(user),
        "regions": department_ops.manageable_regions(user),
        "parents": department_ops.parent_choices(user),
    }


@bp.route("/departments", methods=["GET", "POST"])
@login_required(*ADMIN_ROLES)
def departments():
    """The departments of the supervisor's region with their units beneath them: list, and add one or a unit."""
    user = current_staff()
    require_supervisor(user)
    if request.method == "GET":
        # "添加下属单位" on a department's row opens the form with that department chosen as the parent.
        parent = request.args.get("parent_id", "")
        values = {"parent_id": parent} if parent.isascii() and parent.isdigit() else {}
        return _page("admin/departments.html", prefill=values, **_departments_context(user))
    try:
        department = department_ops.create_department(user, request.form)
    except UserError as exc:
        return _refused_page("admin/departments.html", exc, lambda: _departments_context(user), "department")
    return _done(f"已添加承办单位：{department.name}。", "admin.departments")


def _department_context(user: StaffUser, department) -> dict:
    return {
        "department": department,
        "regions": department_ops.manageable_regions(user),
        "parents": department_ops.parent_choices(user, department),
        "units": [d for d in department_ops.departments_of(user) if d.parent_id == department.id],
        "values": {
            "name": department.name,
            "region_id": str(department.region_id),
            "parent_id": str(department.parent_id or ""),
            "contact_name": department.contact_name,
            "contact_phone": department.contact_phone,
        },
    }


@bp.route(f"/departments/<int(max={MAX_ID}):department_id>", methods=["GET", "POST"])
@login_required(*ADMIN_ROLES)
def department(department_id: int):
    """One department or unit: edit its name, region, contact and the department it is a unit of."""
    user = current_staff()
    require_supervisor(user)
    department = require_department(user, department_id)
    if request.method == "GET":
        return _page("admin/department.html", **_department_context(user, department))
    try:
        changed = department_ops.update_department(user, department, request.form)
    except UserError as exc:
        return _refused_page("admin/department.html", exc, lambda: _department_context(user, department), "department")
    return _done("已保存承办单位信息。" if changed else "没有修改。", "admin.departments")


@bp.post(f"/departments/<int(max={MAX_ID}):department_id>/active")
@login_required(*ADMIN_ROLES)
def department_active(department_id: int):
    """Deactivate (no longer offered when forwarding) or reactivate a department."""
    user = current_staff()
    require_supervisor(user)
    department = require_department(user, department_id)
    is_active = request.form.get("active") == "1"
    try:
        units = department_ops.set_active(user, department, is_active)
    except UserError as exc:
        return _page(
            "admin/departments.html", exc.status, **_refused(exc, lambda: _departments_context(user), "active")
        )
    with_units = f"及其{len(units)}个下属单位" if units else ""
    message = (
        f"已恢复承办单位：{department.name}。"
        if is_active
        else f"已停用承办单位：{department.name}{with_units}，交办时不再显示。"
    )
    return _done(message, "admin.departments")


# --- import --------------------------------------------------------------------------------------


def _import_context(user: StaffUser, **extra) -> dict:
    context = {
        "columns": importer.COLUMNS,
        "max_rows": importer.max_rows(),
        "max_size": importer.describe_size(importer.max_bytes()),
        "plan": None,
        "upload_id": "",
        "result": None,
        "sheets": [],
    }
    context.update(extra)
    return context


@bp.get("/import")
@login_required(*ADMIN_ROLES)
def import_page():
    """Upload a roster (CSV or .xlsx); a dry run comes first. After an import (``?stations=3,5``), the activation
    sheets of the stations it gave accounts to, those the user manages that still have accounts to activate."""
    user = current_staff()
    ids = [int(part) for part in request.args.get("stations", "").split(",")[:200] if part.isascii() and part.isdigit()]
    sheets = []
    if ids:
        query = manageable_stations_query(user).where(Station.id.in_([i for i in ids if i <= MAX_ID]))
        for station in db.session.scalars(query.order_by(Station.id)):
            pending = pending_count(station)
            if pending:
                sheets.append((station, pending))
    return _page("admin/import.html", **_import_context(user, sheets=sheets))


@bp.post("/import")
@login_required(*ADMIN_ROLES)
def import_dry_run():
    """Read the file and show every row's outcome and every error with its row number; nothing is written.

    A read from start to end (``database.reading``): on SQLite, parsing and checking thousands of
    rows hold up no resident's submission.
    """
    user = current_staff()
    upload = request.files.get("file")
    filename = importer.clean_filename(upload.filename if upload is not None else "")
    with database.reading():
        try:
            if upload is None or not upload.filename:
                raise UserError("required", "请选择要导入的文件（.xlsx 或 .csv）。", 400, field="file")
            data = upload.read(importer.max_bytes() + 1)
            plan = importer.plan_import(user, data, filename)
        except UserError as exc:
            db.session.rollback()
            context = _import_context(user, filename=filename)
            return _page(
                "admin/import.html", exc.status, error=exc.message, error_field="file", error_form="file", **context
            )
        upload_id = importer.keep_upload(user, data, filename) if plan.is_importable else ""
        return _page("admin/import.html", **_import_context(user, plan=plan, upload_id=upload_id, filename=filename))


@bp.post("/import/confirm")
@login_required(*ADMIN_ROLES)
def import_confirm():
    """Import the file checked in the dry run, read again from the server's copy: every row, or none."""
    user = current_staff()
    upload_id = request.form.get("upload_id", "")
    try:
        data, filename = importer.load_upload(user, upload_id, request.form.get("sha256", ""))
    except UserError as exc:
        return _page(
            "admin/import.html",
            exc.status,
            error=exc.message,
            error_field="file",
            error_form="file",
            **_import_context(user),
        )
    claimed = importer.claim_upload(upload_id)
    try:
        plan = importer.plan_import(user, data, filename)
        if not plan.is_importable:  # something changed since the dry run
            importer.release_upload(upload_id, claimed)
            db.session.rollback()
            return _page(
                "admin/import.html",
                400,
                error="数据在检查后发生了变化，文件中出现了错误，未导入任何数据。请查看下面的错误，修改后重新上传。",
                **_import_context(user, plan=plan, filename=filename),
            )
        result = importer.apply_import(user, plan)
    except UserError as exc:
        db.session.rollback()
        importer.release_upload(upload_id, claimed)
        return _page(
            "admin/import.html",
            exc.status,
            error=exc.message,
            error_field="file",
            error_form="file",
            **_import_context(user),
        )
    except Exception:
        db.session.rollback()
        importer.release_upload(upload_id, claimed)
        raise
    importer.discard_upload(upload_id, claimed)
    parts = [f"新增{result.created}位代表", f"更新{result.updated}位"]
    if result.unchanged:
        parts.append(f"{result.unchanged}位资料无变化")
    if result.accounts:
        parts.append(f"新建账号{result.accounts}个")
    message = f"导入完成：{'，'.join(parts)}。新代表已生成代表码，可到联络站页面打印海报。"
    if result.accounts:
        message += "新账号没有密码：请打印下面的激活单，交给本人扫码设置。"
    flash(message)
    stations = ",".join(str(i) for i in result.station_ids)
    return redirect(url_for("admin.import_page", stations=stations or None), 303)


def _example_station(user: StaffUser) -> str:
    first = db.session.scalar(manageable_stations_query(user).order_by(Station.id).limit(1))
    return first.name if first is not None else importer.EXAMPLE_STATION


# The example roster's formats: how it is made, and its type.
EXAMPLE_FORMATS = {
    "csv": (importer.example_csv, "text/csv; charset=utf-8"),
    "xlsx": (importer.example_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}


@bp.get("/import/example.<any(csv, xlsx):fmt>")
@login_required(*ADMIN_ROLES)
def import_example(fmt: str):
    """The example roster as CSV (UTF-8 with BOM) or an Excel workbook, at the user's own station."""
    make, mimetype = EXAMPLE_FORMATS[fmt]
    user = current_staff()
    data = make(_example_station(user), with_admin=user.role == StaffRole.SUPERVISOR)
    return download(data, mimetype, f"代表名册示例.{fmt}", f"deputies-example.{fmt}")
