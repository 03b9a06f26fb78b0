"""miniprogram_stub/: a real mini-program project. Its pages run in Node against the backend served over real
HTTP with the local WeChat sandbox: each page rendered by WeChat's own template compiler (wcc) and component
engine (exparser) through miniprogram-simulate, with a small ``wx`` shim (miniprogram_stub/test/wx-shim.js)
for the runtime's APIs; the scenarios (test/scenarios.js) tap and type through the rendered templates and
check each state as a person sees it (loading, error, empty, with the backend's data, after each tap).
The project itself is checked too: every page of app.json has its four files, every API path it calls is
served by the backend, every handler its templates bind exists, and its JavaScript type-checks against
WeChat's API typings (TypeScript's checkJs, miniprogram_stub/tsconfig.json)."""

# ruff: noqa: F811 - the wechat_sandbox fixture is imported, then named as a parameter

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.exceptions import MethodNotAllowed, NotFound

from backend.extensions import db
from backend.models import Item, ReceptionRule, ReceptionRuleKind, Resident, StaffUser, SubscriptionCredit
from backend.outbox import notifications, worker
from backend.qr.codes import current_code
from backend.stations.calendar import describe_rule, today_in_china
from backend.wechat import identity, subscriptions
from tests.factories import act, make_item
from tests.helpers import PASSWORD, audit_rows, make_templates_one_time, missing_tool
from tests.wechat_server import wechat_sandbox  # noqa: F401

pytestmark = pytest.mark.engine_independent(
    reason="the mini-program's JavaScript against the API: the API's engine part is tested in both suites by the API tests"
)

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "miniprogram_stub"
SCENARIOS = STUB / "test" / "scenarios.js"
PAGE_FILES = (".js", ".wxml", ".wxss", ".json")
RESIDENT_OPENID = "o-stub-resident"
DEPUTY_OPENID = "o-stub-deputy"
ANSWER = "您反映的路灯已由镇政府安排维修，今晚恢复照明。"


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js with the mini-program's packages installed (`npm ci` in miniprogram_stub/, which
    scripts/run-tests.sh runs when the lock file changed); under CI=true their absence fails."""
    path = shutil.which("node")
    missing = None
    if path is None:
        missing = "no Node.js (node) on PATH: install Debian's nodejs and npm (scripts/system-deps.sh --test)"
    elif not (STUB / "node_modules" / "miniprogram-simulate").is_dir():
        missing = "the mini-program's packages are not installed: cd miniprogram_stub && npm ci"
    if missing:
        missing_tool(missing)
    return path


def run_tool(args: list[str], what: str, **kwargs) -> str:
    """Run a program of the mini-program's tests; fail the test with its output unless it succeeds; its stdout."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{what} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def run_node(node: str, scenario: str, **env) -> dict:
    """Run one scenario of scenarios.js; fail the test with its output unless it passes; return its RESULT."""
    db.session.commit()  # on SQLite an open transaction of the test holds the write lock the server needs
    stdout = run_tool(
        [node, str(SCENARIOS), scenario],
        f"node scenario {scenario}",
        cwd=STUB,
        env={**os.environ, "STUB_ENV": json.dumps(env)},
    )
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.fixture
def scenario(node, tmp_path):
    """Run scenarios of scenarios.js (``scenario(name, **env)`` → its RESULT). Every state they keep is laid out
    afterwards in Chromium at 360 px (tests/miniprogram_screens.py): screenshots, and a failure when a page is
    wider than the phone, its text too small, or a primary button not WeUI's green. Without Chromium that part
    is skipped, except under CI=true, where it fails."""
    shots = tmp_path / "shots"
    shots.mkdir()

    def run(which: str, /, **env) -> dict:
        return run_node(node, which, shotsDir=str(shots), **env)

    yield run
    if not any(shots.iterdir()):
        return
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not (os.path.isfile(chromium) and os.access(chromium, os.X_OK)):
        missing_tool(f"no Chromium at {chromium} for the mini-program's screens")
    stdout = run_tool(
        [sys.executable, "-m", "tests.miniprogram_screens", str(shots), chromium],
        "laying out the mini-program's screens",
        cwd=ROOT,
    )
    problems = json.loads(stdout.strip().splitlines()[-1])
    assert not problems, "\n".join(problems)


