"""The password hash method is a setting (backend/auth/passwords.py): production's scrypt unless a test
configuration lowers it. The suites use the cheap TEST_PASSWORD_HASH_METHOD; here production's method is
checked once, end to end: the default of an app built from the environment, a user created by the CLI,
a login that checks that hash, a wrong password refused, and an unknown user checked against a hash of
the same method."""

from sqlalchemy import select
from werkzeug.security import check_password_hash

from backend import create_app
from backend.auth.passwords import PRODUCTION_METHOD, hash_password
from backend.auth.sessions import _dummy_password_hash
from backend.extensions import db
from backend.models import StaffUser
from tests.factories import password_hash
from tests.helpers import PASSWORD, TEST_PASSWORD_HASH_METHOD


def test_an_app_built_from_the_environment_hashes_with_productions_scrypt(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PASSWORD_HASH_METHOD", "pbkdf2:sha256:1")  # no environment variable can weaken it
    app = create_app()
    assert PRODUCTION_METHOD == "scrypt:32768:8:1"
    with app.app_context():
        stored = hash_password(PASSWORD)
    assert stored.startswith(PRODUCTION_METHOD + "$")
    assert check_password_hash(stored, PASSWORD)
    assert not check_password_hash(stored, PASSWORD + "!")


def test_productions_hash_through_cli_and_login(app, runner, client, create_county):
    """The one place the suites pay production's cost: a user made by ``flask user create`` logs in."""
    app.config.pop("PASSWORD_HASH_METHOD")  # the app fixture puts the test configuration back afterwards
    create_county()
    result = runner.invoke(
        args=["user", "create", "zhangxy", "--role", "supervisor", "--region", "430225", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == "zhangxy"))
    assert user.password_hash.startswith(PRODUCTION_METHOD + "$")

    answer = client.post("/api/v1/auth/token", json={"username": "zhangxy", "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    wrong = client.post("/api/v1/auth/token", json={"username": "zhangxy", "password": "wrong password 1"})
    assert (wrong.status_code, wrong.json["error"]["code"]) == (401, "bad_credentials")

    # An unknown user's password is checked against a hash made the same way (its timing does not say who exists).
    unknown = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "wrong password 1"})
    assert (unknown.status_code, unknown.json["error"]["code"]) == (401, "bad_credentials")
    assert _dummy_password_hash().startswith(PRODUCTION_METHOD + "$")


def test_the_suites_hash_cheaply_and_their_hashes_check(app):
    assert app.config["PASSWORD_HASH_METHOD"] == TEST_PASSWORD_HASH_METHOD
    for stored in (hash_password(PASSWORD), password_hash()):
        assert stored.startswith(TEST_PASSWORD_HASH_METHOD + "$")
        assert check_password_hash(stored, PASSWORD)
        assert not check_password_hash(stored, "correct horse 2025")
