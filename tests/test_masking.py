"""Mobile numbers inside messages (issue 10, finding 8): one finder, used by the export and the department's page."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from backend.extensions import db
from backend.items.masking import mask_message, mask_name, mask_phone, mask_phones_in_text
from tests.factories import act, forward, make_item
from tests.helpers import fresh_token
from tests.test_supervision_export import download, this_month

ID_NUMBER = "430225199001011234"  # 18 digits: a resident's ID number, which is not a phone number

WRITTEN = [
    ("138 1234 5678", "138****5678"),
    ("138-1234-5679", "138****5679"),
    ("138.1234.5670", "138****5670"),
    ("138 - 1234 - 5671", "138****5671"),
    ("１３８１２３４５６７２", "138****5672"),  # full-width digits from a Chinese keyboard
    ("１３８－１２３４－５６７３", "138****5673"),
    ("+86 138 1234 5674", "+86 138****5674"),
    ("+8613812345675", "+86138****5675"),
    ("0086-13812345676", "0086-138****5676"),
    ("(+86)13812345677", "(+86)138****5677"),
    ("＋８６ １３９１２３４５６７８", "＋８６ 139****5678"),
    ("13812345678", "138****5678"),
]


@pytest.mark.parametrize(("written", "masked"), WRITTEN)
def test_every_way_of_writing_a_mobile_number_is_masked(written, masked):
    text = f"我的电话{written}，白天都在。"
    assert mask_phones_in_text(text) == f"我的电话{masked}，白天都在。"


@pytest.mark.parametrize(
    "untouched",
    [
        f"身份证号{ID_NUMBER}，请核实。",  # a mobile-looking run inside 18 digits
        "身份证号13010219900101123X。",  # an ID that starts like a mobile number
        "银行卡6222021381234567890",
        "订单号138123456789",  # twelve digits
        "1381234567",  # ten digits
        "座机12345678901",  # eleven digits, but no mobile starts with 12
        "",
    ],
)
def test_longer_digit_runs_and_other_numbers_are_left_alone(untouched):
    assert mask_phones_in_text(untouched) == untouched


def test_two_numbers_and_the_resident_s_own_name():
    text = "王桂芳：13812345678 或 139 8765 4321，找王桂芳。"
    assert mask_message(text, "王桂芳") == "王**：138****5678 或 139****4321，找王**。"
    assert mask_message(text, "") == "王桂芳：138****5678 或 139****4321，找王桂芳。"
    assert mask_message("王说路灯坏了", "王") == "王说路灯坏了"  # a one-character name would mask every 王


def test_the_contact_fields_mask_as_before():
    assert mask_phone("13812341234") == "138****1234" and mask_phone("") == "" and mask_phone("123") == "****"
    assert mask_name("王桂芳") == "王**" and mask_name("欧阳修远") == "欧**" and mask_name("") == ""


# --- where it is used -----------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("count_in_database")


BODY = f"楼道灯坏了。联系我 138 1234 5678 或 +86 １３９－８７６５－４３２１，身份证{ID_NUMBER}。王桂芳"


def test_the_department_page_masks_numbers_in_the_message_and_the_instructions(app, client, world):
    item = make_item(world.d1, body=BODY)
    fwd, raw = forward(item, world.users["deputy"], world.department)
    fwd.instructions = "请直接打 13812345678 联系群众。"
    db.session.commit()
    html = client.get(f"/d/{raw}").text
    assert "138****5678" in html and "139****4321" in html and ID_NUMBER in html and "王**" in html
    for leaked in ("138 1234 5678", "１３９－８７６５－４３２１", "13812345678", "王桂芳"):
        assert leaked not in html
    # A department the resident allowed to contact them reads the message whole after the audited reveal.
    fwd.share_contact = True
    db.session.commit()
    _, token = fresh_token(client, f"/d/{raw}")
    revealed = client.post(f"/d/{raw}/reveal", data={"csrf_token": token}).text
    assert "138 1234 5678" in revealed and "请直接打 13812345678" in revealed


def test_the_monthly_export_masks_every_written_form(app, world):
    item = make_item(world.d1, body=BODY)
    act(item, world.users["deputy"], "accept")
    act(item, world.users["deputy"], "reply", text="已联系物业，电话 139 0000 1111。")
    response = download(app, "admin_a", station=world.station_a.id, month=this_month())
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.data), read_only=True)["民意件"]
    row = [cell.value for cell in next(r for r in sheet.iter_rows(min_row=2) if r[0].value)]
    body, answer = row[6], row[18]
    assert "138****5678" in body and "+86 139****4321" in body and ID_NUMBER in body and body.endswith("王**")
    assert answer == "已联系物业，电话 139****1111。"
    assert row[7] == "王**" and row[8] == "138****1234"
