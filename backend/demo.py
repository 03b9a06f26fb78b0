"""Deterministic demo data: a county from the field's reports."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register ``flask demo load``."""
