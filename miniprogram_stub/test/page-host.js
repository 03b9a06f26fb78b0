// Hosts a page of the mini-program the way WeChat renders it, in Node: its .wxml compiled by WeChat's own template
// compiler (wcc, from miniprogram-compiler) and rendered by WeChat's component engine (exparser), through
// miniprogram-simulate in a jsdom document. A page registered with Page({...}) is loaded as a component with the
// page's data and functions as its methods; taps and inputs go through the template's bindings (bindtap,
// bindinput, bindchange), so a handler a template names wrongly is never called, and a field it reads wrongly
// shows nothing.
//
// What a person would see is read from the rendered document: visibleLines() (texts, what is hidden left out),
// buttons() (which buttons, their kind, disabled or loading), field() (an input's value, placeholder).
"use strict";

require("global-jsdom/register");
// Node has its own Event and CustomEvent, which jsdom's elements refuse: the document's must be the ones used.
global.Event = window.Event;
global.CustomEvent = window.CustomEvent;
const assert = require("node:assert/strict");
const path = require("path");
const simulate = require("miniprogram-simulate");
const jComponent = require("j-component");

const STUB_ROOT = path.resolve(__dirname, "..");

// WeChat's built-in components with the properties these pages use (miniprogram-simulate registers them with
// none, so a button's disabled or an input's value would vanish). Each property is also written to the element
// as an attribute, as WeChat's own renderer does, so the document shows it and a screenshot can style it.
const COMMON = { hidden: Boolean };
const BUILTINS = {
  view: {},
  text: { selectable: Boolean, space: String, decode: Boolean },
  icon: { type: String, size: null, color: String },
  button: {
    type: String,
    size: String,
    plain: Boolean,
    disabled: Boolean,
    loading: Boolean,
    formType: String,
    openType: String,
  },
  input: {
    value: String,
    type: String,
    password: Boolean,
    placeholder: String,
    placeholderClass: String,
    maxlength: Number,
    disabled: Boolean,
  },
  textarea: {
    value: String,
    placeholder: String,
    placeholderClass: String,
    maxlength: Number,
    disabled: Boolean,
    autoHeight: Boolean,
  },
  picker: { mode: String, range: Array, rangeKey: String, value: null, disabled: Boolean },
  "checkbox-group": {},
  checkbox: { value: String, checked: Boolean, disabled: Boolean, color: String, ariaChecked: String },
  "radio-group": {},
  radio: { value: String, checked: Boolean, disabled: Boolean, color: String, ariaChecked: String },
  label: { for: String },
};
const REFLECTED = new Set([
  "hidden",
  "type",
  "size",
  "plain",
  "disabled",
  "loading",
  "value",
  "placeholder",
  "password",
  "checked",
  "ariaChecked",
  "maxlength",
  "mode",
]);

