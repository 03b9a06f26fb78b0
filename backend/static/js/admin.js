// Administration pages: the reception-day form shows the day list of the kind chosen; poster batches
// download with progress ("已生成 k / N 页"); the first error is brought into view.
// Every page works without this file: the forms post, the batch links download as they are.
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

  // --- poster batches ----------------------------------------------------------------------------
  // The server streams the PDF a page at a time and says how many pages there will be in
  // X-Poster-Pages. Every page object of the stream carries "/Type /Page /Parent": counting them
  // as the bytes arrive is counting pages, whatever sizes the network cuts the stream into.
  var MARK = "/Type /Page /Parent";
  var MARK_BYTES = [];
  for (var i = 0; i < MARK.length; i += 1) MARK_BYTES.push(MARK.charCodeAt(i));
  var FAIL = [0]; // KMP failure table, so a mark split between two chunks is still found
  for (var q = 1, k = 0; q < MARK_BYTES.length; q += 1) {
    while (k > 0 && MARK_BYTES[k] !== MARK_BYTES[q]) k = FAIL[k - 1];
    if (MARK_BYTES[k] === MARK_BYTES[q]) k += 1;
    FAIL.push(k);
  }

  function PageCounter() { this.matched = 0; this.pages = 0; }
  PageCounter.prototype.feed = function (bytes) {
    var m = this.matched;
    for (var j = 0; j < bytes.length; j += 1) {
      var b = bytes[j];
      while (m > 0 && MARK_BYTES[m] !== b) m = FAIL[m - 1];
      if (MARK_BYTES[m] === b) m += 1;
      if (m === MARK_BYTES.length) { this.pages += 1; m = FAIL[m - 1]; }
    }
    this.matched = m;
  };

  function filenameFrom(response, link) {
    var header = response.headers.get("Content-Disposition") || "";
    var star = /filename\*=UTF-8''([^;]+)/i.exec(header);
    if (star) {
      try { return decodeURIComponent(star[1]); } catch (e) { /* fall through */ }
    }
    var plain = /filename="([^"]+)"/i.exec(header);
    if (plain) return plain[1];
    return link.getAttribute("download") || "posters.pdf";
  }

  function errorFrom(response) {
    return response.text().then(function (html) {
      var text = "";
      try {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var lead = doc.querySelector(".lead, .alert");
        text = lead ? lead.textContent.trim() : "";
      } catch (e) { text = ""; }
      return text || "生成失败（" + response.status + "），请稍后重试。";
    });
  }

  function endsWithEof(chunks) {
    // A complete PDF ends with "%%EOF" (and a newline): a stream cut short does not.
    var tail = [];
    for (var c = chunks.length - 1; c >= 0 && tail.length < 16; c -= 1) {
      for (var n = chunks[c].length - 1; n >= 0 && tail.length < 16; n -= 1) tail.unshift(chunks[c][n]);
    }
    return String.fromCharCode.apply(null, tail).indexOf("%%EOF") !== -1;
  }

  function startBatch(link) {
    var box = document.getElementById(link.getAttribute("data-status"));
    var bar = box.querySelector("progress");
    var text = box.querySelector(".batch-text");
    var total = parseInt(link.getAttribute("data-pages"), 10) || 0;
    var counter = new PageCounter();
    var chunks = [];
    var label = link.textContent;

    function say(message, failed) {
      text.textContent = message;
      text.classList.toggle("failed", !!failed);
    }
    function progress() {
      if (total) {
        bar.max = Math.max(total, counter.pages);
        bar.value = counter.pages;
        say("正在生成：已生成 " + counter.pages + " / " + total + " 页");
      } else {
        bar.removeAttribute("value");
        say("正在生成：已生成 " + counter.pages + " 页");
      }
    }
    function done() {
      link.removeAttribute("aria-disabled");
      link.textContent = label;
      link.setAttribute("data-busy", "");
    }

    link.setAttribute("aria-disabled", "true");
    link.setAttribute("data-busy", "1");
    link.textContent = "正在生成，请稍候……";
    box.hidden = false;
    bar.value = 0;
    say("正在连接……");

    fetch(link.href, { credentials: "same-origin", headers: { Accept: "application/pdf" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok) return errorFrom(response).then(function (message) { throw new Error(message); });
        if (type.indexOf("application/pdf") !== 0) throw new Error("登录已失效，请刷新页面重新登录后再打印。");
        total = parseInt(response.headers.get("X-Poster-Pages"), 10) || total;
        var name = filenameFrom(response, link);
        progress();
        var reader = response.body.getReader();
        function pump() {
          return reader.read().then(function (step) {
            if (step.done) return name;
            chunks.push(step.value);
            counter.feed(step.value);
            progress();
            return pump();
          });
        }
        return pump();
      })
      .then(function (name) {
        if (!endsWithEof(chunks)) throw new Error("生成中断，文件不完整，请重试。");
        var blob = new Blob(chunks, { type: "application/pdf" });
        chunks = [];
        var url = URL.createObjectURL(blob);
        bar.max = counter.pages || 1;
        bar.value = counter.pages || 1;
        text.textContent = "";
        text.classList.remove("failed");
        text.appendChild(document.createTextNode("已完成：共 " + counter.pages + " 页。"));
        var save = document.createElement("a");
        save.href = url;
        save.download = name;
        save.className = "js-batch-file";
        save.textContent = "如未自动下载，请点此保存 " + name;
        text.appendChild(save);
        done();
        save.click();
      })
      .catch(function (error) {
        chunks = [];
        bar.value = 0;
        say(error && error.message ? error.message : "生成失败，请稍后重试。", true);
        done();
      });
  }

  document.querySelectorAll(".js-batch").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (!window.fetch || !window.ReadableStream || !window.Blob || !window.URL || !window.DOMParser) return;
      event.preventDefault();
      if (link.getAttribute("data-busy") === "1") return;
      startBatch(link);
    });
  });

  // --- after a refused form, bring the error into view and open its section ------------------------
  var firstError = document.querySelector(".admin .field-error, .admin form .alert[role='alert'], #page-error");
  if (firstError) {
    var details = firstError.closest("details");
    if (details) details.open = true;
    firstError.scrollIntoView({ block: "center" });
  }
})();
