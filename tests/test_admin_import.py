"""Importing deputies from CSV and .xlsx: the dry run's outcome per row and every error with its spreadsheet
row number; all-or-nothing confirmation from the server's own copy; re-imports update; files judged by content."""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from pathlib import Path

import pytest
from flask import g
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from backend.admin import importer
from backend.errors import UserError
from backend.extensions import db
from backend.models import CongressLevel, Deputy
from backend.qr.codes import current_code
from tests.factories import admin_world
from tests.helpers import audit_rows, csv_bytes, dry_run, fresh_token, login

HEADER = ["姓名", "代表层级", "选区", "联络站", "联系电话", "职业", "任期"]
STATIC_EXAMPLE = Path(__file__).resolve().parents[1] / "backend" / "static" / "examples" / "deputies-example.csv"


WORLD = admin_world  # the world fixture (tests/conftest.py)


@pytest.fixture
def admin(app, world):
    return login(app, "admin_a")


def xlsx_bytes(rows, formulas: dict[str, str] | None = None, text_cells: dict[str, str] | None = None) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    for ref, formula in (formulas or {}).items():
        sheet[ref] = formula  # openpyxl writes a value starting with "=" as a formula
    for ref, text in (text_cells or {}).items():
        sheet[ref] = text
        sheet[ref].data_type = "s"  # text that merely starts with "="
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def confirm(client, html: str, **override):
    upload_id = re.search(r'name="upload_id" value="([^"]+)"', html).group(1)
    sha256 = re.search(r'name="sha256" value="([^"]+)"', html).group(1)
    g.pop("csrf_token", None)
    _, token = fresh_token(client, "/admin/import")
    data = {"csrf_token": token, "upload_id": upload_id, "sha256": sha256, **override}
    return client.post("/admin/import/confirm", data=data)


def deputy_count() -> int:
    return db.session.scalar(select(func.count(Deputy.id)))


def errors_of(html: str) -> list[tuple[int, str]]:
    """(row, message) pairs of the dry run's error list."""
    block = re.search(r'<ul class="error-list">(.*?)</ul>', html, re.S)
    if block is None:
        return []
    return [(int(n), m.strip()) for n, m in re.findall(r"<strong>第(\d+)行：</strong>([^<]*)</li>", block.group(1))]


def outcomes_of(html: str) -> dict[int, str]:
    """Row number → 新增 / 更新 / 错误, from the plan table."""
    return {
        int(n): label
        for n, label in re.findall(
            r'<td data-label="行号">第(\d+)行</td>\s*<td data-label="结果"><span[^>]*>(\S+)</span>', html
        )
    }


A = "霞阳镇人大代表联络站"
B = "沔渡镇人大代表之家"


def good_rows():
    return [
        HEADER,
        ["王建华", "乡镇人大代表", "霞阳镇石子岭村选区", A, "13800000101", "农民", "2021.12-2026.12"],
        ["欧阳秀兰", "县,乡", "霞阳镇第四选区", A, "0731-26200111", "教师", ""],
        ["张秀英", "县人大代表、乡镇人大代表", "霞阳镇第三选区", A, "13800000001", "霞阳镇中心小学教师", "2021-2026"],
    ]


# --- the dry run -----------------------------------------------------------------------------------


def test_dry_run_shows_every_rows_outcome_and_writes_nothing(admin, world):
    before = deputy_count()
    response = dry_run(admin, csv_bytes(good_rows()))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert outcomes_of(html) == {2: "新增", 3: "新增", 4: "更新"}
    assert errors_of(html) == []
    assert "确认导入" in html and "CSV（UTF-8）" in html
    assert deputy_count() == before


