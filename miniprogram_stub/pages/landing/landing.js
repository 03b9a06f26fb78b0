// Opened by a scanned code: a mini-program code (query.scene = "c=<slug>") or an ordinary QR code that WeChat
// opens here (query.q = the whole URL …/c/<slug>). Shows who the code belongs to, then the form.
const api = require("../../utils/api.js");

Page({
  data: {
    loading: true,
    error: "",
    slug: "",
    kind: "",
    deputy: /** @type {Record<string, any> | null} */ (null),
    deputyLevels: "",
    station: /** @type {Record<string, any> | null} */ (null),
    routesToStation: false,
    onDutyReason: "",
    retiredNotice: "",
  },

  onLoad(query) {
    const scan = api.parseScan(query);
    if (scan.bindingCode) {
      wx.redirectTo({ url: "/pages/bind/bind?binding_code=" + scan.bindingCode });
      return Promise.resolve();
    }
    if (!scan.slug) {
      this.setData({ loading: false, error: "没有识别到代表或联络站的二维码，请重新扫码。" });
      return Promise.resolve();
    }
    this.setData({ slug: scan.slug });
    return api
      .call("code", { params: { slug: scan.slug } })
      .then((res) => {
        this.setData({
          loading: false,
          kind: res.kind,
          deputy: res.deputy,
          deputyLevels: res.deputy ? res.deputy.levels.join("、") : "",
          station: res.station,
          routesToStation: res.routes_to_station,
          onDutyReason: res.on_duty && res.on_duty.deputy ? res.on_duty.reason : "",
          // A former deputy's printed code keeps working and leads to their station: say so, and why.
          retiredNotice:
            res.kind === "deputy" && res.routes_to_station && res.deputy
              ? res.deputy.name + res.deputy.status_label + "，不再接收新的留言。您的留言将交给" + res.station.name + "的代表办理。"
              : "",
        });
      })
      .catch((err) => this.setData({ loading: false, error: err.message }));
  },

  onWrite() {
    wx.navigateTo({ url: "/pages/form/form?slug=" + this.data.slug });
  },

  onMyItems() {
    wx.navigateTo({ url: "/pages/items/items" });
  },
});
