"""Import deputies, and the accounts they and the stations' administrators log in with, from the roster a
county office already keeps: CSV (UTF-8, with or without BOM, GBK/GB18030 as Excel in China saves it, UTF-16
"Unicode text") or Excel .xlsx.

Columns, found by their heading in the first rows (extra columns such as 序号 or 性别 are
ignored): 姓名, 代表层级 ("县人大代表、乡镇人大代表" or "县,乡"), 选区, 联络站 (a station the
user manages), 联系电话 (mobile or landline), and optionally 职业, 任期 ("2021.12-2026.12") and
角色. 角色 is 代表 when blank; a row of 联络站管理员 (姓名, 联络站, 联系电话; the deputy columns
stay blank) is a station's administrator, and a file with a 角色 column may leave out 代表层级 and
选区 altogether (a list of administrators only). Who may import whom follows ``backend.access``: a
station's administrator manages their station's deputies, so imports them and their accounts; only a
supervisor makes administrators (an administrator making administrators would hand out their own power).

Accounts: every deputy the import creates or updates who has no account yet, and every administrator
row without one, gets an account (role and scope from the row) whose username is its 联系电话 as
the import keeps it (13800000001, 0731-26200111): deterministic, what the person knows, and unique or
the row is refused. A deputy with no 联系电话 gets no account (the dry run says so). The account has no
password anybody knows: it gets a pending activation, and the station's activation sheet
(``backend.admin.activation_sheet``) hands out a fresh one-time link per person; no password is ever
printed, mailed or shown.

Two steps. ``plan_import`` reads the file and checks every row against the database and the
user's scope, writing nothing: each row is new (新增), an update (更新: same name at the same
station) or an error, and every error carries the row number as the spreadsheet shows it (the
heading is row 1). ``apply_import`` writes a plan without errors, all rows or none: the caller
commits once, and any error means nothing is written.

The upload is kept between the steps on the server (``instance/imports/``, a random id, the
uploader and the file's SHA-256, gone after an hour): the confirmation re-reads and re-checks
the same bytes, and never trusts rows sent back by the browser.

What a file is, is decided by its content, never its name: a zip must be a workbook without
macros; old .xls, HTML saved as .xls, PDFs, images are refused. Formula cells and text
starting with ``=``, ``+``, ``-`` or ``@`` are text: nothing is ever evaluated (the workbook is
read with ``data_only=False``, so a formula is its own text, never its cached result).
"""

from __future__ import annotations

import calendar
import codecs
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
import time
import unicodedata
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from backend.access import manageable_stations_query
from backend.admin import clean_phone
from backend.admin.accounts import new_activations, unusable_password_hash
from backend.admin.deputies import (
    DeputyInput,
    apply_changes,
    apply_input,
    check_term,
    clean_constituency,
    clean_name,
    clean_occupation,
)
from backend.audit import record_audit
from backend.auth import ROLE_LABELS
from backend.auth.sessions import normalize_username
from backend.errors import UserError
from backend.extensions import db
from backend.models import CongressLevel, Deputy, DeputyStatus, StaffRole, StaffUser, Station
from backend.models.deputy import CONGRESS_LEVEL_LABELS
from backend.qr.codes import issue_codes

MAX_BYTES = 5 * 1024 * 1024  # IMPORT_MAX_BYTES
MAX_ROWS = 5000  # IMPORT_MAX_ROWS: deputies of the largest county in the reports (2,435), twice over
MAX_COLUMNS = 60
HEADER_SEARCH_ROWS = 10  # a title row or two above the heading is common
XLSX_MAX_UNCOMPRESSED = 50 * 1024 * 1024  # a zip bomb stops here
# Tags in all the workbook's parts, counted before openpyxl reads any: its time grows with them (a
# roster of 5,000 deputies in 60 text columns has about 1.8 million), and a small file can hold
# millions (129 KB of 3 million shared strings took openpyxl 48 s).
XLSX_MAX_TAGS = 2_000_000
UPLOAD_TTL_SECONDS = 3600
FILENAME_MAX_CHARS = 100

OUTCOME_NEW = "new"
OUTCOME_UPDATE = "update"
OUTCOME_ERROR = "error"
OUTCOME_LABELS = {OUTCOME_NEW: "新增", OUTCOME_UPDATE: "更新", OUTCOME_ERROR: "错误"}


@dataclass(frozen=True)
class Column:
    """A column of the roster: its key, the heading printed in the example, the headings accepted."""

    key: str
    heading: str
    aliases: tuple[str, ...]
    required: bool


COLUMNS = (
    Column("name", "姓名", ("姓名", "代表姓名", "名字"), True),
    Column("levels", "代表层级", ("代表层级", "层级", "代表级别", "级别", "代表类别"), True),
    Column("constituency", "选区", ("选区", "所在选区", "选举单位", "原选区"), True),
    Column("station", "联络站", ("联络站", "所属联络站", "进站联络站", "代表联络站", "联络站名称", "所在联络站"), True),
    Column("phone", "联系电话", ("联系电话", "电话", "手机", "手机号", "手机号码", "联系方式"), True),
    Column("occupation", "职业", ("职业", "工作单位及职务", "单位及职务", "工作单位", "职务"), False),
    Column("term", "任期", ("任期", "任期起止", "任职期限"), False),
    Column("role", "角色", ("角色", "账号角色", "身份"), False),
)
# With a 角色 column a file may list administrators only, so these are needed only without one.
DEPUTY_ONLY_COLUMNS = ("levels", "constituency")
COLUMN_HEADINGS = {column.key: column.heading for column in COLUMNS}
_ALIASES = {alias: column.key for column in COLUMNS for alias in column.aliases}

