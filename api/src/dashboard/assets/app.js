// Herald's dashboard: keeps the pages live from the API's event streams. The pages work
// without it (forms post, pages render on the server); this only adds live numbers.
(function () {
  'use strict';

  var numbers = new Intl.NumberFormat('en');
  var offline = document.getElementById('offline');

  function label(name) { return name.replace(/_/g, ' '); }
  function percent(part, whole) { return whole > 0 ? (part * 100 / whole).toFixed(1) + '%' : '0%'; }
  function duration(secs) {
    var s = Math.round(secs);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  // Write only what changed: a live region re-announces any text that is written.
  function set(root, field, text) {
    root.querySelectorAll('[data-f="' + field + '"]').forEach(function (el) {
      if (el.textContent !== text) el.textContent = text;
    });
  }

  // Recipients processed: sent, failed, or left out (opted out, suppressed, capped); a
  // wave's as a campaign's.
  function done(c) {
    return c.sent + c.failed + (c.suppressed || 0) + (c.capped || 0);
  }

  // How far a campaign has come, 0 to 1: the recipients processed, or the share of the
  // audience's user ids its pages have scanned when that is ahead (a sparse audience).
  function fraction(c) {
    var processed = c.total > 0 ? done(c) / c.total : 0;
    return Math.min(Math.max(processed, c.scanned || 0), 1);
  }

  // Speed from the last minute of samples of one campaign: recipients processed per second,
  // and the time left at the pace its fraction moved.
  var samples = {};
  function speed(c) {
    var now = Date.now() / 1000, processed = done(c), f = fraction(c);
    var s = samples[c.key] || (samples[c.key] = []);
    if (c.status !== 1) { samples[c.key] = []; return null; }
    s.push([now, processed, f]);
    while (s.length > 2 && now - s[0][0] > 60) s.shift();
    var first = s[0], secs = now - first[0];
    if (secs < 2) return undefined; // not enough yet: keep what is shown
    var pace = (f - first[2]) / secs;
    return { rate: (processed - first[1]) / secs, left: pace > 0 ? (1 - f) / pace : null };
  }

  // Fill a row or a campaign page from the API's campaign JSON.
  function show(root, c) {
    var processed = done(c);
    var badge = root.querySelector('[data-f="status"]');
    if (badge) {
      set(root, 'status', c.status + ' · ' + label(c.status_name));
      badge.className = 'badge s-' + c.status_name;
    }
    root.dataset.status = c.status_name;
    set(root, 'request', c.pending_request || '');
    set(root, 'sent', numbers.format(c.sent));
    set(root, 'failed', numbers.format(c.failed));
    set(root, 'suppressed', numbers.format(c.suppressed || 0));
    set(root, 'capped', numbers.format(c.capped || 0));
    set(root, 'pending', numbers.format(c.pending));
    set(root, 'total', numbers.format(c.total));
    set(root, 'read', numbers.format(c.read));
    set(root, 'read_rate', percent(c.read_rate * 10000, 10000));
    set(root, 'percent', percent(processed, c.total));
    set(root, 'scanned', percent((c.scanned || 0) * 10000, 10000));
    root.querySelectorAll('[data-f="bar"]').forEach(function (bar) {
      bar.max = Math.max(c.total, 1);
      bar.value = Math.min(processed, bar.max);
      bar.textContent = percent(processed, c.total);
    });
    (c.waves || []).forEach(function (w, i) {
      var cell = root.querySelector('[data-wave="' + i + '"]');
      if (!cell) return;
      var d = done(w);
      var state = w.held_until ? 'held' : !w.opened ? 'waiting' : d >= w.size ? 'done' : 'open';
      if (cell.dataset.state !== state) cell.dataset.state = state;
      var count = cell.querySelector('[data-w="done"]');
      if (count && count.textContent !== numbers.format(d)) count.textContent = numbers.format(d);
      var bar = cell.querySelector('[data-w="bar"]');
      if (bar) { bar.max = Math.max(w.size, 1); bar.value = Math.min(d, bar.max); }
    });
    if (c.waves) {
      set(root, 'held', c.held > 0 && c.held_until
        ? numbers.format(c.held) + ' held by quiet hours; the next are released at ' +
          c.held_until.replace('T', ' ').slice(0, 16) + ' UTC'
        : '');
    }
    var last = c.waves && c.waves.length ? c.waves[c.waves.length - 1] : null;
    if (last && !last.opened && c.status !== 3) {
      var wait = (Date.parse(last.opens_at) - Date.now()) / 1000;
      set(root, 'eta', 'after ' + duration(Math.max(wait, 0)) + ' (the last wave opens then)');
      return;
    }
    var v = speed(c);
    if (v === null) {
      set(root, 'speed', '—');
      set(root, 'eta', c.status === 3 ? 'done' : '—');
    } else if (v !== undefined) {
      set(root, 'speed', numbers.format(Math.round(v.rate)) + ' /s');
      set(root, 'eta', v.left !== null && c.pending > 0 ? duration(v.left) : '—');
    }
  }

  // An event stream that outlives what breaks it. The browser reconnects by itself after a
  // dropped connection, but gives up on an answer that is not a stream: a 401 once the
  // session has expired or the token changed, a 503 while the API cannot reach the ledger.
  // Then this page is fetched to tell which: a lost session goes to the sign-in, anything
  // else is tried again, less and less often.
  function follow(url, onProgress, onEnd) {
    var wait = 1000;
    (function connect() {
      var source = new EventSource(url);
      source.addEventListener('open', function () {
        wait = 1000;
        if (offline) offline.hidden = true;
      });
      source.addEventListener('error', function () {
        if (source.readyState === EventSource.OPEN) return;
        if (offline) offline.hidden = false;
        if (source.readyState !== EventSource.CLOSED) return;
        setTimeout(function () {
          fetch(window.location.href, { credentials: 'same-origin' }).then(function (r) {
            if (r.redirected && new URL(r.url).pathname === '/sign-in') window.location.href = r.url;
            else connect();
          }, connect);
        }, wait);
        wait = Math.min(wait * 2, 30000);
      });
      source.addEventListener('progress', function (e) { onProgress(JSON.parse(e.data)); });
      source.addEventListener('end', function () { source.close(); if (onEnd) onEnd(); });
    })();
  }

  // Swap in a fragment the server rendered (escaped there), keeping focus where it was.
  function refresh(url, target) {
    return fetch(url, { credentials: 'same-origin' }).then(function (r) {
      if (r.redirected) { window.location.href = r.url; return; }
      if (!r.ok) return;
      return r.text().then(function (html) {
        var focused = document.activeElement && document.activeElement.id;
        target.innerHTML = html;
        if (focused) { var el = document.getElementById(focused); if (el) el.focus(); }
      });
    }).catch(function () { if (offline) offline.hidden = false; });
  }

  // The list: its rows follow /v1/events for the same filter and page; on the newest page,
  // campaigns launched meanwhile appear at the top.
  var list = document.querySelector('[data-live-list]');
  if (list) {
    var body = list.querySelector('tbody');
    var filter = list.dataset.filter, after = list.dataset.after;
    var empty = document.getElementById('empty');
    var query = [];
    if (filter) query.push('status=' + encodeURIComponent(filter));
    if (after) query.push('after=' + encodeURIComponent(after));
    follow('/v1/events' + (query.length ? '?' + query.join('&') : ''), function (c) {
      var row = body.querySelector('tr[data-key="' + CSS.escape(c.key) + '"]');
      if (row) { show(row, c); return; }
      if (after || (filter && filter !== c.status_name)) return;
      fetch('/campaigns/' + encodeURIComponent(c.key) + '/row', { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html || body.querySelector('tr[data-key="' + CSS.escape(c.key) + '"]')) return;
          var t = document.createElement('tbody');
          t.innerHTML = html;
          var fresh = t.firstElementChild;
          body.insertBefore(fresh, body.firstElementChild);
          show(fresh, c);
          list.hidden = false;
          if (empty) empty.hidden = true;
        });
    });
  }

  // A campaign: counters from its event stream; the actions, timeline and failure report
  // are re-rendered by the server when its status or failures change.
  var campaign = document.querySelector('[data-live-campaign]');
  if (campaign) {
    var key = campaign.dataset.key, base = '/campaigns/' + encodeURIComponent(key);
    var panel = document.getElementById('panel'), failures = document.getElementById('failures');
    // What the server rendered: a change from it (even on the first event) re-renders.
    var rendered = function () {
      var el = panel.querySelector('[data-state]');
      return el ? el.dataset.state : '';
    };
    var renderedFailed = function () {
      var el = failures.querySelector('[data-failed]');
      return el ? Number(el.dataset.failed) : 0;
    };
    var failedTimer = null, asked = null, latest = null;
    var refreshFailures = function () {
      failedTimer = null;
      refresh(base + '/failures', failures);
    };
    var catchUp = function (c, now) {
      var state = c.status + '/' + c.intent + '/' + (c.pending_request || '');
      if (state !== rendered() && state !== asked) {
        asked = state;
        refresh(base + '/panel', panel);
      }
      if (c.failed !== renderedFailed() && !failedTimer) {
        failedTimer = setTimeout(refreshFailures, now ? 0 : 2000);
      }
    };
    follow('/v1/campaigns/' + encodeURIComponent(key) + '/events', function (c) {
      latest = c;
      show(campaign, c);
      var rateCard = document.getElementById('rate-card');
      if (rateCard && (c.status === 3 || c.status === 4)) rateCard.hidden = true;
      catchUp(c, false);
    }, function () { if (latest) catchUp(latest, true); });
  }

  // A form sent back with errors: its summary gets the focus, and links to each field.
  var summary = document.getElementById('form-errors');
  if (summary) summary.focus();

  // The status filter applies as soon as it is picked.
  document.querySelectorAll('select[data-autosubmit]').forEach(function (select) {
    select.addEventListener('change', function () { select.form.submit(); });
  });
})();
