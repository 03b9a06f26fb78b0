"""The weekly scans chart lists a station's topic codes as groups of their own, named by the topic's title, after the
station's and its deputies' codes (issue 15's leftover, ``qr.scans.code_groups``)."""

from __future__ import annotations

import re

from backend.qr import scans
from backend.qr.codes import current_code
from tests.helpers import login
from tests.test_topics import create, submit_page, topic  # noqa: F401 - the fixture

TITLE = "《炎陵县物业管理条例（草案）》征求意见"


def test_topic_codes_are_their_own_group_named_by_the_topics_title(app, client, world, topic):  # noqa: F811
    second = create(app, world.station_a, title="城东农贸市场营商环境监测点", kind="monitoring", choices="")
    assert second.status_code == 303
    slug = current_code(topic).slug
    for _ in range(3):
        assert client.get(f"/c/{slug}").status_code == 200
    assert submit_page(app, slug, body="建议草案明确物业费公示的周期。", choice="赞成").status_code == 303
    assert client.get(f"/c/{current_code(world.d1).slug}").status_code == 200

    html = login(app, "admin_a").get(f"/supervision/?station={world.station_a.id}").text
    table = html[html.index('id="codes-table"') : html.index("</table>", html.index('id="codes-table"'))]
    groups = re.findall(r'<th scope="rowgroup" colspan="4">(.*?)</th>', table)
    assert groups == ["联络站码和代表码", f"专题：{TITLE}", "专题：城东农贸市场营商环境监测点"]
    bodies = table.split("<tbody")[1:]
    names = [re.findall(r'<th scope="row">(.*?)</th>', body) for body in bodies]
    assert all("专题码" not in name for name in names[0])  # the station's group holds no topic code
    assert len(names[1]) == 1 and names[1][0].startswith('<span class="sv-code-kind">专题码</span>' + TITLE)
    assert re.search(r'<td class="num">4</td>\s*<td class="num">1</td>', bodies[1])  # 3 scans and the form's, 1 message

    charts = html[html.index('id="codes-weekly"') :]
    titles = re.findall(r'<h3 class="sv-code-group-title[^"]*">(.*?)</h3>', charts)
    assert titles == groups
    topic_charts = charts[charts.index(f"专题：{TITLE}</h3>") : charts.index("专题：城东农贸市场")]
    assert topic_charts.count('<li class="sv-week-chart">') == 1
    this_week = scans.week_start(scans.last_weeks()[-1])
    assert f"{this_week.month}月{this_week.day}日起一周：扫码4次，留言1件" in topic_charts


def test_a_station_without_topics_shows_no_group_headings(app, client, world):
    html = login(app, "admin_a").get(f"/supervision/?station={world.station_a.id}").text
    assert 'id="codes-table"' in html and 'scope="rowgroup"' not in html and "sv-code-group-title" not in html
