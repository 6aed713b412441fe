"""The one script of the staff pages, served as ``/staff/static/staff.js``.

Progressive enhancement only: every page works without it. It shows the receipt's print button
and, on a progress page, polls ``progress.json`` every second instead of reloading the page
(the page's ``<noscript>`` refresh does that without JavaScript); when a letter's status
changes it reloads, so the server renders the next step (the review link).
"""

from __future__ import annotations

STAFF_JS = """'use strict';
(function () {
  document.querySelectorAll('[data-print]').forEach(function (b) {
    b.hidden = false;
    b.addEventListener('click', function () { window.print(); });
  });
  document.querySelectorAll('.print-hint').forEach(function (h) { h.hidden = true; });
  var box = document.querySelector('[data-progress]');
  if (!box) { return; }
  var url = box.getAttribute('data-progress');
  function tick() {
    fetch(url, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        var reading = false;
        var changed = false;
        data.letters.forEach(function (l) {
          var row = document.getElementById('d-' + l.id);
          if (!row) { return; }
          var st = row.querySelector('.st');
          if (st.getAttribute('data-status') !== l.status) { changed = true; return; }
          st.textContent = l.status_text;
          var bar = row.querySelector('progress');
          if (bar && l.pages_total) { bar.max = l.pages_total; bar.value = l.pages_done; }
          if (l.status === 'reading') { reading = true; }
        });
        if (changed) { window.location.reload(); } else if (reading) { setTimeout(tick, 1000); }
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();
"""