# How county rosters write levels; full names, short forms, and the region words.
LEVEL_WORDS = {
    CongressLevel.NATIONAL: ("全国人大代表", "全国人民代表大会代表", "全国", "国家"),
    CongressLevel.PROVINCE: ("省人大代表", "省人民代表大会代表", "省级", "省", "自治区"),
    CongressLevel.CITY: ("市人大代表", "市人民代表大会代表", "市级", "市", "州", "地级市", "设区的市"),
    CongressLevel.COUNTY: ("县人大代表", "县人民代表大会代表", "县级", "县", "区", "县（区）", "县区", "县市区", "旗"),
    CongressLevel.TOWNSHIP: ("乡镇人大代表", "乡人大代表", "镇人大代表", "乡镇", "乡", "镇", "街道", "苏木"),
}
_LEVEL_BY_WORD = {word: level for level, words in LEVEL_WORDS.items() for word in words}
_LEVEL_SPLIT_RE = re.compile(r"[、,，;；/／\s|]+")

EXAMPLE_ROWS = (
    # name, levels, constituency, phone, occupation, term
    ("张秀英", "县人大代表、乡镇人大代表", "霞阳镇第三选区", "13800000001", "霞阳镇中心小学教师", "2021.12-2026.12"),
    ("王建华", "乡镇人大代表", "霞阳镇石子岭村选区", "13800000101", "霞阳镇石子岭村农民", "2021.12-2026.12"),
    ("欧阳秀兰", "县,乡", "霞阳镇第四选区", "0731-26200111", "炎陵县第一中学教师", "2021.12-2026.12"),
)
EXAMPLE_STATION = "霞阳镇人大代表联络站"  # the demo county's first station (backend/demo.py)
EXAMPLE_ADMIN = ("李红梅", "13800000201")  # name, phone: the station administrator row of the example

ROLE_DEPUTY_WORDS = ("代表", "人大代表", "县人大代表", "乡镇人大代表", "乡人大代表", "镇人大代表")
ROLE_ADMIN_WORDS = ("联络站管理员", "管理员", "站管理员", "联络站工作人员", "联络员", "站长")
# Roles that exist but are never made by an import: each is one account made by a supervisor on its page.
ROLE_REFUSED_WORDS = {
    "人大常委会工作人员": "人大常委会工作人员",
    "工作人员": "人大常委会工作人员",
    "督导": "人大常委会工作人员",
    "承办单位": "承办单位",
    "单位": "承办单位",
}
ACCOUNT_CREATE = "create"
ACCOUNT_EXISTS = "exists"
ACCOUNT_NONE = "none"


class ImportFileError(UserError):
    """The file as a whole cannot be imported (type, size, encoding, headings, too many rows)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, 400, field="file")


def max_bytes() -> int:
    """The largest file accepted, in bytes."""
    return int(current_app.config.get("IMPORT_MAX_BYTES", MAX_BYTES))


def max_rows() -> int:
    """The most deputies one file may hold."""
    return int(current_app.config.get("IMPORT_MAX_ROWS", MAX_ROWS))


# --- reading the file ---------------------------------------------------------------------------


@dataclass
class Cell:
    """One cell's text and whether it was a formula in the workbook."""

    text: str
    is_formula: bool = False


@dataclass
class Table:
    """The rows of a file as text cells, each with its spreadsheet row number, and how it was read."""

    kind: str
    rows: list[tuple[int, list[Cell]]]


def describe_size(count: int) -> str:
    """Bytes as people read them: 5 MB, 300 KB."""
    if count >= 1024 * 1024:
        return f"{count / 1024 / 1024:g} MB"
    return f"{max(1, count // 1024)} KB"


def read_table(data: bytes) -> Table:
    """The file's rows, by what its bytes are (never its name); ImportFileError when it is not a roster."""
    if not data:
        raise ImportFileError("empty_file", "文件是空的，请重新选择。")
    if len(data) > max_bytes():
        raise ImportFileError("file_too_large", f"文件太大（超过 {describe_size(max_bytes())}），请分成几个文件导入。")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return _read_xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise ImportFileError(
            "old_excel",
            "这是旧版 Excel（.xls）或加密的文件，无法读取。请在 Excel 中“另存为”Excel 工作簿（.xlsx）或 CSV 后再导入。",
        )
    if data.startswith(b"%PDF"):
        raise ImportFileError("not_a_table", "这是 PDF 文件，不是表格。请上传 Excel 工作簿（.xlsx）或 CSV 文件。")
    return _read_csv(data)


