// Scenarios of the mini-program's pages, run in Node with the wx shim against a running backend.
//   node scenarios.js <name>   with STUB_ENV='{"baseUrl", "sandboxUrl", "openid", …}'
// Prints "RESULT <json>" on success (what the Python test checks further); exits 1 on a failed assertion.
"use strict";

const assert = require("node:assert/strict");
const path = require("path");
const { createRuntime, inputEvent, tapEvent, STUB_ROOT } = require("./wx-shim.js");

const MESSAGE = "村口的路灯坏了三个月，晚上出行很不方便，请帮忙修一修。";

function runtime(env, openid) {
  return createRuntime({ baseUrl: env.baseUrl, sandboxUrl: env.sandboxUrl, openid: openid || env.openid, subscribe: env.subscribe });
}

// The deputy's WeChat, logged in on the inbox page.
async function deputyLoggedIn(env) {
  const rt = runtime(env, env.deputyOpenid);
  const inbox = await rt.open("pages/inbox/inbox", {});
  inbox.onUsername(inputEvent(env.username));
  inbox.onPassword(inputEvent(env.password));
  await inbox.onLogin();
  assert.equal(inbox.data.loggedIn, true, inbox.data.error);
  return { rt, inbox };
}

const scenarios = {
  // Every page's definition: its handlers, for the check that each bind* in the .wxml exists.
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

  // A mini-program code: query.scene = encodeURIComponent("c=<slug>").
  async landing_scene(env) {
    const rt = runtime(env);
    const page = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=" + env.slug) });
    assert.equal(page.data.error, "");
    assert.equal(page.data.slug, env.slug);
    assert.equal(page.data.deputy.name, env.deputyName);
    page.onWrite();
    assert.equal(rt.lastNavigation().url, "/pages/form/form?slug=" + env.slug);
    return { slug: page.data.slug };
  },

  // An ordinary QR code WeChat opens in the mini-program: query.q = the whole URL, scancode_time.
  async landing_q(env) {
    const rt = runtime(env);
    const url = env.baseUrl + "/c/" + env.slug;
    const page = await rt.open("pages/landing/landing", { q: encodeURIComponent(url), scancode_time: "1700000000" });
    assert.equal(page.data.slug, env.slug);
    assert.equal(page.data.deputy.name, env.deputyName);
    return { slug: page.data.slug };
  },

  async landing_unknown(env) {
    const rt = runtime(env);
    const unknown = await rt.open("pages/landing/landing", { scene: encodeURIComponent("c=AAAAAAAAAAAA") });
    assert.match(unknown.data.error, /找不到这个二维码/);
    const nothing = await rt.open("pages/landing/landing", { scene: encodeURIComponent("x=1") });
    assert.match(nothing.data.error, /没有识别到/);
    const binding = await rt.open("pages/landing/landing", { scene: encodeURIComponent("b=ABCDEFGHIJKLMNOP") });
    assert.equal(rt.lastNavigation().url, "/pages/bind/bind?binding_code=ABCDEFGHIJKLMNOP");
    return { error: unknown.data.error, bindingData: binding.data.slug };
  },

  // The form: asks for the subscriptions in the tap, reports them, sends the item with the resident's token.
  async submit(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    assert.equal(form.data.error, "");
    assert.ok(form.data.templateIds.length > 0 && form.data.templateIds.length <= 3);
    form.onBodyInput(inputEvent(env.body || MESSAGE));
    await form.onSubmit();
    assert.equal(form.data.error, "");
    assert.deepEqual(rt.subscribeRequests, [form.data.templateIds]);
    const logins = rt.requests.filter((r) => r.url.endsWith("/api/v1/wechat/login"));
    assert.equal(logins.length, 1, "one WeChat login, shared by the page's callers");
    const next = rt.lastNavigation();
    assert.equal(next.kind, "redirectTo");
    const item = await rt.openUrl(next.url);
    assert.equal(item.data.error, "");
    assert.equal(item.data.item.status, "submitted");
    assert.equal(item.data.item.body, env.body || MESSAGE);

    // "My items" lists it.
    const mine = await rt.open("pages/items/items", {});
    assert.equal(mine.data.items.length, 1);
    assert.equal(mine.data.items[0].ref, item.data.ref);
    mine.onOpen(tapEvent({ ref: mine.data.items[0].ref, key: mine.data.items[0].key }));
    assert.equal(rt.lastNavigation().url, "/pages/item/item?ref=" + item.data.ref + "&key=" + item.data.key);
    return { ref: item.data.ref, key: item.data.key, templateIds: form.data.templateIds, residentToken: rt.storage.get("residentToken") };
  },

  // A form without WeChat login (WeChat down): the message still goes, anonymously.
  async submit_without_wechat(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    form.onBodyInput(inputEvent(MESSAGE));
    await form.onSubmit();
    assert.equal(form.data.error, "");
    const item = await rt.openUrl(rt.lastNavigation().url);
    assert.equal(item.data.item.status, "submitted");
    return { ref: item.data.ref, residentToken: rt.storage.get("residentToken") || null };
  },

  async form_checks(env) {
    const rt = runtime(env);
    const form = await rt.open("pages/form/form", { slug: env.slug });
    form.onBodyInput(inputEvent("短"));
    await form.onSubmit();
    assert.match(form.data.error, /至少5个字/);
    form.onBodyInput(inputEvent(MESSAGE));
    form.onPhoneInput(inputEvent("13812345678"));
    await form.onSubmit();
    assert.match(form.data.error, /勾选同意/);
    assert.equal(rt.requests.filter((r) => r.method === "POST" && r.url.endsWith("/api/v1/items")).length, 0);
    return {};
  },

  // The deputy: log in, find the item in the inbox, accept, answer, resolve.
  async deputy_reply(env) {
    const rt = runtime(env, env.deputyOpenid);
    const inbox = await rt.open("pages/inbox/inbox", {});
    assert.equal(inbox.data.loggedIn, false);
    inbox.onUsername(inputEvent(env.username));
    inbox.onPassword(inputEvent("wrong password"));
    await inbox.onLogin();
    assert.match(inbox.data.error, /用户名或密码错误/);
    inbox.onPassword(inputEvent(env.password));
    await inbox.onLogin();
    assert.equal(inbox.data.loggedIn, true, inbox.data.error);
    assert.ok(inbox.data.items.some((row) => row.ref === env.ref), "the item is in the inbox");
    inbox.onOpen(tapEvent({ ref: env.ref }));
    const item = await rt.openUrl(rt.lastNavigation().url);
    assert.equal(item.data.error, "");
    assert.equal(item.data.status, "submitted");
    // The whole message, not the inbox's first line; the timeline; what the state allows.
    assert.equal(item.data.detail.item.body, env.body || MESSAGE);
    assert.deepEqual(item.data.detail.timeline.map((e) => e.label), ["群众留言"]);
    assert.equal(item.data.contact.has_contact, false);
    assert.deepEqual(item.data.can, { accept: true, reply: false, resolve: false });
    assert.match(item.data.otherActions, /不予受理/);
    await item.onAccept();
    assert.deepEqual(item.data.can, { accept: false, reply: true, resolve: true });
    assert.ok(item.data.detail.timeline.some((e) => e.label === "受理"), "the timeline was reloaded");
    assert.equal(item.data.status, "accepted", item.data.error);
    await item.onReply();
    assert.match(item.data.error, /请填写答复内容/);
    item.onReplyInput(inputEvent(env.answer));
    await item.onReply();
    assert.equal(item.data.status, "answered", item.data.error);
    await item.onResolve();
    assert.equal(item.data.status, "resolved", item.data.error);
    return { status: item.data.status };
  },

  // The deputy opens a notice's item page (ref only): the contact is masked until revealed.
  async deputy_reveal(env) {
    const { rt } = await deputyLoggedIn(env);
    const item = await rt.openUrl("pages/inbox/item?ref=" + env.ref);
    assert.equal(item.data.error, "");
    assert.equal(item.data.contact.has_contact, true);
    assert.equal(item.data.contact.phone, "138****1234");
    assert.ok(!JSON.stringify(item.data.detail).includes("13812341234"), "masked before the reveal");
    await item.onReveal();
    assert.equal(item.data.error, "");
    assert.equal(item.data.contact.phone, "13812341234");
    assert.equal(item.data.contact.revealed, true);
    const stranger = await runtime(env, "o-other").openUrl("pages/inbox/item?ref=" + env.ref);
    assert.match(stranger.data.error, /请先在“留言办理”页面登录/);
    return { phone: item.data.contact.phone };
  },

  // The resident opens the notification's page (ref only), sees the answer, and rates.
  async rate(env) {
    const rt = runtime(env);
    const item = await rt.openUrl(env.page);
    assert.equal(item.data.error, "");
    assert.equal(item.data.item.status, "resolved");
    assert.equal(item.data.canSubscribe, false); // nothing more to be told of, but the rating
    const labels = item.data.item.timeline.map((e) => e.label);
    assert.ok(labels.includes("代表答复"), labels.join(","));
    assert.ok(item.data.item.timeline.some((e) => e.body === env.answer));
    assert.equal(item.data.canRate, true);
    await item.onRate();
    assert.match(item.data.ratingError, /是否满意/);
    item.onSatisfaction(inputEvent("satisfied"));
    item.onSolved(inputEvent("yes"));
    await item.onRate();
    assert.equal(item.data.ratingError, "");
    assert.equal(item.data.notice, "感谢您的评价。");
    assert.equal(item.data.canRate, false);
    assert.equal(item.data.item.timeline[item.data.item.timeline.length - 1].label, "您的评价");
    return { status: item.data.item.status };
  },

  // The resident, whose "received" notice spent the progress credit, asks for the next notices again.
  async resubscribe(env) {
    const rt = runtime(env);
    const item = await rt.openUrl("pages/item/item?ref=" + env.ref);
    assert.equal(item.data.error, "");
    assert.equal(item.data.canSubscribe, true);
    await item.onSubscribe();
    assert.deepEqual(rt.subscribeRequests, [item.data.templateIds]);
    assert.match(item.data.notice, env.subscribe === "reject" ? /没有开启进展提醒/ : /已开启微信提醒/);
    return { templateIds: item.data.templateIds };
  },

  // Another WeChat user cannot open someone else's item from a notification link.
  async stranger(env) {
    const rt = runtime(env, "o-stranger");
    const item = await rt.openUrl("pages/item/item?ref=" + env.ref);
    assert.match(item.data.error, /找不到该留言/);
    return {};
  },

  // The deputy subscribes to new-item notices from the inbox (reported with the staff token).
  async deputy_subscribe(env) {
    const { rt, inbox } = await deputyLoggedIn(env);
    await inbox.onSubscribe();
    assert.match(inbox.data.notice, /已开启/);
    return { templateIds: rt.subscribeRequests[0] };
  },

  // Binding: the scene of the binding code's mini-program code.
  async bind(env) {
    const rt = runtime(env, env.deputyOpenid);
    const page = await rt.open("pages/bind/bind", { scene: encodeURIComponent("b=" + env.bindingCode) });
    assert.equal(page.data.bindingCode, env.bindingCode);
    await page.onBind();
    assert.equal(page.data.error, "");
    assert.equal(page.data.done, true);
    const again = await rt.open("pages/bind/bind", { scene: encodeURIComponent("b=" + env.bindingCode) });
    await again.onBind();
    assert.match(again.data.error, /已经使用过/);
    return { displayName: page.data.displayName };
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
