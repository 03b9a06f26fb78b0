// "My items": what this WeChat user sent from the mini-program, newest first.
const api = require("../../utils/api.js");

Page({
  data: { loading: true, error: "", items: [], page: 1, hasNext: false },

  onShow() {
    return this.load(1);
  },

  onReachBottom() {
    if (this.data.hasNext) return this.load(this.data.page + 1);
    return Promise.resolve();
  },

  onPullDownRefresh() {
    return this.load(1).then(() => wx.stopPullDownRefresh());
  },

  load(page) {
    return api
      .asResident("myItems", { query: { page: page } })
      .then((res) => {
        const rows = res.items.map((row) => Object.assign({}, row, { refDisplay: api.formatRef(row.ref) }));
        this.setData({
          loading: false,
          error: "",
          items: page === 1 ? rows : this.data.items.concat(rows),
          page: res.page,
          hasNext: res.has_next,
        });
      })
      .catch((err) => this.setData({ loading: false, error: err.message }));
  },

  onOpen(e) {
    const ref = e.currentTarget.dataset.ref;
    const key = e.currentTarget.dataset.key;
    wx.navigateTo({ url: "/pages/item/item?ref=" + ref + "&key=" + key });
  },
});