def _decode(data: bytes) -> tuple[str, str]:
    """The text of a CSV and the encoding's name as the page shows it."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "UTF-8（带BOM）"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            pass
    else:
        try:
            return data.decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            try:
                return data.decode("gb18030"), "GBK/GB18030"
            except UnicodeDecodeError:
                pass
    raise ImportFileError(
        "unknown_encoding", "无法识别文件的文字编码。请在 Excel 中另存为“CSV UTF-8”或“CSV（逗号分隔）”后再导入。"
    )


def _read_csv(data: bytes) -> Table:
    try:
        text, encoding = _decode(data)
    except UnicodeDecodeError:
        raise ImportFileError("unknown_encoding", "无法识别文件的文字编码，请另存为 CSV UTF-8 后再导入。") from None
    head = text.lstrip()[:200].lower()
    if head.startswith("<") or "<html" in head or "<table" in head:
        raise ImportFileError(
            "html_file",
            "这是网页（HTML）文件，不是表格（有些系统导出的“.xls”其实是网页）。请在 Excel 中打开后另存为 .xlsx 或 CSV 再导入。",
        )
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", text):
        raise ImportFileError(
            "binary_file", "这个文件不是表格（含有无法识别的内容）。请上传 Excel 工作簿（.xlsx）或 CSV 文件。"
        )
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") + first_line.count("，") else ","
    rows = _RowCollector()
    try:
        for number, record in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
            if not rows.add(number, [Cell(value) for value in record[:MAX_COLUMNS]]):
                break
    except csv.Error as exc:
        raise ImportFileError("bad_csv", f"CSV 文件格式有误（{exc}），请在 Excel 中重新另存为 CSV。") from None
    return Table(kind=f"CSV（{encoding}）", rows=rows.rows)


class _RowCollector:
    """Rows as they are read, stopping once there are more than an import may hold (the count says so later)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, list[Cell]]] = []
        self.filled = 0

    def add(self, number: int, cells: list[Cell]) -> bool:
        """Keep a row; False once enough rows were read to know the file is too long."""
        self.rows.append((number, cells))
        if any(cell.text.strip() for cell in cells):
            self.filled += 1
        return self.filled <= max_rows() + HEADER_SEARCH_ROWS


def _read_xlsx(data: bytes) -> Table:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        total = sum(info.file_size for info in archive.infolist())
        content_types = archive.read("[Content_Types].xml") if "[Content_Types].xml" in names else b""
        too_big = total > XLSX_MAX_UNCOMPRESSED or _tag_count(archive, XLSX_MAX_TAGS) > XLSX_MAX_TAGS
    except (
        zipfile.BadZipFile, zipfile.LargeZipFile, OSError, KeyError, EOFError, ValueError, NotImplementedError, zlib.error
    ):  # fmt: skip
        raise ImportFileError("bad_zip", "文件已损坏，无法读取。请在 Excel 中重新保存为 .xlsx 后再导入。") from None
    if "xl/workbook.xml" not in names and "xl/workbook.bin" not in names:
        raise ImportFileError(
            "not_a_workbook", "这是压缩包（zip）或其他文档，不是 Excel 工作簿。请上传 .xlsx 或 CSV 文件。"
        )
    if "xl/workbook.bin" in names:
        raise ImportFileError("xlsb", "这是 Excel 二进制工作簿（.xlsb），请另存为 Excel 工作簿（.xlsx）后再导入。")
    if "xl/vbaProject.bin" in names or b"macroEnabled" in content_types:
        raise ImportFileError(
            "macros", "文件含有宏（.xlsm），为安全起见不能导入。请在 Excel 中另存为不含宏的 Excel 工作簿（.xlsx）。"
        )
    if too_big:
        raise ImportFileError(
            "file_too_large", "工作簿内容太多（解压后太大或单元格太多），请只保留代表名册一张表，或分成几个文件导入。"
        )

    from openpyxl import load_workbook  # imported here: only imports need it

    rows = _RowCollector()
    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it drops: nothing a person can act on.
            warnings.simplefilter("ignore")
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False, keep_links=False)
            try:
                sheet = workbook.active if workbook.active is not None else workbook.worksheets[0]
                if hasattr(sheet, "reset_dimensions"):
                    sheet.reset_dimensions()  # a stale <dimension> would cut rows off
                for number, values in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS), start=1):
                    if not rows.add(number, [_xlsx_cell(cell) for cell in values]):
                        break
            finally:
                workbook.close()
    except ImportFileError:
        raise
    except Exception:  # openpyxl raises many types on damaged or hostile files; each is the same answer
        current_app.logger.info("xlsx refused as unreadable", exc_info=True)
        raise ImportFileError(
            "bad_xlsx", "Excel 文件已损坏或格式不受支持，无法读取。请在 Excel 中重新保存为 .xlsx 后再导入。"
        ) from None
    return Table(kind="Excel 工作簿（.xlsx）", rows=rows.rows)


def _tag_count(archive: zipfile.ZipFile, limit: int) -> int:
    """The ``<`` in every part of a workbook, counted as it is unzipped, up to just past ``limit``.

    Every element openpyxl would read (cell, value, shared string, style …) starts with one,
    whatever its namespace prefix, and XML text holds none unescaped: a bound on openpyxl's work
    found at the speed of unzipping.
    """
    count = 0
    for info in archive.infolist():
        with archive.open(info) as part:
            while chunk := part.read(1 << 20):
                count += chunk.count(b"<")
                if count > limit:
                    return count
    return count


def _xlsx_cell(cell) -> Cell:
    """A workbook cell as text; a formula is kept as its own text (``=…``), never computed."""
    value = getattr(cell, "value", None)
    is_formula = getattr(cell, "data_type", None) == "f"
    if value is None:
        return Cell("")
    if hasattr(value, "text") and not isinstance(value, str):  # ArrayFormula / DataTableFormula
        value = value.text or ""
        is_formula = True
    if isinstance(value, bool):
        return Cell("是" if value else "否")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return Cell(str(int(value)))  # 13800000001 typed as a number comes back as a float
    if isinstance(value, datetime):
        return Cell(value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" "))
    if isinstance(value, date):
        return Cell(value.isoformat())
    return Cell(str(value), is_formula)


# --- understanding rows -------------------------------------------------------------------------


