"""Imports create accounts (issue 13): each new deputy, and each station administrator a supervisor lists with
角色 = 联络站管理员, gets an account named by its 联系电话, with no password anybody knows and a pending activation.
The dry run shows every row's account; every bad row is a Chinese error on its row, and nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from backend.extensions import db
from backend.models import ActivationLink, Deputy, StaffRole, StaffUser
from tests.factories import StaffUserFactory, admin_world
from tests.helpers import PASSWORD, audit_rows, csv_bytes, dry_run, login
from tests.test_admin_import import A, B, confirm, errors_of, outcomes_of

HEADER = ["姓名", "代表层级", "选区", "联络站", "联系电话", "职业", "任期", "角色"]
OUTSIDE = "茶陵县城关联络站"  # the sibling county's station (tests/factories.py)


WORLD = admin_world  # the world fixture (tests/conftest.py)


@pytest.fixture
def supervisor(app, world):
    return login(app, "sup_county")


def counts() -> tuple[int, int, int]:
    """Deputies, accounts and activation links: what a refused import must leave as it was."""
    return (
        db.session.scalar(select(func.count(Deputy.id))),
        db.session.scalar(select(func.count(StaffUser.id))),
        db.session.scalar(select(func.count(ActivationLink.id))),
    )


def account_cells(html: str) -> dict[int, str]:
    """Row number → the plan table's 账号 cell as text."""
    import re

    cells = {}
    for number, cell in re.findall(
        r'<td data-label="行号">第(\d+)行</td>.*?<td data-label="账号" class="account-cell">(.*?)</td>', html, re.S
    ):
        cells[int(number)] = re.sub(r"<[^>]+>", "", cell).strip()
    return cells


def roster():
    return [
        HEADER,
        ["王建华", "乡镇人大代表", "霞阳镇石子岭村选区", A, "138 0000 0101", "农民", "", ""],
        ["欧阳秀兰", "县,乡", "霞阳镇第四选区", A, "0731-26200111", "", "", "代表"],
        ["赵无电话", "乡镇", "某选区", A, "", "", "", ""],
        ["张秀英", "县", "霞阳镇第三选区", A, "13800000001", "", "", "人大代表"],  # d1, who has deputy_d1
        ["李红梅", "", "", A, "13800000201", "", "", "联络站管理员"],
        ["周站长", "", "", B, "13800000202", "", "", "管理员"],
    ]


def test_the_dry_run_shows_each_rows_account_and_writes_nothing(supervisor, world):
    before = counts()
    html = dry_run(supervisor, csv_bytes(roster())).get_data(as_text=True)
    assert errors_of(html) == []
    assert outcomes_of(html) == {2: "新增", 3: "新增", 4: "新增", 5: "更新", 6: "新增", 7: "新增"}
    cells = account_cells(html)
    assert cells[2] == "将创建账号 13800000101（代表，待激活）"
    assert cells[3] == "将创建账号 0731-26200111（代表，待激活）"
    assert cells[4].startswith("不创建账号：没有联系电话")
    assert cells[5] == "已有代表账号 deputy_d1"
    assert cells[6] == "将创建账号 13800000201（联络站管理员，待激活）"
    assert "新建账号4个" in html and "共6行（代表4位，联络站管理员2位）" in html
    assert counts() == before