def test_import_confirms_all_rows_and_reimport_updates(admin, world):
    data = csv_bytes(good_rows())
    html = dry_run(admin, data).get_data(as_text=True)
    before = deputy_count()
    response = confirm(admin, html)
    assert response.status_code == 303
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "导入完成：新增2位代表，更新1位" in page
    assert deputy_count() == before + 2
    wang = db.session.scalar(select(Deputy).where(Deputy.name == "王建华"))
    assert wang.station_id == world.station_a.id and wang.is_serving
    assert [lv.level for lv in wang.levels] == [CongressLevel.TOWNSHIP]
    assert wang.term_start.isoformat() == "2021-12-01" and wang.term_end.isoformat() == "2026-12-31"
    assert current_code(wang) is not None
    ouyang = db.session.scalar(select(Deputy).where(Deputy.name == "欧阳秀兰"))
    assert ouyang.level_labels == ["县人大代表", "乡镇人大代表"] and ouyang.phone == "0731-26200111"
    zhang = db.session.get(Deputy, world.d1.id)
    assert zhang.occupation == "霞阳镇中心小学教师" and len(zhang.levels) == 2
    summary = audit_rows("deputies_imported")[-1]
    assert [d["name"] for d in summary.data["created"]] == ["王建华", "欧阳秀兰"]
    assert summary.data["created"][0]["code_id"] == current_code(wang).id
    [change] = summary.data["updated"]
    assert change["id"] == world.d1.id and change["row"] == 4
    assert change["after"]["occupation"] == "霞阳镇中心小学教师" and change["before"]["occupation"] == ""

    # The same file again: every row an update, nothing duplicated, nothing changed.
    html = dry_run(admin, data).get_data(as_text=True)
    assert set(outcomes_of(html).values()) == {"更新"}
    assert "资料无变化" in html
    confirm(admin, html)
    assert deputy_count() == before + 2
    assert "导入完成：新增0位代表，更新0位，3位资料无变化。" in admin.get("/admin/import").get_data(as_text=True)


def test_every_error_with_its_row_number(admin, world):
    rows = [
        HEADER,
        ["王建华", "乡镇人大代表", "石子岭村选区", A, "13800000101", "", ""],  # 2: fine
        ["李四", "乡镇人大代表", "某选区", "不存在的联络站", "13800000102", "", ""],  # 3
        ["赵五", "乡镇人大代表", "某选区", B, "13800000103", "", ""],  # 4: another station
        ["钱六", "乡镇人大代表", "某选区", A, "1380000010", "", ""],  # 5: bad phone
        ["孙七", "区县级代表团", "某选区", A, "13800000105", "", ""],  # 6: unknown level
        ["", "乡镇人大代表", "某选区", A, "13800000106", "", ""],  # 7: no name
        ["王建华", "县人大代表", "石子岭村选区", A, "13800000107", "", ""],  # 8: same as row 2
        ["周八", "", "", A, "", "", "第十一届"],  # 9: three errors at once
    ]
    before = deputy_count()
    response = dry_run(admin, csv_bytes(rows))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    errors = errors_of(html)
    rows_with_errors = sorted({row for row, _ in errors})
    assert rows_with_errors == [3, 4, 5, 6, 7, 8, 9]
    messages = dict(errors)
    assert "找不到名为“不存在的联络站”的联络站" in messages[3]
    assert f"联络站“{B}”不在您的管理范围内" in messages[4]
    assert "联系电话格式不正确" in messages[5]
    assert "代表层级“区县级代表团”无法识别" in messages[6]
    assert "请填写姓名" in messages[7]
    assert "与第2行重复" in messages[8]
    assert {m for r, m in errors if r == 9} >= {"请填写代表层级，如“县人大代表、乡镇人大代表”。", "请填写选区。"}
    assert any("任期“第十一届”无法识别" in m for r, m in errors if r == 9)
    assert outcomes_of(html)[2] == "新增" and outcomes_of(html)[3] == "错误"
    assert "确认导入" not in html and 'name="upload_id"' not in html
    assert "未导入任何数据" in html
    assert deputy_count() == before


def test_a_title_row_above_the_heading_keeps_spreadsheet_row_numbers(admin, world):
    rows = [
        ["霞阳镇人大代表名册（2026年）"],
        HEADER,
        ["王建华", "乡镇", "某选区", A, "13800000101", "", ""],
        ["", "乡镇", "某选区", A, "", "", ""],
    ]
    html = dry_run(admin, csv_bytes(rows)).get_data(as_text=True)
    assert "表头在第2行" in html
    assert outcomes_of(html) == {3: "新增", 4: "错误"}
    assert errors_of(html)[0][0] == 4


