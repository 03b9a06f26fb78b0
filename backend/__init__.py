"""码上联 — the deputy–resident contact system. ``create_app`` is the application factory."""

from __future__ import annotations

import os

from flask import Flask
from werkzeug.routing import IntegerConverter

from backend.config import Config, CoreSettings, WeChatSettings, check_wechat_sandbox, settings_command


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: config → extensions → blueprints → error handlers → CLI."""
    app = Flask(__name__, instance_path=CoreSettings().INSTANCE_PATH, instance_relative_config=True)
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
                and not WeChatSettings().WECHAT_API_BASE
            ):
                app.config["WECHAT_API_BASE"] = base + "/_wechat/"
    check_wechat_sandbox(app.config)
    trust_proxies(app)

    from backend import database, replica, security
    from backend.extensions import csrf, db, migrate

    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", database.engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    replica.configure(app)  # DATABASE_REPLICA_URL: the bind "replica"; refused with SQLite
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    security.init_app(app)  # before CSRFProtect: oversized or malformed bodies are refused before parsing
    csrf.init_app(app)
    database.init_app(app)
    database.init_commit_point(app)
    replica.init_app(app)
    from backend.items import photo_store

    photo_store.init_app(app)

    register_converters(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)

    from backend import timefmt

    timefmt.init_app(app)
    return app


def trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXY_HOPS`` reverse proxies, ``request.remote_addr`` (and the scheme) is what the nearest
    of them saw (werkzeug's ProxyFix): the throttle and the audit count the resident, not the proxy. With 0 the
    headers are ignored, so a client cannot name its own address to escape the throttle."""
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


class BoundedIntConverter(IntegerConverter):
    """The ``int`` URL converter, for every route: ASCII digits only, from 0 to ``MAX_ID``.

    Werkzeug's own takes any count of digits (``\\d`` also matches "٢") and hands a 30-digit
    number to the view, which PostgreSQL then refuses to compare with an integer column (a 500).
    Bounded here once, a path with such a number is simply not a route: 404.
    """

    regex = r"[0-9]{1,10}"

    def __init__(
        self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = None, signed: bool = False
    ):
        from backend.items.validation import MAX_ID

        super().__init__(map, fixed_digits=fixed_digits, min=min, max=MAX_ID if max is None else max, signed=signed)


def register_converters(app: Flask) -> None:
    """URL converters, set before any route is added: ``int`` is bounded (``BoundedIntConverter``)."""
    app.url_map.converters["int"] = BoundedIntConverter


def register_blueprints(app: Flask) -> None:
    """One blueprint per audience. The local WeChat sandbox is not one of them, whatever the settings: it is an
    application of its own (``wechat_sandbox``) that ``make run`` serves beside this one."""
    from backend.routes import (  # noqa: F401 - admin_accounts, admin_ops, admin_regions, admin_topics, presence add pages to others' bp
        admin,
        admin_accounts,
        admin_ops,
        admin_regions,
        admin_topics,
        api,
        api_auth,
        api_proposals,
        api_resident,
        api_staff,
        api_wechat,
        claim,
        department,
        deputy,
        directory,
        disclosure,
        erasure,
        health,
        posters,
        presence,
        proposals,
        qr,
        rating,
        resident,
        staff,
        supervision,
        wechat_pages,
        wechat_push,
    )

    blueprints = [
        resident.bp, qr.bp, api.bp, directory.bp, staff.bp, api_auth.bp, deputy.bp, department.bp, api_staff.bp,
        rating.bp, api_wechat.bp, posters.bp, admin.bp, api_resident.bp, wechat_pages.bp, supervision.bp,
        supervision.api_bp, health.bp, claim.bp, erasure.bp, wechat_push.bp, disclosure.bp, api_proposals.bp,
        proposals.bp,
    ]  # fmt: skip
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
    from backend.ops import cli as ops_cli

    app.cli.add_command(ops_cli.doctor_command)
    app.cli.add_command(ops_cli.backup_command)
    app.cli.add_command(ops_cli.restore_command)
    app.cli.add_command(ops_cli.retention_cli)
    app.cli.add_command(ops_cli.region_cli)
    app.cli.add_command(ops_cli.photos_cli)
    app.cli.add_command(settings_command)
