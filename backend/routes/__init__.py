"""Blueprints, one per audience: resident pages, QR images, the JSON API."""
