// The deputy's inbox: log in with the account the county gave (an API token kept in storage), then what is
// overdue, reopened, new and in progress, first. "开启微信提醒" asks to be told of new items in WeChat.
const api = require("../../utils/api.js");

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
    deputyTemplateIds: [],
    notice: "",
  },

  onShow() {
    const templates = api
      .call("templates")
      .then((res) => this.setData({ deputyTemplateIds: (res.requests.deputy && res.requests.deputy[0]) || [] }))
      .catch(() => null);
    if (!api.hasStaffToken()) {
      this.setData({ loggedIn: false });
      return templates.then(() => undefined);
    }
    this.setData({ loggedIn: true });
    return Promise.all([templates, this.load()]).then(() => undefined);
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
        return this.load();
      })
      .catch((err) => this.setData({ loading: false, error: err.message }));
  },

  onLogout() {
    api.staffLogout();
    this.setData({ loggedIn: false, items: [], counts: {} });
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

  onSubscribe() {
    return api.requestSubscriptions(this.data.deputyTemplateIds, "staff").then((res) => {
      const credits = (res && res.credits) || {};
      const accepted = Object.keys(credits).some((id) => credits[id] > 0);
      this.setData({ notice: accepted ? "已开启：有新留言时会在微信里提醒您。" : "未开启提醒。需要时可再次点击开启。" });
    });
  },
});