def _heading_key(text: str) -> str | None:
    """The column a heading names: 姓名, "联系电话（手机）", "*姓名" all count."""
    cleaned = re.sub(r"[\s*＊:：]", "", unicodedata.normalize("NFKC", text))
    if cleaned in _ALIASES:
        return _ALIASES[cleaned]
    without_note = re.sub(r"[(（][^)）]*[)）]$", "", cleaned)
    return _ALIASES.get(without_note)


@dataclass
class Layout:
    """Where the heading row is and which column holds what."""

    header_row: int
    positions: dict[str, int]
    ignored: list[str]


def find_layout(table: Table) -> Layout:
    """The heading row (the first of the first rows naming 姓名) and the column of every field."""
    for index, (number, cells) in enumerate(table.rows[:HEADER_SEARCH_ROWS]):
        keys = [_heading_key(cell.text) for cell in cells]
        if "name" not in keys:
            continue
        positions: dict[str, int] = {}
        duplicates = []
        for position, key in enumerate(keys):
            if key is None:
                continue
            if key in positions:
                duplicates.append(COLUMN_HEADINGS[key])
            positions[key] = position
        if duplicates:
            raise ImportFileError(
                "duplicate_columns", f"第{number}行（表头）有重复的列：{'、'.join(duplicates)}。请只保留一列。"
            )
        missing = [
            column.heading
            for column in COLUMNS
            if column.required
            and column.key not in positions
            and not (column.key in DEPUTY_ONLY_COLUMNS and "role" in positions)
        ]
        if missing:
            raise ImportFileError(
                "missing_columns",
                f"第{number}行（表头）缺少这些列：{'、'.join(missing)}。需要的列为：姓名、代表层级、选区、联络站、联系电话，"
                "可选：职业、任期、角色。请对照示例文件。",
            )
        ignored = [
            cell.text.strip() for cell, key in zip(cells, keys, strict=False) if key is None and cell.text.strip()
        ]
        del table.rows[: index + 1]
        return Layout(header_row=number, positions=positions, ignored=ignored)
    raise ImportFileError(
        "no_header",
        f"前{HEADER_SEARCH_ROWS}行中找不到表头（含“姓名”的一行）。第1行应为列名：姓名、代表层级、选区、联络站、联系电话。"
        "请对照示例文件。",
    )


def parse_levels(text: str) -> tuple[list[CongressLevel], list[str]]:
    """Levels from "县人大代表、乡镇人大代表" or "县,乡"; also the words not understood."""
    levels: list[CongressLevel] = []
    unknown: list[str] = []
    for word in _LEVEL_SPLIT_RE.split(unicodedata.normalize("NFKC", text).replace("(", "（").replace(")", "）")):
        word = word.strip()
        if not word:
            continue
        level = _LEVEL_BY_WORD.get(word) or _LEVEL_BY_WORD.get(word.removesuffix("代表").removesuffix("人大"))
        if level is None:
            unknown.append(word)
        elif level not in levels:
            levels.append(level)
    return levels, unknown


def parse_term(text: str) -> tuple[date, date]:
    """A term from "2021-2026", "2021.12-2026.12", "2021年12月至2026年11月" or "2021-12-01至2026-11-30"."""
    message = f"任期“{text}”无法识别，请写成起止年月，如 2021.12-2026.12。"
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    try:
        if len(numbers) == 2:
            start, end = date(numbers[0], 1, 1), date(numbers[1], 12, 31)
        elif len(numbers) == 4:
            y1, m1, y2, m2 = numbers
            start, end = date(y1, m1, 1), date(y2, m2, calendar.monthrange(y2, m2)[1])
        elif len(numbers) == 6:
            start, end = date(*numbers[:3]), date(*numbers[3:])
        else:
            raise ValueError
    except (ValueError, OverflowError):
        raise UserError("invalid_term", message, 400, field="term") from None
    if not (1949 <= start.year <= 2100 and 1949 <= end.year <= 2100):
        raise UserError("invalid_term", message, 400, field="term")
    check_term(start, end, "term")
    return start, end


@dataclass
class RowPlan:
    """What one row of the file will do."""

    row: int
    name: str
    station_name: str
    outcome: str = OUTCOME_NEW
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    levels_label: str = ""
    data: DeputyInput | None = None
    station_id: int | None = None
    deputy_id: int | None = None
    # The deputy an update matched, held so the session keeps it (and its levels) loaded until the writing.
    deputy: Deputy | None = field(default=None, repr=False, compare=False)
    role: StaffRole = StaffRole.DEPUTY
    phone: str = ""
    account: str = ACCOUNT_NONE  # create / exists / none
    username: str = ""
    account_note: str = ""  # what the dry run says about the account

    @property
    def role_label(self) -> str:
        """代表 / 联络站管理员."""
        return "代表" if self.role == StaffRole.DEPUTY else ROLE_LABELS[self.role]

    @property
    def outcome_label(self) -> str:
        """新增 / 更新 / 错误."""
        return OUTCOME_LABELS[self.outcome]