def test_extra_columns_are_ignored_and_aliases_understood(admin, world):
    rows = [
        ["序号", "*姓名", "性别", "代表层级", "选区", "所属联络站", "手机号码", "工作单位及职务"],
        ["1", "王建华", "男", "乡镇人大代表", "某选区", A, "138 0000 0101", "农民"],
    ]
    html = dry_run(admin, csv_bytes(rows)).get_data(as_text=True)
    assert outcomes_of(html) == {2: "新增"}
    assert "未使用的列：序号、性别" in html


def test_missing_columns_are_named(admin, world):
    response = dry_run(admin, csv_bytes([["姓名", "选区"], ["王建华", "某选区"]]))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "第1行（表头）缺少这些列：代表层级、联络站、联系电话" in html


def test_more_than_5000_rows_is_refused(admin, world):
    rows = [HEADER] + [[f"代表{i}", "乡镇", "某选区", A, "", "", ""] for i in range(5001)]
    response = dry_run(admin, csv_bytes(rows))
    assert response.status_code == 400
    assert "超过 5000 行" in response.get_data(as_text=True)


def test_5000_rows_are_checked(admin, world):
    rows = [HEADER] + [[f"代表{i}", "乡镇", "某选区", A, "", "", ""] for i in range(5000)]
    html = dry_run(admin, csv_bytes(rows)).get_data(as_text=True)
    assert "共5000位代表" in html and errors_of(html) == []


def test_a_file_over_the_size_limit_is_refused(app, admin, world):
    app.config["IMPORT_MAX_BYTES"] = 1000
    response = dry_run(admin, csv_bytes(good_rows() * 10))
    assert response.status_code == 400
    assert "文件太大" in response.get_data(as_text=True)


# --- encodings and formats -------------------------------------------------------------------------


