// Where the backend is, read from configuration rather than written into the pages:
// 1. ext.json's "ext": {"baseUrl": "https://…"} — what a county's build sets (a third-party platform's
//    template gives each county its own ext.json; wx.getExtConfigSync reads it);
// 2. else by the mini-program's version (wx.getAccountInfoSync().miniProgram.envVersion): the developer's
//    own backend (`make run`, PORT 5000 unless told otherwise) for "develop"; trial and release builds have
//    no default and must be given their HTTPS domain (a 合法域名 in the mini-program's console) in ext.json.
const DEVELOP_BASE_URL = "http://127.0.0.1:5000";

function extConfig() {
  try {
    return (typeof wx.getExtConfigSync === "function" && wx.getExtConfigSync()) || {};
  } catch (_) {
    return {}; // no ext.json: an ordinary build
  }
}

function envVersion() {
  try {
    return wx.getAccountInfoSync().miniProgram.envVersion || "develop";
  } catch (_) {
    return "develop";
  }
}

// The backend's base URL ("" when a trial or release build was given none: requests then fail with a message).
function baseUrl() {
  const ext = extConfig();
  if (ext && typeof ext.baseUrl === "string" && /^https?:\/\//.test(ext.baseUrl)) return ext.baseUrl.replace(/\/$/, "");
  return envVersion() === "develop" ? DEVELOP_BASE_URL : "";
}

module.exports = { baseUrl: baseUrl, DEVELOP_BASE_URL: DEVELOP_BASE_URL };