@dataclass
class ImportPlan:
    """Every row's outcome, before anything is written."""

    kind: str
    header_row: int
    rows: list[RowPlan]
    ignored_columns: list[str]
    sha256: str = ""
    filename: str = ""

    def count(self, outcome: str) -> int:
        """Rows with ``outcome``."""
        return sum(1 for row in self.rows if row.outcome == outcome)

    @property
    def accounts_to_create(self) -> int:
        """Accounts the import will make."""
        return sum(1 for row in self.rows if row.account == ACCOUNT_CREATE and row.outcome != OUTCOME_ERROR)

    @property
    def errors(self) -> list[tuple[int, str]]:
        """(row number, message) of every error, in row order."""
        return [(row.row, message) for row in self.rows for message in row.errors]

    @property
    def is_importable(self) -> bool:
        """True when there is something to write and no error anywhere."""
        return bool(self.rows) and not any(row.errors for row in self.rows)


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def plan_import(user: StaffUser, data: bytes, filename: str = "") -> ImportPlan:
    """Read and check a whole file against the database and ``user``'s scope; write nothing.

    The file is parsed before the first query: a caller's transaction (read or write) begins after it.
    """
    table = read_table(data)
    layout = find_layout(table)
    body = [(number, cells) for number, cells in table.rows if any(cell.text.strip() for cell in cells)]
    if len(body) > max_rows():
        raise ImportFileError("too_many_rows", f"文件中的代表超过 {max_rows()} 行（不含表头），请分成几个文件导入。")
    if not body:
        raise ImportFileError("no_rows", "表头下面没有代表信息。请从第2行开始，每行填写一位代表。")

    def cell(cells: list[Cell], key: str) -> Cell:
        position = layout.positions.get(key)
        if position is None or position >= len(cells):
            return Cell("")
        return cells[position]

    station_names = {_norm(cell(cells, "station").text) for _, cells in body}
    manageable: dict[str, list[Station]] = {}
    for station in db.session.scalars(manageable_stations_query(user).order_by(Station.id)):
        manageable.setdefault(_norm(station.name), []).append(station)
    known_elsewhere = set(
        db.session.scalars(select(Station.name).where(Station.name.in_([n for n in station_names if n])))
    )
    station_ids = [station.id for stations in manageable.values() for station in stations]
    existing: dict[tuple[int, str], list[Deputy]] = {}
    if station_ids:
        for deputy in db.session.scalars(
            select(Deputy).where(Deputy.station_id.in_(station_ids)).options(selectinload(Deputy.levels))
        ):
            existing.setdefault((deputy.station_id, deputy.name), []).append(deputy)

    seen: dict[tuple[str, str, str], int] = {}
    plans = []
    may_grant_admins = user.role == StaffRole.SUPERVISOR
    for number, cells in body:
        plans.append(
            _plan_row(number, cells, cell, manageable, known_elsewhere, existing, seen, layout, may_grant_admins)
        )
    _plan_accounts(plans, station_ids)
    return ImportPlan(
        kind=table.kind,
        header_row=layout.header_row,
        rows=plans,
        ignored_columns=layout.ignored,
        sha256=hashlib.sha256(data).hexdigest(),
        filename=filename,
    )


def parse_role(text: str) -> tuple[StaffRole | None, str]:
    """The role a 角色 cell names (blank: a deputy), or None and why it is refused."""
    word = re.sub(r"\s", "", unicodedata.normalize("NFKC", text))
    if word in ("", *ROLE_DEPUTY_WORDS):
        return StaffRole.DEPUTY, ""
    if word in ROLE_ADMIN_WORDS:
        return StaffRole.STATION_ADMIN, ""
    if word in ROLE_REFUSED_WORDS:
        return None, (
            f"导入只能创建代表和联络站管理员的账号，不能创建“{ROLE_REFUSED_WORDS[word]}”账号，"
            "请在“账号管理”页逐个创建。"
        )
    return None, f"角色“{text.strip()[:20]}”无法识别，请填写“代表”或“联络站管理员”（空白即为代表）。"


def _find_station(plan: RowPlan, manageable, known_elsewhere, what: str) -> Station | None:
    """The station a row names among those the user manages; an error on the row otherwise."""
    if not plan.station_name:
        plan.errors.append("请填写联络站名称。")
        return None
    candidates = manageable.get(plan.station_name, [])
    if len(candidates) == 1:
        station = candidates[0]
        plan.station_id = station.id
        if not station.is_active:
            plan.errors.append(f"联络站“{plan.station_name}”已停用，不能导入{what}。")
        return station
    if len(candidates) > 1:
        plan.errors.append(
            f"您管理的联络站中有{len(candidates)}个名为“{plan.station_name}”，无法区分，请在页面上逐个添加。"
        )
    elif plan.station_name in known_elsewhere:
        plan.errors.append(f"联络站“{plan.station_name}”不在您的管理范围内。")
    else:
        plan.errors.append(f"找不到名为“{plan.station_name}”的联络站，请核对名称（应与系统中的联络站名称一致）。")
    return None


