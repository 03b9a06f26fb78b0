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


@pytest.mark.parametrize(
    ("method", "path", "status", "committed"),
    [
        pytest.param("post", "/_probe/success", 201, ["done", "kept"], id="a_success_commits_everything_flushed"),
        pytest.param(
            "post", "/_probe/page-after-rollback", 200, ["kept"], id="a_page_after_the_views_rollback_keeps_kept_once"
        ),
        pytest.param("post", "/_probe/crash", 500, ["kept"], id="a_crash_answers_500_and_keeps_only_the_kept"),
        pytest.param("get", "/_probe/read-that-writes", 200, ["seen"], id="a_read_that_declared_a_write_commits_it"),
        pytest.param(
            "get", "/_probe/kept-then-not-found", 404, ["kept"], id="a_404_of_a_read_keeps_the_refusals_audit_row"
        ),
        pytest.param(
            "post",
            "/_probe/slow-work-then-refused",
            400,
            ["kept"],
            id="a_write_committed_before_slow_work_is_not_made_twice_by_a_later_error",
        ),
    ],
)
def test_what_each_answer_commits(probe, method, path, status, committed):
    assert getattr(probe, method)(path).status_code == status
    assert committed_actions() == committed


def test_an_error_answer_keeps_only_the_writes_kept_through_it(probe):
    response = probe.post("/_probe/refused")
    assert response.status_code == 409
    assert "不行。" in response.text  # the error page says why
    assert committed_actions() == ["kept"]


def test_a_read_never_writes_what_a_view_changed_on_a_loaded_object(probe):
    record_audit("original")
    db.session.commit()
    response = probe.get("/_probe/read")
    assert response.status_code == 200
    assert response.text == "changed for showing"
    assert committed_actions() == ["original"]