def test_a_gbk_csv_as_excel_in_china_saves_it(admin, world):
    data = csv_bytes(good_rows(), encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    html = dry_run(admin, data).get_data(as_text=True)
    assert "GBK/GB18030" in html
    assert outcomes_of(html) == {2: "新增", 3: "新增", 4: "更新"}
    assert "欧阳秀兰" in html


def test_a_gb18030_only_character_in_a_name(admin, world):
    rows = [HEADER, ["王𬌗", "乡镇", "某选区", A, "", "", ""]]  # an extension-B character: GB18030, not GBK
    html = confirm(admin, dry_run(admin, csv_bytes(rows, encoding="gb18030")).get_data(as_text=True))
    assert html.status_code == 303
    assert db.session.scalar(select(Deputy).where(Deputy.name == "王𬌗")) is not None


def test_a_csv_with_bom(admin, world):
    html = dry_run(admin, csv_bytes(good_rows(), bom=True)).get_data(as_text=True)
    assert "UTF-8（带BOM）" in html
    assert outcomes_of(html) == {2: "新增", 3: "新增", 4: "更新"}


def test_a_utf16_tab_separated_file(admin, world):
    text = "\r\n".join("\t".join(row) for row in good_rows())
    html = dry_run(admin, codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "名册.txt").get_data(as_text=True)
    assert outcomes_of(html) == {2: "新增", 3: "新增", 4: "更新"}


def test_an_xlsx(admin, world):
    rows = good_rows()
    rows[1][4] = 13800000101  # a phone typed as a number
    html = dry_run(admin, xlsx_bytes(rows), "名册.xlsx").get_data(as_text=True)
    assert "Excel 工作簿（.xlsx）" in html
    assert outcomes_of(html) == {2: "新增", 3: "新增", 4: "更新"}
    assert confirm(admin, html).status_code == 303
    assert db.session.scalar(select(Deputy).where(Deputy.name == "王建华")).phone == "13800000101"


def test_an_xlsx_with_formulas_is_read_as_text_never_evaluated(admin, world):
    rows = good_rows()
    html = dry_run(
        admin,
        xlsx_bytes(rows, formulas={"F2": '=CONCATENATE("农","民")', "E3": "=13800000000+1"}, text_cells={"F4": "=1+1"}),
        "名册.xlsx",
    ).get_data(as_text=True)
    errors = errors_of(html)
    assert [row for row, _ in errors] == [3]  # the phone formula is not a phone number
    assert "联系电话格式不正确" in errors[0][1]
    assert (
        "“职业”是公式，已按文字“=CONCATENATE(&#34;农&#34;,&#34;民&#34;)”处理，未计算。" in html
        or "“职业”是公式" in html
    )

    rows[2][4] = "0731-26200111"
    html = dry_run(
        admin, xlsx_bytes(rows, formulas={"F2": '=CONCATENATE("农","民")'}, text_cells={"F4": "=1+1"}), "名册.xlsx"
    )
    assert confirm(admin, html.get_data(as_text=True)).status_code == 303
    assert db.session.scalar(select(Deputy).where(Deputy.name == "王建华")).occupation == '=CONCATENATE("农","民")'
    assert db.session.get(Deputy, world.d1.id).occupation == "=1+1"


def test_formula_like_text_in_a_csv_stays_text(admin, world):
    rows = good_rows()
    rows[1][5] = "@SUM(1+1)"
    rows[2][5] = "-2+3"
    html = dry_run(admin, csv_bytes(rows)).get_data(as_text=True)
    assert confirm(admin, html).status_code == 303
    assert db.session.scalar(select(Deputy).where(Deputy.name == "王建华")).occupation == "@SUM(1+1)"
    assert db.session.scalar(select(Deputy).where(Deputy.name == "欧阳秀兰")).occupation == "-2+3"


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (zip_of({"readme.txt": b"hello"}), "名册.csv", "这是压缩包（zip）或其他文档，不是 Excel 工作簿"),
        (zip_of({"word/document.xml": b"<w/>"}), "名册.xlsx", "不是 Excel 工作簿"),
        (
            b"<html><body><table><tr><td>\xe5\xa7\x93\xe5\x90\x8d</td></tr></table></body></html>",
            "名册.xlsx",
            "这是网页（HTML）文件",
        ),
        (b"<!DOCTYPE html><html></html>", "名册.csv", "这是网页（HTML）文件"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "名册.xls", "旧版 Excel（.xls）"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "名册.csv", "这是 PDF 文件"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "名册.csv", "这个文件不是表格"),
        (b"PK\x03\x04broken", "名册.xlsx", "文件已损坏"),
        (b"", "名册.csv", "文件是空的"),
    ],
)
def test_files_are_judged_by_content_not_name(admin, world, data, filename, message):
    response = dry_run(admin, data, filename)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert filename in html  # says which file was refused


