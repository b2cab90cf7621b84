// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // A <select data-autosubmit> submits its form on change, so its button can hide.
  function enhance(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var form = select.form;
      if (!form || select.dataset.enhanced) return;
      select.dataset.enhanced = "1";
      var button = form.querySelector("[data-autosubmit-button]");
      if (button) button.classList.add("visually-hidden");
      select.addEventListener("change", function () { form.requestSubmit(); });
    });
  }

  // Close an open <details class="menu"> on Escape or on a click outside it.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (d) {
      d.removeAttribute("open");
      var summary = d.querySelector("summary");
      if (summary) summary.focus();
    });
  });
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details.menu[open]").forEach(function (d) {
      if (!d.contains(e.target)) d.removeAttribute("open");
    });
  });

  // Buttons in a submitted form show that work is under way and cannot be pressed twice.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (e.defaultPrevented) return;
    form.querySelectorAll("button[type=submit]").forEach(function (b) {
      b.setAttribute("aria-busy", "true");
      setTimeout(function () { b.disabled = true; }, 0);
    });
  });

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (e) { enhance(e.target); });
})();

// Pages restored from the back-forward cache get their buttons back.
window.addEventListener("pageshow", function (e) {
  if (!e.persisted) return;
  document.querySelectorAll("button[aria-busy=true]").forEach(function (b) {
    b.disabled = false;
    b.removeAttribute("aria-busy");
  });
});