def _plan_row(number, cells, cell, manageable, known_elsewhere, existing, seen, layout, may_grant_admins) -> RowPlan:
    """Check one row; collect every error rather than stopping at the first."""
    name_cell, station_cell = cell(cells, "name"), cell(cells, "station")
    plan = RowPlan(row=number, name=_norm(name_cell.text), station_name=_norm(station_cell.text))
    for key in layout.positions:
        if cell(cells, key).is_formula:
            plan.notes.append(f"“{COLUMN_HEADINGS[key]}”是公式，已按文字“{cell(cells, key).text[:40]}”处理，未计算。")

    def check(fn, *args):
        try:
            return fn(*args)
        except UserError as exc:
            plan.errors.append(exc.message)
            return None

    role, refusal = parse_role(cell(cells, "role").text)
    if role is None:
        plan.errors.append(refusal)
        plan.outcome = OUTCOME_ERROR
        return plan
    if role == StaffRole.STATION_ADMIN:
        return _plan_admin_row(plan, cells, cell, check, manageable, known_elsewhere, seen, may_grant_admins)

    name = check(clean_name, name_cell.text)
    constituency = check(clean_constituency, cell(cells, "constituency").text)
    if constituency == "":
        plan.errors.append("请填写选区。")
        constituency = None
    levels_text = cell(cells, "levels").text
    levels, unknown = parse_levels(levels_text)
    if unknown:
        plan.errors.append(
            f"代表层级“{'、'.join(unknown)}”无法识别，请写全国、省、市、县、乡镇人大代表中的一个或几个，用顿号分隔。"
        )
    elif not levels:
        plan.errors.append("请填写代表层级，如“县人大代表、乡镇人大代表”。")
    plan.levels_label = "、".join(CONGRESS_LEVEL_LABELS[level] for level in levels)
    phone = check(clean_phone, cell(cells, "phone").text, "phone", "联系电话")
    occupation = check(clean_occupation, cell(cells, "occupation").text)
    term = None
    term_text = cell(cells, "term").text.strip()
    if term_text:
        term = check(parse_term, term_text)

    station = _find_station(plan, manageable, known_elsewhere, "代表")

    if name and plan.station_name:
        key = ("deputy", plan.station_name, name)
        if key in seen:
            plan.errors.append(f"与第{seen[key]}行重复（同一联络站的同名代表），请删除其中一行。")
        else:
            seen[key] = number

    matches = existing.get((station.id, name), []) if station is not None and name else []
    serving = [d for d in matches if d.status == DeputyStatus.SERVING]
    deputy = None
    if len(serving) > 1 or (not serving and len(matches) > 1):
        plan.errors.append(f"{plan.station_name}有多位名为“{name}”的代表，无法确定更新哪一位，请在页面上修改。")
    elif serving or matches:
        deputy = (serving or matches)[0]
        plan.deputy_id = deputy.id
        plan.deputy = deputy
        plan.outcome = OUTCOME_UPDATE
        if not deputy.is_serving:
            plan.notes.append("该代表已离任，只更新资料，不改变状态。")

    if plan.errors:
        plan.outcome = OUTCOME_ERROR
        return plan

    by_level = {lv.level: lv.constituency for lv in deputy.levels} if deputy else {}
    old_constituency = deputy.constituency if deputy else None
    level_map = {}
    for level in levels:
        # A level's own constituency, edited on the deputy's page, survives a re-import.
        kept = by_level.get(level)
        level_map[level] = kept if kept is not None and kept != old_constituency else constituency
    if deputy is not None:
        # Blank optional cells never erase what was recorded.
        phone = phone or deputy.phone
        occupation = occupation or deputy.occupation
        if term is None:
            term = (deputy.term_start, deputy.term_end)
    plan.phone = phone
    plan.data = DeputyInput(
        name=name,
        levels=level_map,
        constituency=constituency,
        occupation=occupation,
        phone=phone,
        term_start=term[0] if term else None,
        term_end=term[1] if term else None,
    )
    if deputy is not None:
        plan.changes = _changes(deputy, plan.data)
    return plan


def _plan_admin_row(plan, cells, cell, check, manageable, known_elsewhere, seen, may_grant_admins) -> RowPlan:
    """Check a station administrator's row: name, station, 联系电话 (their username), and whether the user may."""
    plan.role = StaffRole.STATION_ADMIN
    if not may_grant_admins:
        plan.errors.append(
            "联络站管理员的账号只能由人大常委会工作人员导入；您可以导入本站的代表。请删除这一行，或请县人大常委会导入。"
        )
    name = check(clean_name, cell(cells, "name").text)
    phone = check(clean_phone, cell(cells, "phone").text, "phone", "联系电话")
    if phone == "":
        plan.errors.append("联络站管理员须填写联系电话（手机号即登录用户名）。")
    _find_station(plan, manageable, known_elsewhere, "联络站管理员")
    if name and plan.station_name:
        key = ("admin", plan.station_name, name)
        if key in seen:
            plan.errors.append(f"与第{seen[key]}行重复（同一联络站的同名管理员），请删除其中一行。")
        else:
            seen[key] = plan.row
    unused = [
        COLUMN_HEADINGS[k] for k in ("levels", "constituency", "occupation", "term") if cell(cells, k).text.strip()
    ]
    if unused:
        plan.notes.append(f"联络站管理员不使用这些列，已忽略：{'、'.join(unused)}。")
    plan.phone = phone or ""
    plan.outcome = OUTCOME_ERROR if plan.errors else OUTCOME_NEW
    return plan


