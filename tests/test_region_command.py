"""``flask region create``: the install's own region, the one a supervisor cannot make in the browser."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import AuditEntry, Region, RegionLevel, StaffUser


def region_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Region))


def test_a_fresh_install_gets_its_county_and_then_its_first_supervisor(app, runner):
    result = runner.invoke(args=["region", "create", "--code", "430225", "--name", "炎陵县"])
    assert result.exit_code == 0, result.output
    assert "已建立 炎陵县（430225）" in result.output
    assert "flask user create --role supervisor --region 430225" in result.output  # the next step, said
    region = db.session.scalars(select(Region)).one()
    assert (region.code, region.name, region.level, region.parent_id) == ("430225", "炎陵县", RegionLevel.COUNTY, None)
    assert db.session.scalars(select(AuditEntry.action)).all() == ["region_created"]
    made = runner.invoke(
        args=["user", "create", "chief", "--role", "supervisor", "--region", "430225", "--password", "Yanling-2026!"]
    )
    assert made.exit_code == 0, made.output
    assert db.session.scalars(select(StaffUser)).one().region_id == region.id


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--code", "43022", "--name", "炎陵县"], "6位数字"),  # too short
        (["--code", "４３０２２５", "--name", "炎陵县"], "6位数字"),  # full-width digits
        (["--code", "43022x", "--name", "炎陵县"], "6位数字"),
        (["--code", "430225", "--name", "   "], "地区名称"),  # empty name
        (["--code", "430225", "--name", "县" * 101], "地区名称"),  # too long
        (["--code", "430225", "--name", "炎陵县", "--level", "township"], "级别"),  # not a top level
        (["--code", "430225", "--name", "炎陵县", "--level", "galaxy"], "级别"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(app, runner, args, says):
    result = runner.invoke(args=["region", "create", *args])
    assert result.exit_code != 0
    assert says in result.output
    assert "未做任何更改" in result.output
    assert region_count() == 0


def test_a_second_top_region_is_refused(app, runner):
    assert runner.invoke(args=["region", "create", "--code", "430225", "--name", "炎陵县"]).exit_code == 0
    again = runner.invoke(args=["region", "create", "--code", "430224", "--name", "茶陵县"])
    assert again.exit_code != 0
    assert "已有最上级地区" in again.output
    assert region_count() == 1
