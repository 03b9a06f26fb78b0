// One item of the deputy's inbox in full: the whole message, the contact (masked until revealed, which is
// audited), the timeline with internal steps marked, and the steps a deputy takes most on the phone —
// accept (受理), answer (答复), resolve (办结) — when the item's state allows them.
// Opened from the inbox or from a WeChat notification (pages/inbox/item?ref=…).
const api = require("../../utils/api.js");

const OUTCOMES = [
  { value: "solved", label: "已解决" },
  { value: "partly", label: "部分解决" },
  { value: "unsolved", label: "未能解决" },
];
// The actions this page offers; the others (forward, reassign, …) are on the web pages.
const ON_THIS_PAGE = ["accept", "reply", "resolve"];

Page({
  data: {
    loading: true,
    error: "",
    ref: "",
    detail: /** @type {Record<string, any> | null} */ (null),
    status: "",
    statusLabel: "",
    can: {},
    otherActions: "",
    contact: /** @type {Record<string, any> | null} */ (null),
    replyText: "",
    outcomes: OUTCOMES,
    outcomeIndex: 0,
    resolveText: "",
    busy: false,
    notice: "",
  },

  onLoad(query) {
    this.setData({ ref: query.ref || "" });
    if (!api.hasStaffToken()) {
      this.setData({ loading: false, error: "请先在“留言办理”页面登录。" });
      return Promise.resolve();
    }
    return this.load().catch((err) => this.setData({ loading: false, error: err.message }));
  },

  load() {
    return api.asStaff("inboxItem", { params: { ref: this.data.ref } }).then((detail) => {
      const names = detail.actions.map((a) => a.action);
      const can = {};
      ON_THIS_PAGE.forEach((name) => (can[name] = names.indexOf(name) >= 0));
      this.setData({
        loading: false,
        detail: detail,
        status: detail.item.status,
        statusLabel: detail.item.status_label,
        can: can,
        otherActions: detail.actions
          .filter((a) => ON_THIS_PAGE.indexOf(a.action) < 0)
          .map((a) => a.label)
          .join("、"),
        contact: detail.contact,
      });
    });
  },

  onReplyInput(e) {
    this.setData({ replyText: e.detail.value });
  },
  onOutcomeChange(e) {
    this.setData({ outcomeIndex: Number(e.detail.value) });
  },
  onResolveInput(e) {
    this.setData({ resolveText: e.detail.value });
  },

  onReveal() {
    this.setData({ busy: true, error: "" });
    return api
      .asStaff("revealContact", { params: { ref: this.data.ref } })
      .then((full) => this.setData({ busy: false, contact: Object.assign({}, this.data.contact, full, { revealed: true }) }))
      .catch((err) => this.setData({ busy: false, error: err.message }));
  },

  act(data, done) {
    this.setData({ busy: true, error: "", notice: "" });
    return api
      .asStaff("itemAction", { params: { ref: this.data.ref }, data: data })
      .then((res) => {
        this.setData({ busy: false, status: res.item.status, statusLabel: res.item.status_label, notice: done });
        // The timeline and the actions allowed change with the state; an item reassigned away is gone.
        return res.item.visible_to_you ? this.load().then(() => res) : res;
      })
      .catch((err) => this.setData({ busy: false, error: err.message }));
  },

  onAccept() {
    return this.act({ action: "accept" }, "已受理，群众会收到通知。");
  },

  onReply() {
    if (!this.data.replyText.trim()) {
      this.setData({ error: "请填写答复内容。" });
      return Promise.resolve();
    }
    return this.act({ action: "reply", text: this.data.replyText }, "答复已发送给群众。").then(() =>
      this.setData({ replyText: "" }),
    );
  },

  onResolve() {
    const outcome = OUTCOMES[this.data.outcomeIndex].value;
    return this.act({ action: "resolve", outcome: outcome, text: this.data.resolveText }, "已办结，等待群众评价。");
  },
});
