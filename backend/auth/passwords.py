"""Password hashing in one place, its method (and so its cost) a setting: ``PASSWORD_HASH_METHOD``.

Production always hashes with ``PRODUCTION_METHOD`` (Werkzeug's scrypt default, ~70 ms of CPU a hash, which
is the point). It is no environment variable: nothing an operator sets can weaken it. Only an application
built with an explicit test configuration (``create_app({...})``) may choose a cheaper method, so that the
test suites, which log in thousands of times, do not spend minutes hashing; tests/test_passwords.py checks
that the production default is what an application built from the environment uses. Checking a password
(``check_password_hash``) reads the method from the stored hash, so hashes made either way keep working.
"""

from __future__ import annotations

from flask import current_app
from werkzeug.security import generate_password_hash

PRODUCTION_METHOD = "scrypt:32768:8:1"


def password_hash_method() -> str:
    """The application's ``PASSWORD_HASH_METHOD`` (``PRODUCTION_METHOD`` unless a test configuration chose one)."""
    return current_app.config.get("PASSWORD_HASH_METHOD", PRODUCTION_METHOD)


def hash_password(password: str) -> str:
    """The hash stored for ``password``: every password the app stores is hashed here, with the app's method."""
    return generate_password_hash(password, method=password_hash_method())
