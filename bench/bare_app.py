"""The baseline: a bare Flask endpoint that inserts one row, on the same database and engine hooks as the app.

Served by gunicorn exactly as the app is (``bench.bare_app:create_app()``); ``POST /rows``
with a JSON ``{"body": …}`` inserts one row into ``bench_rows`` and answers 201.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from backend.config import Config
from backend.database import _configure_sqlite, engine_options
from backend.models.base import UTCDateTime, utcnow


class BenchBase(DeclarativeBase):
    """Its own metadata: ``create_all`` here never touches the app's tables."""


db = SQLAlchemy(model_class=BenchBase)


class BenchRow(db.Model):
    """One inserted row per request."""

    __tablename__ = "bench_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def create_app() -> Flask:
    """The bare app on ``DATABASE_URL`` (read and normalized by the app's own Config)."""
    app = Flask(__name__)
    instance_path = os.environ.get("INSTANCE_PATH") or tempfile.mkdtemp(prefix="bench-bare-")
    uri = Config(instance_path).SQLALCHEMY_DATABASE_URI
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(uri)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _configure_sqlite(db.engine)  # the same WAL / busy timeout / BEGIN IMMEDIATE as the app
        try:
            BenchBase.metadata.create_all(db.engine)
        except DBAPIError:
            # Several workers start at once; the one that lost the race finds the table there.
            BenchBase.metadata.create_all(db.engine)

    @app.post("/rows")
    def insert_row():
        """Insert one row and answer with its id."""
        data = request.get_json()
        row = BenchRow(body=data["body"])
        db.session.add(row)
        db.session.flush()
        row_id = row.id
        db.session.commit()
        return jsonify(id=row_id), 201

    return app
