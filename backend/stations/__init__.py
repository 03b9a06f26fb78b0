"""Liaison stations: the reception calendar (接待日) and who is on duty (值班代表)."""

from __future__ import annotations

from sqlalchemy import select

from backend.extensions import db
from backend.models import Deputy, DeputyStatus, Station


def serving_deputies(station: Station) -> list[Deputy]:
    """The station's serving deputies, in the order they joined: its posters, duty rules and successors draw on
    the same list."""
    return list(
        db.session.scalars(
            select(Deputy)
            .where(Deputy.station_id == station.id, Deputy.status == DeputyStatus.SERVING)
            .order_by(Deputy.id)
        )
    )
