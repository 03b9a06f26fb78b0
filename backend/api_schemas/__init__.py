"""The JSON API's description (OpenAPI 3.1 at ``GET /api/v1/openapi.json``) and its request checks, from one set of schemas.

Why SpecTree with pydantic v2 (pinned in requirements.txt), and not the others weighed:

- **flask-openapi3** wants its own ``OpenAPI`` class in place of ``Flask`` (and its own blueprint
  class): the app would stop being a plain Flask app factory. Refused.
- **flask-smorest** (marshmallow, apispec) needs its ``Blueprint`` subclass for every API blueprint,
  registration through its ``Api`` object, and installs an app-wide ``HTTPException`` handler that
  answers in its own shape, which would have to be taken out again to keep our Chinese pages and
  ``{"error": {...}}`` bodies; its marshmallow ``Integer`` is lax about ``2.0`` and ``True`` unless
  every field is told otherwise.
- **SpecTree** is a decorator on ordinary views of ordinary blueprints (``@describe(...)`` below)
  and a document built from ``app.url_map``. Its ``before`` hook lets a refusal be our own
  ``UserError`` (code, Chinese message, field) answered by ``backend.errors``; pydantic v2 gives
  strict types (``StrictInt`` refuses ``2.5``, ``true``, ``"٢"``) and JSON Schema 2020-12, which is
  what OpenAPI 3.1 uses, so the document needs no translation.

The schemas (``backend.api_schemas.models``) check types, shapes and bounds; the areas' own checks
(``backend.items.validation`` and the operations) still decide meaning — whether a deputy serves at
this station, whether a date lies ahead — and a type that the schema lets through (digits as a
string for an id, as forms and the mini-program send them) is read by the same ``validation``
function on both paths.

Responses are described too (``Response`` below): in tests (``app.testing``) every answer a
described view gives is checked against its description (a mismatch is a 500 the test sees); in
production it is not (a working answer is never turned into an error). Schemathesis checks the
running server against the same document (tests/test_api_fuzz.py).
"""

from __future__ import annotations

import copy
from typing import Any

from flask import current_app, request
from pydantic import BaseModel, ValidationError
from spectree import Response as _SpecTreeResponse
from spectree import SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData

from backend.api_schemas.models import ErrorResponse
from backend.errors import UserError
from backend.items.validation import MAX_ID

# Who may call: a staff member's API token (POST /api/v1/auth/token), a resident's WeChat token
# (POST /api/v1/wechat/login); both are ``Authorization: Bearer <token>``.
STAFF = {"staffToken": []}
RESIDENT = {"residentToken": []}
ANYONE: dict = {}

SECURITY_SCHEMES = [
    SecurityScheme(
        name="staffToken",
        data=SecuritySchemeData(
            type="http",
            scheme="bearer",
            description="员工（代表、联络站管理员、监督人员）的 API 令牌：POST /api/v1/auth/token。"
            "只认 Authorization 头，从不认浏览器的 Cookie。",
        ),
    ),
    SecurityScheme(
        name="residentToken",
        data=SecuritySchemeData(
            type="http",
            scheme="bearer",
            description="群众在小程序里的微信登录令牌：POST /api/v1/wechat/login。写留言、查询留言都不需要它。",
        ),
    ),
]

DESCRIPTION = (
    "码上联的 JSON 接口（小程序与第三方使用）。出错时一律为 "
    '`{"error": {"code", "message", "field"?}}`：`code` 供程序判断，`message` 是给人看的中文，'
    "`field` 指出是哪个输入。"
)


class Response(_SpecTreeResponse):
    """SpecTree's response description; the answer is checked against it only when the app is testing."""

    def find_model(self, code: int):
        """The model to check an answer of status ``code`` against: only in tests (see the module's docstring)."""
        return super().find_model(code) if current_app.testing else None


def _model_name(model: Any) -> str:
    return getattr(model, "__name__", str(model))


spec = SpecTree(
    "flask",
    mode="strict",  # only the views described here, never the HTML pages
    title="码上联 API",
    version="1",
    description=DESCRIPTION,
    path="_spectree",  # its own pages are not served (see register); the document is at /api/v1/openapi.json
    page_templates={},
    annotations=False,
    security_schemes=SECURITY_SCHEMES,
    validation_error_status=400,
    validation_error_model=ErrorResponse,
    naming_strategy=_model_name,
    nested_naming_strategy=lambda _parent, child: child,
)


# --- refusals in the project's shape ----------------------------------------------------------------