@pytest.fixture
def backend_url(app, wechat_sandbox):
    """The backend over real HTTP: the sandbox's server is a whole app on the test database; point its own
    WeChat calls at itself for the test, and back afterwards."""
    served = wechat_sandbox.app
    saved = {key: served.config.get(key) for key in ("WECHAT_API_BASE", "WECHAT_TIMEOUT_SECONDS")}
    served.config.update(WECHAT_API_BASE=wechat_sandbox.url, WECHAT_TIMEOUT_SECONDS=2.0)
    served.extensions.pop("wechat_client", None)
    yield wechat_sandbox.url[: -len("/_wechat/")]
    served.config.update(saved)
    served.extensions.pop("wechat_client", None)


def stub_env(backend_url: str, sandbox, **extra) -> dict:
    return {"baseUrl": backend_url, "sandboxUrl": sandbox.url, "openid": RESIDENT_OPENID, **extra}


def deputy_env(deputy) -> dict:
    """What the landing and the form must show for ``deputy``, from the database (never the API answer)."""
    return {
        "slug": current_code(deputy).slug,
        "deputyName": deputy.name,
        "deputyLine": f"{'、'.join(deputy.level_labels)} · {deputy.constituency}",
        "stationName": deputy.station.name,
    }


def station_env(station) -> dict:
    """What a station code's pages must show for ``station``, from the database (never the API answer)."""
    return {"slug": current_code(station).slug, "stationId": station.id, "stationName": station.name}


def closed_url() -> str:
    """An address on this machine where nothing listens: the page's request fails as on a dead network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the project ---------------------------------------------------------------------------------

NOT_THE_APPS_OWN = {"test", "node_modules", "miniprogram_npm"}


def own_sources() -> list[Path]:
    """The mini-program's own JavaScript: not its tests, not the packages, not what "构建 npm" made of them."""
    return [p for p in STUB.rglob("*.js") if p.is_file() and not NOT_THE_APPS_OWN & set(p.relative_to(STUB).parts)]


def app_pages() -> list[str]:
    return json.loads((STUB / "app.json").read_text(encoding="utf-8"))["pages"]


def test_every_page_in_app_json_has_its_four_files():
    pages = app_pages()
    assert pages[0] == "pages/landing/landing"  # the page a scanned code opens
    expected = {
        "pages/landing/landing",
        "pages/form/form",
        "pages/items/items",
        "pages/item/item",
        "pages/inbox/inbox",
        "pages/inbox/item",
        "pages/bind/bind",
    }
    assert set(pages) == expected
    for page in pages:
        for suffix in PAGE_FILES:
            path = STUB / (page + suffix)
            assert path.is_file() and path.stat().st_size > 0, path
        config = json.loads((STUB / (page + ".json")).read_text(encoding="utf-8"))
        assert re.search(r"[\u4e00-\u9fff]", config["navigationBarTitleText"]), page
    for name in ("app.js", "app.wxss", "project.config.json", "sitemap.json", "utils/api.js"):
        assert (STUB / name).is_file(), name
    json.loads((STUB / "project.config.json").read_text(encoding="utf-8"))


def test_the_pages_the_backend_links_to_are_pages_of_the_mini_program(app):
    pages = set(app_pages())
    for template in (notifications.RESIDENT_PAGE, notifications.DEPUTY_PAGE):
        assert template.split("?")[0] in pages
    assert app.config["WECHAT_MINIPROGRAM_PAGE_LANDING"] in pages
    assert app.config["WECHAT_MINIPROGRAM_PAGE_BIND"] in pages


