// The deputy's inbox: log in with the account the county gave (an API token kept in storage), then what is
// overdue, reopened, new and in progress, first. Whether the deputy's WeChat will be told of new items, and
// "开启微信通知" for what is off (utils/notices.js). It also says how to sign in at the station: scan its code with
// this WeChat (pages/landing).
const api = require("../../utils/api.js");
const notices = require("../../utils/notices.js");

Page({
  data: {
    loggedIn: false,
    username: "",
    password: "",
    loading: false,
    error: "",
    counts: {},
    items: [],
    total: 0,
    notices: /** @type {import("../../utils/notices.js").NoticesView | null} */ (null),
    unbound: false,
    notice: "",
  },

  onShow() {
    if (!api.hasStaffToken()) {
      this.setData({ loggedIn: false });
      return Promise.resolve();
    }
    this.setData({ loggedIn: true });
    return Promise.all([this.load(), this.loadNotices()]).then(() => undefined);
  },

  // The state of the bound WeChat's notices; an account with no WeChat bound is told how to bind one.
  loadNotices() {
    return notices.load("staff").then((view) =>
      this.setData({
        notices: view && "headline" in view ? view : null,
        unbound: Boolean(view && "unbound" in view),
      }),
    );
  },

  onUsername(e) {
    this.setData({ username: e.detail.value });
  },
  onPassword(e) {
    this.setData({ password: e.detail.value });
  },

  onLogin() {
    this.setData({ loading: true, error: "" });
    return api
      .staffLogin(this.data.username, this.data.password)
      .then(() => {
        this.setData({ loggedIn: true, password: "" });
        return Promise.all([this.load(), this.loadNotices()]);
      })
      .catch((err) => this.setData({ loading: false, error: err.message }));
  },

  onLogout() {
    api.staffLogout();
    this.setData({ loggedIn: false, items: [], counts: {}, notices: null, unbound: false, notice: "" });
  },

  load() {
    this.setData({ loading: true });
    return api
      .asStaff("inbox", { query: { state: "todo" } })
      .then((res) => {
        this.setData({ loading: false, error: "", counts: res.counts, items: res.items, total: res.total });
      })
      .catch((err) => this.setData({ loading: false, loggedIn: api.hasStaffToken(), error: err.message }));
  },

  onOpen(e) {
    wx.navigateTo({ url: "/pages/inbox/item?ref=" + e.currentTarget.dataset.ref });
  },

  // A tap (WeChat asks only from one): ask again for the templates that are off, long-term ones included.
  onSubscribe() {
    return notices
      .askAgain(this.data.notices, "staff", () => this.loadNotices())
      .then((accepted) => {
        this.setData({ notice: accepted ? "已开启：有新留言时会在微信里提醒您。" : "未开启提醒。需要时可再次点击开启。" });
      });
  },
});