def test_the_import_creates_accounts_with_no_known_password_and_a_pending_activation(app, supervisor, world):
    deputies, accounts, links = counts()
    html = dry_run(supervisor, csv_bytes(roster())).get_data(as_text=True)
    response = confirm(supervisor, html)
    assert response.status_code == 303
    assert f"stations={world.station_a.id},{world.station_b.id}" in response.headers["Location"]
    page = supervisor.get(response.headers["Location"]).get_data(as_text=True)
    assert "导入完成：新增3位代表，更新1位，新建账号4个" in page
    assert "打印激活单" in page and f"/admin/stations/{world.station_a.id}/activation-sheet" in page
    assert "/staff/activate/" not in page  # no link, no password is ever shown by the import
    assert counts() == (deputies + 3, accounts + 4, links + 4)

    wang = db.session.scalar(select(StaffUser).where(StaffUser.username == "13800000101"))
    assert wang.role == StaffRole.DEPUTY and wang.deputy.name == "王建华" and wang.display_name == "王建华"
    assert wang.deputy.station_id == world.station_a.id and wang.is_active
    admin = db.session.scalar(select(StaffUser).where(StaffUser.username == "13800000201"))
    assert admin.role == StaffRole.STATION_ADMIN and admin.station_id == world.station_a.id
    assert admin.deputy_id is None and admin.display_name == "李红梅"
    zhou = db.session.scalar(select(StaffUser).where(StaffUser.username == "13800000202"))
    assert zhou.station_id == world.station_b.id
    for account in (wang, admin, zhou):
        assert not check_password_hash(account.password_hash, PASSWORD)
        assert not check_password_hash(account.password_hash, "")
        [link] = db.session.scalars(select(ActivationLink).where(ActivationLink.staff_user_id == account.id))
        assert link.used_at is None and link.revoked_at is None
    # Nobody can log in to them before activating.
    client = app.test_client()
    assert client.post("/api/v1/auth/token", json={"username": "13800000101", "password": PASSWORD}).status_code == 401
    # The deputy without a phone has no account; d1 kept the one it had.
    zhao = db.session.scalar(select(Deputy).where(Deputy.name == "赵无电话"))
    assert db.session.scalar(select(StaffUser).where(StaffUser.deputy_id == zhao.id)) is None
    assert db.session.scalars(select(StaffUser.username).where(StaffUser.deputy_id == world.d1.id)).all() == [
        "deputy_d1"
    ]
    summary = audit_rows("deputies_imported")[-1]
    assert [(a["username"], a["role"], a["row"]) for a in summary.data["accounts"]] == [
        ("13800000101", "deputy", 2),
        ("0731-26200111", "deputy", 3),
        ("13800000201", "station_admin", 6),
        ("13800000202", "station_admin", 7),
    ]

    # The same file again: every account exists, none is made twice.
    html = dry_run(supervisor, csv_bytes(roster())).get_data(as_text=True)
    assert errors_of(html) == []
    cells = account_cells(html)
    assert cells[2] == "已有代表账号 13800000101" and cells[6] == "已有联络站管理员账号 13800000201"
    assert "新建账号" not in html
    before = counts()
    assert confirm(supervisor, html).status_code == 303
    assert counts() == before


def test_an_existing_deputy_without_an_account_gets_one(supervisor, world):
    rows = [HEADER, ["罗开华", "乡镇", "某选区", "霞阳镇城东社区联络站", "13900000005", "", "", ""]]  # d5, no account
    html = dry_run(supervisor, csv_bytes(rows)).get_data(as_text=True)
    assert outcomes_of(html) == {2: "更新"} and "将创建账号 13900000005" in html
    assert confirm(supervisor, html).status_code == 303
    account = db.session.scalar(select(StaffUser).where(StaffUser.username == "13900000005"))
    assert account.deputy_id == world.d5.id


def test_a_station_admin_imports_their_deputies_and_their_accounts(app, world):
    client = login(app, "admin_a")
    rows = [HEADER, ["王建华", "乡镇", "某选区", A, "13800000101", "", "", ""]]
    html = dry_run(client, csv_bytes(rows)).get_data(as_text=True)
    assert errors_of(html) == []
    assert confirm(client, html).status_code == 303
    account = db.session.scalar(select(StaffUser).where(StaffUser.username == "13800000101"))
    assert account.role == StaffRole.DEPUTY and account.deputy.station_id == world.station_a.id


