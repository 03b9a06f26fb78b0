// A deputy ties their WeChat to their account: scan the one-time binding code on the "绑定微信" page
// (a mini-program code, query.scene = "b=<code>"), or type it in. Binding also signs the deputy in: the backend
// answers with a token, so the inbox opens without the password.
const api = require("../../utils/api.js");

Page({
  data: { bindingCode: "", busy: false, done: false, error: "", displayName: "" },

  onLoad(query) {
    const scan = api.parseScan(query);
    this.setData({ bindingCode: scan.bindingCode });
    return Promise.resolve();
  },

  onCodeInput(e) {
    this.setData({ bindingCode: e.detail.value.trim() });
  },

  onBind() {
    if (!this.data.bindingCode) {
      this.setData({ error: "请扫描“绑定微信”页面上的码，或输入绑定码。" });
      return Promise.resolve();
    }
    this.setData({ busy: true, error: "" });
    return api
      .wxLogin()
      .then((code) => api.call("wechatBind", { data: { code: code, binding_code: this.data.bindingCode } }))
      .then((res) => {
        if (res.token) api.staffSignedIn(res.token, res.user);
        this.setData({ busy: false, done: true, displayName: res.user.display_name || res.user.username });
      })
      .catch((err) => this.setData({ busy: false, error: err.message }));
  },

  onInbox() {
    wx.redirectTo({ url: "/pages/inbox/inbox" });
  },
});
