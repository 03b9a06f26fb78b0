"""Codes: slugs behind every printed QR code, their images, and (later) posters."""