def json_body() -> dict:
    """The request's JSON object, or a UserError (415 for another content type, 400 for bad JSON)."""
    if request.mimetype != "application/json":
        raise UserError("unsupported_media_type", "请以 JSON（Content-Type: application/json）提交。", 415)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise UserError("invalid_json", "请求体不是有效的 JSON 对象（须为 UTF-8 编码）。", 400)
    return data


def refusal(model: type[BaseModel], error: dict) -> UserError:
    """The UserError for the first thing pydantic refused: the field's own code and message when the model
    names one (``field_errors``), else ``required`` or ``invalid_type`` with the field's Chinese title."""
    location = error.get("loc") or ()
    name = str(location[0]) if location else None
    field = model.model_fields.get(name) if name else None
    if field is None and name:  # refused under its alias ("from")
        field = next((f for f in model.model_fields.values() if f.alias == name), None)
    special = getattr(model, "field_errors", {}).get(name or "")
    if special is not None:
        code, message = special
    elif error.get("type") == "missing":
        code, message = "required", f"请填写{field.title if field and field.title else name}。"
    else:
        code, message = "invalid_type", f"{field.title if field and field.title else name}格式不正确。"
    return UserError(code, message, 400, field=name)


def _before(query: type[BaseModel] | None, json: type[BaseModel] | None):
    """SpecTree's ``before`` hook for one view: the body's media type and shape first, then the first refusal."""

    def before(req, resp, error, instance, model_adapter) -> None:
        if json is not None:
            json_body()
        if error is None:
            return
        model = json if json is not None and getattr(error, "title", None) == json.__name__ else query
        if isinstance(error, ValidationError) and model is not None and error.errors():
            raise refusal(model, error.errors()[0])
        raise UserError("bad_request", "请求有误，请返回重试。", 400)

    return before


def describe(
    *,
    tags: tuple[str, ...],
    responses: dict[int, Any],
    security: dict | list | None = None,
    query: type[BaseModel] | None = None,
    json: type[BaseModel] | None = None,
):
    """Describe (and validate) one view: its query and JSON body models, its answers by status, who may call.

    ``responses`` maps a status to a model (or None for an answer without a body); an error
    status to ``ErrorResponse``. Every view may answer 400 (its input, or a control character
    anywhere in the request: ``backend.security``); one that takes a JSON body also 413 (too
    large) and 415 (not JSON), added here. Put it under the route and any auth decorator, so
    that a caller without a token is told so before being told their input is wrong.
    """
    answers = {
        400: ErrorResponse,
        **({413: ErrorResponse, 415: ErrorResponse} if json is not None else {}),
        **responses,
    }
    return spec.validate(
        query=query,
        json=json,
        resp=Response(**{f"HTTP_{status}": model for status, model in answers.items()}),
        tags=tags,
        security=security if security is not None else ANYONE,
        before=_before(query, json),
    )


def body():
    """The validated JSON body of this request (set by ``describe``)."""
    return request.context.json  # type: ignore[attr-defined]


def args():
    """The validated query of this request (set by ``describe``)."""
    return request.context.query  # type: ignore[attr-defined]


# --- the document -------------------------------------------------------------------------------------

# Path parameters, as the views read them: what the converters cannot say.
PATH_PARAMETERS = {
    "ref": {
        "type": "string",
        "pattern": "^[0-9A-Za-z]{4}-?[0-9A-Za-z]{4}$",
        "description": "留言编号，如 7K4P-9QXD（大小写、连字符均可）",
    },
    "slug": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "二维码上的码（12位）"},
    "position": {"type": "integer", "minimum": 0, "maximum": MAX_ID, "description": "照片序号"},
}
BINARY_ANSWERS = {("/api/v1/inbox/{ref}/photos/{position}.jpg", "get"): "image/jpeg"}


def document() -> dict:
    """The OpenAPI 3.1 document of every described view, as SpecTree builds it from ``app.url_map``, with the
    path parameters' patterns and the binary answers it has no words for."""
    cached = current_app.extensions.get("openapi_document")
    if cached is not None:
        return cached
    doc = copy.deepcopy(spec.spec)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in PATH_PARAMETERS:
                    described = dict(PATH_PARAMETERS[parameter["name"]])
                    parameter["description"] = described.pop("description")
                    parameter["schema"] = described
                elif not parameter.get("description"):
                    parameter.pop("description", None)
            media_type = BINARY_ANSWERS.get((path, method))
            if media_type is not None:
                operation["responses"]["200"]["content"] = {
                    media_type: {"schema": {"type": "string", "contentMediaType": media_type}}
                }
    current_app.extensions["openapi_document"] = doc
    return doc
