"""The JSON API (v1) for the mini-program and the public directory."""

from flask import Blueprint

from backend.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