def test_every_api_path_the_stub_calls_is_served(app, node):
    paths = run_node(node, "paths")
    adapter = app.url_map.bind("localhost")
    samples = {"slug": "AbCdEfGhIjKl", "ref": "ABCD2345"}
    for name, (method, template) in paths.items():
        path = re.sub(r"\{(\w+)\}", lambda m: samples[m.group(1)], template)
        try:
            endpoint, _ = adapter.match(path, method=method)
        except (NotFound, MethodNotAllowed) as exc:
            pytest.fail(f"{name}: {method} {template} is not served ({exc.__class__.__name__})")
        assert not endpoint.startswith("wechat_sandbox."), name
    # Nothing calls the backend except through the declared paths of utils/api.js.
    declared = {template for _, template in paths.values()}
    for source in own_sources():
        text = source.read_text(encoding="utf-8")
        for literal in re.findall(r"[\"'](/api/[^\"']*)[\"']", text):
            assert literal in declared, f"{source.relative_to(STUB)} calls {literal} outside PATHS"
        if source.name != "api.js":
            assert "wx.request" not in text, f"{source.relative_to(STUB)} calls wx.request itself"


def test_every_handler_the_templates_bind_exists(node, backend_url, wechat_sandbox):
    handlers = run_node(node, "handlers", **stub_env(backend_url, wechat_sandbox))
    for page in app_pages():
        wxml = (STUB / (page + ".wxml")).read_text(encoding="utf-8")
        bound = set(re.findall(r"\bbind:?\w+=\"(\w+)\"", wxml))
        missing = bound - set(handlers[page])
        assert not missing, f"{page}.wxml binds {missing}, which {page}.js does not define"


def tsc(node: str, project: Path) -> subprocess.CompletedProcess:
    """TypeScript's compiler from the lock file, on one tsconfig (it only checks: noEmit)."""
    compiler = STUB / "node_modules" / "typescript" / "bin" / "tsc"
    return subprocess.run([node, str(compiler), "-p", str(project)], capture_output=True, text=True, timeout=120)


def test_the_pages_type_check_against_wechats_api_typings(node):
    """tsc with checkJs over the pages (miniprogram_stub/tsconfig.json): a misused wx API fails here."""
    result = tsc(node, STUB)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_type_check_refuses_a_misused_wx_api(node, tmp_path):
    """The same compiler, options and typings refuse what WeChat would: an unknown option, a number for a URL,
    a required field left out, a misspelt API (the check bites; it is not a formality)."""
    misuse = tmp_path / "misuse.js"
    misuse.write_text(
        "wx.navigateTo({ path: '/pages/form/form' });\n"
        "wx.redirectTo({ url: 42 });\n"
        "wx.requestSubscribeMessage({ success() {} });\n"
        "wx.setStorageSyn('k', 'v');\n",
        encoding="utf-8",
    )
    typings = STUB / "node_modules" / "miniprogram-api-typings" / "index.d.ts"
    tsconfig = (STUB / "tsconfig.json").read_text(encoding="utf-8")
    base = json.loads("\n".join(line for line in tsconfig.splitlines() if not line.startswith("//")))
    options = {**base["compilerOptions"], "types": [], "typeRoots": []}
    config = tmp_path / "tsconfig.json"
    config.write_text(json.dumps({"compilerOptions": options, "files": [str(typings), str(misuse)]}), encoding="utf-8")
    result = tsc(node, config)
    errors = [line for line in result.stdout.splitlines() if "error TS" in line]
    assert [line.split("(")[1].split(",")[0] for line in errors] == ["1", "2", "3", "4"], result.stdout


