"""Pages a resident sees: the form behind a code, the confirmation, the tracking page."""

from flask import Blueprint

bp = Blueprint("resident", __name__)
