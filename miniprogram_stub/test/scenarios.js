// Scenarios of the mini-program's pages, run in Node against a running backend; every page is rendered by WeChat's
// template compiler and component engine (page-host.js), every tap and input goes through its template, and each
// state is checked as a person sees it: texts, which buttons, what is hidden.
//   node scenarios.js <name>   with STUB_ENV='{"baseUrl", "sandboxUrl", "openid", …}'
// Prints "RESULT <json>" on success (what the Python test checks further); exits 1 on a failed assertion.
// What a person is expected to read comes from the test (names, messages it put in the database) or is the
// page's own wording, never from the API answer being shown: a field renamed in the API fails here.
"use strict";

const assert = require("node:assert/strict");
const path = require("path");
const { createRuntime, STUB_ROOT } = require("./wx-shim.js");

const MESSAGE = "村口的路灯坏了三个月，晚上出行很不方便，请帮忙修一修。";

function runtime(env, openid) {
  return createRuntime({
    baseUrl: env.baseUrl,
    sandboxUrl: env.sandboxUrl,
    openid: openid || env.openid,
    subscribe: env.subscribe,
    shotsDir: env.shotsDir,
    python: env.python,
    extConfig: env.extConfig,
    envVersion: env.envVersion,
  });
}

function lines(page) {
  return page.view.visibleLines();
}

function sees(page, pattern) {
  const text = page.view.text();
  if (typeof pattern === "string") assert.ok(text.includes(pattern), page.route + " should show " + JSON.stringify(pattern) + ":\n" + text);
  else assert.match(text, pattern, page.route + ":\n" + text);
}

function doesNotSee(page, pattern) {
  const text = page.view.text();
  if (typeof pattern === "string") assert.ok(!text.includes(pattern), page.route + " should not show " + JSON.stringify(pattern) + ":\n" + text);
  else assert.doesNotMatch(text, pattern, page.route + ":\n" + text);
}

// The buttons shown, as [text, WeUI kind] (kind: primary = WeChat's green, default, warn).
function buttons(page) {
  return page.view.buttons().map((b) => [b.text, b.kind]);
}

// A page's loading state: only the loading line, no button.
function assertLoading(page, text) {
  assert.deepEqual(lines(page), [text], page.route + " while loading");
  assert.deepEqual(buttons(page), []);
}

// A page that could not load: the message alone, no button.
function assertErrorPage(page, pattern) {
  const shown = lines(page);
  assert.equal(shown.length, 1, page.route + " error page:\n" + shown.join("\n"));
  assert.match(shown[0], pattern);
  assert.deepEqual(buttons(page), []);
}

// The first non-empty line of a message, cut at `limit` characters with an ellipsis (what lists show).
function firstLine(text, limit) {
  const line = text.split("\n").map((part) => part.trim()).find((part) => part) || "";
  return line.length <= limit ? line : line.slice(0, limit - 1) + "…";
}

function formatRef(ref) {
  return ref.slice(0, 4) + "-" + ref.slice(4);
}

// The deputy's WeChat, logged in on the inbox page.
async function deputyLoggedIn(env) {
  const rt = runtime(env, env.deputyOpenid);
  const inbox = await rt.open("pages/inbox/inbox", {});
  await inbox.view.input("#username", env.username);
  await inbox.view.input("#password", env.password);
  await inbox.view.tap("#do-login");
  assert.equal(inbox.data.loggedIn, true, inbox.data.error);
  return { rt, inbox };
}