def test_a_file_of_administrators_only_needs_no_deputy_columns(supervisor, world):
    rows = [["姓名", "联络站", "联系电话", "角色"], ["李红梅", A, "13800000201", "联络站管理员"]]
    html = dry_run(supervisor, csv_bytes(rows)).get_data(as_text=True)
    assert errors_of(html) == [] and outcomes_of(html) == {2: "新增"}
    # …and a deputy row in such a file lacks what a deputy needs.
    rows.append(["王建华", A, "13800000101", "代表"])
    html = dry_run(supervisor, csv_bytes(rows)).get_data(as_text=True)
    assert errors_of(html) == [(3, "请填写选区。"), (3, "请填写代表层级，如“县人大代表、乡镇人大代表”。")]


# --- bad input: each a Chinese error on its row, and nothing written -------------------------------------


def refused(client, rows) -> list[tuple[int, str]]:
    """The dry run's errors for ``rows``; the confirmation is not offered and nothing is written."""
    before = counts()
    html = dry_run(client, csv_bytes([HEADER, *rows])).get_data(as_text=True)
    assert 'id="confirm-form"' not in html
    assert counts() == before
    return errors_of(html)


def test_duplicate_people_in_the_file(supervisor, world):
    errors = refused(
        supervisor,
        [
            ["王建华", "乡镇", "某选区", A, "13800000101", "", "", ""],
            ["王建华", "乡镇", "某选区", A, "13800000102", "", "", ""],
            ["李红梅", "", "", A, "13800000201", "", "", "联络站管理员"],
            ["李红梅", "", "", A, "13800000203", "", "", "联络站管理员"],
        ],
    )
    assert errors == [
        (3, "与第2行重复（同一联络站的同名代表），请删除其中一行。"),
        (5, "与第4行重复（同一联络站的同名管理员），请删除其中一行。"),
    ]


def test_two_people_with_one_phone_number(supervisor, world):
    errors = refused(
        supervisor,
        [
            ["王建华", "乡镇", "某选区", A, "13800000101", "", "", ""],
            ["王建国", "乡镇", "某选区", A, "13800000101", "", "", ""],
            ["李红梅", "", "", A, "13800000101", "", "", "联络站管理员"],
        ],
    )
    message = "联系电话与第2行相同：联系电话就是登录用户名，每人须各不相同。请改填本人的手机号。"
    assert errors == [(3, message), (4, message)]


def test_a_person_who_already_has_an_account_elsewhere(supervisor, world):
    # The same person already logs in for a station of the sibling county, under their phone number.
    StaffUserFactory(
        username="13800000101", display_name="王建华", role=StaffRole.STATION_ADMIN, station_id=world.station_s.id
    )
    db.session.commit()
    errors = refused(
        supervisor,
        [
            ["王建华", "乡镇", "某选区", A, "13800000101", "", "", ""],
            ["王建华", "", "", B, "138-0000-0101", "", "", "联络站管理员"],
        ],
    )
    assert [row for row, _ in errors] == [2, 3]
    assert all("已是系统中另一个账号的用户名：同一个人不能有两个账号" in message for _, message in errors)


def test_a_station_outside_the_users_scope(app, supervisor, world):
    errors = refused(
        supervisor,
        [
            ["谭外县", "乡镇", "某选区", OUTSIDE, "13800000101", "", "", ""],
            ["外县管理员", "", "", OUTSIDE, "13800000201", "", "", "联络站管理员"],
        ],
    )
    assert errors == [(2, f"联络站“{OUTSIDE}”不在您的管理范围内。"), (3, f"联络站“{OUTSIDE}”不在您的管理范围内。")]
    # A station administrator manages their own station only.
    errors = refused(login(app, "admin_a"), [["赵五", "乡镇", "某选区", B, "13800000101", "", "", ""]])
    assert errors == [(2, f"联络站“{B}”不在您的管理范围内。")]


