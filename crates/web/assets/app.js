// Stockroom web admin: the little that needs a script. Every page works without it.
"use strict";

// Parts of a page marked data-live="URL" are replaced by a fresh rendering of URL every data-every seconds
// (default 10): the dashboard stays current on a wall screen without reloading the page.
function startLive() {
  document.querySelectorAll("[data-live]").forEach(function (el) {
    var every = Math.max(2, parseInt(el.getAttribute("data-every") || "10", 10)) * 1000;
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(el.getAttribute("data-live"), { credentials: "same-origin", headers: { "accept": "text/html" } })
        .then(function (r) {
          // Sent to the sign-in page (the session ended): show that page whole, never inside the dashboard.
          if (r.redirected || r.status === 401 || r.status === 403) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) { if (html !== null) { el.innerHTML = html; el.setAttribute("data-updated", Date.now()); } })
        .catch(function () { /* the next tick tries again */ });
    }, every);
  });
}

// A barcode scanner types into whatever has focus and presses Enter: keep the scan field focused after each
// scan, and select its text so the next scan replaces it.
function focusScan() {
  var scan = document.querySelector("[data-scan]");
  if (scan) { scan.focus(); if (scan.select) { scan.select(); } }
}

// Buttons that change something irreversible ask first.
function confirmDanger() {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  startLive();
  focusScan();
  confirmDanger();
});
