"""码上联 — the deputy–resident contact system. ``create_app`` is the application factory."""

from __future__ import annotations

import os

from flask import Flask

from backend.config import Config


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: config → extensions → blueprints → error handlers → CLI."""
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_object(Config(app.instance_path))
    if test_config:
        app.config.update(test_config)
        if "PUBLIC_BASE_URL" in test_config:
            # Settings derived from the base URL follow it, unless given too.
            base = test_config["PUBLIC_BASE_URL"].rstrip("/")
            if "SESSION_COOKIE_SECURE" not in test_config:
                app.config["SESSION_COOKIE_SECURE"] = base.startswith("https://")
            if (
                app.config.get("WECHAT_SANDBOX")
                and "WECHAT_API_BASE" not in test_config
                and not os.environ.get("WECHAT_API_BASE")
            ):
                app.config["WECHAT_API_BASE"] = base + "/_wechat/"

    from backend import database, security
    from backend.extensions import csrf, db, migrate

    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", database.engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    security.init_app(app)  # before CSRFProtect: oversized or malformed bodies are refused before parsing
    csrf.init_app(app)
    database.init_app(app)

    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)

    from backend import timefmt

    timefmt.init_app(app)
    return app


def register_blueprints(app: Flask) -> None:
    """One blueprint per audience (the local WeChat sandbox only when configured, never in production)."""
    from backend.routes import (
        admin,
        api,
        api_auth,
        api_resident,
        api_staff,
        api_wechat,
        claim,
        department,
        deputy,
        directory,
        posters,
        qr,
        rating,
        resident,
        staff,
        supervision,
        wechat_pages,
    )

    blueprints = [
        resident.bp, qr.bp, api.bp, directory.bp, staff.bp, api_auth.bp, deputy.bp, department.bp, api_staff.bp,
        rating.bp, api_wechat.bp, posters.bp, admin.bp, api_resident.bp, wechat_pages.bp, supervision.bp,
        supervision.api_bp, claim.bp,
    ]  # fmt: skip
    if app.config.get("WECHAT_SANDBOX"):
        from backend.wechat.sandbox.routes import bp as wechat_sandbox_bp

        blueprints.append(wechat_sandbox_bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)


def register_errorhandlers(app: Flask) -> None:
    """Errors as JSON with a code under /api/, as a Chinese page elsewhere."""
    from backend import errors

    errors.init_app(app)


def register_commands(app: Flask) -> None:
    """CLI commands (``flask demo load`` …)."""
    from backend import demo
    from backend.auth.cli import user_cli

    demo.init_app(app)
    app.cli.add_command(user_cli)
    from backend.outbox.cli import outbox_cli

    app.cli.add_command(outbox_cli)
    from backend.batches.cli import posters_cli

    app.cli.add_command(posters_cli)
