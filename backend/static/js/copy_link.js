// "复制本页链接": copies a button's data-copy-link and says in its data-copy-result element what happened.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("[data-copy-link]"), function (button) {
    button.addEventListener("click", function () {
      var result = document.getElementById(button.getAttribute("data-copy-result"));
      var done = function () { result.textContent = "已复制链接，请粘贴到备忘录或收藏夹保存。"; };
      var fail = function () { result.textContent = "无法自动复制，请长按上方链接复制，或截图保存本页。"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(button.getAttribute("data-copy-link")).then(done, fail);
      } else {
        fail();
      }
    });
  });
})();
