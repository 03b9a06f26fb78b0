"""One error type for bad input, and the handlers that answer every error clearly.

Under ``/api/`` errors are JSON ``{"error": {"code", "message"}}``; elsewhere they are a
page in Chinese. No handled error ever becomes a 500.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

# Chinese messages for the HTTP errors Werkzeug raises by itself.
HTTP_MESSAGES = {
    400: ("bad_request", "请求有误，请返回重试。"),
    401: ("unauthorized", "请先登录。"),
    403: ("forbidden", "您没有权限进行此操作。"),
    404: ("not_found", "找不到该页面或记录。"),
    405: ("method_not_allowed", "不支持该请求方式。"),
    409: ("conflict", "当前状态不允许此操作。"),
    413: ("too_large", "提交的内容太大，请减少图片数量或缩小图片后重试。"),
    415: ("unsupported_media_type", "提交的数据格式不正确。"),
    429: ("too_many_requests", "提交太频繁，请稍后再试。"),
    500: ("internal_error", "系统出了点问题，请稍后再试。"),
}


class UserError(Exception):
    """Bad input or a refused action, with a machine code and a Chinese message for the person."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        self.retry_after = retry_after


class FieldErrors(UserError):
    """Several fields refused at once, so a form can show every problem in one answer.

    It is the first problem's ``UserError`` to anyone who reads one (the API answers its code and
    message as before); a form reads ``fields``: each field's first message.
    """

    def __init__(self, errors: list[UserError]) -> None:
        flat = [e for error in errors for e in (error.errors if isinstance(error, FieldErrors) else [error])]
        first = flat[0]
        super().__init__(first.code, first.message, first.status, first.field, first.retry_after)
        self.errors = flat
        self.fields: dict[str, str] = {}
        for error in flat:
            self.fields.setdefault(error.field or "form", error.message)


def checked(errors: list[UserError], check):
    """``check()``'s value, or None with its refusal added to ``errors``: a form's fields checked one by one, every
    refusal gathered, and raised together as ``FieldErrors`` by the caller."""
    try:
        return check()
    except UserError as exc:
        errors.append(exc)
        return None


# Pages of people at work: their way back is their own home, not the residents'.
_STAFF_PREFIXES = ("/staff", "/admin", "/supervision", "/posters")
_CODE_PATH = re.compile(r"^/c/(?P<slug>[^/]+)/?$")
_ITEM_PATH = re.compile(r"^/t/(?P<ref>[^/]+)(?P<rest>/.*)?$")


def home_url(path: str | None = None) -> str:
    """The 码上联 header's link: the residents' landing page, or the staff home on pages of people at work."""
    path = request.path if path is None else path
    return "/staff/" if path.startswith(_STAFF_PREFIXES) else "/"


def ways_back(path: str, key: str | None, status: int) -> list[tuple[str, str]]:
    """Where an error page sends a person next, best first: no error page is a dead end.

    A resident who scanned a code goes back to its form when the code works (a busy moment,
    an expired page) or to the directory when it does not; one following an item goes back to
    the item (the key still in hand) or to the lookup; everyone else to their home.
    """
    if home_url(path) != "/":
        return [("回到工作台", home_url(path))]
    ways: list[tuple[str, str]] = []
    code = _CODE_PATH.match(path)
    item = _ITEM_PATH.match(path)
    if code and status not in (404, 410):
        ways.append(("返回留言页", "/c/" + quote(code["slug"])))
    elif item and key and status != 404:
        ways.append(("返回这条留言", "/t/" + quote(item["ref"]) + "?" + urlencode({"k": key})))
    elif item or path == "/t":
        ways.append(("重新查询留言", "/t"))
    elif path.startswith("/r/"):  # a receipt already claimed or voided: the item is found by its link
        ways.append(("查询留言", "/t"))
    ways.append(("码上找代表", "/stations"))
    ways.append(("返回首页", "/"))
    return ways


def wants_json() -> bool:
    """True when the request is for the JSON API."""
    return request.path.startswith("/api/")


def error_response(code: str, message: str, status: int, field: str | None = None, retry_after: int | None = None):
    """Build the JSON or HTML answer for an error."""
    if wants_json():
        body: dict = {"code": code, "message": message}
        if field:
            body["field"] = field
        response = jsonify(error=body)
    else:
        ways = ways_back(request.path, request.args.get("k"), status)
        response = render_template("error.html", code=code, message=message, status=status, ways=ways)
        from flask import make_response

        response = make_response(response)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def init_app(app: Flask) -> None:
    """Register the error handlers, and the header's home link for every page."""
    app.jinja_env.globals["home_url"] = home_url
    app.jinja_env.globals["ways_back"] = ways_back

    @app.errorhandler(UserError)
    def _user_error(exc: UserError):
        from backend.extensions import db

        db.session.rollback()
        return error_response(exc.code, exc.message, exc.status, exc.field, exc.retry_after)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return error_response("csrf_failed", "页面已过期或来源无法确认，请刷新页面后重新提交。", 400)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code, message = HTTP_MESSAGES.get(exc.code or 500, ("error", exc.description or "请求有误。"))
        return error_response(code, message, exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        from backend.extensions import db

        app.logger.exception("unhandled error")
        db.session.rollback()
        code, message = HTTP_MESSAGES[500]
        return error_response(code, message, 500)
