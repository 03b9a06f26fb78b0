from backend import create_app


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
