"""QR code images for deputies and stations."""

from flask import Blueprint

bp = Blueprint("qr", __name__, url_prefix="/qr")
