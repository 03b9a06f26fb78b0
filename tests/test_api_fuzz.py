"""Schemathesis against the running server: every endpoint of /api/v1/openapi.json fuzzed from its description.

The server is what ``make run`` starts (a fresh database of the engine under test, migrated,
the demo county loaded, gunicorn), with WeChat pointed at the test sandbox server of
tests/wechat_server.py (the production app serves no sandbox). The setup logs in through the
API: a supervisor's token for the staff endpoints, a resident's WeChat token for theirs, and a
pool of spare staff tokens for ``DELETE /api/v1/auth/token`` to revoke. Half of the generated
references, codes and keys are swapped for real ones, so that the fuzzing reaches past "unknown".

Checks: no 5xx, and every answer conforms to its description (status code, content type,
headers, body schema). ``API_FUZZ_EXAMPLES`` sets the examples per operation (default 25).
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend import create_app
from backend.api_schemas import document
from backend.demo import DEMO_PASSWORD
from tests.browser.conftest import LiveServer, demo_server
from tests.wechat_server import APPID, MP_APPID, MP_SECRET, SECRET
from tests.wechat_server import _start as start_wechat_sandbox

FUZZ_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "25"))
SPARE_TOKENS = 4
DEMO_COUNTY = "430225"  # 炎陵县 of backend/demo.py
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class FuzzTarget:
    """The running server, tokens to call it with, and real things to aim at."""

    server: LiveServer
    staff: dict[str, str]
    resident: dict[str, str]
    spare_staff: list[dict[str, str]]
    ref: str
    key: str
    slugs: list[str]
    security: dict[tuple[str, str], list[dict]] = field(default_factory=dict)

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        """The token an operation's description asks for (a resident's where either kind will do)."""
        requirements = self.security.get((method.lower(), path), [])
        names = {name for requirement in requirements for name in requirement}
        if (method.lower(), path) == ("delete", "/api/v1/auth/token"):  # revokes it: never the main one
            return self.spare_staff.pop() if len(self.spare_staff) > 1 else self.spare_staff[0]  # then 401
        if "residentToken" in names:
            return self.resident
        if "staffToken" in names:
            return self.staff
        return {}


def _api(base_url: str, method: str, path: str, **kwargs) -> dict:
    response = requests.request(method, base_url + path, timeout=30, **kwargs)
    assert response.status_code in (200, 201), (path, response.status_code, response.text)
    return response.json()


@pytest.fixture(scope="module")
def fuzz_target(database_url, tmp_path_factory, request) -> Iterator[FuzzTarget]:
    """gunicorn on a fresh, migrated database with the demo county (``demo_server``), WeChat at the sandbox server."""
    sandbox = start_wechat_sandbox(database_url, tmp_path_factory, request.config)
    sandbox.reset()
    overrides = {
        "WECHAT_SANDBOX": "0",  # production's setting: the sandbox is the test server's
        "WECHAT_API_BASE": sandbox.url,
        "WECHAT_APPID": APPID,
        "WECHAT_SECRET": SECRET,
        "WECHAT_MP_APPID": MP_APPID,
        "WECHAT_MP_SECRET": MP_SECRET,
        "WECHAT_MINIPROGRAM_STATE": "developer",
        # Fuzzing submits far more than a resident would: the throttles would soon answer only 429.
        "THROTTLE_PER_ADDRESS": "1000000",
        "THROTTLE_PER_CODE": "1000000",
        "REDIS_URL": None,
    }
    with demo_server(
        tmp_path_factory.mktemp("fuzz_server"), overrides, "/api/v1/openapi.json", app_spec="backend:create_app()"
    ) as server:
        try:
            yield aim(server, sandbox)
        finally:
            if os.environ.get("API_FUZZ_LOG"):  # a file to keep gunicorn's log in, to see what the fuzzing reached
                shutil.copyfile(server.log_path, os.environ["API_FUZZ_LOG"])


def aim(server: LiveServer, sandbox) -> FuzzTarget:
    """Log in through the API (staff, spare staff, a resident), write an item, read who may call what."""
    base_url = server.base_url
    credentials = {"username": "supervisor", "password": DEMO_PASSWORD}
    tokens = [_api(base_url, "POST", "/api/v1/auth/token", json=credentials)["token"] for _ in range(1 + SPARE_TOKENS)]
    staff, *spare = [{"Authorization": f"Bearer {token}"} for token in tokens]
    login_code = sandbox.login_code("o-fuzz-resident")
    resident_token = _api(base_url, "POST", "/api/v1/wechat/login", json={"code": login_code})["token"]
    resident = {"Authorization": f"Bearer {resident_token}"}
    slugs = [code.url.rsplit("/", 1)[-1] for code in server.demo_codes().values()]
    message = {"code": slugs[0], "body": "村口路灯坏了三个月，晚上出行很不方便。", "name": "王桂芳", "consent": True}
    item = _api(base_url, "POST", "/api/v1/items", json=message, headers=resident)
    document = _api(base_url, "GET", "/api/v1/openapi.json")
    security = {
        (method, path): operation.get("security", document.get("security", []))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    return FuzzTarget(server, staff, resident, spare, item["ref"], item["key"], slugs, security)


@pytest.fixture(scope="module")
def api_schema(fuzz_target):
    """The description as the running server serves it."""
    return schemathesis.openapi.from_url(fuzz_target.server.base_url + "/api/v1/openapi.json")


def described_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the app describes, read in-process when the tests are collected."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.app_context():
        paths = document()["paths"]
    return sorted((method.upper(), path) for path, operations in paths.items() for method in operations)


OPERATIONS = described_operations()


def aim_at_real_things(case, target: FuzzTarget) -> None:
    """Swap half of the generated references, codes and keys for real ones (chosen by the case, repeatably)."""
    chooser = random.Random(repr((case.path_parameters, case.query, case.body)))
    parameters = case.path_parameters or {}
    if "ref" in parameters and chooser.random() < 0.5:
        parameters["ref"] = target.ref
        if case.query is not None and "key" in case.query and chooser.random() < 0.7:
            case.query["key"] = target.key
    if "slug" in parameters and chooser.random() < 0.5:
        parameters["slug"] = chooser.choice(target.slugs)
    if case.operation.path == "/api/v1/items" and isinstance(case.body, dict) and chooser.random() < 0.5:
        case.body["code"] = chooser.choice(target.slugs)
        if chooser.random() < 0.5:  # a message long enough: the other fields get their turn
            case.body["body"] = "村口路灯坏了三个月，晚上出行很不方便。" + str(case.body.get("body", ""))[:100]
    if case.query is not None and case.operation.path == "/api/v1/stats" and chooser.random() < 0.5:
        case.query.update({"region": DEMO_COUNTY, "station": None, "deputy": None})
        case.query = {name: value for name, value in case.query.items() if value is not None}


def known_case(operation, target: FuzzTarget):
    """The operation on the real item and code, with the item's key: whatever the fuzzing draws, this is tried."""
    names = {parameter.name for parameter in operation.path_parameters}
    path_parameters = {
        "ref": target.ref,
        "slug": target.slugs[0],
        "position": 0,
        "forward_id": 1,
        "proposal_id": 1,
        "station_id": 1,
    }
    query = {"key": target.key} if any(parameter.name == "key" for parameter in operation.query) else None
    with_body = {"body": {}, "media_type": "application/json"} if operation.body else {}
    return operation.Case(
        path_parameters={name: value for name, value in path_parameters.items() if name in names} or None,
        query=query,
        **with_body,
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_endpoint_answers_as_described_and_never_5xx(api_schema, fuzz_target, method, path):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,  # nothing written into the checkout
        suppress_health_check=list(HealthCheck),
    )
    def one_case(case):
        aim_at_real_things(case, fuzz_target)
        headers = fuzz_target.headers_for(case.method, case.operation.path)
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    try:
        known_case(operation, fuzz_target).call_and_validate(
            headers=fuzz_target.headers_for(method, path), checks=CHECKS, timeout=30
        )
        one_case()
    except BaseException:
        print(fuzz_target.server.log_tail(20))  # shown by pytest with the failure
        raise


def test_the_server_describes_what_the_app_describes(api_schema):
    served = sorted((result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations())
    assert served == OPERATIONS
