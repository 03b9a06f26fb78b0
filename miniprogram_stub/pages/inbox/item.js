// One item of the deputy's inbox, with the steps a deputy takes most: accept (受理), answer (答复), resolve (办结).
// Opened from the inbox or from a WeChat notification (pages/inbox/item?ref=…).
const api = require("../../utils/api.js");

const OUTCOMES = [
  { value: "solved", label: "已解决" },
  { value: "partly", label: "部分解决" },
  { value: "unsolved", label: "未能解决" },
];

Page({
  data: {
    loading: true,
    error: "",
    ref: "",
    row: null,
    status: "",
    statusLabel: "",
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
    return api
      .asStaff("inbox", { query: { q: this.data.ref } })
      .then((res) => {
        const row = res.items.find((r) => r.ref === this.data.ref);
        if (!row) throw new api.ApiError(404, "unknown_item", "找不到该留言，请核对编号。");
        this.setData({ loading: false, row: row, status: row.status, statusLabel: row.status_label });
      })
      .catch((err) => this.setData({ loading: false, error: err.message }));
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

  act(data, done) {
    this.setData({ busy: true, error: "", notice: "" });
    return api
      .asStaff("itemAction", { params: { ref: this.data.ref }, data: data })
      .then((res) => {
        this.setData({ busy: false, status: res.item.status, statusLabel: res.item.status_label, notice: done });
        return res;
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
