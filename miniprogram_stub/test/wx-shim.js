// A small stand-in for the mini-program runtime, to run the pages' logic in Node against a running backend:
// wx.request over Node's http, wx.login through the local WeChat sandbox's login-code control, storage in
// memory, navigation and toasts recorded, wx.requestSubscribeMessage answered as the test chooses (and an
// "accept" recorded in the sandbox, as WeChat would), App() capturing the app. Pages are rendered by
// page-host.js (WeChat's template compiler and component engine), so every step shows on a real page.
"use strict";

const http = require("http");
const https = require("https");
const fs = require("fs");
const path = require("path");
const { hostPage, settle, STUB_ROOT } = require("./page-host.js");


function httpJson(method, url, body, headers) {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const transport = target.protocol === "https:" ? https : http;
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = transport.request(
      target,
      {
        method: method,
        headers: Object.assign(
          payload === undefined ? {} : { "Content-Length": Buffer.byteLength(payload) },
          headers || {},
        ),
        timeout: 30000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let data = text;
          try {
            data = JSON.parse(text);
          } catch (_) {
            // not JSON: wx.request hands the text over as it is
          }
          resolve({ statusCode: res.statusCode, data: data, header: res.headers });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

function querySuffix(data) {
  if (!data || typeof data !== "object") return "";
  const parts = Object.keys(data).map((k) => encodeURIComponent(k) + "=" + encodeURIComponent(data[k]));
  return parts.length ? "?" + parts.join("&") : "";
}

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

// options: baseUrl (the backend), sandboxUrl (…/_wechat/), openid (who wx.login is), subscribe ("accept" …),
// shotsDir (where rt.shot writes what a page shows)
function createRuntime(options) {
  const rt = {
    baseUrl: options.baseUrl.replace(/\/$/, ""),
    sandboxUrl: options.sandboxUrl.endsWith("/") ? options.sandboxUrl : options.sandboxUrl + "/",
    openid: options.openid,
    subscribe: options.subscribe || "accept",
    storage: new Map(),
    navigations: [],
    toasts: [],
    requests: [],
    subscribeRequests: [],
    app: null,
    onRequest: null,
  };

  const ui = (name) => (opts) => {
    rt.toasts.push({ kind: name, title: opts && opts.title, content: opts && opts.content });
    if (opts && opts.success) opts.success({ confirm: true, cancel: false, errMsg: name + ":ok" });
    if (opts && opts.complete) opts.complete({});
  };
  const navigate = (kind) => (opts) => {
    rt.navigations.push({ kind: kind, url: opts.url });
    if (opts.success) opts.success({ errMsg: kind + ":ok" });
  };

  global.wx = {
    request(opts) {
      const method = (opts.method || "GET").toUpperCase();
      let url = opts.url;
      let body;
      if (method === "GET") url += querySuffix(opts.data);
      else if (opts.data !== undefined) body = opts.data;
      rt.requests.push({ method: method, url: url });
      if (rt.onRequest) rt.onRequest({ method: method, url: url }); // what the page shows while it waits
      httpJson(method, url, body, opts.header).then(
        (res) => {
          res.errMsg = "request:ok";
          if (opts.success) opts.success(res);
          if (opts.complete) opts.complete(res);
        },
        (err) => {
          const res = { errMsg: "request:fail " + err.message };
          if (opts.fail) opts.fail(res);
          if (opts.complete) opts.complete(res);
        },
      );
    },
    login(opts) {
      httpJson("POST", rt.sandboxUrl + "sandbox/login-code", { openid: rt.openid }, { "Content-Type": "application/json" }).then(
        (res) => {
          if (res.statusCode === 200 && opts.success) opts.success({ code: res.data.code, errMsg: "login:ok" });
          else if (opts.fail) opts.fail({ errMsg: "login:fail " + res.statusCode });
        },
        (err) => opts.fail && opts.fail({ errMsg: "login:fail " + err.message }),
      );
    },
    requestSubscribeMessage(opts) {
      rt.subscribeRequests.push(opts.tmplIds.slice());
      if (opts.tmplIds.length > 3) {
        if (opts.fail) opts.fail({ errMsg: "requestSubscribeMessage:fail", errCode: 20003 });
        return;
      }
      const result = { errMsg: "requestSubscribeMessage:ok" };
      opts.tmplIds.forEach((id) => {
        result[id] = rt.subscribe;
      });
      const accepted = rt.subscribe === "accept" ? opts.tmplIds : [];
      Promise.all(
        accepted.map((id) =>
          httpJson("POST", rt.sandboxUrl + "sandbox/subscribe", { openid: rt.openid, template_id: id }, { "Content-Type": "application/json" }),
        ),
      ).then(() => opts.success && opts.success(result));
    },
    getStorageSync(key) {
      return rt.storage.has(key) ? clone(rt.storage.get(key)) : "";
    },
    setStorageSync(key, value) {
      rt.storage.set(key, clone(value));
    },
    removeStorageSync(key) {
      rt.storage.delete(key);
    },
    clearStorageSync() {
      rt.storage.clear();
    },
    showToast: ui("showToast"),
    showModal: ui("showModal"),
    showLoading: ui("showLoading"),
    hideLoading: ui("hideLoading"),
    stopPullDownRefresh() {},
    navigateTo: navigate("navigateTo"),
    redirectTo: navigate("redirectTo"),
    reLaunch: navigate("reLaunch"),
    switchTab: navigate("switchTab"),
    navigateBack(opts) {
      rt.navigations.push({ kind: "navigateBack", delta: (opts && opts.delta) || 1 });
    },
  };
  global.App = (def) => {
    rt.app = def;
  };
  global.getApp = () => rt.app;

  const appFile = path.join(STUB_ROOT, "app.js");
  delete require.cache[require.resolve(appFile)];
  require(appFile);
  rt.app.globalData.baseUrl = rt.baseUrl;

  // The page object of a route ("pages/form/form"), rendered by WeChat's template compiler and component engine
  // (page-host.js): its data, functions and setData as the runtime gives them, and `view` to read and use it.
  rt.page = (route) => hostPage(route);

  // Open a page: onLoad(query), then onShow; wait for what they started. `started` gives the page before
  // that wait, as a person sees it while it loads.
  rt.start = (route, query) => {
    const page = rt.page(route);
    const ready = (async () => {
      if (page.onLoad) await page.onLoad(query || {});
      if (page.onShow) await page.onShow();
      await settle();
      return page;
    })();
    return { page: page, ready: ready };
  };
  rt.open = (route, query) => rt.start(route, query).ready;

  // What a person sees now, kept for the screenshots (when the test gives STUB_ENV.shotsDir).
  rt.shot = (page, name) => {
    if (!options.shotsDir) return;
    const file = path.join(options.shotsDir, name + ".json");
    fs.writeFileSync(file, JSON.stringify({ name: name, route: page.route, html: page.view.html(), lines: page.view.visibleLines() }));
  };

  // A page URL as wx.navigateTo takes it ("/pages/item/item?ref=…"), or a notification's page ("pages/item/item?ref=…").
  rt.startUrl = (url) => {
    const [route, search] = url.replace(/^\//, "").split("?");
    const query = {};
    new URLSearchParams(search || "").forEach((value, key) => {
      query[key] = value;
    });
    return rt.start(route, query);
  };
  rt.openUrl = (url) => rt.startUrl(url).ready;

  rt.lastNavigation = () => rt.navigations[rt.navigations.length - 1];
  return rt;
}

module.exports = { createRuntime, httpJson, STUB_ROOT };