def test_every_class_a_template_uses_is_styled(node):
    """Each class in a page's WXML is defined by WeUI (miniprogram_npm/), app.wxss or the page's own WXSS: a
    misspelt WeUI class (weui-btn_primay) would leave a plain grey button and pass every other test."""
    weui = STUB / "miniprogram_npm" / "weui-miniprogram" / "weui-wxss" / "dist" / "style" / "weui.wxss"
    shared = weui.read_text(encoding="utf-8") + (STUB / "app.wxss").read_text(encoding="utf-8")
    for page in app_pages():
        styles = shared + (STUB / (page + ".wxss")).read_text(encoding="utf-8")
        wxml = (STUB / (page + ".wxml")).read_text(encoding="utf-8")
        # Static class names, and the quoted names a "{{…}}" part may give ("count {{n ? 'late' : ''}}").
        values = re.findall(r'class="([^"]*)"', wxml)
        names = {name for value in values for name in re.sub(r"\{\{.*?\}\}", " ", value).split()}
        names |= {
            name
            for value in values
            for part in re.findall(r"\{\{(.*?)\}\}", value)
            for name in re.findall(r"'([-\w]+)'", part)
        }
        missing = sorted(name for name in names if not re.search(rf"\.{re.escape(name)}(?![-\w])", styles))
        assert not missing, f"{page}.wxml uses classes no stylesheet defines: {missing}"


def test_the_ui_speaks_chinese():
    for page in app_pages():
        wxml = (STUB / (page + ".wxml")).read_text(encoding="utf-8")
        assert re.search(r"[\u4e00-\u9fff]", wxml), page
        # No English words shown to people: the text between tags is Chinese (or data).
        texts = re.findall(r">([^<{]+)<", wxml)
        assert not [t for t in texts if re.search(r"[A-Za-z]{3,}", t)], (page, texts)


# --- the pages against the running backend --------------------------------------------------------


def test_landing_from_a_mini_program_code_and_from_an_ordinary_qr_code(scenario, backend_url, wechat_sandbox, world):
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1))
    assert scenario("landing_scene", **env)["slug"] == env["slug"]
    assert scenario("landing_q", **env)["slug"] == env["slug"]
    scenario("landing_unknown", **env)


def on_duty_today(station, deputy) -> None:
    """Make today a reception day of ``station`` with ``deputy`` on duty."""
    rule = ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=today_in_china().isoweekday(), deputy=deputy)
    station.reception_rules.append(rule)
    db.session.commit()


def test_landing_and_form_of_a_station_code(scenario, backend_url, wechat_sandbox, world):
    station = world.station_a
    on_duty_today(station, world.d2)
    env = stub_env(
        backend_url,
        wechat_sandbox,
        **station_env(station),
        address=station.address,
        dutyReason=f"今天是接待日，您的留言将交给今天的值班代表{world.d2.name}。",
        receptionDays=[describe_rule(rule) for rule in station.reception_rules],
        deputyNames=[world.d1.name, world.d2.name],
    )
    scenario("landing_station", **env)
    scenario("form_station", **env)
    scenario("form_unknown", **env)


def test_the_form_checks_before_sending(scenario, backend_url, wechat_sandbox, world):
    scenario("form_checks", **stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1)))
    assert db.session.scalar(select(Item)) is None


