"""The described API (issue 10): GET /api/v1/openapi.json describes every JSON endpoint, from the schemas that
validate the requests; refusals keep the project's error shape; answers are checked against their description
in tests (and only there). The running server is fuzzed against the same document in tests/test_api_fuzz.py."""

from __future__ import annotations

import jsonschema_rs
import pytest
from flask import Blueprint, jsonify
from pydantic import BaseModel

from backend.api_schemas import STAFF, describe
from backend.api_schemas import models as m
from backend.qr.codes import current_code
from tests.factories import make_item
from tests.helpers import api_token

CHINESE = range(0x4E00, 0xA000)


def described(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def api_rules(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every JSON endpoint the app routes, as ``flask routes`` lists them."""
    rules = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if not path.startswith("/api/") or rule.endpoint == "api.openapi":
            continue
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "{" + argument + "}")
            path = path.replace(f"<int:{argument}>", "{" + argument + "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            rules.add((method.lower(), path))
    return rules


def test_every_json_endpoint_is_described_in_openapi_3_1(app, client):
    doc = described(client)
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "码上联 API"
    operations = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert operations == api_rules(app)
    # The endpoints of issue 10's list, the resident's erasure (issue 13), and issue 11's replies, followups,
    # department steps, extension decisions and WeChat subscription state, issue 15's presence, scans, station
    # 公示 and 代表建议 (draft, submit, answer), issue 14's directory search and the mini-program's photos, and the
    # mini-program's 签到 screen and a deputy's 联系群众 (GET/POST contacts); a new one must be described to be served here.
    assert len(operations) == 38


def test_every_schema_is_json_schema_2020_12_and_every_ref_resolves(client):
    doc = described(client)
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)  # against its $schema or 2020-12; raises, naming the fault
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc["paths"])
    walk(doc["components"])
    assert refs and all(ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"] for ref in refs)


def test_every_operation_describes_its_errors_and_who_may_call(client):
    doc = described(client)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["staffToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["staffToken"]["description"],
    }
    assert schemes["residentToken"]["scheme"] == "bearer"
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, ops in doc["paths"].items():
        for method, operation in ops.items():
            responses = operation["responses"]
            assert responses["400"]["content"]["application/json"]["schema"] == error_ref, (method, path)
            for status, answer in responses.items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == error_ref, (method, path, status)
            if "requestBody" in operation:
                assert {"413", "415"} <= responses.keys(), (method, path)
            names = {name for requirement in operation["security"] for name in requirement}
            if names:
                assert "401" in responses, (method, path)
    security = {(m_, p): op["security"] for p, ops in doc["paths"].items() for m_, op in ops.items()}
    assert security[("get", "/api/v1/inbox")] == [{"staffToken": []}]
    assert security[("get", "/api/v1/stats")] == [{"staffToken": []}]
    assert security[("get", "/api/v1/me/items")] == [{"residentToken": []}]
    assert security[("post", "/api/v1/items")] == [{}, {"residentToken": []}]
    assert security[("post", "/api/v1/wechat/subscriptions")] == [{"residentToken": []}, {"staffToken": []}]
    assert security[("get", "/api/v1/codes/{slug}")] == []  # anyone


def test_the_staff_endpoints_described_with_a_staff_token_refuse_a_call_without_one(app, client, world):
    doc = described(client)
    item = make_item(world.d1)
    for path, ops in doc["paths"].items():
        for method, operation in ops.items():
            if operation["security"] != [{"staffToken": []}]:
                continue
            url = path.replace("{ref}", item.ref).replace("{position}", "0").replace("{forward_id}", "1")
            url = url.replace("{proposal_id}", "1")
            response = client.open(url, method=method.upper(), json={} if "requestBody" in operation else None)
            assert response.status_code == 401, (method, path)
            assert response.get_json()["error"]["code"] == "unauthorized"


def test_path_parameters_say_what_the_views_accept(client):
    doc = described(client)
    photo = doc["paths"]["/api/v1/inbox/{ref}/photos/{position}.jpg"]["get"]
    parameters = {p["name"]: p["schema"] for p in photo["parameters"]}
    assert parameters["position"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    assert parameters["ref"]["pattern"] == "^[0-9A-Za-z]{4}-?[0-9A-Za-z]{4}$"
    assert photo["responses"]["200"]["content"] == {
        "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}}
    }


def test_the_request_schemas_are_the_validating_ones(client):
    doc = described(client)
    submission = doc["components"]["schemas"]["ItemSubmission"]["properties"]
    assert submission["deputy_id"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    assert submission["consent"]["anyOf"][0] == {"type": "boolean"}
    action = doc["components"]["schemas"]["ActionRequest"]["properties"]["action"]["anyOf"][0]
    assert "forward" in action["enum"] and "rate" not in action["enum"]  # no staff action rates (被满意)


# --- refusals in the project's shape -------------------------------------------------------------------


def error_of(response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    error = response.get_json()["error"]
    assert set(error) <= {"code", "message", "field"}
    assert any(ord(char) in CHINESE for char in error["message"]), error
    return error


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"deputy_id": 2.5}, "invalid_deputy", "deputy_id"),
        ({"deputy_id": True}, "invalid_deputy", "deputy_id"),
        ({"deputy_id": "٢"}, "invalid_deputy", "deputy_id"),
        ({"deputy_id": 2**63}, "invalid_deputy", "deputy_id"),
        ({"consent": "yes"}, "invalid_type", "consent"),
        ({"consent": 1}, "invalid_type", "consent"),
        ({"body": {"text": "嵌套"}}, "invalid_type", "body"),
        ({"name": 42}, "invalid_type", "name"),
        ({"client_id": 1234567890123456}, "invalid_type", "client_id"),
    ],
)
def test_a_submission_refused_by_its_schema_names_the_field(client, world, fields, code, field):
    payload = {"code": current_code(world.station_a).slug, "body": "给本站代表的一条留言。", **fields}
    error = error_of(client.post("/api/v1/items", json=payload))
    assert (error["code"], error["field"]) == (code, field)


def test_a_type_error_says_which_field_in_chinese(client, world):
    error = error_of(client.post("/api/v1/items", json={"code": "x", "body": 12345}))
    assert error == {"code": "invalid_type", "message": "留言内容格式不正确。", "field": "body"}


def test_media_type_and_json_shape_come_before_the_schema(client):
    assert error_of(client.post("/api/v1/items", data={"deputy_id": "2.5"}), 415)["code"] == "unsupported_media_type"
    assert error_of(client.post("/api/v1/items", json=[{"deputy_id": 2.5}]))["code"] == "invalid_json"
    null = client.post("/api/v1/items", data="null", content_type="application/json")
    assert error_of(null)["code"] == "invalid_json"


def test_a_token_is_asked_for_before_the_input_is_judged(app, client, world):
    item = make_item(world.d1)
    response = client.post(f"/api/v1/items/{item.ref}/actions", json={"action": "rate", "deputy_id": 2.5})
    assert error_of(response, 401)["code"] == "unauthorized"
    headers = api_token(app, "deputy_d1")
    response = client.post(f"/api/v1/items/{item.ref}/actions", json={"action": "rate"}, headers=headers)
    assert error_of(response) == {"code": "invalid_action", "message": "不支持的操作。", "field": "action"}


@pytest.mark.parametrize("value", ["0", "51", "-1", "x", "٢", "２", "1.0", "+1", " 1", "1e3"])
def test_inbox_paging_is_ascii_digits_in_range(app, client, world, value):
    headers = api_token(app, "deputy_d1")
    error = error_of(client.get("/api/v1/inbox", query_string={"per_page": value}, headers=headers))
    assert (error["code"], error["field"]) == ("invalid_per_page", "per_page")  # as /api/v1/me/items says it
    assert client.get("/api/v1/inbox", query_string={"per_page": "7"}, headers=headers).get_json()["per_page"] == 7


def test_an_unknown_inbox_state_is_refused_on_the_api(app, client, world):
    headers = api_token(app, "deputy_d1")
    error = error_of(client.get("/api/v1/inbox?state=everything", headers=headers))
    assert error["field"] == "state"


def test_a_rating_without_solved_or_with_another_verdict(client, world):
    item = make_item(world.d1)
    url = f"/api/v1/items/{item.ref}/rating?key={item.access_key}"
    assert error_of(client.post(url, json={"satisfaction": "satisfied"}))["code"] == "invalid_solved"
    assert error_of(client.post(url, json={"satisfaction": "satisfied", "solved": "yes"}))["code"] == "invalid_solved"
    assert error_of(client.post(url, json={"satisfaction": "great", "solved": True}))["code"] == "invalid_satisfaction"


# --- answers checked against their description in tests, never in production ---------------------------


class Counted(BaseModel):
    """What the test route promises."""

    count: int


@pytest.mark.fresh_app
def test_an_answer_unlike_its_description_is_a_500_in_tests_and_untouched_in_production(app):
    bp = Blueprint("described_for_test", __name__, url_prefix="/api/v1/test-only")

    @bp.get("/count")
    @describe(tags=("测试",), security=STAFF, responses={200: Counted, 401: m.ErrorResponse})
    def count():
        """An answer that breaks its own description."""
        return jsonify(count="many")

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/api/v1/test-only/count").status_code == 500
    app.testing = False
    try:
        response = client.get("/api/v1/test-only/count")
    finally:
        app.testing = True
    assert response.status_code == 200 and response.get_json() == {"count": "many"}
