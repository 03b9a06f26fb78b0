"""Every Flask extension, created unbound; ``create_app`` binds them with ``init_app``."""

from contextvars import ContextVar

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.engine import Engine

from backend.models.base import Base

# The replica's engine while a block reads from it (backend/replica.py sets it, database.writing() clears it).
replica_reads: ContextVar[Engine | None] = ContextVar("msl_replica_reads", default=None)


class Session(FlaskSession):
    """Flask-SQLAlchemy's session, whose statements inside ``replica.reads_from_replica()`` go to the replica.

    Only reads do: a flush (the ORM's writes) and an INSERT, UPDATE or DELETE go to the primary
    whatever the block says, so an audit row written by a page that reads from the replica lands
    where every write does. Why here: the session is the one place every statement passes.
    """

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        """The replica's engine for a read inside a replica block; the primary (Flask-SQLAlchemy's choice) else."""
        replica = replica_reads.get()
        if bind is None and replica is not None and not self._flushing and not getattr(clause, "is_dml", False):
            return replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(model_class=Base, session_options={"class_": Session})
migrate = Migrate(compare_type=True, render_as_batch=True)
csrf = CSRFProtect()