def _plan_accounts(plans: list[RowPlan], station_ids: list[int]) -> None:
    """Decide each good row's account: one that exists, one to create (its username, checked unique in the file and
    in the whole system), or none and why; a clash is an error on the row."""
    good = [plan for plan in plans if plan.outcome != OUTCOME_ERROR]
    by_deputy: dict[int, StaffUser] = {}
    admins: dict[tuple[int, str], StaffUser] = {}
    if station_ids:
        for account in db.session.scalars(
            select(StaffUser).where(
                StaffUser.deputy_id.in_(select(Deputy.id).where(Deputy.station_id.in_(station_ids)))
            )
        ):
            by_deputy.setdefault(account.deputy_id, account)
        for account in db.session.scalars(
            select(StaffUser).where(StaffUser.role == StaffRole.STATION_ADMIN, StaffUser.station_id.in_(station_ids))
        ):
            admins.setdefault((account.station_id, account.display_name), account)

    wanted: list[RowPlan] = []
    for plan in good:
        existing = (
            by_deputy.get(plan.deputy_id) if plan.role == StaffRole.DEPUTY and plan.deputy_id is not None
            else admins.get((plan.station_id, plan.name)) if plan.role == StaffRole.STATION_ADMIN
            else None
        )  # fmt: skip
        if existing is not None:
            plan.account = ACCOUNT_EXISTS
            plan.username = existing.username
            plan.account_note = f"已有{plan.role_label}账号 {existing.username}" + (
                "" if existing.is_active else "（已停用）"
            )
            if plan.role == StaffRole.STATION_ADMIN:
                plan.outcome = OUTCOME_UPDATE
            continue
        if plan.deputy is not None and not plan.deputy.is_serving:
            plan.account_note = "不创建账号：已离任"
            continue
        if not plan.phone:
            plan.account_note = "不创建账号：没有联系电话（填上手机号后再导入一次即可创建）"
            continue
        plan.username = normalize_username(plan.phone)
        wanted.append(plan)

    usernames = sorted({plan.username for plan in wanted})
    taken: set[str] = set()
    for start in range(0, len(usernames), 500):
        taken.update(
            db.session.scalars(select(StaffUser.username).where(StaffUser.username.in_(usernames[start : start + 500])))
        )
    first_row: dict[str, int] = {}
    for plan in wanted:
        if plan.username in taken:
            plan.errors.append(
                f"联系电话 {plan.phone} 已是系统中另一个账号的用户名：同一个人不能有两个账号。"
                "如是同一人，请在“账号管理”页处理；否则请改填本人的手机号。"
            )
        elif plan.username in first_row:
            plan.errors.append(
                f"联系电话与第{first_row[plan.username]}行相同：联系电话就是登录用户名，每人须各不相同。"
                "请改填本人的手机号。"
            )
        else:
            first_row[plan.username] = plan.row
            plan.account = ACCOUNT_CREATE
            plan.account_note = f"将创建账号 {plan.username}（{plan.role_label}，待激活）"
            continue
        plan.outcome = OUTCOME_ERROR
        plan.username = ""


FIELD_LABELS = {
    "levels": "代表层级",
    "constituency": "选区",
    "occupation": "职业",
    "phone": "联系电话",
    "term": "任期",
}


def _changes(deputy: Deputy, data: DeputyInput) -> list[str]:
    """Labels of the fields an update would change."""
    changed = []
    if {lv.level: lv.constituency for lv in deputy.levels} != data.levels:
        changed.append("levels")
    for key in ("constituency", "occupation", "phone"):
        if getattr(deputy, key) != getattr(data, key):
            changed.append(key)
    if (deputy.term_start, deputy.term_end) != (data.term_start, data.term_end):
        changed.append("term")
    return [FIELD_LABELS[key] for key in changed]


# --- writing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    created: int
    updated: int
    unchanged: int
    accounts: int = 0
    # Stations with accounts to activate, for the "打印激活单" the import page offers next.
    station_ids: tuple[int, ...] = ()


def apply_import(user: StaffUser, plan: ImportPlan) -> ImportResult:
    """Write every row of an error-free plan (flushes; the caller commits once: all rows or none).

    Written in bulk, with one flush and one audit row holding every deputy created and every
    change made (a county's 2,000 deputies in a few seconds, well inside a worker's timeout).
    """
    if not plan.is_importable:
        raise UserError("import_has_errors", "文件中还有错误，未导入任何数据。请修改后重新上传。", 400, field="file")
    station_ids = {row.station_id for row in plan.rows}
    stations = {s.id: s for s in db.session.scalars(select(Station).where(Station.id.in_(station_ids)))}
    created: list[Deputy] = []
    updated: list[dict] = []
    unchanged = 0
    deputies: dict[int, Deputy] = {}  # row number → the row's deputy
    for row in plan.rows:
        if row.role == StaffRole.STATION_ADMIN:
            continue
        if row.outcome == OUTCOME_NEW:
            deputy = Deputy(station=stations[row.station_id], status=DeputyStatus.SERVING)
            apply_input(deputy, row.data)
            db.session.add(deputy)
            created.append(deputy)
        else:
            deputy = row.deputy if row.deputy is not None else db.session.get(Deputy, row.deputy_id)
            diff = apply_changes(deputy, row.data)
            if diff:
                updated.append({"id": deputy.id, "row": row.row, **diff})
            else:
                unchanged += 1
        deputies[row.row] = deputy
    db.session.flush()
    codes = issue_codes(created)
    accounts = _create_accounts(user, plan, deputies)
    record_audit(
        "deputies_imported",
        user=user,
        object_type="import",
        object_id=plan.sha256[:16],
        data={
            "filename": plan.filename,
            "sha256": plan.sha256,
            "kind": plan.kind,
            "rows": len(plan.rows),
            "created": [
                {"id": d.id, "name": d.name, "station_id": d.station_id, "code_id": code.id}
                for d, code in zip(created, codes, strict=True)
            ],
            "updated": updated,
            "unchanged": unchanged,
            "accounts": [
                {"id": account.id, "username": account.username, "role": account.role.value, "row": row}
                for row, account in accounts
            ],
        },
    )
    station_ids = sorted({row.station_id for row in plan.rows if row.account == ACCOUNT_CREATE})
    return ImportResult(
        created=len(created),
        updated=len(updated),
        unchanged=unchanged,
        accounts=len(accounts),
        station_ids=tuple(station_ids),
    )


