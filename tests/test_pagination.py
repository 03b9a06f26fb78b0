"""One paging parser (backend/pagination.py) for the pages and the API: pages clamp a bad ``?page=`` to a page
that exists, the API refuses it with a 400 naming the parameter; the inbox, a figure's list and a resident's
items page alike."""

from __future__ import annotations

import pytest

from backend import pagination
from tests.factories import make_item
from tests.helpers import api_token, login

BAD_PAGES = ["0", "-1", "abc", "1e999", "", " ", "٢", str(10**9), "9" * 5000]


@pytest.mark.parametrize(
    ("value", "page"),
    [(None, 1), ("", 1), ("0", 1), ("-1", 1), ("abc", 1), ("1e999", 1), ("٢", 1), ("2.5", 1), ("3", 3), (" 4 ", 4),
     (str(10**9), pagination.MAX_PAGE), ("9" * 5000, pagination.MAX_PAGE)],
)  # fmt: skip
def test_a_pages_page_number_is_clamped(value, page):
    assert pagination.page_number(value) == page


def test_page_arithmetic():
    assert pagination.offset(1, 20) == 0 and pagination.offset(3, 20) == 40
    assert [pagination.page_count(total, 20) for total in (0, 1, 20, 21)] == [1, 1, 1, 2]


@pytest.mark.parametrize("value", BAD_PAGES)
def test_pages_show_a_page_whatever_the_page_number(app, world, value):
    """A bad number shows the first page; a page past the end (10**9 is clamped to ``MAX_PAGE``) an empty one."""
    item = make_item(world.d1)
    deputy = login(app, "deputy_d1")
    supervisor = login(app, "sup_county")
    shown = value not in (str(10**9), "9" * 5000)
    inbox = deputy.get("/staff/inbox", query_string={"page": value})
    assert inbox.status_code == 200 and (item.ref in inbox.text) == shown
    figure = supervisor.get("/supervision/items", query_string={"figure": "received", "page": value})
    assert figure.status_code == 200 and (item.ref in figure.text) == shown


@pytest.mark.parametrize(
    ("query", "code"),
    [*[({"page": value}, "invalid_page") for value in [*BAD_PAGES[:4], str(pagination.MAX_PAGE + 1), "9" * 5000]],
     ({"per_page": "0"}, "invalid_per_page"), ({"per_page": str(10**9)}, "invalid_per_page"),
     ({"per_page": "51"}, "invalid_per_page"), ({"per_page": "x"}, "invalid_per_page")],
)  # fmt: skip
def test_the_apis_bad_paging_is_a_400_naming_the_parameter(app, client, world, query, code):
    response = client.get("/api/v1/inbox", query_string=query, headers=api_token(app, "deputy_d1"))
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == code and error["field"] == next(iter(query)) and "之间的整数" in error["message"]
