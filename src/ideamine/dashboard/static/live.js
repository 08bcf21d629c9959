/* IdeaMine dashboard: live updates without a build step.
 * [data-live-src] elements are re-rendered from their fragment URL whenever the run's event
 * stream ([data-live-stream], server-sent events, one per page) reports something, and every
 * [data-live-every] ms while the run is live (so running bars keep growing). What a person
 * is typing survives a refresh, and a fragment is not swapped under the field they are in.
 * [data-action] buttons POST to the API; form[data-api] forms POST their fields to the API
 * as JSON (same-origin, so the login cookie goes along) and show its error message in place. */
(function () {
  "use strict";
  var TYPES = ["run.created", "run.started", "run.paused", "run.resumed", "run.needs_attention",
    "run.completed", "run.failed", "run.cancelled", "run.repinned", "phase.started",
    "phase.progress", "phase.stalled", "phase.ready", "phase.gate.passed", "phase.gate.failed",
    "phase.gate.waived", "phase.completed", "phase.error", "task.started", "task.succeeded",
    "task.failed", "task.retry", "qav.question", "qav.answer", "qav.validation", "kmap.delta",
    "assumption.recorded", "budget.warning", "budget.throttled", "budget.exceeded",
    "dossier.compiled"];

  function isLive(el) {
    var marker = el.querySelector("[data-live]");
    return !marker || marker.getAttribute("data-live") !== "false";
  }

  function fields(el) {
    var found = [];
    el.querySelectorAll("form[data-api]").forEach(function (form) {
      form.querySelectorAll("textarea, input").forEach(function (input) {
        found.push({ key: form.getAttribute("data-api") + " " + input.name, input: input });
      });
    });
    return found;
  }

  function typed(el) {
    var saved = {};
    fields(el).forEach(function (f) {
      if (f.input.value !== f.input.defaultValue) { saved[f.key] = f.input.value; }
    });
    return saved;
  }

  function editing(el) {
    var active = document.activeElement;
    return active && el.contains(active) && /^(TEXTAREA|INPUT)$/.test(active.tagName);
  }

  function refresh(el) {
    if (el._busy) { el._again = true; return; }
    if (editing(el)) { setTimeout(function () { refresh(el); }, 3000); return; }
    el._busy = true;
    fetch(el.getAttribute("data-live-src"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null || editing(el)) { return; }
        var saved = typed(el);
        el.innerHTML = html;
        fields(el).forEach(function (f) { if (f.key in saved) { f.input.value = saved[f.key]; } });
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () {
        el._busy = false;
        if (el._again) { el._again = false; refresh(el); }
      });
  }

  function refreshAll() { document.querySelectorAll("[data-live-src]").forEach(refresh); }

  function tick(el) {
    var every = parseInt(el.getAttribute("data-live-every") || "0", 10);
    if (every <= 0) { return; }
    var ticker = setInterval(function () {
      if (isLive(el)) { refresh(el); } else if (el.hasAttribute("data-live-stream")) { clearInterval(ticker); }
    }, every);
  }

  function listen(el) {
    var url = el.getAttribute("data-live-stream");
    if (!url || !window.EventSource) { return; }
    var timer = null;
    function soon() { if (!timer) { timer = setTimeout(function () { timer = null; refreshAll(); }, 200); } }
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
      refreshAll();
    });
  }

  function reply(r) {
    return r.json().then(function (body) { return { ok: r.ok, body: body }; },
      function () { return { ok: r.ok, body: { message: "the server answered " + r.status } }; });
  }

  function act(button) {
    var message = button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { return; }
    var note = button.parentNode.querySelector(".action-note");
    button.disabled = true;
    fetch(button.getAttribute("data-action"), { method: "POST", credentials: "same-origin" })
      .then(reply)
      .then(function (res) {
        if (note) { note.textContent = res.ok ? "done: " + (res.body.status || "ok") : res.body.message || "failed"; }
        refreshAll();
      })
      .catch(function () { if (note) { note.textContent = "the server did not answer"; } })
      .then(function () { button.disabled = false; });
  }

  function body(form) {
    var data = {};
    form.querySelectorAll("textarea[name], input[name]").forEach(function (input) {
      var value = input.value;
      if (input.hasAttribute("data-end-of-day") && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
        value += "T23:59:59Z"; // a waiver lasts to the end of the day it names (UTC)
      }
      data[input.name] = value;
    });
    return data;
  }

  function done(kind, result) {
    if (kind === "answer") {
      if (result.resumed) { return "Answered " + result.question_id + ": every question is answered, the run goes on."; }
      return "Answered " + result.question_id + "; " + result.open + " question(s) still open.";
    }
    if (kind === "waive") { return "Waived the gate of " + result.phase + " (attempt " + result.attempt + "); the run goes on."; }
    return "Done.";
  }

  function problem(result) {
    var text = result.message || "the server refused";
    if (result.hint) { text += " (" + result.hint + ")"; }
    return text;
  }

  function flash(text) {
    var el = document.getElementById("flash");
    if (!el) { return; }
    el.textContent = text;
    el.hidden = false;
  }

  function send(form) {
    var error = form.querySelector(".form-error");
    var button = form.querySelector("button[type=submit]");
    if (error) { error.textContent = ""; }
    button.disabled = true;
    fetch(form.getAttribute("data-api"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body(form))
    })
      .then(reply)
      .then(function (res) {
        if (!res.ok) { if (error) { error.textContent = problem(res.body); } return; }
        flash(done(form.getAttribute("data-kind"), res.body));
        form.reset();
        if (document.activeElement && form.contains(document.activeElement)) { document.activeElement.blur(); }
        refreshAll();
      })
      .catch(function () { if (error) { error.textContent = "the server did not answer"; } })
      .then(function () { button.disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-src]").forEach(tick);
    var stream = document.querySelector("[data-live-stream]");
    if (stream) { listen(stream); }
    document.addEventListener("click", function (e) {
      var button = e.target.closest("[data-action]");
      if (button) { act(button); }
    });
    document.addEventListener("submit", function (e) {
      var form = e.target.closest("form[data-api]");
      if (form) { e.preventDefault(); send(form); }
    });
  });
})();
