"""Health endpoints for the load balancer and the process supervisor (no login; they reveal no data).

``GET /healthz``: 200 while the process answers. ``GET /readyz``: 200 when the database
answers, the migrations are at head and the outbox and poster workers were seen within a
minute; otherwise 503 with ``{"status": "not_ready", "problems": [{"check", "message"}]}``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from backend.ops import health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process lives (asks nothing of the database)."""
    return jsonify(status="alive")


@bp.get("/readyz")
def readyz():
    """Ready to serve: database, schema revision, workers; 503 naming what is wrong otherwise."""
    checks = health.readiness()
    problems = [{"check": c.name, "message": c.message} for c in checks if not c.ok]
    body = {"status": "not_ready" if problems else "ready", "checks": {c.name: c.ok for c in checks}}
    if problems:
        body["problems"] = problems
    return jsonify(body), 503 if problems else 200
