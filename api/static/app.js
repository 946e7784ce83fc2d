// Live updates and small helpers for the inbox and thread pages. No framework, no build.
(function () {
  "use strict";

  var root = document.documentElement;

  // --- live updates: the server says "something changed"; the page re-fetches itself and
  // swaps the [data-live] regions that differ. A region with data-live-version (the decision
  // form) is only swapped when its version changes, so typing in it is never lost.
  var live = document.querySelectorAll("[data-live]");
  var refreshing = false;
  var again = false;
  var timer = null;

  function openDetails(region) {
    var ids = [];
    region.querySelectorAll("details[open][id]").forEach(function (d) { ids.push(d.id); });
    return ids;
  }

  function swap(fresh) {
    document.querySelectorAll("[data-live][id]").forEach(function (current) {
      var next = fresh.getElementById(current.id);
      if (!next) return;
      var version = current.getAttribute("data-live-version");
      if (version !== null) {
        if (version === next.getAttribute("data-live-version")) return;
      } else if (current.innerHTML === next.innerHTML) {
        return;
      }
      var reopen = openDetails(current);
      current.replaceWith(next);
      reopen.forEach(function (id) {
        var d = document.getElementById(id);
        if (d) d.open = true;
      });
    });
  }

  // A page shown in answer to a form post names the address to re-read it from.
  var liveUrl = document.querySelector('meta[name="live-url"]');
  var url = liveUrl ? liveUrl.getAttribute("content") : window.location.href;

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        swap(new DOMParser().parseFromString(html, "text/html"));
        root.setAttribute("data-live-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next change or reconnect tries again */ })
      .finally(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  function soon() {
    // Several Events come in a burst (approved, performed, sent, executed): one fetch.
    if (timer) clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  }

  if (live.length && "EventSource" in window) {
    var connectedBefore = false;
    var source = new EventSource("/events");
    source.addEventListener("ready", function () {
      // A reconnect may have missed changes while the stream was down.
      if (connectedBefore) soon();
      connectedBefore = true;
      root.setAttribute("data-live", "connected");
    });
    source.addEventListener("change", soon);
    source.addEventListener("error", function () {
      root.setAttribute("data-live", source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // --- the action payload must be a JSON object: say so before the round trip. The server
  // checks again (and keeps what was typed) when scripts are off.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("approve-form")) return;
    var field = form.querySelector("textarea[name=payload]");
    var out = document.getElementById("payload-error");
    if (!field || !out) return;
    var problem = "";
    if (field.value.trim()) {
      try {
        var parsed = JSON.parse(field.value);
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
          problem = "it must be a JSON object ({...})";
        }
      } catch (error) {
        problem = error.message;
      }
    }
    if (problem) {
      event.preventDefault();
      out.textContent = "The action payload is not valid JSON (" + problem + ").";
      field.setAttribute("aria-invalid", "true");
      field.focus();
    } else {
      out.textContent = "";
      field.removeAttribute("aria-invalid");
    }
  });
})();
