"""The one script of the staff pages, served as ``/staff/static/staff.js``.

Progressive enhancement only: every page works without it. It

* shows the receipt's print button;
* on the upload form, tells the clerk as the files are chosen when there are more than one
  upload holds or one is larger than a file may be (the form's ``data-max-files`` and
  ``data-max-size``, in its language), and keeps the form from being sent so (the server
  refuses such an upload anyway, but only after the files before have travelled);
* on a progress page, polls ``progress.json`` every second instead of reloading the page (the
  page's ``<noscript>`` refresh does that without JavaScript). A letter that is read is marked
  ready with its review link in place, so the page never reloads under the clerk's mouse or
  keyboard focus while the rest of a batch is read; any other change (a letter that could not
  be read, with its "read again" form) reloads the page, so the server renders it;
* on the review page, keeps what the clerk types in the tab's ``sessionStorage`` (per account
  and letter, with the version of the saved values it was typed over) until it is saved: a
  reload, a session that ran out (the login leads back to the letter) or a page left by
  mistake no longer loses the corrections. They are put back, with a notice, only over the
  very values they were typed over; once those are saved over (by this clerk's own Save or
  Confirm, or by someone else), the kept copy is dropped. It is dropped too when the letter's
  receipt is shown and, with every other kept letter, at logout. A form marked
  ``data-unsaved`` (the values it shows were sent and not saved: a 409 because someone saved
  first, a 503 while saving) puts nothing back: the values it shows become the kept copy, over
  the saved values the form builds on, so the letter opened again (the language switch, the
  login after a session ran out) brings them back.
"""

from __future__ import annotations

STAFF_JS = """'use strict';
(function () {
  document.querySelectorAll('[data-print]').forEach(function (b) {
    b.hidden = false;
    b.addEventListener('click', function () { window.print(); });
  });
  document.querySelectorAll('.print-hint').forEach(function (h) { h.hidden = true; });

  var KEPT = 'lapor-review:';
  function store() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }
  function forget(match) {
    var s = store();
    if (!s) { return; }
    for (var i = s.length - 1; i >= 0; i--) {
      var k = s.key(i);
      if (k && k.indexOf(KEPT) === 0 && match(k)) { s.removeItem(k); }
    }
  }
  var logout = document.getElementById('logout');
  if (logout && logout.form) {
    logout.form.addEventListener('submit', function () {
      forget(function () { return true; });
    });
  }
  var receipt = document.getElementById('receipt');
  if (receipt && receipt.getAttribute('data-draft')) {
    var sent = ':' + receipt.getAttribute('data-draft');
    forget(function (k) { return k.slice(-sent.length) === sent; });
  }

  var upload = document.getElementById('upload-form');
  var chosen = upload && upload.elements.berkas;
  if (chosen && chosen.files && upload.getAttribute('data-max-files')) {
    var maxFiles = parseInt(upload.getAttribute('data-max-files'), 10);
    var maxSize = parseInt(upload.getAttribute('data-max-size'), 10);
    var told = document.createElement('p');
    told.className = 'alert';
    told.id = 'upload-check';
    told.setAttribute('role', 'alert');
    told.hidden = true;
    (document.getElementById('upload-limits') || chosen).insertAdjacentElement('afterend', told);
    var check = function () {
      var files = Array.prototype.slice.call(chosen.files);
      var large = files.filter(function (f) { return f.size > maxSize; })
        .map(function (f) { return f.name; });
      var said = [];
      if (files.length > maxFiles) {
        said.push(upload.getAttribute('data-too-many')
          .replace('{count}', function () { return String(files.length); }));
      }
      if (large.length) {
        said.push(upload.getAttribute('data-too-large')
          .replace('{names}', function () { return large.join(', '); }));
      }
      told.textContent = said.join(' ');
      told.hidden = !said.length;
      // The browser then refuses to send the form, saying the same.
      chosen.setCustomValidity(said.join(' '));
    };
    chosen.addEventListener('change', check);
    check();  // files the browser kept chosen (back to the page)
  }

  var form = document.getElementById('review-form');
  var s = store();
  if (form && s && form.getAttribute('data-draft')) {
    var key = KEPT + form.getAttribute('data-user') + ':' + form.getAttribute('data-draft');
    var basedOn = form.elements.based_on ? form.elements.based_on.value : '';
    var fields = Array.prototype.filter.call(form.elements, function (e) {
      return e.name && e.type !== 'hidden' && e.type !== 'submit' && e.type !== 'button';
    });
    var keep = function () {
      var values = {};
      fields.forEach(function (e) {
        values[e.name] = e.type === 'checkbox' ? (e.checked ? e.value : '') : e.value;
      });
      try { s.setItem(key, JSON.stringify({based_on: basedOn, values: values})); } catch (e) {}
    };
    var kept = null;
    try { kept = JSON.parse(s.getItem(key) || 'null'); } catch (e) { kept = null; }
    if (form.hasAttribute('data-unsaved')) {
      // The values this page shows were sent and not saved (a 409: someone saved first; a 503:
      // the database was away): they are what was typed, newer than any kept copy, and over
      // the saved values this form now builds on. They become the kept copy.
      keep();
    } else if (kept && kept.based_on === basedOn && kept.values) {
      var changed = false;
      fields.forEach(function (e) {
        if (!Object.prototype.hasOwnProperty.call(kept.values, e.name)) { return; }
        var v = kept.values[e.name];
        if (e.type === 'checkbox') {
          if (e.checked !== (v !== '')) { e.checked = v !== ''; changed = true; }
        } else if (e.value !== v) {
          e.value = v;
          changed = true;
        }
      });
      if (changed) {
        var note = document.createElement('p');
        note.className = 'ok';
        note.id = 'restored';
        note.setAttribute('role', 'status');
        note.textContent = form.getAttribute('data-restored');
        form.insertBefore(note, form.firstChild);
      }
    } else if (kept) {
      s.removeItem(key);
    }
    form.addEventListener('input', keep);
    form.addEventListener('change', keep);
  }

  var box = document.querySelector('[data-progress]');
  if (!box) { return; }
  var url = box.getAttribute('data-progress');
  function ready(row, l) {
    var st = row.querySelector('.st');
    st.setAttribute('data-status', l.status);
    st.className = 'st st-' + l.status;
    st.textContent = l.status_text;
    var bar = row.querySelector('progress');
    if (bar) { bar.parentNode.removeChild(bar); }
    var cell = row.querySelector('td.next');
    if (cell && !cell.querySelector('a')) {
      var a = document.createElement('a');
      a.href = l.review_url;
      a.className = 'review-link';
      a.textContent = l.review_text;
      cell.appendChild(a);
    }
  }
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
          var was = st.getAttribute('data-status');
          if (was !== l.status) {
            // Read: its review link in place (on the letter's own page, the review itself).
            if (was === 'reading' && l.status === 'ready' && l.review_url !== location.pathname) {
              ready(row, l);
            } else {
              changed = true;
            }
            return;
          }
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
