// The resident's form: live character count, photo count check, and no double submit.
(function () {
  "use strict";
  var form = document.getElementById("item-form");
  if (!form) return;
  var body = document.getElementById("body");
  var counter = document.getElementById("body-counter");
  var max = parseInt(body.getAttribute("data-max"), 10);
  var min = parseInt(body.getAttribute("data-min"), 10);

  function countChars(text) {
    // Count characters as the server does (code points), not UTF-16 units.
    return Array.from(text.replace(/\r\n/g, "\n").trim()).length;
  }
  function updateCounter() {
    var n = countChars(body.value);
    if (n > max) {
      counter.textContent = "已写" + n + "字，超出" + (n - max) + "字，最多" + max + "字";
      counter.classList.add("over");
    } else if (n < min) {
      counter.textContent = "已写" + n + "字，至少" + min + "字";
      counter.classList.remove("over");
    } else {
      counter.textContent = "已写" + n + "字，还可以写" + (max - n) + "字";
      counter.classList.remove("over");
    }
  }
  body.removeAttribute("maxlength"); // let the counter explain instead of silently cutting the text
  body.addEventListener("input", updateCounter);
  updateCounter();

  var photos = document.getElementById("photos");
  var hint = document.getElementById("photos-hint");
  var chosen = document.getElementById("photos-chosen");
  var maxPhotos = parseInt(photos.getAttribute("data-max"), 10);
  photos.addEventListener("change", function () {
    if (photos.files.length > maxPhotos) {
      hint.textContent = "最多选择" + maxPhotos + "张照片，请重新选择。";
      hint.classList.add("field-error");
      photos.value = "";
    } else {
      hint.classList.remove("field-error");
    }
    chosen.textContent = photos.files.length ? "已选择" + photos.files.length + "张照片" : "未选择照片";
  });

  // After a refused submit, bring the first problem into view (it may be far down the page).
  var firstError = form.querySelector(".field-error, .alert");
  if (firstError) {
    firstError.scrollIntoView({ block: "center" });
    var invalid = form.querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus({ preventScroll: true });
  }

  var button = document.getElementById("submit-button");
  var clientId = form.querySelector('input[name="client_id"]');
  var sent = false;
  form.addEventListener("submit", function () {
    // The hidden client_id makes a repeated submit harmless; this only spares the resident a second tap.
    sent = true;
    button.disabled = true;
    button.textContent = "正在提交…";
  });

  function newClientId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  window.addEventListener("pageshow", function (event) {
    // Back on the page after the message went off (the back button may restore the page as it was,
    // bfcache): what is written now is another message, so it gets an id of its own. A page fetched
    // again has a fresh one from the server already (never stored: Cache-Control no-store).
    if (event.persisted && sent) {
      clientId.value = newClientId();
      sent = false;
    }
    button.disabled = false;
    button.textContent = "提交留言";
  });
})();
