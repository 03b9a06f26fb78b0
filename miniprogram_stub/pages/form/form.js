// The message form. Submitting asks (in the same tap, as WeChat requires) to be told of the answer, reports
// what the resident accepted, then sends the message with the resident's token — or without one when WeChat
// login is unavailable: a WeChat identity is used where it exists, never demanded. A topic's code (专题码: 监测点,
// 立法征求意见, 民生实事) asks the topic's question instead, with its choices (one to pick) and its closing day;
// its message goes to the station, so there is no deputy to choose.
const api = require("../../utils/api.js");
const photos = require("../../utils/photos.js");
const time = require("../../utils/time.js");

Page({
  data: {
    loading: true,
    error: "",
    slug: "",
    deputyName: "",
    stationName: "",
    routesToStation: false,
    deputyChoices: /** @type {{ id: string, name: string }[]} */ ([]),
    deputyIndex: 0,
    categories: /** @type {{ value: string, label: string }[]} */ ([]),
    categoryIndex: 0,
    limits: { body_min_chars: 5, body_max_chars: 1000, max_photos: 3, photo_max_bytes: 5 * 1024 * 1024 },
    photos: /** @type {{ path: string, size: number, width: number, height: number }[]} */ ([]),
    photoError: "",
    choosingPhotos: false,
    body: "",
    name: "",
    phone: "",
    consent: false,
    publishConsent: false,
    topic: /** @type {{ title: string, prompt: string, kind_label: string, choices: string[], closes_on: string } | null} */ (null),
    topicClosesOn: "",
    choice: "",
    clientId: "",
    templateIds: [],
    submitting: false,
  },

  onLoad(query) {
    const slug = (query && query.slug) || "";
    this.setData({ slug: slug, clientId: api.newClientId() });
    api.ensureResident().catch(() => null); // ready before the tap; failing is fine
    const templates = api
      .call("templates")
      .then((res) => this.setData({ templateIds: (res.requests.resident && res.requests.resident[0]) || [] }))
      .catch(() => null);
    const code = api
      .call("code", { params: { slug: slug } })
      .then((res) => {
        const choices = [{ id: "duty", name: "值班代表（按接待安排）" }].concat(
          res.station.deputies.map((d) => ({ id: String(d.id), name: d.name + " 代表" })),
        );
        this.setData({
          loading: false,
          deputyName: res.deputy && !res.routes_to_station ? res.deputy.name : "",
          stationName: res.station.name,
          routesToStation: res.routes_to_station,
          deputyChoices: choices,
          categories: res.categories,
          categoryIndex: Math.max(0, res.categories.findIndex((c) => c.value === "other")),
          limits: res.limits,
          topic: res.topic || null,
          topicClosesOn: res.topic ? time.chinaDay(res.topic.closes_on) : "",
        });
      })
      .catch((err) => this.setData({ loading: false, error: err.message }));
    return Promise.all([templates, code]).then(() => undefined);
  },

  onBodyInput(e) {
    this.setData({ body: e.detail.value });
  },
  onCategoryChange(e) {
    this.setData({ categoryIndex: Number(e.detail.value) });
  },
  onDeputyChange(e) {
    this.setData({ deputyIndex: Number(e.detail.value) });
  },
  onNameInput(e) {
    this.setData({ name: e.detail.value });
  },
  onPhoneInput(e) {
    this.setData({ phone: e.detail.value });
  },
  onConsentChange(e) {
    this.setData({ consent: e.detail.value.length > 0 });
  },
  onPublishConsentChange(e) {
    this.setData({ publishConsent: e.detail.value.length > 0 });
  },
  onChoiceChange(e) {
    this.setData({ choice: e.detail.value });
  },

  // 添加照片: chosen, shrunk on the phone and checked one by one; a refused one is named, the others kept.
  onAddPhotos() {
    const room = this.data.limits.max_photos - this.data.photos.length;
    if (room <= 0 || this.data.choosingPhotos) return Promise.resolve();
    this.setData({ choosingPhotos: true, photoError: "" });
    return photos
      .choose(room)
      .then((files) =>
        files.reduce(
          (previous, file) =>
            previous.then((refusals) =>
              photos.prepare(file, this.data.limits.photo_max_bytes).then(
                (ready) => {
                  this.setData({ photos: this.data.photos.concat([ready]) });
                  return refusals;
                },
                (err) => refusals.concat([err.message]),
              ),
            ),
          Promise.resolve(/** @type {string[]} */ ([])),
        ),
      )
      .then((refusals) => this.setData({ choosingPhotos: false, photoError: refusals.join("\n") }));
  },

  onRemovePhoto(e) {
    const index = Number(e.currentTarget.dataset.index);
    this.setData({ photos: this.data.photos.filter((_, i) => i !== index), photoError: "" });
  },

  payload() {
    const d = this.data;
    const data = {
      code: d.slug,
      body: d.body,
      category: d.categories.length ? d.categories[d.categoryIndex].value : "other",
      name: d.name,
      phone: d.phone,
      consent: d.consent,
      publish_consent: d.publishConsent,
      client_id: d.clientId,
    };
    if (d.topic) {
      if (d.topic.choices.length) data.choice = d.choice;
    } else if (d.routesToStation && d.deputyChoices.length) data.deputy_id = d.deputyChoices[d.deputyIndex].id;
    return data;
  },

  // The message is in; its photos follow it. A refused photo does not undo the message: the resident is told.
  sendPhotos(res) {
    if (!this.data.photos.length) return Promise.resolve();
    return photos.send(res.ref, res.key, this.data.photos).catch(
      (err) =>
        new Promise((resolve) =>
          wx.showModal({
            title: "照片没有全部发出",
            content: "留言已经提交。" + err.message,
            showCancel: false,
            complete: () => resolve(undefined),
          }),
        ),
    );
  },

  onSubmit() {
    if (this.data.topic && this.data.topic.choices.length && !this.data.choice) {
      this.setData({ error: "请选择一项。" });
      return Promise.resolve();
    }
    const body = this.data.body.trim();
    if (body.length < this.data.limits.body_min_chars) {
      this.setData({ error: "请把想反映的情况写清楚，至少" + this.data.limits.body_min_chars + "个字。" });
      return Promise.resolve();
    }
    if ((this.data.name || this.data.phone) && !this.data.consent) {
      this.setData({ error: "留下姓名或手机号时，请勾选同意说明；也可以不留联系方式匿名提交。" });
      return Promise.resolve();
    }
    this.setData({ submitting: true, error: "" });
    const data = this.payload();
    return api
      .requestSubscriptions(this.data.templateIds, "resident")
      .then(() =>
        api.ensureResident().then(
          () => api.asResident("submitItem", { data: data }),
          () => api.call("submitItem", { data: data }), // WeChat login unavailable: send it anyway
        ),
      )
      .then((res) => this.sendPhotos(res).then(() => res))
      .then((res) => {
        wx.redirectTo({ url: "/pages/item/item?ref=" + res.ref + "&key=" + res.key + "&new=1" });
        return res;
      })
      .catch((err) => this.setData({ submitting: false, error: err.message }));
  },
});