def test_submit_see_it_in_my_items_deputy_answers_resident_rates(app, scenario, backend_url, wechat_sandbox, world):
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1))
    submitted = scenario("submit", **env)
    ref = submitted["ref"]
    db.session.expire_all()
    item = db.session.scalar(select(Item).where(Item.ref == ref))
    assert item.channel.value == "miniprogram" and item.deputy_id == world.d1.id
    assert item.resident.openid == RESIDENT_OPENID
    # What the resident accepted was reported and counted, template by template.
    credits = dict(
        db.session.execute(
            select(SubscriptionCredit.template_id, SubscriptionCredit.credits).where(
                SubscriptionCredit.openid == RESIDENT_OPENID
            )
        ).all()
    )
    assert credits == {template_id: 1 for template_id in submitted["templateIds"]}
    assert wechat_sandbox.subscriptions(RESIDENT_OPENID) == credits

    deputy_side = {**env, "ref": ref, "username": "deputy_d1", "password": PASSWORD, "answer": ANSWER}
    deputy_side["deputyOpenid"] = DEPUTY_OPENID
    assert scenario("deputy_reply", **deputy_side)["status"] == "resolved"

    # The worker tells the resident in WeChat; the notification opens the item page with its ref only.
    while worker.run_once(50):
        pass
    received = wechat_sandbox.messages(RESIDENT_OPENID)
    answered = [m for m in received if m["template_id"] == app.config["WECHAT_TEMPLATES"]["item_answered"]["id"]]
    assert answered, received
    page = answered[0]["page"]
    assert page == f"pages/item/item?ref={ref}"

    assert scenario("rate", **env, page=page, answer=ANSWER)["status"] == "resolved"
    db.session.expire_all()
    item = db.session.get(Item, item.id)
    assert item.satisfaction.value == "satisfied" and item.rated_at is not None
    scenario("stranger", **env, ref=ref)


def test_the_deputy_reveals_a_contact_on_the_item_page_and_it_is_audited(scenario, backend_url, wechat_sandbox, world):
    item = make_item(world.d1)
    env = stub_env(backend_url, wechat_sandbox, ref=item.ref, username="deputy_d1", password=PASSWORD)
    env.update(deputyOpenid=DEPUTY_OPENID, name="王桂芳", maskedName="王**", phone="13812341234")  # make_item's
    assert scenario("deputy_reveal", **env)["phone"] == "13812341234"
    db.session.expire_all()
    assert [row.data["ref"] for row in audit_rows("reveal_contact")] == [item.ref]


def progress_credits(app) -> int:
    """The resident's credits for the progress template (what the next progress notice may spend)."""
    template_id = app.config["WECHAT_TEMPLATES"]["item_progress"]["id"]
    db.session.expire_all()
    return db.session.scalar(
        select(SubscriptionCredit.credits).where(
            SubscriptionCredit.openid == RESIDENT_OPENID, SubscriptionCredit.template_id == template_id
        )
    )


@pytest.fixture
def one_time_progress(app, wechat_sandbox):
    """Every template one-time, in the test app (the worker) and in the served one (the submission): the credit
    accounting this scenario is about is the one-time kind's (long-term templates spend nothing)."""
    # The session's sandbox server reads the same template dicts: their kinds are put back in place afterwards.
    templates = [app.config["WECHAT_TEMPLATES"], wechat_sandbox.app.config["WECHAT_TEMPLATES"]]
    saved = [{purpose: dict(template) for purpose, template in each.items()} for each in templates]
    make_templates_one_time(app)
    make_templates_one_time(wechat_sandbox.app)
    yield
    for each, before in zip(templates, saved, strict=True):
        for purpose, template in each.items():
            template.clear()
            template.update(before[purpose])


