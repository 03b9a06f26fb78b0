"""Photos of a message sent just after it, one per request: what the mini-program can send.

WeChat's ``wx.uploadFile`` carries one file per request and the message itself goes as JSON
(``POST /api/v1/items``), so the mini-program sends the message first and then each photo to
``POST /api/v1/items/<ref>/photos?key=``. The photos belong to the message (they show with it, not
under a later step), so they are taken only for a short while after it was written
(``PHOTO_ATTACH_MINUTES``) and only up to ``ITEM_MAX_PHOTOS`` in all; the same checks and the same
re-encoding as the H5 form's (``backend.items.photos``). A retried upload of the same photo (a flaky
network) is the photo already taken, not a second one.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from backend import database
from backend.errors import UserError
from backend.extensions import db
from backend.items import photo_store, timeline
from backend.items.photos import ProcessedPhoto, too_many_photos
from backend.models import Item, ItemPhoto, utcnow


def check_may_attach(item: Item) -> None:
    """Refuse (409) a photo for a message written too long ago, or one that has all its photos already."""
    config = current_app.config
    minutes = config["PHOTO_ATTACH_MINUTES"]
    if utcnow() - item.created_at > timedelta(minutes=minutes):
        raise UserError(
            "photo_too_late", f"照片须在提交留言后 {minutes} 分钟内上传；现在可以在追问或补充时附上照片。", 409
        )
    if len(timeline.message_photos(item)) >= config["ITEM_MAX_PHOTOS"]:
        raise too_many_photos(409)


def attach_message_photo(item: Item, photo: ProcessedPhoto) -> tuple[ItemPhoto, bool]:
    """Add a decoded photo to the item's message (flushes); the photo and whether it is new.

    The same photo again (its SHA-256) is the one already taken. Checked again under the item's
    lock, for two uploads that arrived together."""
    database.lock_until_commit(db.session.connection(), f"item-photos:{item.id}")
    db.session.refresh(item, ["photos"])
    same = next((p for p in item.photos if p.sha256 == photo.sha256), None)
    if same is not None:
        return same, False
    check_may_attach(item)
    row = photo_store.store_photos([photo])[0]
    last = select(func.coalesce(func.max(ItemPhoto.position), -1)).where(ItemPhoto.item_id == item.id)
    row["position"] = db.session.scalar(last) + 1
    added = ItemPhoto(**row)
    item.photos.append(added)
    db.session.flush()
    return added, True
