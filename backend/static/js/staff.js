// Staff pages: reply templates, quoting a department's answer, copying the department link,
// revealing contact details without a reload, printing a receipt. Every page works without this file.
(function () {
  "use strict";

  // Pick a reply template: its text goes into the reply box (kept editable).
  document.querySelectorAll("select.js-template").forEach(function (select) {
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var target = document.getElementById(select.getAttribute("data-target"));
      var body = option && option.getAttribute("data-body");
      if (target && body) {
        target.value = target.value.trim() ? target.value.replace(/\s+$/, "") + "\n" + body : body;
        target.focus();
      }
    });
  });

  // Quote a department's answer into the reply to the resident.
  document.querySelectorAll(".js-quote").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-source"));
      var target = document.getElementById(button.getAttribute("data-target"));
      if (!source || !target) return;
      var details = target.closest("details");
      if (details) details.open = true;
      var text = source.textContent.trim();
      target.value = target.value.trim() ? target.value.replace(/\s+$/, "") + "\n" + text : text;
      target.focus();
    });
  });

  // Copy the department link (shown once after a forward).
  document.querySelectorAll(".js-copy").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-source"));
    var status = document.getElementById("copy-status");
    if (!field) return;
    button.hidden = false;
    function said(text) { if (status) status.textContent = text; }
    button.addEventListener("click", function () {
      field.focus();
      field.select();
      var done = function () { said("已复制，可以粘贴到微信发给承办单位。"); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          said(document.execCommand("copy") ? "已复制。" : "请长按上面的链接手动复制。");
        });
      } else {
        said(document.execCommand("copy") ? "已复制。" : "请长按上面的链接手动复制。");
      }
    });
  });

  // Reveal contact details in place (the server writes the audit row either way).
  var reveal = document.getElementById("reveal-form");
  if (reveal && window.fetch) {
    reveal.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = reveal.querySelector("button");
      button.disabled = true;
      fetch(reveal.action, {
        method: "POST",
        body: new FormData(reveal),
        headers: { Accept: "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      }).then(function (data) {
        document.getElementById("contact-name").textContent = data.name || "";
        var phone = document.getElementById("contact-phone");
        phone.textContent = "";
        if (data.phone) {
          var link = document.createElement("a");
          link.href = "tel:" + data.phone;
          link.textContent = data.phone;
          phone.appendChild(link);
        }
        var hint = reveal.nextElementSibling;
        if (hint) hint.textContent = "已记录本次查看。";
        reveal.remove();
      }).catch(function () {
        reveal.submit(); // fall back to the plain form post
      });
    });
  }

  // Print the receipt (回执) of an item entered in person.
  document.querySelectorAll(".js-print").forEach(function (button) {
    if (!window.print) return;
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  // After a refused action, bring the error into view.
  var firstError = document.querySelector(".actions .field-error, .actions .alert, #action-error");
  if (firstError) firstError.scrollIntoView({ block: "center" });
})();
