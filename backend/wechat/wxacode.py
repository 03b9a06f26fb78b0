"""Mini-program codes (小程序码) for deputies, stations and binding codes, from ``getwxacodeunlimit``.

A code slug's mini-program code is fetched from WeChat once and kept in ``MiniProgramCode``:
the scene is derived from the slug (``c=<slug>``), so a rotated slug (a new ``Code`` row) gets
a new image and the old one stays with the retired slug. The mini-program's landing page
reads ``decodeURIComponent(query.scene)``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

import requests
from flask import current_app
from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from backend import database
from backend.extensions import db
from backend.models import MiniProgramCode, utcnow
from backend.wechat import api as wechat_api

log = logging.getLogger(__name__)

SCENE_MAX_CHARS = 32
# What WeChat allows in a scene: digits, letters and !#$&'()*+,/:;=?@-._~ (no %, so no raw Chinese).
SCENE_RE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")
CODE_SCENE_PREFIX = "c="
BINDING_SCENE_PREFIX = "b="


class WxacodeUnavailable(Exception):
    """WeChat could not make the mini-program code now (unreachable, busy, or refused)."""


def code_scene(slug: str) -> str:
    """The scene of a slug's mini-program code: ``c=<slug>`` (14 characters for a 12-character slug)."""
    return checked_scene(CODE_SCENE_PREFIX + slug)


def binding_scene(binding_code: str) -> str:
    """The scene of a deputy's binding code: ``b=<code>``."""
    return checked_scene(BINDING_SCENE_PREFIX + binding_code)


def checked_scene(scene: str) -> str:
    """``scene`` when WeChat would take it (≤32 characters of its charset); ValueError otherwise."""
    if not SCENE_RE.fullmatch(scene):
        raise ValueError(f"not a valid mini-program code scene: {scene!r}")
    return scene


def fetch_png(scene: str, page: str) -> bytes:
    """The image of a mini-program code opening ``page`` with ``scene``; ``WxacodeUnavailable`` when WeChat fails.

    ``check_path`` is on for released mini-programs only: WeChat refuses unpublished pages with it.
    """
    env_version = current_app.config["WECHAT_MINIPROGRAM_ENV_VERSION"]
    try:
        return wechat_api.get_wxacode_unlimited(
            checked_scene(scene), page, check_path=env_version == "release", env_version=env_version
        )
    except (WeChatClientException, requests.RequestException, ValueError) as exc:
        log.warning("getwxacodeunlimit failed for scene %r: %r", scene, exc)
        raise WxacodeUnavailable(str(exc)) from exc


@dataclass(frozen=True)
class WxaImage:
    """A kept mini-program code: its scene, the PNG, and a strong ETag (scene and a digest of the image)."""

    scene: str
    png: bytes

    @property
    def etag(self) -> str:
        """A strong ETag: the scene and a digest of the image."""
        return f"wxa-{self.scene}-{hashlib.sha256(self.png).hexdigest()[:16]}"


def _cached(code_id: int) -> WxaImage | None:
    row = db.session.execute(
        select(MiniProgramCode.scene, MiniProgramCode.png).where(MiniProgramCode.code_id == code_id)
    ).first()
    return WxaImage(row.scene, row.png) if row is not None else None


def miniprogram_code(code_id: int, slug: str) -> WxaImage:
    """The kept mini-program code of a slug (its ``Code`` row's id and slug), fetched from WeChat the first time.

    Commits the new row. Call it with no transaction open: on SQLite one may hold the write lock, which
    nobody may hold while WeChat answers. Two requests for a new slug at once may both ask WeChat; the
    first row stored wins, and after that WeChat is never asked again for this slug.
    ``WxacodeUnavailable`` when WeChat fails.
    """
    with database.reading():
        cached = _cached(code_id)
    if cached is not None:
        return cached
    scene = code_scene(slug)
    png = fetch_png(scene, current_app.config["WECHAT_MINIPROGRAM_PAGE_LANDING"])  # before the write
    with database.writing():  # served to GET requests
        db.session.execute(
            database.dialect_insert(MiniProgramCode.__table__)
            .values(code_id=code_id, scene=scene, png=png, fetched_at=utcnow())
            .on_conflict_do_nothing()
        )
        stored = _cached(code_id)
        db.session.commit()
    return stored
