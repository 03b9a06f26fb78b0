"""The one no-store policy (backend/security.py ``cache_policy``) on a sample of every kind of answer: pages with
personal data or a form are kept by no cache; what says how long it may be kept (QR codes, static files) keeps
its own; staff and secret-link blueprints and attachments are no-store whatever the view set."""

from __future__ import annotations

from backend.qr.codes import current_code
from tests.factories import forward, make_item
from tests.helpers import api_token, login


def test_pages_and_answers_with_personal_data_are_no_store(app, client, world):
    item = make_item(world.d1)
    slug = current_code(world.d1).slug
    _forward, token = forward(item, world.users["deputy"], world.department)
    deputy = login(app, "deputy_d1")
    supervisor = login(app, "sup_county")
    answers = {
        "home": client.get("/"),
        "resident form": client.get(f"/c/{slug}"),
        "tracking page": client.get(f"/t/{item.ref}?k={item.access_key}"),
        "unknown tracking page": client.get("/t/ZZZZZZZZ?k=nothing"),
        "resident API error": client.post("/api/v1/items", json={}),
        "health": client.get("/healthz"),
        "deputy inbox": deputy.get("/staff/inbox"),
        "deputy item page": deputy.get(f"/staff/items/{item.ref}"),
        "department link": client.get(f"/d/{token}"),
        "supervision": supervisor.get("/supervision/"),
        "staff API": client.get("/api/v1/inbox", headers=api_token(app, "deputy_d1")),
    }
    refused = {"unknown tracking page": 404, "resident API error": 400}
    for what, answer in answers.items():
        assert answer.status_code == refused.get(what, 200), what
        assert answer.headers["Cache-Control"] == "no-store", what


def test_what_says_how_long_it_may_be_kept_keeps_its_own(client, world):
    qr = client.get(f"/qr/deputy/{world.d1.id}.png")
    assert qr.status_code == 200 and qr.headers["Cache-Control"] == "public, max-age=86400"
    with client.get("/static/css/app.css") as css:
        assert css.status_code == 200 and "no-store" not in css.headers["Cache-Control"]  # revalidated, not refetched
