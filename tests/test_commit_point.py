"""The request's one commit point (``backend.database.commit_point``): views flush, the request commits once.

Probe routes on an app of their own write audit rows, the simplest write there is, and answer in
each way a view can: success, an error raised, an error page returned after the view's own
rollback, a crash, a read that changed a loaded object. What is in the database afterwards is
read on a connection of its own, so nothing the session still holds can pass for committed.
"""

from __future__ import annotations

import pytest
from flask import abort
from sqlalchemy import select

from backend import database
from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.models import AuditEntry

pytestmark = pytest.mark.fresh_app  # adds routes: never to the session's app, whose routes other tests list


def committed_actions() -> list[str]:
    """The audit actions committed so far, read outside the session."""
    with db.engine.connect() as conn:
        return list(conn.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


@pytest.fixture
def probe(app):
    """The app with probe routes, CSRF off (the probes are not forms)."""
    app.config["WTF_CSRF_ENABLED"] = False

    @app.post("/_probe/success")
    def _success():
        record_audit("done")
        record_audit("kept", keep=True)
        return {"ok": True}, 201

    @app.post("/_probe/refused")
    def _refused():
        record_audit("done")
        record_audit("kept", keep=True)
        raise UserError("refused", "不行。", 409)

    @app.post("/_probe/page-after-rollback")
    def _page_after_rollback():
        record_audit("kept", keep=True)
        record_audit("done")
        db.session.rollback()  # as a view does before showing a form again as it was
        return "表单", 200

    @app.post("/_probe/crash")
    def _crash():
        record_audit("done")
        record_audit("kept", keep=True)
        raise RuntimeError("boom")

    @app.get("/_probe/read")
    def _read():
        entry = db.session.scalars(select(AuditEntry)).one()
        entry.action = "changed for showing"  # a view changing a loaded object must not write it
        return entry.action

    @app.get("/_probe/read-that-writes")
    def _read_that_writes():
        record_audit("seen")  # a declared write (``database.writing``) of a GET
        return "ok"

    @app.get("/_probe/kept-then-not-found")
    def _kept_then_not_found():
        record_audit("kept", keep=True)
        abort(404)

    @app.post("/_probe/slow-work-then-refused")
    def _slow_work_then_refused():
        record_audit("kept", keep=True)
        database.commit_before_slow_work()
        raise UserError("refused", "不行。", 400)

    return app.test_client()


def test_a_success_commits_everything_the_view_flushed(probe):
    assert probe.post("/_probe/success").status_code == 201
    assert committed_actions() == ["done", "kept"]


def test_an_error_answer_keeps_only_the_writes_kept_through_it(probe):
    response = probe.post("/_probe/refused")
    assert response.status_code == 409
    assert "不行。" in response.text  # the error page says why
    assert committed_actions() == ["kept"]


def test_a_page_after_the_views_own_rollback_keeps_the_kept_writes_once(probe):
    assert probe.post("/_probe/page-after-rollback").status_code == 200
    assert committed_actions() == ["kept"]


def test_a_crash_answers_500_and_keeps_only_the_kept_writes(probe):
    assert probe.post("/_probe/crash").status_code == 500
    assert committed_actions() == ["kept"]


def test_a_read_never_writes_what_a_view_changed_on_a_loaded_object(probe):
    record_audit("original")
    db.session.commit()
    response = probe.get("/_probe/read")
    assert response.status_code == 200
    assert response.text == "changed for showing"
    assert committed_actions() == ["original"]


def test_a_read_that_declared_a_write_commits_it(probe):
    assert probe.get("/_probe/read-that-writes").status_code == 200
    assert committed_actions() == ["seen"]


def test_a_404_of_a_read_keeps_the_refusals_audit_row(probe):
    assert probe.get("/_probe/kept-then-not-found").status_code == 404
    assert committed_actions() == ["kept"]


def test_a_write_committed_before_slow_work_is_not_made_twice_by_a_later_error(probe):
    assert probe.post("/_probe/slow-work-then-refused").status_code == 400
    assert committed_actions() == ["kept"]
