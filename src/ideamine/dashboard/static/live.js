/* IdeaMine dashboard: live updates without a build step.
 * [data-live-src] elements are re-rendered from their fragment URL when the run's event
 * stream ([data-live-stream], server-sent events) reports something, and every
 * [data-live-every] ms while the run is live (so running bars keep growing).
 * [data-action] buttons POST to the API (same-origin, so the login cookie goes along). */
(function () {
  "use strict";
  var TYPES = ["run.created", "run.started", "run.paused", "run.resumed", "run.needs_attention",
    "run.completed", "run.failed", "run.cancelled", "run.repinned", "phase.started",
    "phase.progress", "phase.stalled", "phase.ready", "phase.gate.passed", "phase.gate.failed",
    "phase.completed", "phase.error", "task.started", "task.succeeded", "task.failed",
    "task.retry", "qav.question", "qav.answer", "qav.validation", "kmap.delta",
    "assumption.recorded", "budget.warning", "budget.throttled", "budget.exceeded",
    "dossier.compiled"];

  function isLive(el) {
    var marker = el.querySelector("[data-live]");
    return !marker || marker.getAttribute("data-live") !== "false";
  }

  function refresh(el) {
    if (el._busy) { el._again = true; return; }
    el._busy = true;
    fetch(el.getAttribute("data-live-src"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { el.innerHTML = html; } })
      .catch(function () { /* the next tick tries again */ })
      .then(function () {
        el._busy = false;
        if (el._again) { el._again = false; refresh(el); }
      });
  }

  function follow(el) {
    var timer = null;
    function soon() { if (!timer) { timer = setTimeout(function () { timer = null; refresh(el); }, 200); } }
    var every = parseInt(el.getAttribute("data-live-every") || "0", 10);
    if (every > 0) {
      var ticker = setInterval(function () {
        if (isLive(el)) { refresh(el); } else if (el.hasAttribute("data-live-stream")) { clearInterval(ticker); }
      }, every);
    }
    var url = el.getAttribute("data-live-stream");
    if (!url || !window.EventSource) { return; }
    var note = document.getElementById("last-event");
    var source = new EventSource(url);
    function seen(e) {
      if (note) { note.textContent = "#" + e.lastEventId + " " + e.type; }
      soon();
    }
    TYPES.forEach(function (t) { source.addEventListener(t, seen); });
    source.onmessage = seen;
    source.onopen = function () { if (note && note.textContent === "connecting…") { note.textContent = "connected"; } };
    source.addEventListener("end", function () {
      source.close();
      if (note) { note.textContent += " · run finished"; }
      refresh(el);
    });
  }

  function act(button) {
    var message = button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { return; }
    var note = button.parentNode.querySelector(".action-note");
    button.disabled = true;
    fetch(button.getAttribute("data-action"), { method: "POST", credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (note) { note.textContent = res.ok ? "done: " + (res.body.status || "ok") : res.body.message || "failed"; }
        document.querySelectorAll("[data-live-src]").forEach(refresh);
      })
      .catch(function () { if (note) { note.textContent = "the server did not answer"; } })
      .then(function () { button.disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-src]").forEach(follow);
    document.addEventListener("click", function (e) {
      var button = e.target.closest("[data-action]");
      if (button) { act(button); }
    });
  });
})();
