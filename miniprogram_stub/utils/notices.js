// Whether the user's WeChat notices are on, as the resident's item page and the deputy's inbox show it: from the
// backend's answer to GET /api/v1/wechat/subscriptions ({on, credits, kinds, ask_again}), which knows what WeChat
// allows (a long-term template is on or off; a one-time one has so many messages left). The pages show one line
// ("微信通知：已开启" …), a line per template when there is more to say, and offer to switch on again what is off.
const api = require("./api.js");

// What each template tells, by purpose (the backend's WECHAT_TEMPLATES keys), in the order the lines are shown.
const PURPOSE_LABELS = {
  item_progress: "办理进展",
  item_answered: "代表答复",
  item_resolved: "办结",
  deputy_task: "新留言",
};
const ORDER = Object.keys(PURPOSE_LABELS);

/**
 * @typedef {{ label: string, text: string, on: boolean }} NoticeLine
 * @typedef {{ headline: string, lines: NoticeLine[], askIds: string[], hint: string }} NoticesView
 */

/**
 * The view of one answer: `purposes` maps template ids to purposes (from GET /api/v1/wechat/templates).
 * Null when there is nothing to tell (no template of this audience is configured).
 * @param {{ on: boolean, credits: Record<string, number>, kinds: Record<string, string>, ask_again: string[][] }} state
 * @param {Record<string, string>} purposes
 * @returns {NoticesView | null}
 */
function describe(state, purposes) {
  const ids = Object.keys(state.kinds || {});
  if (!ids.length) return null;
  const rank = (id) => {
    const at = ORDER.indexOf(purposes[id]);
    return at < 0 ? ORDER.length : at;
  };
  ids.sort((a, b) => rank(a) - rank(b));
  const oneTime = ids.some((id) => state.kinds[id] === "one_time");
  const lines = ids.map((id) => {
    const left = state.credits[id] || 0;
    const text = left <= 0 ? "未开启" : state.kinds[id] === "one_time" ? "剩余" + left + "次" : "已开启";
    return { label: PURPOSE_LABELS[purposes[id]] || "其他通知", text: text, on: left > 0 };
  });
  const onCount = lines.filter((line) => line.on).length;
  const headline = onCount === lines.length ? "微信通知：已开启" : onCount === 0 ? "微信通知：未开启" : "微信通知：部分未开启";
  // WeChat asks for at most three templates a tap: the first call's ids (the backend orders them, the answer first).
  const askIds = (state.ask_again && state.ask_again[0]) || [];
  return {
    headline: headline,
    // One long-term template on or off says it all in the headline; otherwise each template's own line.
    lines: lines.length > 1 || oneTime ? lines : [],
    askIds: askIds,
    hint: oneTime && askIds.length ? "一次性通知每开启一次可收到一条。" : "",
  };
}

/**
 * Template id → purpose, from the answer of GET /api/v1/wechat/templates.
 * @param {{ templates: { id: string, purpose: string }[] }} res
 * @returns {Record<string, string>}
 */
function purposesOf(res) {
  /** @type {Record<string, string>} */
  const out = {};
  (res.templates || []).forEach((t) => {
    out[t.id] = t.purpose;
  });
  return out;
}

/**
 * The caller's notices as a page shows them: `auth` "resident" or "staff". Resolves to the view, null when
 * there is nothing to tell, or { unbound: true } for a staff account with no WeChat bound (409
 * no_wechat_identity); any other failure is null (the page simply says nothing about notices).
 * @param {"resident" | "staff"} auth
 * @returns {Promise<NoticesView | { unbound: true } | null>}
 */
function load(auth) {
  const call = auth === "staff" ? api.asStaff : api.asResident;
  return Promise.all([api.call("templates"), call("noticesState", {})])
    .then(([templates, state]) => describe(state, purposesOf(templates)))
    .catch((err) => (err instanceof api.ApiError && err.code === "no_wechat_identity" ? { unbound: true } : null));
}

/**
 * "开启微信通知" (in a tap: WeChat asks only from one): ask again for the templates `view` says are off, then
 * `reload` the page's notices. Resolves to whether WeChat gave at least one message to send.
 * @param {NoticesView | { unbound: true } | null} view
 * @param {"resident" | "staff"} auth
 * @param {() => Promise<unknown>} reload
 * @returns {Promise<boolean>}
 */
function askAgain(view, auth, reload) {
  const askIds = view && "askIds" in view ? view.askIds : [];
  return api.requestSubscriptions(askIds, auth).then((res) => {
    const credits = (res && res.credits) || {};
    const accepted = Object.keys(credits).some((id) => credits[id] > 0);
    return reload().then(() => accepted);
  });
}

module.exports = {
  describe: describe,
  purposesOf: purposesOf,
  load: load,
  askAgain: askAgain,
  PURPOSE_LABELS: PURPOSE_LABELS,
};
