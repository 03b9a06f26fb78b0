// The backend's JSON API (v1), wrapping wx.request: the base URL, the resident's and the deputy's tokens
// from storage, and errors as { status, code, message } with the backend's Chinese message.
//
// Every path the mini-program calls is declared in PATHS; tests check each against the backend's routes.

const config = require("../config.js");

/** @type {Record<string, ["GET" | "POST", string]>} */
const PATHS = {
  code: ["GET", "/api/v1/codes/{slug}"],
  wechatLogin: ["POST", "/api/v1/wechat/login"],
  wechatBind: ["POST", "/api/v1/wechat/bind"],
  templates: ["GET", "/api/v1/wechat/templates"],
  subscriptions: ["POST", "/api/v1/wechat/subscriptions"],
  noticesState: ["GET", "/api/v1/wechat/subscriptions"],
  submitItem: ["POST", "/api/v1/items"],
  item: ["GET", "/api/v1/items/{ref}"],
  rateItem: ["POST", "/api/v1/items/{ref}/rating"],
  replyItem: ["POST", "/api/v1/items/{ref}/replies"],
  followUpItem: ["POST", "/api/v1/items/{ref}/followups"],
  messagePhoto: ["POST", "/api/v1/items/{ref}/photos"],
  myItems: ["GET", "/api/v1/me/items"],
  myItem: ["GET", "/api/v1/me/items/{ref}"],
  staffToken: ["POST", "/api/v1/auth/token"],
  inbox: ["GET", "/api/v1/inbox"],
  inboxItem: ["GET", "/api/v1/inbox/{ref}"],
  revealContact: ["POST", "/api/v1/inbox/{ref}/reveal"],
  itemAction: ["POST", "/api/v1/items/{ref}/actions"],
  presenceState: ["GET", "/api/v1/presence"],
  presence: ["POST", "/api/v1/presence"],
};

const RESIDENT_TOKEN = "residentToken";
const RESIDENT_TOKEN_EXPIRES = "residentTokenExpiresAt";
const STAFF_TOKEN = "staffToken";
const STAFF_USER = "staffUser";
const NETWORK_MESSAGE = "网络不太好，请稍后再试。";

function baseUrl() {
  const app = typeof getApp === "function" ? getApp() : null;
  return (app && app.globalData && app.globalData.baseUrl) || config.baseUrl();
}

function fillPath(template, params) {
  return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(params[name]));
}

function queryString(query) {
  const parts = Object.keys(query || {})
    .filter((key) => query[key] !== undefined && query[key] !== null && query[key] !== "")
    .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(query[key]));
  return parts.length ? "?" + parts.join("&") : "";
}

function ApiError(status, code, message) {
  this.status = status;
  this.code = code;
  this.message = message;
}

// One call: name from PATHS, params for the path, query, JSON body, and which token to send.
function call(name, options) {
  const opts = options || {};
  const route = PATHS[name];
  if (!route) throw new Error("unknown API " + name);
  /** @type {Record<string, string>} */
  const header = { "Content-Type": "application/json" };
  const token = opts.auth === "resident" ? wx.getStorageSync(RESIDENT_TOKEN) : opts.auth === "staff" ? wx.getStorageSync(STAFF_TOKEN) : "";
  if (token) header.Authorization = "Bearer " + token;
  return new Promise((resolve, reject) => {
    wx.request({
      url: baseUrl() + fillPath(route[1], opts.params || {}) + queryString(opts.query),
      method: route[0],
      data: route[0] === "GET" ? undefined : opts.data || {},
      header: header,
      success(res) {
        if (res.statusCode >= 200 && res.statusCode < 300) {
          resolve(res.data);
          return;
        }
        const body = res.data;
        const error = (body && typeof body === "object" && !(body instanceof ArrayBuffer) && body.error) || {};
        reject(new ApiError(res.statusCode, error.code || "http_" + res.statusCode, error.message || NETWORK_MESSAGE));
      },
      fail() {
        reject(new ApiError(0, "network", NETWORK_MESSAGE));
      },
    });
  });
}

// One file sent with wx.uploadFile (multipart, one file a request): name from PATHS, params, query, the file's
// path and its field. The answer as `call` gives it: the JSON body, or an ApiError with the backend's message.
function upload(name, options) {
  const route = PATHS[name];
  if (!route) throw new Error("unknown API " + name);
  return new Promise((resolve, reject) => {
    wx.uploadFile({
      url: baseUrl() + fillPath(route[1], options.params || {}) + queryString(options.query),
      filePath: options.filePath,
      name: options.field,
      success(res) {
        let body = null;
        try {
          body = typeof res.data === "string" ? JSON.parse(res.data) : res.data;
        } catch (_) {
          body = null; // not JSON: a proxy's error page
        }
        if (res.statusCode >= 200 && res.statusCode < 300 && body) {
          resolve(body);
          return;
        }
        const error = (body && body.error) || {};
        reject(new ApiError(res.statusCode, error.code || "http_" + res.statusCode, error.message || NETWORK_MESSAGE));
      },
      fail() {
        reject(new ApiError(0, "network", NETWORK_MESSAGE));
      },
    });
  });
}

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res.code ? resolve(res.code) : reject(new ApiError(0, "wx_login", "微信登录失败，请重试。"))),
      fail: () => reject(new ApiError(0, "wx_login", "微信登录失败，请重试。")),
    });
  });
}

let pendingLogin = null; // one wx.login at a time: pages ask for the token from several places at once

