/*
 * 模拟微信's JS-SDK: what jweixin-1.6.0.js and WeChat's browser do for a page's open tag, for pages served
 * beside the sandbox (`make run`, the browser tests). The production app loads it instead of
 * https://res.wx.qq.com/open/js/jweixin-1.6.0.js only under WECHAT_SANDBOX (backend/wechat/jssdk.py).
 *
 * Emulated:
 * - wx.config / wx.ready / wx.error / wx.checkJsApi (config is accepted as given: its signature is NOT checked);
 * - <wx-open-subscribe template="id,id">: once wx.config is called, the tag shows its wxtag-template (in a
 *   shadow root, as WeChat shows it apart from the page); a tap opens WeChat's subscription sheet (允许 / 取消);
 *   the choice is posted to the sandbox's control sandbox/oa-subscribe for this browser's WeChat user (the
 *   openid the sandbox's OAuth page gave this browser, in its cookie), which records it and pushes
 *   subscribe_msg_popup_event to the app, signed, as WeChat does; then the tag fires "success" with
 *   event.detail.subscribeDetails = '{"<id>": "{\"status\":\"accept\"}"}', or "error" when that failed.
 * Nothing else of the JS-SDK is here.
 */
(function () {
  "use strict";

  var CONTROL = {{ control_url | tojson }};
  var TITLES = {{ titles | tojson }};
  var readyCallbacks = [];
  var isReady = false;

  // Styles one property at a time through CSSOM, never as a style attribute: the page's CSP allows no inline style.
  function css(element, text) {
    text.split(";").forEach(function (declaration) {
      var colon = declaration.indexOf(":");
      if (colon > 0) {
        element.style.setProperty(declaration.slice(0, colon).trim(), declaration.slice(colon + 1).trim());
      }
    });
    return element;
  }

  // The wxtag-template's markup, rebuilt element by element: its (renamed) style attributes become CSSOM styles.
  function rebuild(source, target) {
    Array.prototype.forEach.call(source.childNodes, function (node) {
      if (node.nodeType === Node.TEXT_NODE) {
        target.appendChild(document.createTextNode(node.textContent));
      } else if (node.nodeType === Node.ELEMENT_NODE && node.localName !== "script") {
        var copy = document.createElement(node.localName);
        Array.prototype.forEach.call(node.attributes, function (attribute) {
          if (attribute.name === "data-wxtag-style") css(copy, attribute.value);
          else if (attribute.name.indexOf("on") !== 0) copy.setAttribute(attribute.name, attribute.value);
        });
        rebuild(node, copy);
        target.appendChild(copy);
      }
    });
  }

  function choose(ids, status) {
    return Promise.all(
      ids.map(function (id) {
        return fetch(CONTROL, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ template_id: id, status: status })
        }).then(function (answer) {
          if (!answer.ok) throw new Error("sandbox/oa-subscribe answered " + answer.status);
        });
      })
    );
  }

  function openSheet(tag, ids) {
    var veil = css(document.createElement("div"), "position:fixed;inset:0;background:rgba(0,0,0,.45);z-index:2147483647");
    veil.id = "wx-subscribe-sheet";
    veil.setAttribute("role", "dialog");
    veil.setAttribute("aria-label", "订阅消息");
    var sheet = css(document.createElement("div"),
      "position:absolute;left:0;right:0;bottom:0;background:#fff;border-radius:12px 12px 0 0;padding:20px 16px;" +
      "font:15px/1.5 system-ui,sans-serif;color:#111");
    var head = css(document.createElement("p"), "margin:0 0 12px;font-weight:600");
    head.textContent = "申请向你发送以下订阅通知（模拟微信）";
    sheet.appendChild(head);
    ids.forEach(function (id) {
      var line = css(document.createElement("p"), "margin:0 0 8px;display:flex;justify-content:space-between");
      var title = document.createElement("span");
      title.textContent = TITLES[id] || id;
      var kind = css(document.createElement("span"), "color:#888");
      kind.textContent = "✓";
      line.appendChild(title);
      line.appendChild(kind);
      sheet.appendChild(line);
    });
    var row = css(document.createElement("div"), "display:flex;gap:12px;margin-top:16px");
    [["取消", "reject", "#f2f2f2", "#111"], ["允许", "accept", "#07c160", "#fff"]].forEach(function (spec) {
      var button = css(document.createElement("button"),
        "flex:1;padding:10px;border:0;border-radius:6px;font-size:16px;background:" + spec[2] + ";color:" + spec[3]);
      button.type = "button";
      button.textContent = spec[0];
      button.addEventListener("click", function () {
        veil.remove();
        choose(ids, spec[1]).then(
          function () {
            var details = {};
            ids.forEach(function (id) { details[id] = JSON.stringify({ status: spec[1] }); });
            tag.dispatchEvent(new CustomEvent("success", {
              detail: { errMsg: "subscribe:ok", subscribeDetails: JSON.stringify(details) }
            }));
          },
          function (problem) {
            tag.dispatchEvent(new CustomEvent("error", { detail: { errCode: -1, errMsg: String(problem) } }));
          }
        );
      });
      row.appendChild(button);
    });
    sheet.appendChild(row);
    veil.appendChild(sheet);
    document.body.appendChild(veil);
  }

  function defineOpenTag() {
    if (customElements.get("wx-open-subscribe")) return;
    customElements.define("wx-open-subscribe", class extends HTMLElement {
      connectedCallback() {
        if (this.shadowRoot) return;
        var root = this.attachShadow({ mode: "open" });
        var template = this.querySelector('script[type="text/wxtag-template"]');
        if (template) {
          // Renamed before parsing: a parsed style attribute would meet the page's CSP (DOMParser inherits it).
          var markup = template.textContent.replace(/\sstyle=/g, " data-wxtag-style=");
          rebuild(new DOMParser().parseFromString(markup, "text/html").body, root);
        }
        var ids = (this.getAttribute("template") || "").split(",").map(function (id) { return id.trim(); })
          .filter(Boolean);
        var tag = this;
        this.addEventListener("click", function () { openSheet(tag, ids); });
      }
    });
  }

  window.wx = {
    config: function () {
      defineOpenTag();
      isReady = true;
      setTimeout(function () { readyCallbacks.splice(0).forEach(function (callback) { callback(); }); }, 0);
    },
    ready: function (callback) {
      if (isReady) setTimeout(callback, 0);
      else readyCallbacks.push(callback);
    },
    error: function () {},
    checkJsApi: function (options) {
      var result = {};
      (options.jsApiList || []).forEach(function (name) { result[name] = false; });
      if (options.success) options.success({ checkResult: result, errMsg: "checkJsApi:ok" });
    }
  };
})();