def test_a_one_time_credit_waits_for_acceptance_and_the_resident_subscribes_again_for_the_next_step(
    app, scenario, backend_url, wechat_sandbox, world, one_time_progress
):
    """Issue 11: with a one-time template, "已提交" is not sent, so the form's one acceptance is kept for 受理;
    after 受理 the page offers to subscribe again (a refusal counts nothing) and the next step is heard."""
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1))
    ref = scenario("submit", **env)["ref"]
    while worker.run_once(50):
        pass
    assert progress_credits(app) == 1  # kept for 受理: "已提交" spent nothing
    item = db.session.scalar(select(Item).where(Item.ref == ref))
    act(item, world.users["deputy"], "accept")
    while worker.run_once(50):
        pass
    progress = app.config["WECHAT_TEMPLATES"]["item_progress"]["id"]
    steps = [m["data"] for m in wechat_sandbox.messages(RESIDENT_OPENID) if m["template_id"] == progress]
    assert len(steps) == 1 and "已受理" in json.dumps(steps[0], ensure_ascii=False)
    assert progress_credits(app) == 0
    # The page says which are spent and asks again for those only; refused: nothing is counted, and the page says so.
    spent = {
        "headline": "微信通知：部分未开启",
        "lines": ["办理进展 未开启", "代表答复 剩余1次", "办结 剩余1次"],
        "askIds": [progress],
        "tap": True,
    }
    scenario("item_notices", **env, **spent, ref=ref, subscribe="reject", after=spent["headline"],
             afterLines=spent["lines"], shot="item-notices-one-time-spent")  # fmt: skip
    assert progress_credits(app) == 0
    scenario("item_notices", **env, **spent, ref=ref, after="微信通知：已开启",
             afterLines=["办理进展 剩余1次", "代表答复 剩余1次", "办结 剩余1次"], shot="item-notices-one-time")  # fmt: skip
    assert progress_credits(app) == 1
    act(item, world.users["deputy"], "wait_for_resident", text="请补充具体位置。")
    while worker.run_once(50):
        pass
    steps = [m["data"] for m in wechat_sandbox.messages(RESIDENT_OPENID) if m["template_id"] == progress]
    assert len(steps) == 2 and "待补充" in json.dumps(steps[1], ensure_ascii=False)
    assert progress_credits(app) == 0


def test_the_resident_answers_the_deputys_request_for_more_then_follows_up(
    app, scenario, backend_url, wechat_sandbox, world
):
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1))
    ref = scenario("submit", **env)["ref"]
    item = db.session.scalar(select(Item).where(Item.ref == ref))
    act(item, world.users["deputy"], "accept")
    question = "请补充路灯的具体位置（门牌号或附近标志）。"
    act(item, world.users["deputy"], "wait_for_resident", text=question)
    answer, follow_up = "在村委会往东50米，电线杆编号 YL-0231。", "请问什么时候能修好？"
    scenario("answer_back", **env, ref=ref, question=question, answer=answer, followUp=follow_up)
    db.session.expire_all()
    item = db.session.get(Item, item.id)
    assert item.paused_at is None
    kinds = [e.kind.value for e in item.events][-2:]
    assert kinds == ["resident_replied", "followed_up"]
    assert [e.body for e in item.events][-2:] == [answer, follow_up]


def test_my_items_empty_then_unreachable(scenario, backend_url, wechat_sandbox):
    scenario("items_empty", **stub_env(backend_url, wechat_sandbox, closedUrl=closed_url()))


def test_without_wechat_login_the_form_still_sends(scenario, backend_url, wechat_sandbox, world):
    wechat_sandbox.fault("sns/jscode2session", "http500", times=-1)
    result = scenario(
        "submit_without_wechat", **stub_env(backend_url, wechat_sandbox, slug=current_code(world.d1).slug)
    )
    item = db.session.scalar(select(Item).where(Item.ref == result["ref"]))
    assert item.resident_id is None and result["residentToken"] is None


def test_a_deputy_binds_then_subscribes_to_new_items(app, scenario, backend_url, wechat_sandbox, world):
    user = world.users["deputy"]
    code, _row = identity.create_binding_code(user)
    db.session.commit()
    env = stub_env(backend_url, wechat_sandbox, bindingCode=code, deputyOpenid=DEPUTY_OPENID)
    assert scenario("bind", **env, displayName=user.display_name)["displayName"] == user.display_name
    db.session.expire_all()
    assert db.session.get(StaffUser, user.id).wechat_openid == DEPUTY_OPENID
    assert db.session.scalar(select(Resident)) is None  # binding makes no resident

    # One long-term template: the headline says it all.
    states = {"headline": "微信通知：未开启", "lines": [], "after": "微信通知：已开启", "afterLines": []}
    subscribed = scenario("deputy_subscribe", **env, **states, username="deputy_d1", password=PASSWORD)
    deputy_template = app.config["WECHAT_TEMPLATES"]["deputy_task"]["id"]
    assert subscribed["templateIds"] == [deputy_template]
    credits = db.session.scalar(
        select(SubscriptionCredit.credits).where(
            SubscriptionCredit.openid == DEPUTY_OPENID, SubscriptionCredit.template_id == deputy_template
        )
    )
    assert credits == 1


