// Administration pages: the reception-day form shows the day list of the kind chosen; a poster batch's
// page follows its progress ("已生成 k / N 页"); the first error is brought into view.
// Every page works without this file: the forms post, the batch page has a link to reload it.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // --- reception days: one day list at a time ---------------------------------------------------
  var kinds = document.querySelectorAll(".js-rule-kind");
  function showDayList() {
    var chosen = document.querySelector(".js-rule-kind:checked");
    document.querySelectorAll(".rule-day").forEach(function (box) {
      box.hidden = !chosen || box.getAttribute("data-kind") !== chosen.value;
    });
  }
  if (kinds.length) {
    kinds.forEach(function (radio) { radio.addEventListener("change", showDayList); });
    showDayList();
  }

  // --- deputy levels: a level's own constituency field only while the level is ticked ------------
  document.querySelectorAll(".levels .level-row").forEach(function (row) {
    var box = row.querySelector("input[type=checkbox]");
    var field = row.querySelector("input[type=text]");
    if (!box || !field) return;
    function sync() { field.hidden = !box.checked && !field.value; }
    box.addEventListener("change", function () {
      sync();
      if (box.checked) field.focus();
    });
    sync();
  });

  // --- file pickers in Chinese: show the name of the file chosen ----------------------------------
  document.querySelectorAll(".js-file").forEach(function (input) {
    var chosen = document.getElementById(input.getAttribute("data-chosen"));
    if (!chosen) return;
    var empty = chosen.textContent;
    input.addEventListener("change", function () {
      chosen.textContent = input.files && input.files.length ? "已选择：" + input.files[0].name : empty;
    });
  });

  // --- a poster batch's progress page ---------------------------------------------------------------
  // The worker renders the batch; this asks the server how far it got ("已生成 k / N 页") and reloads
  // the page once the batch is finished, which then offers the download (or says why it failed).
  // Without this file the page's "刷新查看进度" link does the same by hand.
  var job = document.getElementById("batch");
  var POLL_MS = 1500;
  var MAX_MISSES = 5;
  if (job && window.fetch && window.JSON) {
    var state = job.getAttribute("data-state");
    var bar = document.getElementById("batch-progress");
    var text = document.getElementById("batch-text");
    var reload = document.getElementById("batch-reload");
    var misses = 0;
    var poll = function () {
      fetch(job.getAttribute("data-status-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          if (!response.ok || type.indexOf("application/json") !== 0) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (status) {
          misses = 0;
          if (status.is_finished) {
            window.location.reload();
            return;
          }
          bar.max = Math.max(status.pages_total, status.pages_done, 1);
          bar.value = status.pages_done;
          text.textContent = status.text;
          window.setTimeout(poll, POLL_MS);
        })
        .catch(function () {
          misses += 1;
          if (misses >= MAX_MISSES) {
            text.textContent = "暂时无法获取进度（登录可能已失效或网络中断），请点“刷新查看进度”。";
            if (reload) reload.hidden = false;
            return;
          }
          window.setTimeout(poll, POLL_MS * (misses + 1));
        });
    };
    if (state === "queued" || state === "running") {
      if (reload) reload.hidden = true;
      window.setTimeout(poll, POLL_MS);
    }
  }

  // --- after a refused form, bring the error into view and open its section ------------------------
  var firstError = document.querySelector(".admin .field-error, .admin form .alert[role='alert'], #page-error");
  if (firstError) {
    var details = firstError.closest("details");
    if (details) details.open = true;
    firstError.scrollIntoView({ block: "center" });
  }
})();
