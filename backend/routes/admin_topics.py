"""Administration pages for topic codes (专题码) of a station: issue one, see its messages together, export them,
print its poster. ``/admin/stations/<id>/topics`` and ``/admin/topics/<id>``.

They belong to the administration blueprint (``admin.bp``: station administrators and supervisors,
the same login and refusal rules): a topic is opened through its station (``access.require_station``:
out of scope answers 404 like unknown, audited). A refused form is shown again with its reasons and
nothing is written. The rules are ``backend.stations.topics``'.
"""

from __future__ import annotations

import tempfile

from flask import request, send_file

from backend.access import ADMIN_ROLES, require_station
from backend.audit import record_audit
from backend.auth.sessions import current_staff, login_required
from backend.downloads import download
from backend.errors import FieldErrors, UserError
from backend.extensions import db
from backend.items.inbox import first_line
from backend.items.refs import format_ref
from backend.items.validation import MAX_ID
from backend.models import Item, Topic, utcnow
from backend.models.item import ITEM_STATUS_LABELS
from backend.models.topic import TOPIC_KIND_LABELS
from backend.qr import posters
from backend.qr.codes import code_url
from backend.routes.admin import _done, _page, bp
from backend.routes.posters import require_fonts
from backend.stations import topics as topic_ops
from backend.stations.calendar import today_in_china
from backend.supervision import export


def _topics_context(station) -> dict:
    return {
        "station": station,
        "topics": topic_ops.topics_of(station),
        "kind_labels": TOPIC_KIND_LABELS,
        "closing_day": topic_ops.closing_day,
        "today": today_in_china(),
        "now": utcnow(),
        "max_choices": topic_ops.MAX_CHOICES,
    }


@bp.get(f"/stations/<int(max={MAX_ID}):station_id>/topics")
@login_required(*ADMIN_ROLES)
def topics(station_id: int):
    """The station's topic codes and the form that issues a new one."""
    station = require_station(current_staff(), station_id)
    return _page("admin/topics.html", **_topics_context(station))


@bp.post(f"/stations/<int(max={MAX_ID}):station_id>/topics")
@login_required(*ADMIN_ROLES)
def topic_create(station_id: int):
    """Issue a topic code: kind, title, prompt, optional choices, closing day (today or later)."""
    user = current_staff()
    station = require_station(user, station_id)
    try:
        topic = topic_ops.create_topic(user, station, request.form)
    except UserError as exc:
        db.session.rollback()
        errors = dict(exc.fields) if isinstance(exc, FieldErrors) else {exc.field or "form": exc.message}
        context = _topics_context(station)
        return _page("admin/topics.html", exc.status, errors=errors, values=request.form.to_dict(), **context)
    return _done(f"已设立专题码：{topic.title}。", "admin.topic", topic_id=topic.id)


def _topic_or_404(topic_id: int) -> Topic:
    """The topic if the user manages its station; 404 alike for unknown and out of scope (the latter audited)."""
    topic = db.session.get(Topic, topic_id)
    if topic is None:
        raise UserError("unknown_topic", "找不到这个专题码。", 404)
    require_station(current_staff(), topic.station_id)
    return topic


@bp.get(f"/topics/<int(max={MAX_ID}):topic_id>")
@login_required(*ADMIN_ROLES)
def topic(topic_id: int):
    """One topic: its code, its poster, the answers to its choices, and every message it brought, together."""
    topic = _topic_or_404(topic_id)
    code = topic_ops.topic_code(topic)
    return _page(
        "admin/topic.html",
        topic=topic,
        station=topic.station,
        code_url=code_url(code.slug) if code else "",
        items=topic_ops.topic_items(topic),
        counts=topic_ops.choice_counts(topic),
        closes_on=topic_ops.closing_day(topic),
        is_closed=topic.is_closed(utcnow()),
        status_labels=ITEM_STATUS_LABELS,
        format_ref=format_ref,
        first_line=first_line,
    )


@bp.get(f"/topics/<int(max={MAX_ID}):topic_id>/export.xlsx")
@login_required(*ADMIN_ROLES)
def topic_export(topic_id: int):
    """The topic's messages as the monthly export writes them (contact details masked); the download is audited."""
    topic = _topic_or_404(topic_id)
    ids = list(
        db.session.scalars(
            topic_ops.topic_items_query(topic).with_only_columns(Item.id).order_by(Item.created_at, Item.id)
        )
    )
    facts = [
        ("专题类型", topic.kind.label),
        ("联络站", topic.station.name),
        ("提问", topic.prompt),
        ("征集截止", topic_ops.closing_day(topic).isoformat()),
        ("收到留言", f"{len(ids)}件"),
        *[(f"选“{choice}”", f"{number}件") for choice, number in topic_ops.choice_counts(topic)],
    ]
    out = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - send_file closes it with the response
    try:
        export.write_topic(topic.title, facts, ids, out)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    record_audit("topic_exported", user=current_staff(), object_type="topic", object_id=topic.id)
    return send_file(
        out,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"{topic.title}-意见汇总.xlsx",
    )


def _topic_sheet(topic: Topic) -> posters.TopicSheet:
    require_fonts()
    code = topic_ops.topic_code(topic)
    if code is None:
        raise UserError("no_code", "这个专题还没有二维码。", 404)
    closes = topic_ops.closing_day(topic)
    return posters.TopicSheet(
        title=topic.title,
        kind_label=topic.kind.label,
        prompt=topic.prompt,
        closes_on=f"{closes.year}年{closes.month}月{closes.day}日",
        station_name=topic.station.name,
        station_address=topic.station.address,
        url=code_url(code.slug),
        slug=code.slug,
    )


@bp.get(f"/topics/<int(max={MAX_ID}):topic_id>/poster.pdf")
@login_required(*ADMIN_ROLES)
def topic_poster_pdf(topic_id: int):
    """The topic's A4 poster, print-ready."""
    topic = _topic_or_404(topic_id)
    data = posters.pdf_bytes([posters.topic_poster(_topic_sheet(topic))], title=f"{topic.title} 专题码海报")
    return download(data, "application/pdf", f"{topic.title}-专题码海报.pdf", f"topic-{topic.id}-poster.pdf")


@bp.get(f"/topics/<int(max={MAX_ID}):topic_id>/poster.png")
@login_required(*ADMIN_ROLES)
def topic_poster_png(topic_id: int):
    """The topic's poster as a preview image."""
    topic = _topic_or_404(topic_id)
    data = posters.topic_poster(_topic_sheet(topic)).preview_png()
    return download(data, "image/png", f"{topic.title}-专题码海报.png", f"topic-{topic.id}-poster.png", inline=True)
