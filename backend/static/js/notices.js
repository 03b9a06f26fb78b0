// The tracking page's notices card in WeChat: the wx-open-subscribe button and what the resident chose.
(function () {
  "use strict";

  var card = document.getElementById("notices");
  var state = document.getElementById("notices-state");

  // Outside WeChat the card's copy-link button is copy_link.js's, as every copy button of the page.

  // In WeChat: wx.config for the open tag, then report what the resident chose.
  var button = document.getElementById("subscribe-button");
  if (!card || !button || typeof wx === "undefined") return;
  var config = JSON.parse(card.getAttribute("data-config"));
  wx.config({
    debug: false,
    appId: config.appId,
    timestamp: config.timestamp,
    nonceStr: config.nonceStr,
    signature: config.signature,
    jsApiList: config.jsApiList,
    openTagList: config.openTagList
  });
  button.addEventListener("success", function (event) {
    // subscribeDetails: '{"<template id>": "{\"status\":\"accept\"}"}'
    var details = JSON.parse(event.detail.subscribeDetails || "{}");
    var results = {};
    Object.keys(details).forEach(function (id) {
      var status = JSON.parse(details[id]).status;
      if (status) results[id] = status;
    });
    var accepted = Object.keys(results).some(function (id) { return results[id] === "accept"; });
    fetch(card.getAttribute("data-report"), {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": card.getAttribute("data-csrf") },
      body: JSON.stringify({ results: results })
    }).finally(function () {
      state.textContent = accepted ? "✓ 微信通知已开启：办理的每一步都会通过微信通知您。" : "您没有开启通知，可以随时再点按钮开启。";
      if (accepted) button.style.display = "none";
    });
  });
  button.addEventListener("error", function () {
    state.textContent = "暂时无法开启微信通知。办理进展会显示在本页，请保存本页链接。";
  });
})();
