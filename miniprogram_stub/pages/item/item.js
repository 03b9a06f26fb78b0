// One item: its status and the steps the resident may see, the resident's answer when the deputy asks for
// more ("待您补充") or a 追问 (one a day) while it is open, and the rating once it is resolved.
// Opened from "my items" and the form (ref and key), or from a WeChat notification (ref only: the key is
// looked up among the resident's own items).
const api = require("../../utils/api.js");
const notices = require("../../utils/notices.js");
const { chinaTime } = require("../../utils/time.js");

const OPEN = ["submitted", "accepted", "forwarded", "answered"];

const SATISFACTION = [
  { value: "satisfied", label: "满意" },
  { value: "basically", label: "基本满意" },
  { value: "unsatisfied", label: "不满意" },
];

Page({
  data: {
    loading: true,
    error: "",
    isNew: false,
    ref: "",
    key: "",
    item: /** @type {Record<string, any> | null} */ (null),
    refDisplay: "",
    canRate: false,
    satisfactionChoices: SATISFACTION,
    satisfaction: "",
    solved: "",
    comment: "",
    rating: false,
    ratingError: "",
    notice: "",
    // Whether WeChat will tell the resident of the next steps (utils/notices.js), shown while the item is open.
    notices: /** @type {import("../../utils/notices.js").NoticesView | null} */ (null),
    canSubscribe: false,
    subscribing: false,
    answerText: "",
    answering: false,
    answerError: "",
  },

  onLoad(query) {
    this.setData({ ref: query.ref || "", key: query.key || "", isNew: query.new === "1" });
    return Promise.all([this.loadNotices(), this.load()]).then(() => this.setData({ canSubscribe: this.subscribable() }));
  },

  // Long-term notices stay on until the resident switches them off in WeChat; one-time ones are spent one a
  // message: the page says which are on, and offers to switch on again what is not.
  loadNotices() {
    return notices.load("resident").then((view) => this.setData({ notices: view && "headline" in view ? view : null }));
  },

  subscribable() {
    const item = this.data.item;
    return item !== null && OPEN.indexOf(item.status) >= 0 && this.data.notices !== null;
  },

  // A tap (WeChat asks only from one): ask again for the templates that are off, long-term ones included.
  onSubscribe() {
    this.setData({ subscribing: true, notice: "" });
    return notices
      .askAgain(this.data.notices, "resident", () => this.loadNotices())
      .then((accepted) => {
        const on = this.data.notices !== null && this.data.notices.askIds.length === 0;
        this.setData({
          subscribing: false,
          notice: on
            ? "已开启微信通知：下一步办理进展会在微信里通知您。"
            : accepted
              ? "已开启部分微信通知。"
              : "没有开启微信通知，您可以随时在这里查看办理进展。",
        });
      });
  },

  load() {
    const key = this.data.key
      ? Promise.resolve(this.data.key)
      : api.asResident("myItem", { params: { ref: this.data.ref } }).then((row) => row.key);
    return key
      .then((k) => {
        this.setData({ key: k });
        return api.call("item", { params: { ref: this.data.ref }, query: { key: k } });
      })
      .then((item) => {
        const last = item.timeline.length ? item.timeline[item.timeline.length - 1] : null;
        // Each step with its time, in China time (the resident's own sense of "how long has it been").
        item.timeline = item.timeline.map((step) => Object.assign({}, step, { when: chinaTime(step.at) }));
        this.setData({
          loading: false,
          error: "",
          item: item,
          refDisplay: item.ref_display,
          canRate: item.status === "resolved" && Boolean(last) && last.kind === "resolved",
        });
      })
      .catch((err) => this.setData({ loading: false, error: err.message }));
  },

  onAnswerInput(e) {
    this.setData({ answerText: e.detail.value });
  },

  // The resident's answer: to the deputy's request for more while the item waits ("replyItem"), else a 追问.
  onAnswer() {
    const item = this.data.item;
    const waiting = Boolean(item && item.waiting);
    if (!this.data.answerText.trim()) {
      this.setData({ answerError: waiting ? "请填写补充内容。" : "请填写追问内容。" });
      return Promise.resolve();
    }
    this.setData({ answering: true, answerError: "" });
    return api
      .call(waiting ? "replyItem" : "followUpItem", {
        params: { ref: this.data.ref },
        query: { key: this.data.key },
        data: { text: this.data.answerText },
      })
      .then(() => {
        this.setData({
          answering: false,
          answerText: "",
          notice: waiting ? "您的补充已送达代表，办理计时已恢复。" : "您的追问已送达代表。",
        });
        return this.load();
      })
      .catch((err) => this.setData({ answering: false, answerError: err.message }));
  },

  onSatisfaction(e) {
    this.setData({ satisfaction: e.detail.value });
  },
  onSolved(e) {
    this.setData({ solved: e.detail.value });
  },
  onComment(e) {
    this.setData({ comment: e.detail.value });
  },

  onRate() {
    if (!this.data.satisfaction) {
      this.setData({ ratingError: "请选择您对办理结果是否满意。" });
      return Promise.resolve();
    }
    if (!this.data.solved) {
      this.setData({ ratingError: "请选择问题是否已经解决。" });
      return Promise.resolve();
    }
    this.setData({ rating: true, ratingError: "" });
    return api
      .call("rateItem", {
        params: { ref: this.data.ref },
        query: { key: this.data.key },
        data: { satisfaction: this.data.satisfaction, solved: this.data.solved === "yes", comment: this.data.comment },
      })
      .then((res) => {
        this.setData({ rating: false, notice: res.reopened ? "已收到，代表会重新办理。" : "感谢您的评价。" });
        return this.load();
      })
      .catch((err) => this.setData({ rating: false, ratingError: err.message }));
  },
});
