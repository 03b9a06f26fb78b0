"""The schema comes from migrations only: upgrade an empty database to head and back, and
fail when the models and the migrations differ. Runs on the suite's engine: SQLite, or PostgreSQL when
TEST_DATABASE_URL is set (``make test`` runs both suites, so both engines are checked once each)."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from backend import create_app
from backend.extensions import db
from backend.models import Base
from tests.conftest import PG_URL, create_pg_database, drop_pg_database


def _engines(tmp_path):
    if PG_URL:
        return [create_pg_database(PG_URL)]
    return ["sqlite:///" + str(tmp_path / "mig.sqlite3")]


@pytest.fixture
def empty_databases(tmp_path):
    urls = _engines(tmp_path)
    yield urls
    for url in urls:
        if url.startswith("postgresql"):
            drop_pg_database(url)


def test_upgrade_to_head_matches_models_and_downgrades(empty_databases):
    for url in empty_databases:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade()
            with db.engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                diff = compare_metadata(context, Base.metadata)
            assert diff == [], f"models and migrations differ on {db.engine.dialect.name}: {diff}"
            tables = set(inspect(db.engine).get_table_names())
            assert {t.name for t in Base.metadata.sorted_tables} <= tables

            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}

            upgrade()  # and up again: downgrade left nothing behind that blocks it
            assert {t.name for t in Base.metadata.sorted_tables} <= set(inspect(db.engine).get_table_names())
            db.engine.dispose()


def test_drift_is_detected(empty_databases):
    """The comparison above can fail: a column the migrations do not have is reported."""
    from sqlalchemy import Column, Integer

    url = empty_databases[0]
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        table = Base.metadata.tables["regions"]
        extra = Column("drift_probe", Integer)
        table.append_column(extra)
        try:
            with db.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        finally:
            table._columns.remove(extra)
        assert any(d[0] == "add_column" and d[3].name == "drift_probe" for d in diff)
        db.engine.dispose()