def workbook_of_shared_strings(count: int) -> bytes:
    """A workbook whose one cell points into a table of ``count`` shared strings: ``count`` × 17 bytes unzipped."""
    workbook = zipfile.ZipFile(io.BytesIO(xlsx_bytes([HEADER, ["张三"]])))
    files = {name: workbook.read(name) for name in workbook.namelist()}
    files["xl/sharedStrings.xml"] = (
        b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        b' count="1" uniqueCount="1">' + b"<si><t>a</t></si>" * count + b"</sst>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_a_small_workbook_of_three_million_shared_strings_is_refused_before_it_is_read(admin, world):
    """Issue 10, finding 2: 129 KB that openpyxl took 48 s to read, on SQLite holding every submission meanwhile.
    Its tags are counted as it is unzipped (XLSX_MAX_TAGS); it never reaches openpyxl."""
    data = workbook_of_shared_strings(3_000_000)
    assert len(data) < 200 * 1024
    before = deputy_count()
    response = dry_run(admin, data, "名册.xlsx")
    assert response.status_code == 400
    assert "工作簿内容太多（解压后太大或单元格太多），请只保留代表名册一张表，或分成几个文件导入。" in response.text
    assert deputy_count() == before


def test_a_roster_of_5000_deputies_in_a_workbook_is_within_the_bounds(admin, world):
    rows = [HEADER] + [[f"代表{i}", "乡镇", "某选区", A, "", "", ""] for i in range(5000)]
    html = dry_run(admin, xlsx_bytes(rows), "名册.xlsx").get_data(as_text=True)
    assert "共5000位代表" in html and errors_of(html) == []


def test_a_workbook_with_a_damaged_part_is_refused_as_damaged(admin, world):
    """A part whose bytes do not unzip (a CRC that does not match) is the usual "damaged" answer, not a 500."""
    data = bytearray(workbook_of_shared_strings(10))
    at = data.index(b"xl/sharedStrings.xml") + len("xl/sharedStrings.xml")  # the part's local header, then its data
    data[at + 5] ^= 0xFF
    response = dry_run(admin, bytes(data), "名册.xlsx")
    assert response.status_code == 400
    assert "文件已损坏" in response.text


def test_a_workbook_with_macros_is_refused(admin, world):
    workbook = zipfile.ZipFile(io.BytesIO(xlsx_bytes(good_rows())))
    files = {name: workbook.read(name) for name in workbook.namelist()}
    files["xl/vbaProject.bin"] = b"\xd0\xcf\x11\xe0macro"
    response = dry_run(admin, zip_of(files), "名册.xlsx")
    assert response.status_code == 400
    assert "文件含有宏" in response.get_data(as_text=True)


def test_no_file_chosen(admin, world):
    g.pop("csrf_token", None)
    _, token = fresh_token(admin, "/admin/import")
    response = admin.post("/admin/import", data={"csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "请选择要导入的文件" in response.get_data(as_text=True)


# --- the confirmation --------------------------------------------------------------------------------


def test_confirm_is_all_or_nothing_when_the_data_changed_since_the_dry_run(admin, world):
    html = dry_run(admin, csv_bytes(good_rows())).get_data(as_text=True)
    world.station_a.name = "霞阳镇人大代表联络站（新址）"  # renamed meanwhile: every row now names an unknown station
    db.session.commit()
    before = deputy_count()
    response = confirm(admin, html)
    assert response.status_code == 400
    assert "未导入任何数据" in response.get_data(as_text=True)
    assert deputy_count() == before
    assert audit_rows("deputies_imported") == []


def test_confirm_writes_nothing_when_a_row_fails_while_writing(admin, world, monkeypatch):
    html = dry_run(admin, csv_bytes(good_rows())).get_data(as_text=True)
    real = importer.apply_changes

    def failing(*args, **kwargs):
        # The fault: the last row (an update) clashes while writing, after both new deputies were added.
        raise UserError("duplicate_name", "霞阳镇人大代表联络站已有在任代表张秀英，请核对姓名。", 400, field="name")

    monkeypatch.setattr(importer, "apply_changes", failing)
    before = deputy_count()
    response = confirm(admin, html)
    assert response.status_code == 400
    assert "已有在任代表张秀英" in response.get_data(as_text=True)
    assert deputy_count() == before  # the rows before it were rolled back too
    assert db.session.scalar(select(Deputy).where(Deputy.name == "王建华")) is None
    assert db.session.get(Deputy, world.d1.id).occupation == ""
    assert audit_rows("deputies_imported") == []
    monkeypatch.setattr(importer, "apply_changes", real)
    assert confirm(admin, html).status_code == 303  # the upload was given back: the retry works
    assert deputy_count() == before + 2


def test_the_upload_cannot_be_confirmed_twice_or_by_someone_else_or_altered(app, admin, world):
    html = dry_run(admin, csv_bytes(good_rows())).get_data(as_text=True)
    assert confirm(admin, html, sha256="0" * 64).status_code == 400  # not the bytes checked
    other = login(app, "sup_county")
    response = confirm(other, html)
    assert response.status_code == 400 and "已过期或已导入" in response.get_data(as_text=True)
    assert confirm(admin, html).status_code == 303
    response = confirm(admin, html)
    assert response.status_code == 400 and "已过期或已导入" in response.get_data(as_text=True)
    assert len(audit_rows("deputies_imported")) == 1


def test_an_expired_upload_is_refused(admin, world, monkeypatch):
    html = dry_run(admin, csv_bytes(good_rows())).get_data(as_text=True)
    now = importer.time.time()
    monkeypatch.setattr(importer.time, "time", lambda: now + importer.UPLOAD_TTL_SECONDS + 1)
    response = confirm(admin, html)
    assert response.status_code == 400 and "已过期" in response.get_data(as_text=True)


def test_a_supervisor_imports_into_several_stations(app, world):
    supervisor = login(app, "sup_county")
    rows = [
        HEADER,
        ["王建华", "乡镇", "某选区", A, "", "", ""],
        ["赵五", "乡镇", "某选区", B, "", "", ""],
        ["谭外县", "乡镇", "某选区", "茶陵县城关联络站", "", "", ""],
    ]
    html = dry_run(supervisor, csv_bytes(rows)).get_data(as_text=True)
    assert outcomes_of(html) == {2: "新增", 3: "新增", 4: "错误"}
    assert "不在您的管理范围内" in html


# --- the example file --------------------------------------------------------------------------------


def test_the_example_files_import_cleanly(admin, world):
    csv_response = admin.get("/admin/import/example.csv")
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    assert csv_response.data.startswith(codecs.BOM_UTF8)
    assert A in csv_response.data.decode("utf-8-sig")
    assert csv_response.headers["Content-Disposition"] == (
        "attachment; filename=\"deputies-example.csv\"; filename*=UTF-8''%E4%BB%A3%E8%A1%A8%E5%90%8D%E5%86%8C%E7%A4%BA%E4%BE%8B.csv"
    )
    xlsx_response = admin.get("/admin/import/example.xlsx")
    assert xlsx_response.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx_response.data), read_only=True).active
    assert [c.value for c in next(sheet.iter_rows(max_row=1))] == [*HEADER, "角色"]
    html = dry_run(admin, xlsx_response.data, "示例.xlsx").get_data(as_text=True)
    assert errors_of(html) == [] and set(outcomes_of(html).values()) == {"新增", "更新"}
    html = dry_run(admin, csv_response.data, "示例.csv").get_data(as_text=True)
    assert errors_of(html) == []


def test_the_static_example_is_the_generated_one():
    assert STATIC_EXAMPLE.read_bytes() == importer.example_csv()


def test_the_example_names_the_users_own_station(app, world):
    client = login(app, "admin_b")
    assert B in client.get("/admin/import/example.csv").data.decode("utf-8-sig")


# --- the pieces ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("县人大代表、乡镇人大代表", ["county", "township"]),
        ("县,乡", ["county", "township"]),
        ("全国人大代表；省人大代表", ["national", "province"]),
        ("市级人大代表 县级人大代表", ["city", "county"]),
        ("镇人大代表", ["township"]),
        ("县（区）人大代表", ["county"]),
    ],
)
def test_parse_levels(text, levels):
    parsed, unknown = importer.parse_levels(text)
    assert [lv.value for lv in parsed] == levels and unknown == []


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2021-2026", "2021-01-01", "2026-12-31"),
        ("2021.12-2026.11", "2021-12-01", "2026-11-30"),
        ("2021年12月至2026年12月", "2021-12-01", "2026-12-31"),
        ("2021-12-01至2026-11-30", "2021-12-01", "2026-11-30"),
    ],
)
def test_parse_term(text, start, end):
    parsed = importer.parse_term(text)
    assert (parsed[0].isoformat(), parsed[1].isoformat()) == (start, end)


@pytest.mark.parametrize("text", ["第十一届", "2026-2021", "2021.13-2026.12", "12345-2026"])
def test_parse_term_refuses(text):
    with pytest.raises(UserError):
        importer.parse_term(text)