def _create_accounts(user: StaffUser, plan: ImportPlan, deputies: dict[int, Deputy]) -> list[tuple[int, StaffUser]]:
    """The planned accounts, with no known password and a pending activation each (whose link nobody sees: the
    station's activation sheet issues the ones handed out); (row number, account) in row order."""
    rows = [row for row in plan.rows if row.account == ACCOUNT_CREATE]
    if not rows:
        return []
    password_hash = unusable_password_hash()
    made = []
    for row in rows:
        scope = {"deputy": deputies[row.row]} if row.role == StaffRole.DEPUTY else {"station_id": row.station_id}
        account = StaffUser(
            username=row.username, display_name=row.name[:50], password_hash=password_hash, role=row.role, **scope
        )
        made.append((row.row, account))
    db.session.add_all([account for _, account in made])
    try:
        db.session.flush()
    except IntegrityError:  # a username taken by someone else since this request checked the file
        raise UserError(
            "username_taken",
            "导入时发现有联系电话刚被别的账号用作用户名，未导入任何数据。请重新上传文件检查。",
            409,
            field="file",
        ) from None
    new_activations(user, [account for _, account in made])
    return made


# --- the upload between the dry run and the confirmation ---------------------------------------

_UPLOAD_ID_RE = re.compile(r"^[A-Za-z0-9_-]{24}$")


def _upload_dir() -> Path:
    path = Path(current_app.instance_path) / "imports"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def clean_filename(name: str) -> str:
    """The uploaded file's name as shown on the page: no path, no control characters, at most 100 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    return base[:FILENAME_MAX_CHARS]


def purge_expired_uploads(now: float | None = None) -> None:
    """Remove kept uploads older than an hour (and any half-written leftovers)."""
    now = time.time() if now is None else now
    for path in _upload_dir().iterdir():
        try:
            if now - path.stat().st_mtime > UPLOAD_TTL_SECONDS:
                path.unlink()
        except FileNotFoundError:
            pass


def keep_upload(user: StaffUser, data: bytes, filename: str) -> str:
    """Keep an upload for the confirmation; return its random id."""
    purge_expired_uploads()
    upload_id = secrets.token_urlsafe(18)
    folder = _upload_dir()
    meta = {
        "user_id": user.id,
        "sha256": hashlib.sha256(data).hexdigest(),
        "filename": clean_filename(filename),
        "created": time.time(),
    }
    (folder / f"{upload_id}.bin").write_bytes(data)
    (folder / f"{upload_id}.json").write_text(json.dumps(meta))
    return upload_id


_EXPIRED = "导入文件已过期或已导入（上传后需在1小时内确认）。请重新选择文件上传。"


def load_upload(user: StaffUser, upload_id: object, sha256: object) -> tuple[bytes, str]:
    """The kept bytes and file name, if the id is the user's, not expired, and the bytes still hash the same."""
    if not isinstance(upload_id, str) or not _UPLOAD_ID_RE.match(upload_id):
        raise UserError("import_expired", _EXPIRED, 400, field="file")
    folder = _upload_dir()
    try:
        meta = json.loads((folder / f"{upload_id}.json").read_text())
        data = (folder / f"{upload_id}.bin").read_bytes()
    except (OSError, ValueError):
        raise UserError("import_expired", _EXPIRED, 400, field="file") from None
    expired = time.time() - float(meta.get("created", 0)) > UPLOAD_TTL_SECONDS
    digest = hashlib.sha256(data).hexdigest()
    if meta.get("user_id") != user.id or expired or digest != meta.get("sha256") or digest != sha256:
        raise UserError("import_expired", _EXPIRED, 400, field="file")
    return data, str(meta.get("filename", ""))


def claim_upload(upload_id: str) -> Path:
    """Take the upload for one confirmation (a second click finds it gone); return the claimed path."""
    folder = _upload_dir()
    claimed = folder / f"{upload_id}.claimed-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.rename(folder / f"{upload_id}.bin", claimed)
    except FileNotFoundError:
        raise UserError("import_expired", _EXPIRED, 400, field="file") from None
    return claimed


def release_upload(upload_id: str, claimed: Path) -> None:
    """Give a claimed upload back (the import did not happen), so the person can try again."""
    with contextlib.suppress(FileNotFoundError):
        os.rename(claimed, _upload_dir() / f"{upload_id}.bin")


def discard_upload(upload_id: str, claimed: Path | None = None) -> None:
    """Remove an upload after it was imported."""
    folder = _upload_dir()
    for path in (claimed, folder / f"{upload_id}.bin", folder / f"{upload_id}.json"):
        if path is not None:
            path.unlink(missing_ok=True)


# --- the example file ---------------------------------------------------------------------------


def example_rows(station_name: str, with_admin: bool = True) -> list[list[str]]:
    """The example roster (heading, three deputies, and the station's administrator for a supervisor, who alone
    may import one) at ``station_name``."""
    heading = [column.heading for column in COLUMNS]
    body = [
        [name, levels, where, station_name, phone, job, term, "代表"]
        for name, levels, where, phone, job, term in EXAMPLE_ROWS
    ]
    if with_admin:
        admin_name, admin_phone = EXAMPLE_ADMIN
        body.append([admin_name, "", "", station_name, admin_phone, "", "", "联络站管理员"])
    return [heading, *body]


def example_csv(station_name: str = EXAMPLE_STATION, with_admin: bool = True) -> bytes:
    """The example as CSV in UTF-8 with a BOM (Excel in China then opens it without garbling)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(example_rows(station_name, with_admin))
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def example_xlsx(station_name: str = EXAMPLE_STATION, with_admin: bool = True) -> bytes:
    """The example as an Excel workbook, every cell text (phone numbers keep their leading zero)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "代表名册"
    for row in example_rows(station_name, with_admin):
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.number_format = "@"
    for letter, width in zip("ABCDEFGH", (10, 26, 22, 24, 16, 24, 18, 14), strict=True):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
