// Opened by a scanned code: a mini-program code (query.scene = "c=<slug>") or an ordinary QR code that WeChat
// opens here (query.q = the whole URL …/c/<slug>). Shows who the code belongs to, then the form. A topic's code
// (专题码) shows the topic and its closing day; once closed, a notice and no form. A deputy signed in here (inbox,
// bind) who scans their own station's code gets 签到 / 签退 instead, as on the H5 page, and may still go on
// to the residents' page.
const api = require("../../utils/api.js");
const time = require("../../utils/time.js");

Page({
  data: {
    loading: true,
    error: "",
    closedNotice: "",
    slug: "",
    kind: "",
    deputy: /** @type {Record<string, any> | null} */ (null),
    deputyLevels: "",
    station: /** @type {Record<string, any> | null} */ (null),
    topic: /** @type {Record<string, any> | null} */ (null),
    topicClosesOn: "",
    routesToStation: false,
    onDutyReason: "",
    retiredNotice: "",
    presence: /** @type {Record<string, any> | null} */ (null),
    presenceClock: "",
    presenceRules: "",
    presenceMessage: "",
    presenceError: "",
    presenceBusy: false,
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
      .then((res) => (res.kind === "station" ? this.loadPresence(res.station.id).then(() => res) : res))
      .then((res) => {
        this.setData({
          loading: false,
          kind: res.kind,
          deputy: res.deputy,
          deputyLevels: res.deputy ? res.deputy.levels.join("、") : "",
          station: res.station,
          topic: res.topic || null,
          topicClosesOn: res.topic ? time.chinaDay(res.topic.closes_on) : "",
          routesToStation: res.routes_to_station,
          onDutyReason: res.on_duty && res.on_duty.deputy ? res.on_duty.reason : "",
          // A former deputy's printed code keeps working and leads to their station: say so, and why.
          retiredNotice:
            res.kind === "deputy" && res.routes_to_station && res.deputy
              ? res.deputy.name + res.deputy.status_label + "，不再接收新的留言。您的留言将交给" + res.station.name + "的代表办理。"
              : "",
        });
      })
      .catch((err) =>
        // A topic past its closing day: the backend's notice (which topic, that it is over), never a form.
        err.code === "topic_closed"
          ? this.setData({ loading: false, closedNotice: err.message })
          : this.setData({ loading: false, error: err.message }),
      );
  },

  // A signed-in deputy of this station: their 签到 screen. Anyone else (a resident, a deputy of another station,
  // a token gone stale) sees the residents' page, as the backend answers them.
  loadPresence(stationId) {
    const user = api.staffUser();
    if (!user || user.role !== "deputy") return Promise.resolve();
    return api
      .asStaff("presenceState", { query: { station_id: stationId } })
      .then((state) =>
        this.setData({
          presence: state,
          presenceClock: state.visit ? time.chinaClock(state.visit.checked_in_at) : "",
          presenceRules: state.reception_days.join("、"),
        }),
      )
      .catch(() => this.setData({ presence: null }));
  },

  // 签到 or 签退, as the button says (intent): a second 签到 tap never closes the visit.
  onPresence() {
    const state = this.data.presence;
    if (!state || this.data.presenceBusy) return Promise.resolve();
    this.setData({ presenceBusy: true, presenceError: "", presenceMessage: "" });
    return api
      .asStaff("presence", { data: { station_id: state.station.id, intent: state.next_action } })
      .then((res) => this.loadPresence(state.station.id).then(() => this.setData({ presenceBusy: false, presenceMessage: res.message })))
      .catch((err) => this.loadPresence(state.station.id).then(() => this.setData({ presenceBusy: false, presenceError: err.message })));
  },

  // Not here to sign in: the page a resident sees.
  onAsResident() {
    this.setData({ presence: null, presenceMessage: "", presenceError: "" });
  },

  onWrite() {
    wx.navigateTo({ url: "/pages/form/form?slug=" + this.data.slug });
  },

  onMyItems() {
    wx.navigateTo({ url: "/pages/items/items" });
  },
});
