import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from backend import config, create_app


def test_config_defaults_and_override(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    assert not app.testing
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + str(tmp_path / "mashanglian.sqlite3")
    # The generated secret key is kept in instance/ and reused by the next start.
    key = app.config["SECRET_KEY"]
    assert len(key) >= 32
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert create_app().config["SECRET_KEY"] == key
    assert create_app({"TESTING": True}).testing


def test_settings_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://msl.example.cn/")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    assert app.config["PUBLIC_BASE_URL"] == "https://msl.example.cn"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert not (tmp_path / "secret_key").exists()


def test_an_empty_variable_is_unset_and_a_malformed_one_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORT", "5123")
    monkeypatch.setenv("PUBLIC_BASE_URL", "")  # as an env file with `PUBLIC_BASE_URL=` leaves it
    monkeypatch.setenv("THROTTLE_PER_ADDRESS", "")
    app = create_app()
    assert app.config["PUBLIC_BASE_URL"] == "http://127.0.0.1:5123"
    assert app.config["THROTTLE_PER_ADDRESS"] == 30
    assert app.config["SESSION_COOKIE_SECURE"] is False
    for name, bad in [("THROTTLE_PER_ADDRESS", "thirty"), ("TRUSTED_PROXY_HOPS", "-1"),
                      ("WECHAT_TEMPLATES", "{not json"), ("WECHAT_MINIPROGRAM_ENV_VERSION", "beta")]:  # fmt: skip
        monkeypatch.setenv(name, bad)
        with pytest.raises((ValidationError, SettingsError), match=name):
            create_app()
        monkeypatch.delenv(name)


def test_every_variable_is_documented_once_and_listed_by_flask_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    rows = config.documented()
    names = [name for _area, name, _default, _meaning in rows]
    assert len(names) == len(set(names)) > 60  # one area each
    assert all(meaning for *_rest, meaning in rows)
    output = create_app().test_cli_runner().invoke(args=["settings"]).output
    assert all(f" {name} " in output for name in names)
    # Every field of the areas but the core's reaches app.config under its own name.
    app = create_app({"TESTING": True})
    core = set(config.CoreSettings.model_fields)
    assert {name for name in names if name not in core} <= set(app.config)


def test_derived_defaults_follow_their_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("WECHAT_SANDBOX", "1")
    sandboxed = create_app()
    assert sandboxed.config["WECHAT_API_BASE"] == "http://127.0.0.1:5000/_wechat/"
    assert sandboxed.config["WECHAT_MINIPROGRAM_STATE"] == "developer"
    monkeypatch.delenv("WECHAT_SANDBOX")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    plain = create_app()
    assert plain.config["WECHAT_API_BASE"] == "https://api.weixin.qq.com/"
    assert plain.config["WECHAT_MINIPROGRAM_STATE"] == "formal"
    assert plain.config["SESSION_COOKIE_SECURE"] is True  # said outright, over the http base's default
