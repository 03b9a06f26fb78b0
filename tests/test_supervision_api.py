"""GET /api/v1/stats: the figures as JSON, bad parameters as 400 with a code."""

from __future__ import annotations

import pytest

from tests.factories import COUNTY, STATION_A, build_outcomes, supervision_world
from tests.helpers import api_token, login

ISSUE_KEYS = {
    "received",
    "answered",
    "resolved",
    "rated",
    "answer_rate",
    "resolve_rate",
    "satisfaction_rate",
    "median_first_answer_hours",
    "median_resolve_hours",
    "overdue",
}


WORLD = supervision_world  # the world fixture (tests/conftest.py)


@pytest.fixture
def supervisor(app, world):
    return api_token(app, "sup_county")


def get(app, headers, **args):
    return app.test_client().get("/api/v1/stats", query_string=args, headers=headers)


def test_the_figures_of_a_county_and_a_station(app, client, world, supervisor):
    build_outcomes(client, world)
    app.config["STATS_MIN_SAMPLE"] = 10
    data = get(app, supervisor, region="430225").get_json()
    assert set(data) >= ISSUE_KEYS
    assert {k: data[k] for k in ("received", "answered", "resolved", "rated")} == {
        k: COUNTY[k] for k in ("received", "answered", "resolved", "rated")
    }
    assert data["answer_rate"] == 0.8 and data["resolve_rate"] == 0.5
    assert data["satisfaction_rate"] is None  # 5 rated < 10
    assert data["valid"] == 10 and data["held"] == 1 and data["meeting_rate"] is None
    assert data["overdue"] == 0
    assert isinstance(data["median_first_answer_hours"], float)
    assert data["scope"] == {"kind": "region", "key": "430225", "label": "炎陵县"}
    assert len(data["months"]) == 12

    station = get(app, supervisor, station=world.station_a.id).get_json()
    assert station["received"] == STATION_A["received"]
    assert station["answer_rate"] is None  # 9 valid < 10
    app.config["STATS_MIN_SAMPLE"] = 1
    station = get(app, supervisor, station=world.station_a.id).get_json()
    assert station["answer_rate"] == 7 / 9 and station["satisfaction_rate"] == 0.75


def test_the_range_is_from_inclusive_to_exclusive(app, client, world, supervisor):
    build_outcomes(client, world)
    data = get(app, supervisor, region="430225", **{"from": "2020-01-01", "to": "2020-02-01"}).get_json()
    assert data["received"] == 0 and data["from"] == "2020-01-01" and data["to"] == "2020-02-01"
    assert data["answer_rate"] is None and data["median_first_answer_hours"] is None


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({}, "scope_required"),
        ({"region": "430225", "station": "1"}, "too_many_scopes"),
        ({"station": "1", "deputy": "1"}, "too_many_scopes"),
        ({"region": "999999"}, "unknown_region"),
        ({"station": "abc"}, "invalid_station"),
        ({"deputy": "-3"}, "invalid_deputy"),
        ({"region": "430225", "from": "2026/03/01"}, "invalid_from"),
        ({"region": "430225", "to": "2026-13-01"}, "invalid_to"),
        ({"region": "430225", "from": "2026-04-01", "to": "2026-03-01"}, "invalid_range"),
        ({"region": "430225", "from": "2026-03-01", "to": "2026-03-01"}, "invalid_range"),
        ({"region": "430225", "from": "2000-01-01", "to": "2026-03-01"}, "range_too_long"),
    ],
)
def test_bad_parameters_answer_400_with_a_code(app, world, supervisor, args, code):
    response = get(app, supervisor, **args)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code
    assert response.headers["Cache-Control"] == "no-store"


def test_a_browser_cookie_is_not_enough(app, world):
    client = login(app, "sup_county")
    response = client.get("/api/v1/stats?region=430225")
    assert response.status_code == 401