def test_a_station_admin_may_not_make_station_admins(app, world):
    errors = refused(login(app, "admin_a"), [["李红梅", "", "", A, "13800000201", "", "", "联络站管理员"]])
    assert errors == [
        (
            2,
            "联络站管理员的账号只能由人大常委会工作人员导入；您可以导入本站的代表。请删除这一行，或请县人大常委会导入。",
        )
    ]


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("承办单位", "导入只能创建代表和联络站管理员的账号，不能创建“承办单位”账号，请在“账号管理”页逐个创建。"),
        (
            "人大常委会工作人员",
            "导入只能创建代表和联络站管理员的账号，不能创建“人大常委会工作人员”账号，请在“账号管理”页逐个创建。",
        ),
        ("主任", "角色“主任”无法识别，请填写“代表”或“联络站管理员”（空白即为代表）。"),
    ],
)
def test_a_role_no_import_grants(supervisor, world, role, message):
    assert refused(supervisor, [["王建华", "乡镇", "某选区", A, "13800000101", "", "", role]]) == [(2, message)]


def test_an_administrator_row_needs_a_phone(supervisor, world):
    errors = refused(supervisor, [["李红梅", "", "", A, "", "", "", "联络站管理员"]])
    assert errors == [(2, "联络站管理员须填写联系电话（手机号即登录用户名）。")]


def test_a_clash_found_only_at_confirmation_writes_nothing(supervisor, world):
    html = dry_run(supervisor, csv_bytes(roster())).get_data(as_text=True)
    # Between the dry run and the confirmation, someone takes one of the usernames.
    StaffUserFactory(username="13800000201", display_name="x", role=StaffRole.SUPERVISOR)
    db.session.commit()
    before = counts()
    response = confirm(supervisor, html)
    assert response.status_code == 400
    assert "已是系统中另一个账号的用户名" in response.get_data(as_text=True)
    assert counts() == before


def test_a_username_taken_while_writing_writes_nothing(supervisor, world, monkeypatch):
    """The fault: another request takes a username between this one's last check and its write (a race no test
    can time), injected at the moment the accounts are made; the unique username refuses it."""
    from backend.admin import importer

    html = dry_run(supervisor, csv_bytes(roster())).get_data(as_text=True)
    real = importer.unusable_password_hash

    def racing():
        db.session.add(
            StaffUser(username="13800000201", display_name="x", password_hash="x", role=StaffRole.SUPERVISOR)
        )
        return real()

    monkeypatch.setattr(importer, "unusable_password_hash", racing)
    before = counts()
    response = confirm(supervisor, html)
    assert response.status_code == 409
    assert "刚被别的账号用作用户名，未导入任何数据" in response.get_data(as_text=True)
    assert counts() == before
    assert audit_rows("deputies_imported") == []


def test_the_sheets_offered_after_an_import_are_the_users_own(app, supervisor, world):
    html = dry_run(supervisor, csv_bytes(roster())).get_data(as_text=True)
    assert confirm(supervisor, html).status_code == 303
    a, b = world.station_a.id, world.station_b.id
    page = supervisor.get(f"/admin/import?stations={a},{b}").get_data(as_text=True)
    assert f'id="print-activation-{a}"' in page and f'id="print-activation-{b}"' in page
    # Another county's supervisor, and station A's administrator, see only what they manage.
    for username, shown, hidden in (("sup_sibling", [], [a, b]), ("admin_a", [a], [b])):
        page = login(app, username).get(f"/admin/import?stations={a},{b}").get_data(as_text=True)
        assert all(f'id="print-activation-{i}"' in page for i in shown)
        assert not any(f'id="print-activation-{i}"' in page for i in hidden)
    # Nonsense in the parameter shows nothing and breaks nothing.
    for bad in ("abc", "-1", f"{2**40}", "１", ",,", f"{a};{b}"):
        response = supervisor.get("/admin/import", query_string={"stations": bad})
        assert response.status_code == 200 and 'id="activation-sheets"' not in response.get_data(as_text=True)