def test_the_item_page_shows_whether_notices_are_on_and_switches_them_on_again(
    app, scenario, backend_url, wechat_sandbox, world
):
    """Issue 11: the resident's item page, fed by GET /api/v1/wechat/subscriptions, in each state: all off (the
    form's request refused), on with one-time credits left, a long-term template switched off in WeChat (asked for
    again, alone), and none (no WeChat: nothing said); each tap reported and counted as the form's is."""
    templates = app.config["WECHAT_TEMPLATES"]
    progress, answered, resolved = (templates[p]["id"] for p in ("item_progress", "item_answered", "item_resolved"))
    env = stub_env(backend_url, wechat_sandbox, **deputy_env(world.d1))
    ref = scenario("submit", **env, subscribe="reject")["ref"]
    assert dict(subscriptions.credits_for(RESIDENT_OPENID, [progress, answered, resolved])) == {
        progress: 0, answered: 0, resolved: 0
    }  # fmt: skip
    on = ["办理进展 已开启", "代表答复 剩余1次", "办结 剩余1次"]
    # Off: every template, the answer's first (the order WeChat's popup lists them).
    scenario("item_notices", **env, ref=ref, headline="微信通知：未开启",
             lines=["办理进展 未开启", "代表答复 未开启", "办结 未开启"], askIds=[answered, resolved, progress],
             tap=True, after="微信通知：已开启", afterLines=on, shot="item-notices-off")  # fmt: skip
    db.session.expire_all()
    assert subscriptions.credits_for(RESIDENT_OPENID, [progress, answered, resolved]) == {
        progress: 1, answered: 1, resolved: 1
    }  # fmt: skip
    # On, one-time credits left: nothing to ask.
    scenario("item_notices", **env, ref=ref, headline="微信通知：已开启", lines=on, askIds=[], shot="item-notices-on")
    # The resident switched progress off in WeChat's settings (WeChat's change push does this).
    subscriptions.switch_off(RESIDENT_OPENID, progress)
    db.session.commit()
    scenario("item_notices", **env, ref=ref, headline="微信通知：部分未开启",
             lines=["办理进展 未开启", "代表答复 剩余1次", "办结 剩余1次"], askIds=[progress], tap=True,
             after="微信通知：已开启", afterLines=on, shot="item-notices-switched-off")  # fmt: skip
    assert progress_credits(app) == 1  # long-term: a switch, on again
    # None: without WeChat the page says nothing of notices (scenario submit_without_wechat checks it too).
    wechat_sandbox.fault("sns/jscode2session", "http500", times=-1)
    scenario("submit_without_wechat", **stub_env(backend_url, wechat_sandbox, slug=current_code(world.d1).slug))


def test_the_inbox_shows_one_time_new_item_notices_with_what_is_left(
    app, scenario, backend_url, wechat_sandbox, world, one_time_progress
):
    """The deputy's inbox when 待办提醒 is one-time: each acceptance is one notice, and the inbox says how many remain."""
    user = world.users["deputy"]
    user.wechat_openid = DEPUTY_OPENID
    db.session.commit()
    env = stub_env(backend_url, wechat_sandbox, deputyOpenid=DEPUTY_OPENID, username="deputy_d1", password=PASSWORD)
    states = {"headline": "微信通知：未开启", "lines": ["新留言 未开启"], "after": "微信通知：已开启",
              "afterLines": ["新留言 剩余1次"]}  # fmt: skip
    scenario("deputy_subscribe", **env, **states)
    deputy_template = app.config["WECHAT_TEMPLATES"]["deputy_task"]["id"]
    db.session.expire_all()
    assert subscriptions.credits_for(DEPUTY_OPENID, [deputy_template]) == {deputy_template: 1}
