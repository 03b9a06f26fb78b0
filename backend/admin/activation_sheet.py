"""A station's activation sheet: an A4 PDF a clerk prints and hands out at a meeting, one slip per person.

Each not-yet-activated account of the station (its administrators, its serving deputies; see
``accounts.pending_accounts_query``) gets a slip with the name, the role, the username and the QR
code of a fresh one-time activation link: the person scans it on their phone, sets their own password
and is logged in. Making the sheet issues NEW links and ends every older link of those accounts, so
a link is printed once and never shown again (only its hash is kept); a lost sheet is replaced by
printing another, which voids the lost one. Who may print it is ``backend.access``'s rule for the
station (its administrator, the supervisors of its region); the route checks it.

Drawn with the posters' machinery (``backend.qr.sheets``): vectors, the embedded CJK font, codes as
paths of modules; ten slips a page in two columns, with dashed lines to cut along.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from backend.admin.accounts import activation_url, new_activations, pending_accounts_query
from backend.audit import record_audit
from backend.errors import UserError
from backend.extensions import db
from backend.models import StaffRole, StaffUser, Station
from backend.qr.posters import A4_MM, GREY, INK, MARGIN_MM, RED, RULE, pdf_bytes
from backend.qr.sheets import Box, Canvas, LineOp, Sheet, px
from backend.timefmt import china_time

COLUMNS = 2
ROWS = 5
SLIPS_PER_PAGE = COLUMNS * ROWS
HEADER_MM = 30.0  # title and instructions above the slips
FOOTER_MM = 6.0
CODE_MM = 40.0  # quiet zone included: a link's code (version 5 or 6) has modules of 0.8 mm or more
ROLE_NAMES = {StaffRole.DEPUTY: "人大代表", StaffRole.STATION_ADMIN: "联络站管理员"}
HOW_TO = "请本人用手机微信或相机扫码，设置自己的登录密码，即可登录处理群众留言。"


@dataclass(frozen=True)
class Slip:
    """One person's part of the sheet."""

    name: str
    role: str
    username: str
    url: str


def pending_accounts(station: Station) -> list[StaffUser]:
    """The station's accounts still to activate: administrators first, then deputies in the order they came."""
    order = case((StaffUser.role == StaffRole.STATION_ADMIN, 0), else_=1)
    return list(db.session.scalars(pending_accounts_query(station.id).order_by(order, StaffUser.id)))


def pending_count(station: Station) -> int:
    """How many of the station's accounts still wait for their owner (what the "打印激活单" button says)."""
    return db.session.scalar(select(func.count()).select_from(pending_accounts_query(station.id).subquery()))


def print_activation_sheet(user: StaffUser, station: Station) -> tuple[bytes, int]:
    """The station's activation sheet as PDF bytes and the number of slips; issues the new links (ending the older
    ones) and writes the audit row, then flushes: the caller commits once the PDF is made."""
    accounts = pending_accounts(station)
    if not accounts:
        raise UserError(
            "nothing_to_activate",
            "本站没有待激活的账号（账号都已激活）。个别人需要重设密码，请在“账号管理”页为其生成新的激活链接。",
            409,
        )
    made = new_activations(user, accounts)
    slips = [
        Slip(
            name=account.display_name or account.username,
            role=ROLE_NAMES.get(account.role, account.role.label),
            username=account.username,
            url=activation_url(token),
        )
        for account, (token, _) in zip(accounts, made, strict=True)
    ]
    expires_at = made[0][1].expires_at
    sheets = activation_sheets(station.name, slips, expires_at)
    data = pdf_bytes(sheets, f"{station.name} 账号激活单")
    record_audit(
        "activation_sheet_printed",
        user=user,
        object_type="station",
        object_id=station.id,
        data={"accounts": [{"id": a.id, "link_id": link.id} for a, (_, link) in zip(accounts, made, strict=True)]},
    )
    return data, len(slips)


def activation_sheets(station_name: str, slips: list[Slip], expires_at: datetime) -> list[Sheet]:
    """The pages of the sheet: a heading on each (a page may be handed out alone), ten slips a page."""
    pages = [slips[start : start + SLIPS_PER_PAGE] for start in range(0, len(slips), SLIPS_PER_PAGE)]
    expiry = china_time(expires_at)
    return [_page(station_name, page, expiry, number, len(pages)) for number, page in enumerate(pages, start=1)]


def _page(station_name: str, slips: list[Slip], expiry: str, number: int, count: int) -> Sheet:
    canvas = Canvas(A4_MM)
    m = MARGIN_MM
    right = A4_MM[0] - m
    canvas.text(f"{station_name} · 账号激活单", Box.mm(m, m, right, m + 10), "bold", 7, 4, RED, max_lines=1)
    canvas.text(
        f"每人一个二维码，只能使用一次，{expiry}前有效。请沿虚线剪开，交给本人；不要拍照转发。"
        "重新打印本单后，这一张即作废。",
        Box.mm(m, m + 12, right, m + HEADER_MM - 3),
        "regular",
        3.6,
        2.5,
        GREY,
        max_lines=3,
    )
    top = m + HEADER_MM
    bottom = A4_MM[1] - m - FOOTER_MM
    width = (right - m) / COLUMNS
    height = (bottom - top) / ROWS
    dash = px(2)
    for row in range(ROWS + 1):
        y = px(top + row * height)
        canvas.sheet.ops.append(LineOp(px(m), y, px(right), y, px(0.2), RULE, dash=dash))
    for column in range(1, COLUMNS):
        x = px(m + column * width)
        canvas.sheet.ops.append(LineOp(x, px(top), x, px(bottom), px(0.2), RULE, dash=dash))
    for index, slip in enumerate(slips):
        left = m + (index % COLUMNS) * width
        slip_top = top + (index // COLUMNS) * height
        _slip(canvas, slip, left, slip_top, width, height)
    canvas.text(
        f"第 {number} / {count} 页", Box.mm(m, bottom + 1.5, right, bottom + FOOTER_MM), "regular", 3, 2, GREY,
        align="center", max_lines=1,
    )  # fmt: skip
    return canvas.sheet


def _slip(canvas: Canvas, slip: Slip, left: float, top: float, width: float, height: float) -> None:
    pad = 3.0
    code_top = top + (height - CODE_MM) / 2
    canvas.code(slip.url, Box.mm(left + pad, code_top, left + pad + CODE_MM, code_top + CODE_MM))
    column = left + pad + CODE_MM + 2
    right = left + width - pad
    canvas.text(slip.role, Box.mm(column, top + 5, right, top + 10), "bold", 4, 2.5, RED, max_lines=1, role="role")
    canvas.text(slip.name, Box.mm(column, top + 11, right, top + 22), "bold", 8, 4, INK, max_lines=2, role="name")
    canvas.text(
        f"用户名：{slip.username}", Box.mm(column, top + 23, right, top + 28), "regular", 3.6, 2.5, INK, max_lines=1,
        role="username",
    )  # fmt: skip
    canvas.text(HOW_TO, Box.mm(column, top + 29.5, right, top + height - 4), "regular", 3.2, 2.2, GREY, max_lines=4)
