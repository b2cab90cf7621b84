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

  // A <button data-copy="id"> copies the text of the element id (a secret
  // shown once); it is hidden until this script shows it.
  function enhanceCopy(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      if (button.dataset.enhanced) return;
      button.dataset.enhanced = "1";
      var value = document.getElementById(button.dataset.copy);
      var status = document.querySelector('[data-copy-status="' + button.dataset.copy + '"]');
      if (!value) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = value.textContent.trim();
        var say = function (words) { if (status) status.textContent = words; };
        var selectIt = function () {
          var range = document.createRange();
          range.selectNodeContents(value);
          var sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          say("Selected: press Ctrl+C (⌘C) to copy.");
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(function () { say("Copied."); }, selectIt);
        } else {
          selectIt();
        }
      });
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

  // A form bigger than the instance accepts (NOFX_MAX_BODY, on <body>) is
  // not sent, so that its text is not lost to a 413: the biggest field says
  // how big it is and what fits. Plain submits are checked in the capture
  // phase, before htmx and the busy buttons below; htmx requests (the
  // template builder's buttons) as htmx configures them.
  function formatSize(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + " MB";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + " kB";
    return n + " bytes";
  }
  // sentSize is how many bytes a field's value takes in the request: as a
  // urlencoded form sends it (newlines as CRLF, spaces as +), or raw.
  function sentSize(value, multipart) {
    value = value.replace(/\r?\n/g, "\r\n");
    if (multipart) return new Blob([value]).size;
    return encodeURIComponent(value).replace(/%20/g, "+").length;
  }
  // tooLarge measures form as sent with submitter (the button pressed, or
  // none) and returns its biggest field when the whole is over the limit.
  function tooLarge(form, submitter) {
    var max = Number(document.body.dataset.maxBody || 0);
    if (!max) return null;
    var multipart = form.enctype === "multipart/form-data";
    var total = 0, biggest = null, biggestSize = -1;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled) return;
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) return;
      if ((el.type === "submit" || el.type === "button" || el.type === "image") && el !== submitter) return;
      var n = 0;
      if (el.type === "file") {
        for (var i = 0; i < el.files.length; i++) n += el.files[i].size;
      } else {
        n = sentSize(el.value, multipart);
      }
      total += n + el.name.length + 2;
      if (el.type !== "hidden" && el.type !== "submit" && n > biggestSize) { biggest = el; biggestSize = n; }
    });
    if (total <= max || !biggest) return null;
    return { field: biggest, size: biggestSize };
  }
  function clearTooLarge(form) {
    form.querySelectorAll("[data-too-large]").forEach(function (p) { p.remove(); });
  }
  function showTooLarge(big) {
    var field = big.field;
    var id = (field.id || field.name) + "-too-large";
    var message = document.createElement("p");
    message.className = "field-error";
    message.id = id;
    message.dataset.tooLarge = "1";
    message.dataset.testid = "error-too-large";
    message.setAttribute("role", "alert");
    message.textContent = "This is " + formatSize(big.size) + "; this instance accepts at most " +
      document.body.dataset.maxBodyText + " in one request (NOFX_MAX_BODY). Shorten it, then send the form again.";
    field.insertAdjacentElement("afterend", message);
    field.setAttribute("aria-invalid", "true");
    var described = (field.getAttribute("aria-describedby") || "").split(" ").filter(function (x) { return x && x !== id; });
    described.unshift(id);
    field.setAttribute("aria-describedby", described.join(" "));
    for (var d = field.closest("details"); d; d = d.parentElement && d.parentElement.closest("details")) d.open = true;
    field.focus();
  }
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if ((form.getAttribute("method") || "").toLowerCase() !== "post") return;
    clearTooLarge(form);
    var big = tooLarge(form, e.submitter);
    if (!big) return;
    e.preventDefault();
    e.stopPropagation();
    showTooLarge(big);
  }, true);
  document.addEventListener("htmx:configRequest", function (e) {
    var elt = e.detail.elt;
    var form = elt.tagName === "FORM" ? elt : elt.form || elt.closest("form");
    if (!form || e.detail.verb !== "post") return;
    clearTooLarge(form);
    var big = tooLarge(form, elt.tagName === "FORM" ? null : elt);
    if (!big) return;
    e.preventDefault();
    showTooLarge(big);
  });
  // What the check above cannot see (a body the server still finds too
  // large) is said above the form, which keeps its text.
  document.addEventListener("htmx:afterRequest", function (e) {
    if (!e.detail.xhr || e.detail.xhr.status !== 413) return;
    var elt = e.detail.elt;
    var form = elt.tagName === "FORM" ? elt : elt.form || elt.closest("form");
    if (!form) return;
    clearTooLarge(form);
    var alert = document.createElement("div");
    alert.className = "alert alert-error";
    alert.dataset.tooLarge = "1";
    alert.dataset.testid = "error-too-large";
    alert.setAttribute("role", "alert");
    alert.textContent = "That was more than this instance accepts in one request (" + document.body.dataset.maxBodyText +
      ", NOFX_MAX_BODY). Your text is still here: shorten it, then try again.";
    form.insertAdjacentElement("afterbegin", alert);
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

  // A provider <select data-model-field="id"> suggests its model in that
  // field, unless the field holds one typed by hand, and names it in the
  // field's hint (options carry data-model and data-hint).
  function enhanceModels(root) {
    root.querySelectorAll("select[data-model-field]").forEach(function (select) {
      if (select.dataset.modelsEnhanced) return;
      select.dataset.modelsEnhanced = "1";
      var field = document.getElementById(select.dataset.modelField);
      var hint = document.getElementById(select.dataset.modelField + "-hint");
      if (!field) return;
      var suggested = select.selectedOptions[0] ? select.selectedOptions[0].dataset.model : "";
      select.addEventListener("change", function () {
        var option = select.selectedOptions[0];
        if (!option) return;
        if (field.value === "" || field.value === suggested) field.value = option.dataset.model || "";
        suggested = option.dataset.model || "";
        if (hint) hint.textContent = option.dataset.hint || "";
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); enhanceCopy(document); enhanceModels(document); });
  document.addEventListener("htmx:load", function (e) { enhance(e.target); enhanceCopy(e.target); enhanceModels(e.target); });
})();

// Pages restored from the back-forward cache get their buttons back.
window.addEventListener("pageshow", function (e) {
  if (!e.persisted) return;
  document.querySelectorAll("button[aria-busy=true]").forEach(function (b) {
    b.disabled = false;
    b.removeAttribute("aria-busy");
  });
});

// Runs: times in the reader's time zone, durations that tick while a run or
// step is under way, and step outputs that follow the text streamed into them.
(function () {
  "use strict";

  function localize(root) {
    root.querySelectorAll("time[data-local]").forEach(function (t) {
      if (t.dataset.localized || t.dataset.local === "zoned") return; // a schedule's time, in its team's zone
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      t.dataset.localized = "1";
      t.title = t.textContent; // the time in UTC, as the server wrote it
      switch (t.dataset.local) {
        case "time":
          t.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
          break;
        case "date":
          t.textContent = d.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" });
          break;
        default:
          t.textContent = d.toLocaleString([], { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
      }
    });
  }

  // formatDuration writes milliseconds as the server does (views/components FormatDuration).
  function formatDuration(ms) {
    if (ms <= 0) return "—";
    if (ms < 1000) return Math.floor(ms) + " ms";
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + "s";
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (s < 3600) return Math.floor(s / 60) + "m " + pad(Math.floor(s) % 60) + "s";
    return Math.floor(s / 3600) + "h " + pad(Math.floor(s / 60) % 60) + "m";
  }

  // [data-elapsed-ms] holds the server's elapsed time when it rendered; count
  // on from there with the local clock, so clock skew does not matter.
  function tick() {
    var now = performance.now();
    document.querySelectorAll("[data-elapsed-ms]").forEach(function (el) {
      if (el._nofxSeen === undefined) el._nofxSeen = now;
      var ms = Number(el.dataset.elapsedMs) + (now - el._nofxSeen);
      if (!isNaN(ms)) el.textContent = formatDuration(ms);
    });
  }
  setInterval(tick, 1000);

  // Keep a step's output and the timeline scrolled to their end while text
  // and entries stream in, unless the reader scrolled up to read.
  var follows = "pre.output, ol.timeline";
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var el = e.target;
    if (!el.matches || !el.matches(follows)) return;
    el._nofxFollow = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  });
  document.addEventListener("htmx:sseMessage", function (e) {
    var el = e.target;
    if (el.matches && el.matches(follows) && el._nofxFollow) el.scrollTop = el.scrollHeight;
  });

  // The run page says whether its live updates are connected.
  function liveState(e, state) {
    var el = e.target;
    if (el && el.hasAttribute && el.hasAttribute("sse-connect")) el.dataset.live = state;
  }
  document.addEventListener("htmx:sseOpen", function (e) { liveState(e, "connected"); });
  document.addEventListener("htmx:sseError", function (e) { liveState(e, "reconnecting"); });

  document.addEventListener("DOMContentLoaded", function () { localize(document); tick(); });
  document.addEventListener("htmx:load", function (e) { localize(e.target); });
})();