const scenarios = {
  // Every page's definition: its functions, for the check that each bind* in the .wxml exists.
  async handlers(env) {
    const rt = runtime(env);
    const app = require(path.join(STUB_ROOT, "app.json"));
    const out = {};
    for (const route of app.pages) {
      const page = rt.page(route);
      out[route] = Object.keys(page).filter((k) => typeof page[k] === "function");
    }
    return out;
  },

  async paths() {
    return require(path.join(STUB_ROOT, "utils", "api.js")).PATHS;
  },

  // A mini-program code: query.scene = encodeURIComponent("c=<slug>"). Loading, the deputy's card, both taps.
  async landing_scene(env) {
    const rt = runtime(env);
    const { page, ready } = rt.start("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assertLoading(page, "正在打开…");
    rt.shot(page, "landing-loading");
    await ready;
    assert.equal(page.data.slug, env.slug);
    assert.deepEqual(lines(page), [env.deputyName + " 代表", env.deputyLine, env.stationName, "我要留言", "查看我的留言"]);
    assert.deepEqual(buttons(page), [
      ["我要留言", "primary"],
      ["查看我的留言", "default"],
    ]);
    assert.ok(page.view.has("#deputy") && !page.view.has("#station") && !page.view.has("#error"));
    rt.shot(page, "landing-deputy");
    await page.view.tap("#write");
    assert.equal(rt.lastNavigation().url, "/pages/form/form?slug=" + env.slug);
    await page.view.tap("#my-items");
    assert.equal(rt.lastNavigation().url, "/pages/items/items");
    return { slug: page.data.slug };
  },

  // An ordinary QR code WeChat opens in the mini-program: query.q = the whole URL, scancode_time.
  async landing_q(env) {
    const rt = runtime(env);
    const url = env.baseUrl + "/c/" + env.slug;
    const page = await rt.open("pages/landing/landing", { q: encodeURIComponent(url), scancode_time: "1700000000" });
    assert.equal(page.data.slug, env.slug);
    assert.equal(lines(page)[0], env.deputyName + " 代表");
    return { slug: page.data.slug };
  },

  // Where the backend is comes from configuration: ext.json's baseUrl first, the developer's backend for a
  // develop build, nothing for a release build without ext.json (never the port written into a page).
  async config_base_url(env) {
    const config = require(path.join(STUB_ROOT, "config.js"));
    const seen = {};
    for (const [name, ext, version] of [
      ["ext", { baseUrl: env.extBaseUrl + "/" }, "release"],
      ["develop", {}, "develop"],
      ["release", {}, "release"],
      ["bad ext", { baseUrl: "javascript:alert(1)" }, "release"],
    ]) {
      runtime(Object.assign({}, env, { extConfig: ext, envVersion: version }));
      seen[name] = config.baseUrl();
    }
    assert.deepEqual(seen, { ext: env.extBaseUrl, develop: config.DEVELOP_BASE_URL, release: "", "bad ext": "" });
    // The app takes it at launch.
    const rt = runtime(Object.assign({}, env, { extConfig: { baseUrl: env.extBaseUrl } }));
    const page = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assert.equal(lines(page)[0], env.deputyName + " 代表");
    return seen;
  },

  // A former deputy's code: it still works, leads to the station, and says why (辞职, 罢免, 任期届满).
  async landing_retired(env) {
    const rt = runtime(env);
    const page = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assert.equal(lines(page)[0], env.deputyName + env.statusLabel + "，不再接收新的留言。您的留言将交给" + env.stationName + "的代表办理。");
    assert.equal(lines(page)[1], env.stationName);
    assert.ok(page.view.has("#retired") && page.view.has("#station") && !page.view.has("#deputy"));
    assert.deepEqual(buttons(page), [
      ["我要留言", "primary"],
      ["查看我的留言", "default"],
    ]);
    rt.shot(page, "landing-retired");
    return { notice: page.data.retiredNotice };
  },

  // A station's code: the station, who is on duty and why, its reception days.
  async landing_station(env) {
    const rt = runtime(env);
    const page = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assert.deepEqual(lines(page), [env.stationName, env.address, env.dutyReason, ...env.receptionDays.map((d) => "接待日 " + d), "我要留言", "查看我的留言"]);
    assert.ok(page.view.has("#station") && !page.view.has("#deputy"));
    rt.shot(page, "landing-station");
    await page.view.tap("#write");
    assert.equal(rt.lastNavigation().url, "/pages/form/form?slug=" + env.slug);
    return {};
  },

  async landing_unknown(env) {
    const rt = runtime(env);
    const unknown = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=AAAAAAAAAAAA") });
    assertErrorPage(unknown, /找不到这个二维码/);
    rt.shot(unknown, "landing-error");
    const nothing = await rt.open("pages/landing/landing", { scene: encodeURIComponent("x=1") });
    assertErrorPage(nothing, /没有识别到/);
    const binding = await rt.open("pages/landing/landing", { scene: encodeURIComponent("b=ABCDEFGHIJKLMNOP") });
    assert.equal(rt.lastNavigation().url, "/pages/bind/bind?binding_code=ABCDEFGHIJKLMNOP");
    return { error: unknown.data.error, bindingData: binding.data.slug };
  },

  // The form: asks for the subscriptions in the tap, reports them, sends the item with the resident's token;
  // then the item page it leads to, and "my items".
  async submit(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    assert.equal(form.data.error, "");
    assert.ok(form.data.templateIds.length > 0 && form.data.templateIds.length <= 3);
    await form.view.input("#body", env.body || MESSAGE);
    assert.equal(form.view.field("#body").value, env.body || MESSAGE);
    let whileSending = null;
    rt.onRequest = (request) => {
      if (request.method === "POST" && request.url.endsWith("/api/v1/items")) whileSending = form.view.buttons();
    };
    await form.view.tap("#submit");
    // While the message is on its way the button spins and cannot be tapped again.
    assert.deepEqual(whileSending, [{ text: "提交留言", id: "submit", kind: "primary", disabled: true, loading: true }]);
    assert.equal(form.data.error, "");
    assert.deepEqual(rt.subscribeRequests, [form.data.templateIds]);
    const logins = rt.requests.filter((r) => r.url.endsWith("/api/v1/wechat/login"));
    assert.equal(logins.length, 1, "one WeChat login, shared by the page's callers");
    const next = rt.lastNavigation();
    assert.equal(next.kind, "redirectTo");

    const opened = rt.startUrl(next.url);
    assertLoading(opened.page, "正在加载…");
    const item = await opened.ready;
    const ref = item.data.ref;
    assert.equal(item.data.item.status, "submitted");
    const shown = lines(item);
    assert.deepEqual(shown.slice(0, 4), ["提交成功", "您的留言编号", formatRef(ref), "代表答复、办结时会通过微信通知您；也可以在“我的留言”里随时查看。"]);
    sees(item, "办理状态 已提交");
    sees(item, "承办代表 " + env.deputyName);
    sees(item, env.body || MESSAGE);
    sees(item, "办理进展\n留言已提交");
    assert.ok(item.view.has("#success"));
    assert.ok(!item.view.has("#rating"), "nothing to rate yet");
    rt.shot(item, "item-new");

    // "My items" lists it.
    const listing = rt.start("pages/items/items", {});
    assertLoading(listing.page, "正在加载…");
    const mine = await listing.ready;
    assert.equal(mine.data.items.length, 1);
    // The row: reference and deputy, the message's first line (up to 30 characters), status.
    const row = [formatRef(ref) + " · " + env.deputyName + " 代表", firstLine(env.body || MESSAGE, 30), "已提交"];
    assert.deepEqual(lines(mine), ["我的留言"].concat(row));
    doesNotSee(mine, "上拉加载更多");
    rt.shot(mine, "items-list");
    await mine.view.tap("#item-" + ref);
    assert.equal(rt.lastNavigation().url, "/pages/item/item?ref=" + ref + "&key=" + item.data.key);
    const again = await rt.openUrl(rt.lastNavigation().url);
    assert.ok(!again.view.has("#success"), "opened from the list, not new");
    assert.deepEqual(lines(again).slice(0, 2), ["留言编号", formatRef(ref)]);
    return { ref: ref, key: item.data.key, templateIds: form.data.templateIds, residentToken: rt.storage.get("residentToken") };
  },

  // A form without WeChat login (WeChat down): the message still goes, anonymously.
  async submit_without_wechat(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    await form.view.input("#body", MESSAGE);
    await form.view.tap("#submit");
    assert.equal(form.data.error, "");
    const item = await rt.openUrl(rt.lastNavigation().url);
    sees(item, "提交成功");
    sees(item, "办理状态 已提交");
    // Without WeChat the page cannot know of notices: it says nothing about them and offers none.
    doesNotSee(item, "微信通知：");
    assert.ok(!item.view.has("#notices-state") && !item.view.has("#subscribe-button"));
    return { ref: item.data.ref, residentToken: rt.storage.get("residentToken") || null };
  },

  // The form of a deputy's code: loading, what it asks, and its refusals before anything is sent.
  async form_checks(env) {
    const rt = runtime(env);
    const { page: form, ready } = rt.start("pages/form/form", { slug: env.slug });
    assertLoading(form, "正在打开…");
    await ready;
    assert.equal(lines(form)[0], "给 " + env.deputyName + " 代表留言");
    assert.ok(!form.view.has("#deputy-picker"), "a deputy's code has no deputy to choose");
    sees(form, "类别\n其他");
    assert.deepEqual(buttons(form), [["提交留言", "primary"]]);
    assert.ok(!form.view.has("#error"));
    rt.shot(form, "form-deputy");
    await form.view.input("#body", "短");
    await form.view.tap("#submit");
    sees(form, /至少5个字/);
    await form.view.input("#body", MESSAGE);
    await form.view.input("#phone", "13812345678");
    await form.view.tap("#submit");
    sees(form, /勾选同意/);
    doesNotSee(form, /至少5个字/);
    rt.shot(form, "form-error");
    assert.deepEqual(buttons(form), [["提交留言", "primary"]]);
    assert.equal(rt.requests.filter((r) => r.method === "POST" && r.url.endsWith("/api/v1/items")).length, 0);
    // Ticking the consent is what lets it go.
    await form.view.change("#consent", ["yes"]);
    assert.equal(form.data.consent, true);
    return {};
  },

  // The form of a station's code: whom to give it to (the deputy on duty first), the category chosen.
  async form_station(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    assert.equal(lines(form)[0], "给 " + env.stationName + " 留言");
    sees(form, "交给哪位代表\n值班代表（按接待安排）");
    assert.deepEqual(
      form.view.field("#deputy-picker").range.map((c) => c.name),
      ["值班代表（按接待安排）"].concat(env.deputyNames.map((n) => n + " 代表")),
    );
    await form.view.change("#deputy-picker", "2");
    sees(form, "交给哪位代表\n" + env.deputyNames[1] + " 代表");
    const categories = form.view.field("#category-picker").range;
    await form.view.change("#category-picker", "0");
    sees(form, "类别\n" + categories[0].label);
    rt.shot(form, "form-station");
    assert.equal(form.payload().deputy_id, form.data.deputyChoices[2].id);
    return {};
  },

  // A form whose code the backend does not know: the backend's message alone.
  async form_unknown(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: "AAAAAAAAAAAA" });
    assertErrorPage(form, /找不到这个二维码/);
    rt.shot(form, "form-load-error");
    return {};
  },

  // A resident who has written nothing yet, then the same list when the backend cannot be reached.
  async items_empty(env) {
    const rt = runtime(env);
    const mine = await rt.open("pages/items/items", {});
    assert.deepEqual(lines(mine), ["还没有留言", "您还没有通过小程序留言。扫描代表或联络站的二维码即可留言。"]);
    assert.deepEqual(buttons(mine), []);
    rt.shot(mine, "items-empty");
    rt.app.globalData.baseUrl = env.closedUrl;
    await mine.onPullDownRefresh();
    assertErrorPage(mine, /网络不太好，请稍后再试/);
    rt.shot(mine, "items-error");
    return {};
  },

  // The deputy: log in, find the item in the inbox, accept, answer, resolve — each on the rendered pages.
  async deputy_reply(env) {
    const rt = runtime(env, env.deputyOpenid);
    const inbox = await rt.open("pages/inbox/inbox", {});
    assert.equal(inbox.data.loggedIn, false);
    assert.deepEqual(lines(inbox), ["代表登录", "用县人大给您的账号登录。", "用户名", "请输入用户名", "密码", "请输入密码", "登录"]);
    assert.deepEqual(buttons(inbox), [["登录", "primary"]]);
    rt.shot(inbox, "inbox-login");
    await inbox.view.input("#username", env.username);
    await inbox.view.input("#password", "wrong password");
    assert.equal(inbox.view.field("#password").password, true);
    await inbox.view.tap("#do-login");
    sees(inbox, /用户名或密码错误/);
    assert.ok(inbox.view.has("#do-login"), "still the login form");
    rt.shot(inbox, "inbox-login-error");
    await inbox.view.input("#password", env.password);
    await inbox.view.tap("#do-login");
    assert.equal(inbox.data.loggedIn, true, inbox.data.error);
    assert.equal(lines(inbox)[0], "待办（1件）");
    sees(inbox, "新留言 1");
    sees(inbox, formatRef(env.ref));
    sees(inbox, (env.body || MESSAGE).split("\n")[0]);
    doesNotSee(inbox, "没有待办的留言");
    doesNotSee(inbox, "代表登录");
    // This account has no WeChat bound: no notices to switch on, and how to bind one.
    sees(inbox, "微信通知：未绑定微信\n请在网页版“绑定微信”页面生成绑定码");
    assert.deepEqual(buttons(inbox), [["退出登录", "default"]]);
    rt.shot(inbox, "inbox-list");
    await inbox.view.tap("#item-" + env.ref);
    assert.equal(rt.lastNavigation().url, "/pages/inbox/item?ref=" + env.ref);

    const opened = rt.startUrl(rt.lastNavigation().url);
    assertLoading(opened.page, "正在加载…");
    const item = await opened.ready;
    assert.equal(item.data.error, "");
    // The whole message, not the inbox's first line; the timeline; what the state allows.
    assert.equal(lines(item)[0], formatRef(env.ref));
    sees(item, "已提交");
    sees(item, env.body || MESSAGE);
    sees(item, "联系方式\n匿名留言，未留联系方式");
    sees(item, "办理经过\n群众留言");
    sees(item, /不予受理.*等操作请在网页版办理。/);
    // A reply takes a new item on (受理) in the same tap; 受理 alone stays for "later" (issue 14).
    assert.deepEqual(buttons(item), [
      ["受理", "primary"],
      ["发送答复", "primary"],
    ]);
    rt.shot(item, "inbox-item-new");
    await item.view.tap("#accept");
    assert.equal(item.data.status, "accepted", item.data.error);
    sees(item, "已受理，群众会收到通知。");
    sees(item, /办理经过[\s\S]*受理/);
    assert.deepEqual(buttons(item), [
      ["发送答复", "primary"],
      ["办结", "default"],
    ]);
    await item.view.tap("#reply");
    sees(item, "请填写答复内容。");
    rt.shot(item, "inbox-item-error");
    await item.view.input("#reply-text", env.answer);
    await item.view.tap("#reply");
    assert.equal(item.data.status, "answered", item.data.error);
    sees(item, "答复已发送给群众。");
    sees(item, env.answer);
    assert.equal(item.view.field("#reply-text").value, "", "the answer box is emptied once sent");
    rt.shot(item, "inbox-item-answered");
    await item.view.tap("#resolve");
    assert.equal(item.data.status, "resolved", item.data.error);
    sees(item, "已办结，等待群众评价。");
    assert.equal(lines(item)[1].split(" · ")[0], "已办结");
    assert.deepEqual(buttons(item), [], "nothing more to do on the phone");
    rt.shot(item, "inbox-item-resolved");
    return { status: item.data.status };
  },

  // The deputy opens a notice's item page (ref only): the contact is masked until revealed.
  async deputy_reveal(env) {
    const { rt } = await deputyLoggedIn(env);
    const item = await rt.openUrl("pages/inbox/item?ref=" + env.ref);
    assert.equal(item.data.error, "");
    sees(item, "联系方式\n" + env.maskedName + " 138****1234");
    doesNotSee(item, env.phone);
    doesNotSee(item, env.name);
    assert.deepEqual(buttons(item), [
      ["查看完整联系方式（将留痕）", "default"],
      ["受理", "primary"],
      ["发送答复", "primary"],
    ]);
    await item.view.tap("#reveal");
    assert.equal(item.data.error, "");
    sees(item, "联系方式\n" + env.name + " " + env.phone);
    assert.ok(!item.view.has("#reveal"), "revealed once: the button is gone");
    assert.deepEqual(buttons(item), [
      ["受理", "primary"],
      ["发送答复", "primary"],
    ]);
    const strangerRt = runtime(env, "o-other");
    const stranger = await strangerRt.openUrl("pages/inbox/item?ref=" + env.ref);
    assertErrorPage(stranger, /请先在“留言办理”页面登录/);
    doesNotSee(stranger, env.name);
    strangerRt.shot(stranger, "inbox-item-login-first");
    return { phone: item.data.contact.phone };
  },

  // The resident opens the notification's page (ref only), sees the answer, and rates.
  async rate(env) {
    const rt = runtime(env);
    const item = await rt.openUrl(env.page);
    assert.equal(item.data.error, "");
    sees(item, "办理状态 已办结");
    sees(item, /代表答复/);
    sees(item, env.answer);
    assert.ok(!item.view.has("#subscribe-button"), "nothing more to be told of, but the rating");
    sees(item, "请您评价办理结果");
    sees(item, "满意\n基本满意\n不满意");
    assert.deepEqual(buttons(item), [["提交评价", "primary"]]);
    rt.shot(item, "item-rate");
    await item.view.tap("#rate");
    sees(item, /是否满意/);
    await item.view.change("#satisfaction", "satisfied");
    await item.view.tap("#rate");
    sees(item, /问题是否已经解决/);
    rt.shot(item, "item-rate-error");
    await item.view.change("#solved", "yes");
    await item.view.tap("#rate");
    assert.equal(item.data.ratingError, "");
    sees(item, "感谢您的评价。");
    assert.ok(!item.view.has("#rating"), "rated: the rating form is gone");
    assert.deepEqual(buttons(item), []);
    sees(item, /办理进展[\s\S]*您的评价/);
    rt.shot(item, "item-rated");
    return { status: item.data.item.status };
  },

  // The item page says whether the resident's notices are on, template by template (env.headline, env.lines: what
  // the test put in the database), and offers to switch on again what is off (env.askIds, long-term ones included).
  // With env.tap the resident taps it and answers WeChat with env.subscribe; the page then shows env.after/afterLines.
  async item_notices(env) {
    const rt = runtime(env);
    const item = await rt.openUrl("pages/item/item?ref=" + env.ref);
    assert.equal(item.data.error, "");
    sees(item, [env.headline].concat(env.lines).join("\n"));
    const offered = env.askIds.length > 0;
    assert.equal(item.view.has("#subscribe-button"), offered);
    if (offered) sees(item, "开启后，受理、答复、办结会在微信里通知您。");
    else doesNotSee(item, "开启后");
    assert.deepEqual(buttons(item).filter(([text]) => text === "开启微信通知"), offered ? [["开启微信通知", "default"]] : []);
    rt.shot(item, env.shot);
    if (!env.tap) return {};
    await item.view.tap("#subscribe-button");
    assert.deepEqual(rt.subscribeRequests, [env.askIds]);
    sees(item, [env.after].concat(env.afterLines).join("\n"));
    sees(item, env.subscribe === "reject" ? "没有开启微信通知，您可以随时在这里查看办理进展。" : "已开启微信通知：下一步办理进展会在微信里通知您。");
    assert.equal(item.view.has("#subscribe-button"), env.subscribe === "reject");
    rt.shot(item, env.shot + "-after");
    return { askIds: rt.subscribeRequests[0] };
  },

  // The deputy asked for more: the item page says "待您补充" with the question; an empty answer is refused on the
  // page, the answer goes, and the page offers a 追问 instead (one a day: the second is refused by the backend).
  async answer_back(env) {
    const rt = runtime(env);
    const item = await rt.openUrl("pages/item/item?ref=" + env.ref);
    assert.equal(item.data.error, "");
    sees(item, "待您补充：代表请您补充以下情况\n" + env.question);
    assert.deepEqual(buttons(item), [["提交补充", "primary"]].concat(item.view.has("#subscribe-button") ? [["开启微信通知", "default"]] : []));
    assert.ok(!item.view.has("#follow-up"), "while the deputy waits, the resident answers");
    rt.shot(item, "item-waiting");
    await item.view.tap("#answer");
    sees(item, "请填写补充内容。");
    await item.view.input("#answer-text", env.answer);
    await item.view.tap("#answer");
    assert.equal(item.data.answerError, "");
    sees(item, "您的补充已送达代表，办理计时已恢复。");
    sees(item, "您的补充\n" + env.answer);
    assert.ok(!item.view.has("#waiting"), "answered: no longer waiting");
    sees(item, "追问办理进展（每天可追问一次）");
    assert.equal(item.view.field("#answer-text").value, "", "the box is emptied once sent");
    rt.shot(item, "item-answered");
    await item.view.input("#answer-text", env.followUp);
    await item.view.tap("#answer");
    sees(item, "您的追问已送达代表。");
    sees(item, "您的追问\n" + env.followUp);
    assert.ok(!item.view.has("#follow-up"), "today's 追问 is spent");
    rt.shot(item, "item-followed-up");
    return { status: item.data.item.status };
  },

  // Another WeChat user cannot open someone else's item from a notification link.
  async stranger(env) {
    const rt = runtime(env, "o-stranger");
    const item = await rt.openUrl("pages/item/item?ref=" + env.ref);
    assertErrorPage(item, /找不到该留言/);
    rt.shot(item, "item-error");
    return {};
  },

  // The deputy with nothing to do: the inbox says the bound WeChat's notices are off (env.headline, env.lines), the
  // deputy switches them on, the page and the inbox opened again say so (env.after, env.afterLines); then logs out.
  async deputy_subscribe(env) {
    const { rt, inbox } = await deputyLoggedIn(env);
    assert.equal(lines(inbox)[0], "待办（0件）");
    sees(inbox, "待办留言\n没有待办的留言。");
    sees(inbox, [env.headline].concat(env.lines).join("\n"));
    sees(inbox, "开启后，有新留言、超期留言时会在微信里提醒您。");
    assert.deepEqual(buttons(inbox), [
      ["开启微信通知", "default"],
      ["退出登录", "default"],
    ]);
    rt.shot(inbox, "inbox-empty");
    await inbox.view.tap("#subscribe");
    sees(inbox, /已开启：有新留言时会在微信里提醒您/);
    sees(inbox, [env.after].concat(env.afterLines).join("\n"));
    assert.deepEqual(buttons(inbox), [["退出登录", "default"]]);
    const templateIds = rt.subscribeRequests[0];
    rt.shot(inbox, "inbox-notices-on");
    // The inbox opened again (onShow) reads the same from the backend.
    const again = await rt.open("pages/inbox/inbox", {});
    sees(again, [env.after].concat(env.afterLines).join("\n"));
    doesNotSee(again, "开启后");
    await again.view.tap("#logout");
    assert.equal(lines(again)[0], "代表登录");
    assert.deepEqual(buttons(again), [["登录", "primary"]]);
    doesNotSee(again, "微信通知");
    return { templateIds: templateIds };
  },

  // Photos: a 12 MB camera photo and a PNG chosen, shrunk on the phone (long side 2,048, JPEG), one taken off
  // and chosen again, then sent one by one after the message; what was sent is a few hundred KB each.
  async photos(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    sees(form, "照片（选填，最多3张，会压缩后发送）");
    await form.view.input("#body", MESSAGE);
    rt.media.push([env.files.camera, env.files.png]);
    await form.view.tap("#add-photos");
    assert.equal(form.data.photoError, "");
    assert.equal(form.data.photos.length, 2);
    const camera = form.data.photos[0];
    assert.equal(Math.max(camera.width, camera.height), 2048, "the long side shrunk to 2,048");
    assert.ok(camera.size < env.cameraBytes / 4, "compressed: " + camera.size + " of " + env.cameraBytes);
    assert.ok(form.view.has("#remove-photo-1"));
    rt.shot(form, "form-photos");
    await form.view.tap("#remove-photo-1");
    assert.equal(form.data.photos.length, 1);
    assert.ok(!form.view.has("#remove-photo-1"));
    rt.media.push([env.files.png]);
    await form.view.tap("#add-photos");
    assert.equal(form.data.photos.length, 2);
    assert.deepEqual(form.view.buttons().map((b) => b.text), ["提交留言"], "adding a photo is WeUI's uploader box, not a button");
    await form.view.tap("#submit");
    assert.equal(form.data.error, "");
    assert.deepEqual(rt.uploads.map((u) => u.status), [201, 201]);
    assert.deepEqual(rt.toasts.filter((t) => t.kind === "showModal"), [], "no photo refused");
    const next = rt.lastNavigation();
    assert.equal(next.kind, "redirectTo");
    const item = await rt.openUrl(next.url);
    // The timeline says when each step happened, in China time.
    const when = lines(item)[lines(item).indexOf("留言已提交") + 1];
    assert.match(when, /^\d{4}年\d{2}月\d{2}日 \d{2}:\d{2}$/);
    rt.shot(item, "item-with-times");
    return { ref: item.data.ref, key: item.data.key, uploaded: rt.uploads.map((u) => u.size), when: when };
  },

  // Photos refused on the phone, each with a Chinese message and nothing added: a GIF, a file that is no image,
  // one still too big after shrinking (the backend's limit, from the code's answer); the others chosen with them
  // are kept. A photo the backend refuses after the message is named in a dialog; the message is in all the same.
  async photos_refused(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    assert.equal(form.data.limits.photo_max_bytes, env.maxBytes);
    rt.media.push([env.files.gif, env.files.small]);
    await form.view.tap("#add-photos");
    assert.equal(form.data.photos.length, 1, "the small photo is kept");
    sees(form, "只能上传 JPG 或 PNG 格式的照片，这个文件不是。");
    rt.media.push([env.files.text]);
    await form.view.tap("#add-photos");
    sees(form, "只能上传 JPG 或 PNG 格式的照片，这个文件不是。");
    rt.media.push([env.files.camera]);
    await form.view.tap("#add-photos");
    assert.equal(form.data.photos.length, 1);
    sees(form, /照片压缩后仍超过 [0-9.]+ MB，请换一张。/);
    rt.shot(form, "form-photo-refused");
    rt.media.push([]); // the resident cancels
    await form.view.tap("#add-photos");
    assert.equal(form.data.photoError, "");
    await form.view.input("#body", MESSAGE);
    await form.view.tap("#submit");
    assert.deepEqual(rt.uploads.map((u) => u.status), [400]);
    const dialogs = rt.toasts.filter((t) => t.kind === "showModal");
    assert.equal(dialogs.length, 1);
    assert.equal(dialogs[0].title, "照片没有全部发出");
    assert.match(dialogs[0].content, /^留言已经提交。照片尺寸过大/);
    assert.equal(rt.lastNavigation().kind, "redirectTo");
    return { uploads: rt.uploads.length };
  },

  // Binding: the scene of the binding code's mini-program code; a code used twice; no code at all.
  async bind(env) {
    const rt = runtime(env, env.deputyOpenid);
    const page = await rt.open("pages/bind/bind", { scene: encodeURIComponent("b=" + env.bindingCode) });
    assert.equal(page.view.field("#binding-code").value, env.bindingCode);
    assert.deepEqual(buttons(page), [["确认绑定", "primary"]]);
    rt.shot(page, "bind-form");
    await page.view.tap("#bind");
    assert.equal(page.data.error, "");
    assert.deepEqual(lines(page).slice(0, 1), ["绑定成功"]);
    sees(page, env.displayName + "，有新留言时会在微信里提醒您。");
    assert.deepEqual(buttons(page), [["去留言办理", "primary"]]);
    rt.shot(page, "bind-done");
    await page.view.tap("#to-inbox");
    assert.equal(rt.lastNavigation().url, "/pages/inbox/inbox");
    // Binding signed the deputy in: the inbox opens on their items, no password asked.
    const inbox = await rt.open("pages/inbox/inbox", {});
    assert.equal(inbox.data.loggedIn, true, "signed in by the binding");
    assert.ok(!inbox.view.has("#password"), "no password asked after binding");
    rt.shot(inbox, "inbox-after-binding");
    const again = await rt.open("pages/bind/bind", { scene: encodeURIComponent("b=" + env.bindingCode) });
    await again.view.tap("#bind");
    sees(again, /已经使用过/);
    doesNotSee(again, "绑定成功");
    rt.shot(again, "bind-error");
    const typed = await rt.open("pages/bind/bind", {});
    assert.equal(typed.view.field("#binding-code").value, "");
    await typed.view.tap("#bind");
    sees(typed, "请扫描“绑定微信”页面上的码，或输入绑定码。");
    await typed.view.input("#binding-code", " AAAAAAAAAAAAAAAA ");
    assert.equal(typed.view.field("#binding-code").value, "AAAAAAAAAAAAAAAA", "typed, trimmed");
    await typed.view.tap("#bind");
    assert.ok(typed.view.has("#error"), "an unknown code is refused on the page");
    doesNotSee(typed, "请扫描“绑定微信”页面上的码");
    doesNotSee(typed, "绑定成功");
    return { displayName: page.data.displayName };
  },

  // 同意公示 (issue 15): unticked by default, with the H5 form's words; the request carries it either way.
  async publish_consent(env) {
    const sent = [];
    for (const tick of [false, true]) {
      const rt = runtime(env);
      const form = await rt.open("pages/form/form", { slug: env.slug });
      sees(form, "同意公示：办结后，本留言和办理结果可以在联络站的公示页上公开（不显示姓名、电话，文中的手机号也会隐去）。不勾选则不公开。");
      assert.equal(form.view.field("#publish-consent-box").checked, false, "unticked until the resident ticks it");
      assert.equal(form.data.publishConsent, false);
      await form.view.input("#body", MESSAGE);
      if (tick) {
        await form.view.change("#publish-consent", ["yes"]);
        assert.equal(form.view.field("#publish-consent-box").checked, true);
        rt.shot(form, "form-publish-consent");
      }
      await form.view.tap("#submit");
      assert.equal(form.data.error, "");
      const posts = rt.requests.filter((r) => r.method === "POST" && r.url.endsWith("/api/v1/items"));
      assert.equal(posts.length, 1);
      assert.equal(posts[0].body.publish_consent, tick, "the request says what the box says");
      const item = await rt.openUrl(rt.lastNavigation().url);
      sent.push({ ref: item.data.ref, publish_consent: posts[0].body.publish_consent });
    }
    return { sent: sent };
  },

  // A topic's code (专题码): the landing shows the topic, its question and closing day; the form asks the question
  // with its choices (one required, refused on the page before anything is sent), no deputy to choose; the message
  // goes as the H5 form sends it, with the choice.
  async topic_form(env) {
    const rt = runtime(env);
    const landing = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assert.deepEqual(lines(landing), [
      env.kindLabel + " · " + env.stationName,
      env.title,
      env.prompt,
      "征集截止：" + env.closesOn + "（含当天）",
      "我要留言",
      "查看我的留言",
    ]);
    assert.ok(landing.view.has("#topic") && !landing.view.has("#station") && !landing.view.has("#deputy"));
    rt.shot(landing, "landing-topic");
    await landing.view.tap("#write");
    assert.equal(rt.lastNavigation().url, "/pages/form/form?slug=" + env.slug);

    const form = await rt.openUrl(rt.lastNavigation().url);
    assert.deepEqual(lines(form).slice(0, 3), [env.kindLabel + " · " + env.stationName, env.title, "征集截止：" + env.closesOn + "（含当天）"]);
    sees(form, [env.prompt + "（必选）"].concat(env.choices).join("\n"));
    sees(form, "具体意见（必填）");
    assert.ok(!form.view.has("#deputy-picker"), "a topic's message goes to the station: nobody to choose");
    assert.deepEqual(buttons(form), [["提交留言", "primary"]]);
    rt.shot(form, "form-topic");
    await form.view.input("#body", env.body);
    await form.view.tap("#submit");
    sees(form, "请选择一项。");
    assert.equal(rt.requests.filter((r) => r.method === "POST" && r.url.endsWith("/api/v1/items")).length, 0);
    rt.shot(form, "form-topic-error");
    await form.view.change("#topic-choices", env.choices[1]);
    assert.equal(form.data.choice, env.choices[1]);
    await form.view.tap("#submit");
    assert.equal(form.data.error, "");
    const post = rt.requests.find((r) => r.method === "POST" && r.url.endsWith("/api/v1/items"));
    assert.equal(post.body.choice, env.choices[1]);
    assert.ok(!("deputy_id" in post.body), "no deputy sent for a topic");
    const item = await rt.openUrl(rt.lastNavigation().url);
    sees(item, "提交成功");
    sees(item, "【" + env.choices[1] + "】" + env.body);
    return { ref: item.data.ref };
  },

  // A topic without choices (a 监测点 asking one question): the question is the message's own label, nothing to pick.
  async topic_form_open(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    assert.equal(lines(form)[1], env.title);
    sees(form, env.prompt + "（必填）");
    doesNotSee(form, "（必选）");
    doesNotSee(form, "具体意见");
    assert.ok(!form.view.has("#topic-choices") && !form.view.has("#deputy-picker"));
    rt.shot(form, "form-topic-open");
    await form.view.input("#body", env.body);
    await form.view.tap("#submit");
    assert.equal(form.data.error, "");
    const post = rt.requests.find((r) => r.method === "POST" && r.url.endsWith("/api/v1/items"));
    assert.ok(!("choice" in post.body) && !("deputy_id" in post.body), JSON.stringify(post.body));
    const item = await rt.openUrl(rt.lastNavigation().url);
    sees(item, "提交成功");
    return { ref: item.data.ref };
  },

  // A topic's code past its closing day: a Chinese notice, no form, no button; the form page says the same.
  async topic_closed(env) {
    const rt = runtime(env);
    const landing = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assert.deepEqual(lines(landing), ["意见征集已结束", env.notice, "如有其他意见建议，可以扫描联络站或代表海报上的二维码留言。"]);
    assert.deepEqual(buttons(landing), []);
    assert.ok(landing.view.has("#topic-closed") && !landing.view.has("#write"));
    rt.shot(landing, "landing-topic-closed");
    const form = await rt.open("pages/form/form", { slug: env.slug });
    assertErrorPage(form, /意见征集已经结束/);
    assert.ok(!form.view.has("#submit") && !form.view.has("#body"));
    return { notice: landing.data.closedNotice };
  },

  // A deputy signed in here scans their station's code: 签到, then 签退, as on the H5 page (POST /api/v1/presence
  // with what the button means); "不是签到？" leads to the residents' page.
  async presence(env) {
    const { rt, inbox } = await deputyLoggedIn(env);
    sees(inbox, "到联络站时，用本微信扫联络站的二维码，即可签到、签退。"); // how a deputy learns of it
    const scene = { scene: encodeURIComponent("c=" + env.slug) };
    const page = await rt.open("pages/landing/landing", scene);
    assert.deepEqual(lines(page), [
      "进站签到",
      env.stationName,
      env.deputyName + "代表 · 今天是您的接待日",
      "尚未签到。",
      "签到",
      "您的接待日：" + env.rules.join("、"),
      "不是签到？查看群众留言页",
    ]);
    assert.deepEqual(buttons(page), [
      ["签到", "primary"],
      ["不是签到？查看群众留言页", "default"],
    ]);
    rt.shot(page, "landing-presence");
    await page.view.tap("#check-in");
    assert.equal(page.data.presenceError, "");
    sees(page, "已签到。离开时再扫一次联络站码或点“签退”。");
    sees(page, /已签到：\d{2}:\d{2} 起，已在站 0 分钟。/);
    assert.deepEqual(buttons(page), [
      ["签退", "primary"],
      ["不是签到？查看群众留言页", "default"],
    ]);
    rt.shot(page, "landing-presence-in");
    // Scanned again (the page opened anew): still in, 签退 offered.
    const again = await rt.open("pages/landing/landing", scene);
    sees(again, /已签到：\d{2}:\d{2} 起/);
    await again.view.tap("#check-out");
    sees(again, "已签退。本次在站0分钟。");
    sees(again, "尚未签到。");
    assert.deepEqual(buttons(again)[0], ["签到", "primary"]);
    rt.shot(again, "landing-presence-out");
    const posts = rt.requests.filter((r) => r.method === "POST" && r.url.endsWith("/api/v1/presence"));
    assert.deepEqual(
      posts.map((r) => r.body),
      [
        { station_id: env.stationId, intent: "in" },
        { station_id: env.stationId, intent: "out" },
      ],
    );
    await again.view.tap("#as-resident");
    assert.ok(again.view.has("#station") && !again.view.has("#presence"));
    assert.deepEqual(buttons(again), [
      ["我要留言", "primary"],
      ["查看我的留言", "default"],
    ]);
    return { posts: posts.length };
  },

  // Whoever may not sign in at this station sees the residents' page: a deputy of another station, a resident.
  async presence_not_here(env) {
    const { rt } = await deputyLoggedIn(env);
    const page = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assert.ok(page.view.has("#station") && !page.view.has("#presence"), page.view.text());
    assert.deepEqual(buttons(page), [
      ["我要留言", "primary"],
      ["查看我的留言", "default"],
    ]);
    const resident = runtime(env);
    const seen = await resident.open("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assert.ok(seen.view.has("#station") && !seen.view.has("#presence"));
    assert.equal(resident.requests.filter((r) => r.url.includes("/api/v1/presence")).length, 0);
    return {};
  },
};

async function main() {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) {
    console.error("unknown scenario " + name + "; known: " + Object.keys(scenarios).join(", "));
    process.exit(2);
  }
  const env = JSON.parse(process.env.STUB_ENV || "{}");
  const result = await scenario(env);
  console.log("RESULT " + JSON.stringify(result));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