// The resident's token: kept in storage until it expires; wx.login → /wechat/login when there is none.
function ensureResident() {
  const token = wx.getStorageSync(RESIDENT_TOKEN);
  const expires = wx.getStorageSync(RESIDENT_TOKEN_EXPIRES);
  if (token && expires && Date.parse(expires) > Date.now() + 60000) return Promise.resolve(token);
  if (pendingLogin) return pendingLogin;
  pendingLogin = wxLogin()
    .then((code) => call("wechatLogin", { data: { code: code } }))
    .then(
      (res) => {
        pendingLogin = null;
        wx.setStorageSync(RESIDENT_TOKEN, res.token);
        wx.setStorageSync(RESIDENT_TOKEN_EXPIRES, res.expires_at);
        return res.token;
      },
      (err) => {
        pendingLogin = null;
        throw err;
      },
    );
  return pendingLogin;
}

function forgetResident() {
  wx.removeStorageSync(RESIDENT_TOKEN);
  wx.removeStorageSync(RESIDENT_TOKEN_EXPIRES);
}

// A call as the resident; a token the backend no longer knows (401) is replaced once.
function asResident(name, options) {
  return ensureResident()
    .then(() => call(name, Object.assign({}, options, { auth: "resident" })))
    .catch((err) => {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      forgetResident();
      return ensureResident().then(() => call(name, Object.assign({}, options, { auth: "resident" })));
    });
}

// Keep a staff token and its user: what a password login and a WeChat binding both give.
function staffSignedIn(token, user) {
  wx.setStorageSync(STAFF_TOKEN, token);
  wx.setStorageSync(STAFF_USER, user);
  return user;
}

function staffLogin(username, password) {
  return call("staffToken", { data: { username: username, password: password } }).then((res) =>
    staffSignedIn(res.token, res.user),
  );
}

function staffLogout() {
  wx.removeStorageSync(STAFF_TOKEN);
  wx.removeStorageSync(STAFF_USER);
}

function hasStaffToken() {
  return Boolean(wx.getStorageSync(STAFF_TOKEN));
}

// The signed-in staff member as the login or the binding gave them ({ id, username, role, display_name }), or null.
function staffUser() {
  const user = hasStaffToken() ? wx.getStorageSync(STAFF_USER) : null;
  return user && typeof user === "object" ? user : null;
}

function asStaff(name, options) {
  return call(name, Object.assign({}, options, { auth: "staff" })).catch((err) => {
    if (err instanceof ApiError && err.status === 401) staffLogout();
    throw err;
  });
}

// wx.requestSubscribeMessage for up to three template ids (it must run in a tap), reported to the backend,
// which counts each "accept" as one message it may send. Never fails: a refused subscription only means
// the tracking page is the channel.
function requestSubscriptions(tmplIds, auth) {
  if (!tmplIds || !tmplIds.length) return Promise.resolve({});
  return new Promise((resolve) => {
    wx.requestSubscribeMessage({
      tmplIds: tmplIds.slice(0, 3),
      success: (res) => resolve(res),
      fail: () => resolve({}),
    });
  }).then((res) => {
    const results = {};
    Object.keys(res).forEach((key) => {
      if (key !== "errMsg") results[key] = res[key];
    });
    if (!Object.keys(results).length) return {};
    const report = auth === "staff" ? asStaff : asResident;
    return report("subscriptions", { data: { results: results } }).catch(() => ({}));
  });
}

function newClientId() {
  let id = "";
  for (let i = 0; i < 32; i += 1) id += Math.floor(Math.random() * 16).toString(16);
  return id;
}

// What a scanned code brought: the slug of a deputy's or station's code, or a deputy's binding code.
// `scene` comes from a mini-program code ("c=<slug>", "b=<code>"); `q` is the whole URL of an ordinary QR code.
function parseScan(query) {
  const q = query || {};
  const out = { slug: q.slug || "", bindingCode: q.binding_code || "" };
  if (q.scene) {
    const scene = decodeURIComponent(q.scene);
    scene.split("&").forEach((pair) => {
      const at = pair.indexOf("=");
      const key = at >= 0 ? pair.slice(0, at) : pair;
      const value = at >= 0 ? pair.slice(at + 1) : "";
      if (key === "c") out.slug = value;
      if (key === "b") out.bindingCode = value;
    });
  }
  if (q.q) {
    const url = decodeURIComponent(q.q);
    const code = url.match(/\/c\/([A-Za-z0-9_-]{12})(?:[/?#]|$)/);
    if (code) out.slug = code[1];
    const binding = url.match(/[?&]b=([A-Za-z0-9_-]{16})(?:&|#|$)/);
    if (binding) out.bindingCode = binding[1];
  }
  if (!/^[A-Za-z0-9_-]{12}$/.test(out.slug)) out.slug = "";
  if (!/^[A-Za-z0-9_-]{16}$/.test(out.bindingCode)) out.bindingCode = "";
  return out;
}

module.exports = {
  PATHS: PATHS,
  ApiError: ApiError,
  call: call,
  upload: upload,
  wxLogin: wxLogin,
  ensureResident: ensureResident,
  asResident: asResident,
  asStaff: asStaff,
  staffLogin: staffLogin,
  staffSignedIn: staffSignedIn,
  staffLogout: staffLogout,
  hasStaffToken: hasStaffToken,
  staffUser: staffUser,
  requestSubscriptions: requestSubscriptions,
  newClientId: newClientId,
  parseScan: parseScan,
  formatRef: (ref) => (ref && ref.length === 8 ? ref.slice(0, 4) + "-" + ref.slice(4) : ref),
};
