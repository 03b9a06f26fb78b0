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
const os = require("os");
const { execFileSync } = require("child_process");
const { hostPage, settle, STUB_ROOT } = require("./page-host.js");


function httpJson(method, url, body, headers) {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const transport = target.protocol === "https:" ? https : http;
    const payload =
      body === undefined ? undefined : typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
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

// The size and format of a JPEG or PNG file from its header, as wx.getImageInfo reports them; null for anything else.
function imageInfo(file) {
  const data = fs.readFileSync(file);
  if (data.length > 24 && data.readUInt32BE(0) === 0x89504e47) {
    return { width: data.readUInt32BE(16), height: data.readUInt32BE(20), type: "png" };
  }
  if (data.length > 4 && data[0] === 0xff && data[1] === 0xd8) {
    let at = 2;
    while (at + 9 < data.length) {
      if (data[at] !== 0xff) return null;
      const marker = data[at + 1];
      const length = data.readUInt16BE(at + 2);
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { width: data.readUInt16BE(at + 7), height: data.readUInt16BE(at + 5), type: "jpeg" };
      }
      at += 2 + length;
    }
  }
  return null;
}

// wx.compressImage as the phone does it: scaled to compressedWidth (keeping the ratio), written as a JPEG at
// `quality`. Done by Pillow through the tests' Python (options.python): Node has no image codec of its own.
const COMPRESS = [
  "import sys",
  "from PIL import Image",
  "src, out, quality, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])",
  "image = Image.open(src).convert('RGB')",
  "if width and width != image.width:",
  "    image = image.resize((width, max(1, round(image.height * width / image.width))), Image.LANCZOS)",
  "image.save(out, 'JPEG', quality=quality)",
].join("\n");

// One file as multipart/form-data under `name`, as wx.uploadFile sends it.
function multipart(name, file) {
  const boundary = "----wxupload" + Date.now().toString(16);
  const head = Buffer.from(
    "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"; filename=\"" + path.basename(file) +
      "\"\r\nContent-Type: application/octet-stream\r\n\r\n",
  );
  const tail = Buffer.from("\r\n--" + boundary + "--\r\n");
  return { body: Buffer.concat([head, fs.readFileSync(file), tail]), type: "multipart/form-data; boundary=" + boundary };
}

// options: baseUrl (the backend), sandboxUrl (…/_wechat/), openid (who wx.login is), subscribe ("accept" …),
// shotsDir (where rt.shot writes what a page shows), python (for wx.compressImage), extConfig (ext.json's "ext"),
// envVersion ("develop", "trial", "release")
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
    media: [], // what wx.chooseMedia hands over next: a list of files per call, as the test chooses them
    uploads: [], // each wx.uploadFile: url, the file's size, the answer's status
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
      rt.requests.push({ method: method, url: url, body: body === undefined ? undefined : JSON.parse(JSON.stringify(body)) });
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
    getExtConfigSync() {
      return clone(options.extConfig || {});
    },
    getAccountInfoSync() {
      return { miniProgram: { appId: "touristappid", envVersion: options.envVersion || "develop", version: "" } };
    },
    chooseMedia(opts) {
      const files = rt.media.shift();
      if (!files) {
        opts.fail && opts.fail({ errMsg: "chooseMedia:fail cancel" });
        return;
      }
      const tempFiles = files.slice(0, opts.count).map((file) => ({
        tempFilePath: file,
        size: fs.statSync(file).size,
        fileType: imageInfo(file) ? "image" : "video",
      }));
      opts.success && opts.success({ tempFiles: tempFiles, type: "image", errMsg: "chooseMedia:ok" });
    },
    getImageInfo(opts) {
      const info = fs.existsSync(opts.src) ? imageInfo(opts.src) : null;
      if (info) opts.success && opts.success(Object.assign({ path: opts.src, errMsg: "getImageInfo:ok" }, info));
      else opts.fail && opts.fail({ errMsg: "getImageInfo:fail invalid image" });
    },
    compressImage(opts) {
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "wx-compress-")), "compressed.jpg");
      try {
        execFileSync(options.python, ["-c", COMPRESS, opts.src, out, String(opts.quality || 80), String(opts.compressedWidth || 0)]);
      } catch (err) {
        opts.fail && opts.fail({ errMsg: "compressImage:fail " + err.message });
        return;
      }
      opts.success && opts.success({ tempFilePath: out, errMsg: "compressImage:ok" });
    },
    getFileSystemManager() {
      return {
        getFileInfo(opts) {
          opts.success && opts.success({ size: fs.statSync(opts.filePath).size, errMsg: "getFileInfo:ok" });
        },
      };
    },
    uploadFile(opts) {
      const form = multipart(opts.name, opts.filePath);
      rt.requests.push({ method: "POST", url: opts.url });
      httpJson("POST", opts.url, form.body, { "Content-Type": form.type }).then(
        (res) => {
          rt.uploads.push({ url: opts.url, size: form.body.length, status: res.statusCode });
          // wx.uploadFile hands the body over as text, never parsed
          const text = typeof res.data === "string" ? res.data : JSON.stringify(res.data);
          opts.success && opts.success({ statusCode: res.statusCode, data: text, errMsg: "uploadFile:ok" });
        },
        (err) => opts.fail && opts.fail({ errMsg: "uploadFile:fail " + err.message }),
      );
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
  // The backend under test, unless the test gives ext.json's configuration (then app.js reads it, as on a phone).
  if (!options.extConfig) rt.app.globalData.baseUrl = rt.baseUrl;

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
