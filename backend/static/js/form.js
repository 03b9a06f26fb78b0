// The resident's form. Without this script the form posts as a plain form and the server checks it all.
// With it: a live character count; every field checked in the page before sending, all problems shown at
// once (the server checks again, and its answer is shown in the same places); photos shrunk on the phone
// (canvas, long side at most PHOTO_MAX_SIDE, JPEG) and kept in the page, so no error ever drops them; no
// double submit.
//
// Why photos stay in the page rather than going ahead to a holding place: they leave the phone only in the
// request that creates the item, so none can be attached to another item or seen by anyone else, and the
// server keeps no half-sent uploads, tokens or clean-up.
(function () {
  "use strict";
  var form = document.getElementById("item-form");
  if (!form) return;
  var body = document.getElementById("body");
  var counter = document.getElementById("body-counter");
  var max = parseInt(body.getAttribute("data-max"), 10);
  var min = parseInt(body.getAttribute("data-min"), 10);
  var nameInput = document.getElementById("name");
  var phoneInput = document.getElementById("phone");
  var consentInput = form.querySelector('input[name="consent"]');
  var photos = document.getElementById("photos");
  var chosen = document.getElementById("photos-chosen");
  var photoList = document.getElementById("photo-list");
  var maxPhotos = parseInt(photos.getAttribute("data-max"), 10);
  var maxBytes = parseInt(photos.getAttribute("data-max-bytes"), 10);
  var maxSide = parseInt(photos.getAttribute("data-max-side"), 10);
  var button = document.getElementById("submit-button");
  var formError = document.getElementById("form-error");
  var canSend = !!(window.fetch && window.FormData && window.DOMParser && window.Promise);

  // Characters a reader does not see (as backend/items/validation.py's visible_length counts them).
  var INVISIBLE = /[\p{Cc}\p{Cf}\p{Cn}\p{Co}\p{Cs}\p{Zs}\p{Zl}\p{Zp}\p{Mn}\p{Me}]/gu;
  var FULL_WIDTH_DIGIT = /[\uff10-\uff19]/g;
  var MOBILE = /^1[3-9][0-9]{9}$/;
  var CONTROLS = { body: body, name: nameInput, phone: phoneInput, consent: consentInput,
    category: document.getElementById("category") };

  function cleanText(value, oneLine) {
    var text = value.replace(/\r\n?/g, "\n").normalize("NFC").trim();
    return oneLine ? text.split(/\s+/).join(" ") : text;
  }
  function visibleLength(text) {
    return Array.from(text.replace(INVISIBLE, "")).length;
  }
  function countChars(text) {
    // Count characters as the server does (code points), not UTF-16 units.
    return Array.from(cleanText(text, false)).length;
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

  // The server's rules (backend/items/operations.py clean_message), with its messages: field → message.
  function check() {
    var problems = {};
    var text = cleanText(body.value, false);
    var visible = visibleLength(text);
    if (!visible) problems.body = "请填写留言内容。";
    else if (visible < min) problems.body = "留言内容太短，请至少写" + min + "个字。";
    else if (Array.from(text).length > max) {
      problems.body = "留言内容最多" + max + "个字，现在有" + Array.from(text).length + "个字，请删减。";
    }
    var name = cleanText(nameInput.value, true);
    if (Array.from(name).length > 20) {
      problems.name = "姓名最多20个字，现在有" + Array.from(name).length + "个字，请删减。";
    }
    var phone = cleanText(phoneInput.value, true);
    if (phone) {
      var digits = phone.replace(FULL_WIDTH_DIGIT, function (d) { return String(d.charCodeAt(0) - 0xff10); })
        .replace(/[\s\-\uff0d\u3000]/g, "").replace(/^\uff0b/, "+").replace(/^(\+86|0086)/, "");
      if (!MOBILE.test(digits)) problems.phone = "手机号格式不正确，请填写11位大陆手机号，如13812345678。";
    }
    if ((visibleLength(name) || visibleLength(phone)) && !consentInput.checked) {
      problems.consent = "留下姓名或手机号时，请勾选同意说明；也可以不留联系方式匿名提交。";
    }
    return problems;
  }

  function slot(field) {
    return document.getElementById(field + "-error");
  }
  // Show ``problems`` (field → message) in the fields' own places; every other field's error is cleared.
  function showProblems(problems) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (el) {
      var field = el.getAttribute("data-field");
      var message = problems[field] || "";
      el.textContent = message;
      el.hidden = !message;
      var control = CONTROLS[field];
      if (!control) return;
      if (message) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", field + "-error");
      } else {
        control.removeAttribute("aria-invalid");
        control.removeAttribute("aria-describedby");
      }
    });
    setFormError(problems.form || "");
  }
  function setFormError(message) {
    formError.textContent = message;
    formError.hidden = !message;
  }
  function bringFirstProblemIntoView() {
    var first = form.querySelector(".field-error:not([hidden]), .alert:not([hidden])");
    if (!first) return;
    first.scrollIntoView({ block: "center" });
    var invalid = form.querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus({ preventScroll: true });
  }
  // A field the resident is fixing loses its error as soon as it is right; no new error appears while typing.
  function recheckShown() {
    var problems = check();
    Array.prototype.forEach.call(form.querySelectorAll("[data-field]:not([hidden])"), function (el) {
      var field = el.getAttribute("data-field");
      if (CONTROLS[field] && !problems[field]) {
        el.textContent = "";
        el.hidden = true;
        CONTROLS[field].removeAttribute("aria-invalid");
        CONTROLS[field].removeAttribute("aria-describedby");
      }
    });
  }
  [body, nameInput, phoneInput].forEach(function (el) { el.addEventListener("input", recheckShown); });
  consentInput.addEventListener("change", recheckShown);

  // ---- Photos: shrunk if needed, kept in ``kept`` ({blob, name, thumb}) until the item is stored. ----
  var kept = [];
  var preparing = Promise.resolve();

  function decode(file) {
    if (!window.createImageBitmap) return Promise.reject(new Error("no createImageBitmap"));
    // The photo turned as the phone held it (EXIF orientation): the JPEG drawn from it carries no EXIF.
    return createImageBitmap(file, { imageOrientation: "from-image" }).catch(function () {
      return createImageBitmap(file);
    });
  }
  function toJpeg(canvas, quality) {
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", quality); });
  }
  function drawn(bitmap, side) {
    var scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
    var canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    var context = canvas.getContext("2d");
    context.fillStyle = "#fff"; // a transparent PNG becomes a JPEG on white, not on black
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    return canvas;
  }
  function shrink(bitmap) {
    var canvas = drawn(bitmap, maxSide);
    var qualities = [0.85, 0.7, 0.5];
    function attempt(i) {
      return toJpeg(canvas, qualities[i]).then(function (blob) {
        if (blob && blob.size <= maxBytes) return blob;
        if (i + 1 < qualities.length) return attempt(i + 1);
        return null;
      });
    }
    return attempt(0);
  }
  function jpegName(name) {
    return (name.replace(/\.[^.]*$/, "") || "照片") + ".jpg";
  }
  // One chosen file → {blob, name, thumb} to keep, or {error}.
  function prepare(file) {
    var plain = /^image\/(jpeg|png)$/.test(file.type) || /\.(jpe?g|png)$/i.test(file.name);
    return decode(file).then(
      function (bitmap) {
        var thumb = drawn(bitmap, 192).toDataURL("image/jpeg", 0.7);
        var big = file.size > maxBytes || Math.max(bitmap.width, bitmap.height) > maxSide || !plain;
        var ready = big ? shrink(bitmap) : Promise.resolve(file);
        return ready.then(function (blob) {
          if (bitmap.close) bitmap.close();
          if (!blob) return { error: "照片“" + file.name + "”太大，压缩后仍超过" + Math.round(maxBytes / 1048576) + "MB，请换一张。" };
          return { blob: blob, name: big ? jpegName(file.name) : file.name, thumb: thumb };
        });
      },
      function () {
        // Not readable here: a JPEG or PNG within the limit goes as it is and the server decides.
        if (plain && file.size <= maxBytes) return { blob: file, name: file.name, thumb: "" };
        if (!plain) return { error: "“" + file.name + "”不是 JPG 或 PNG 照片，请换一张。" };
        return { error: "照片“" + file.name + "”超过" + Math.round(maxBytes / 1048576) + "MB，且无法在手机上压缩，请换一张。" };
      }
    );
  }
  function showPhotoProblem(message) {
    var el = slot("photos");
    el.textContent = message;
    el.hidden = !message;
  }
  function renderPhotos() {
    photoList.textContent = "";
    kept.forEach(function (photo, index) {
      var li = document.createElement("li");
      var img = document.createElement("img");
      img.alt = "已选照片" + (index + 1);
      if (photo.thumb) img.src = photo.thumb;
      var size = document.createElement("span");
      size.className = "size";
      size.textContent = photo.blob.size >= 1048576
        ? (photo.blob.size / 1048576).toFixed(1) + "MB"
        : Math.max(1, Math.round(photo.blob.size / 1024)) + "KB";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = "删除";
      remove.setAttribute("aria-label", "删除第" + (index + 1) + "张照片");
      remove.addEventListener("click", function () {
        kept.splice(kept.indexOf(photo), 1);
        showPhotoProblem("");
        renderPhotos();
      });
      li.appendChild(img);
      li.appendChild(size);
      li.appendChild(remove);
      photoList.appendChild(li);
    });
    photoList.hidden = !kept.length;
    chosen.textContent = kept.length ? "已选择" + kept.length + "张照片" : "未选择照片";
    photos.disabled = kept.length >= maxPhotos;
  }

  if (canSend) {
    var dropped = document.getElementById("photos-dropped");
    if (dropped) dropped.remove(); // from a form sent without this script; from now on photos stay
    photos.addEventListener("change", function () {
      var files = Array.prototype.slice.call(photos.files);
      photos.value = ""; // the input only picks; what goes is ``kept``, so choosing again adds more
      var room = maxPhotos - kept.length;
      var problem = files.length > room ? "最多" + maxPhotos + "张照片，多选的" + (files.length - room) + "张没有加入。" : "";
      chosen.textContent = "正在处理照片…";
      preparing = preparing.then(function () {
        return files.slice(0, Math.max(0, room)).reduce(function (previous, file) {
          return previous.then(function () {
            return prepare(file).then(function (result) {
              if (result.error) problem = problem || result.error;
              else kept.push(result);
            });
          });
        }, Promise.resolve());
      }).then(function () {
        showPhotoProblem(problem);
        renderPhotos();
      });
    });
  } else {
    photos.addEventListener("change", function () {
      if (photos.files.length > maxPhotos) {
        showPhotoProblem("最多选择" + maxPhotos + "张照片，请重新选择。");
        photos.value = "";
      } else {
        showPhotoProblem("");
      }
      chosen.textContent = photos.files.length ? "已选择" + photos.files.length + "张照片" : "未选择照片";
    });
  }

  // After a refused submit without this script, bring the first problem into view (it may be far down).
  bringFirstProblemIntoView();

  var clientId = form.querySelector('input[name="client_id"]');
  var csrfToken = form.querySelector('input[name="csrf_token"]');
  var sent = false;
  var sending = false;

  function ready() {
    sending = false;
    button.disabled = false;
    button.textContent = "提交留言";
  }
  // The server refused: its page shows the problems; they go into this page, where everything typed and
  // every photo still is. A page that is not the form (a closed station, a busy moment) lends its message.
  function showAnswer(html) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var answered = page.getElementById("item-form");
    if (answered) {
      var problems = {};
      Array.prototype.forEach.call(answered.querySelectorAll("[data-field]:not([hidden])"), function (el) {
        problems[el.getAttribute("data-field")] = el.textContent;
      });
      var answeredError = answered.querySelector("#form-error:not([hidden])");
      if (answeredError) problems.form = answeredError.textContent;
      var answeredId = answered.querySelector('input[name="client_id"]');
      if (answeredId) clientId.value = answeredId.value; // a new one when the old was used by another message
      var answeredToken = answered.querySelector('input[name="csrf_token"]');
      if (answeredToken) csrfToken.value = answeredToken.value;
      showProblems(problems);
    } else {
      var lead = page.querySelector(".card.error .lead") || page.querySelector(".card.error h1");
      var message = lead ? lead.textContent.trim() : "提交没有成功，请稍后再试。";
      showProblems({ form: message + "已写的内容和照片都还在，可以稍后再点“提交留言”。" });
    }
    bringFirstProblemIntoView();
  }
  function send() {
    var data = new FormData(form);
    data.delete("photos");
    kept.forEach(function (photo) { data.append("photos", photo.blob, photo.name); });
    return fetch(form.action, { method: "POST", body: data, credentials: "same-origin" }).then(function (response) {
      if (response.ok || response.redirected) {
        // Stored: the server sent it on to the confirmation page (303), which the browser now opens.
        sent = true;
        window.location.assign(response.url);
        return;
      }
      return response.text().then(function (html) {
        ready();
        showAnswer(html);
      });
    });
  }

  form.addEventListener("submit", function (event) {
    if (!canSend) {
      // The hidden client_id makes a repeated submit harmless; this only spares the resident a second tap.
      sent = true;
      button.disabled = true;
      button.textContent = "正在提交…";
      return;
    }
    event.preventDefault();
    if (sending) return;
    var problems = check();
    showProblems(problems);
    if (Object.keys(problems).length) {
      bringFirstProblemIntoView();
      return;
    }
    sending = true;
    button.disabled = true;
    button.textContent = "正在提交…";
    preparing.then(send).catch(function () {
      ready();
      showProblems({ form: "网络不通，留言没有发出。请检查网络后再点“提交留言”，已写的内容和照片都还在。" });
      bringFirstProblemIntoView();
    });
  });

  function newClientId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  window.addEventListener("pageshow", function (event) {
    // Back on the page after the message went off (the back button may restore the page as it was,
    // bfcache): what is written now is another message, so it gets an id of its own, and the photos
    // that went with the first stay with it. A page fetched again has a fresh id from the server already
    // (never stored: Cache-Control no-store).
    if (event.persisted && sent) {
      clientId.value = newClientId();
      kept = [];
      renderPhotos();
      sent = false;
    }
    ready();
  });
})();