function dashed(name) {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

function reflect(node, name, value) {
  if (value === false || value === null || value === undefined || value === "") node.removeAttribute(name);
  else node.setAttribute(name, value === true ? "" : String(value));
}

Object.keys(BUILTINS).forEach((tag) => {
  const properties = {};
  const own = Object.assign({}, COMMON, BUILTINS[tag]);
  Object.keys(own).forEach((name) => {
    const type = own[name];
    properties[name] = { type: type };
    if (REFLECTED.has(name)) {
      properties[name].observer = function (value) {
        reflect(this._exparserNode, dashed(name), value);
      };
    }
  });
  jComponent.register({ id: tag, tagName: "wx-" + tag, template: "<slot/>", properties: properties });
});

// Promises returned by a page's functions (onLoad, a tap's handler and what it calls): a tap is done when they are.
const pending = [];
const calls = []; // names of the page functions called, in order

async function settle() {
  await simulate.sleep(0); // miniprogram-simulate dispatches events on a later turn
  while (pending.length) {
    await Promise.all(pending.splice(0));
  }
}

// Page({...}) as a component: data copied, every function a method (tracked), no class prefix so the classes a
// person's screen is styled by (WeUI's) stay as written.
function pageAsComponent(def) {
  const methods = {};
  Object.keys(def).forEach((key) => {
    if (typeof def[key] !== "function") return;
    const original = def[key];
    methods[key] = function () {
      calls.push(key);
      const result = original.apply(this, arguments);
      if (result && typeof result.then === "function") pending.push(result);
      return result;
    };
  });
  return { data: JSON.parse(JSON.stringify(def.data || {})), methods: methods, options: { classPrefix: "" } };
}

let hosted = 0;

// Render a page (route such as "pages/landing/landing") with its initial data; the page object the runtime would
// hand to its functions is returned, with `view` to read and use the rendered page.
function hostPage(route) {
  const previous = global.Page;
  global.Page = (def) => global.Component(pageAsComponent(def));
  hosted += 1;
  let id;
  try {
    id = simulate.load(path.join(STUB_ROOT, route), "page-" + hosted, { rootPath: STUB_ROOT });
  } finally {
    global.Page = previous;
  }
  const comp = simulate.render(id);
  comp.attach(document.createElement("parent-wrapper"));
  const page = comp.instance;
  page.route = route;
  page.view = new View(comp, route);
  return page;
}

function exparserNode(element) {
  return element && element.__wxElement;
}

function isHidden(element) {
  return element.nodeType === 1 && element.hasAttribute("hidden");
}

const BLOCKS = new Set(["WX-VIEW", "WX-BUTTON", "WX-PICKER", "WX-LABEL", "WX-INPUT", "WX-TEXTAREA", "WX-CHECKBOX-GROUP", "WX-RADIO-GROUP"]);

class View {
  constructor(comp, route) {
    this.comp = comp;
    this.route = route;
  }

  get root() {
    return this.comp.dom;
  }

  // The page's text as lines, what is hidden (wx:if false, hidden) left out; inputs show their value or placeholder.
  visibleLines() {
    const out = [];
    let line = "";
    const flush = () => {
      const text = line.replace(/\s+/g, " ").trim();
      if (text) out.push(text);
      line = "";
    };
    const walk = (node) => {
      if (node.nodeType === 3) {
        line += node.textContent;
        return;
      }
      if (node.nodeType !== 1 || isHidden(node)) return;
      // A WeUI cell's head, body and foot share its row: "办理状态 已提交".
      const cellPart = /\bweui-cell__(hd|bd|ft)\b/.test(node.className);
      const block = BLOCKS.has(node.tagName) && !cellPart;
      if (block) flush();
      if (cellPart) line += " ";
      if (node.tagName === "WX-INPUT" || node.tagName === "WX-TEXTAREA") {
        const data = this.dataOf(node);
        const value = data.password ? "•".repeat((data.value || "").length) : data.value;
        line += value || data.placeholder || "";
      }
      node.childNodes.forEach(walk);
      if (block) flush();
    };
    this.root.childNodes.forEach(walk);
    flush();
    return out;
  }

  text() {
    return this.visibleLines().join("\n");
  }

  dataOf(element) {
    const node = exparserNode(element);
    const caller = node && node.__methodCaller;
    return (caller && caller.data) || {};
  }

  visible(element) {
    for (let e = element; e && e !== this.root; e = e.parentNode) {
      if (isHidden(e)) return false;
    }
    return true;
  }

  // The buttons a person sees, in order: text, id, WeUI kind (primary / default / warn), disabled, loading.
  buttons() {
    return Array.from(this.root.querySelectorAll("wx-button"))
      .filter((el) => this.visible(el))
      .map((el) => {
        const data = this.dataOf(el);
        const classes = el.className.split(/\s+/);
        const kind = ["primary", "default", "warn"].find((k) => classes.includes("weui-btn_" + k)) || "";
        return {
          text: el.textContent.replace(/\s+/g, " ").trim(),
          id: exparserNode(el).id,
          kind: kind,
          disabled: Boolean(data.disabled),
          loading: Boolean(data.loading),
        };
      });
  }

  buttonTexts() {
    return this.buttons().map((b) => b.text);
  }

  // The element of a selector (#id or .class, as exparser selects), or null when it is not on the page.
  find(selector) {
    const found = this.comp.querySelector(selector);
    return found && found.dom && this.visible(found.dom) ? found : null;
  }

  has(selector) {
    return this.find(selector) !== null;
  }

  // An input's, a textarea's or a picker's properties as rendered (value, placeholder, range …).
  field(selector) {
    const found = this.find(selector);
    assert.ok(found, this.route + ": no " + selector + " on the page:\n" + this.text());
    return Object.assign({}, this.dataOf(found.dom));
  }

  async fire(selector, eventName, detail, check) {
    const found = this.find(selector);
    assert.ok(found, this.route + ": no " + selector + " to " + eventName + " on the page:\n" + this.text());
    if (check) check(found);
    const before = calls.length;
    found.dispatchEvent(eventName, { detail: detail || {} });
    await settle();
    const called = calls.slice(before);
    assert.ok(called.length > 0, this.route + ": " + eventName + " on " + selector + " reached no function of the page");
    return called[0];
  }

  // A person's tap: only on what is shown and, for a button, not disabled.
  tap(selector) {
    return this.fire(selector, "tap", {}, (found) => {
      assert.ok(!this.dataOf(found.dom).disabled, this.route + ": " + selector + " is disabled");
    });
  }

  // Typing into an input or textarea (bindinput), choosing in a picker or a group (bindchange).
  input(selector, value) {
    return this.fire(selector, "input", { value: value });
  }

  change(selector, value) {
    return this.fire(selector, "change", { value: value });
  }

  // The rendered document, for a screenshot: ids written out, as WeChat's renderer keeps them.
  html() {
    const clone = this.root.cloneNode(true);
    const source = Array.from(this.root.querySelectorAll("*"));
    const copies = Array.from(clone.querySelectorAll("*"));
    source.forEach((el, i) => {
      const node = exparserNode(el);
      if (node && node.id) copies[i].setAttribute("id", node.id);
    });
    return clone.innerHTML;
  }
}

module.exports = { hostPage, settle, STUB_ROOT };
