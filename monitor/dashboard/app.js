// The sqlpool dashboard: polls api/dashboard and renders it. Every value
// from the server is written with textContent or an SVG attribute, never
// parsed as HTML: partition names and stacks come from the application.
'use strict';

(() => {
  const REFRESH_MS = 1000;
  // The charts' span: the server samples its history once a second, page
  // or no page, and keeps five minutes (monitor.HistoryLength).
  const WINDOW_S = 300;
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const setText = (id, s) => { $(id).textContent = s; };

  // Formats; the browser test formats the same way.
  const int = (n) => String(n);
  const pct = (f) => (f * 100).toFixed(1) + '%';
  const rate = (f) => f.toFixed(1);
  const dur = (s) => {
    if (s >= 1) return s.toFixed(2) + ' s';
    const ms = s * 1000;
    return ms.toFixed(ms < 10 ? 2 : ms < 100 ? 1 : 0) + ' ms';
  };
  const age = (s) => (s < 60 ? dur(s) : Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s');

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };

  function renderCards(d) {
    setText('size', int(d.size));
    setText('max-size', int(d.max_size));
    setText('in-use', int(d.in_use));
    setText('idle', int(d.idle));
    setText('waiting', int(d.waiting));
    setText('queued', int(d.queued));
    setText('timeouts', int(d.acquire_timeouts));
    setText('utilization', pct(d.efficiency.utilization));
    setText('reuse-rate', pct(d.efficiency.reuse_rate));
    setText('wait-p50', dur(d.wait.p50_seconds));
    setText('wait-p95', dur(d.wait.p95_seconds));
    setText('wait-p99', dur(d.wait.p99_seconds));
    setText('wait-max', dur(d.wait.max_seconds));
    setText('hold-p50', dur(d.hold.p50_seconds));
    setText('hold-p95', dur(d.hold.p95_seconds));
    setText('hold-p99', dur(d.hold.p99_seconds));
    setText('hold-max', dur(d.hold.max_seconds));
    setText('acquire-rate', rate(d.acquires_per_second));
    setText('success-rate', pct(d.efficiency.success_rate));
    setText('cache-hit-rate', pct(d.efficiency.statement_cache_hit_rate));
    setText('cache-hits', int(d.statement_cache_hits));
    setText('cache-misses', int(d.statement_cache_misses));
    setText('leaks', int(d.leaks.length + d.omitted_leaks));
    setText('leaks-detected', int(d.leaks_detected));
    $('leaks').classList.toggle('alert', d.leaks.length + d.omitted_leaks > 0);
    $('suspended').hidden = !d.suspended;
    const max = Math.max(d.max_size, 1);
    $('size-meter').style.width = Math.min(100, (100 * d.size) / max) + '%';
    $('in-use-meter').style.width = Math.min(100, (100 * d.in_use) / max) + '%';
  }

  function renderPartitions(parts) {
    const rows = parts.map((p) => {
      const tr = document.createElement('tr');
      tr.append(
        el('td', p.name, 'name'),
        el('td', int(p.in_use)),
        el('td', int(p.idle)),
        el('td', int(p.waiting)),
        el('td', int(p.acquire_successes)),
        el('td', int(p.acquire_failures), p.acquire_failures > 0 ? 'warn' : ''),
        el('td', rate(p.acquires_per_second)),
        el('td', dur(p.wait_p95_seconds)),
        el('td', dur(p.hold_p95_seconds)),
        el('td', int(p.statement_cache_hits)),
        el('td', pct(p.statement_cache_hit_rate)),
        el('td', int(p.leaks_detected), p.leaks_detected > 0 ? 'warn' : ''),
      );
      if (p.suspended) tr.classList.add('suspended');
      return tr;
    });
    $('partitions').tBodies[0].replaceChildren(...rows);
  }

  // Open stack <details> survive a refresh, keyed by the leak's identity.
  const openStacks = new Set();
  function renderLeaks(leaks) {
    $('no-leaks').hidden = leaks.length > 0;
    $('leak-table').hidden = leaks.length === 0;
    const rows = leaks.map((l) => {
      const key = l.partition + '\u0000' + l.acquired_at;
      const tr = document.createElement('tr');
      const stack = el('td');
      if (l.stack) {
        const details = document.createElement('details');
        details.open = openStacks.has(key);
        details.addEventListener('toggle', () => {
          if (details.open) openStacks.add(key); else openStacks.delete(key);
        });
        details.append(el('summary', 'stack'), el('pre', l.stack));
        stack.append(details);
      } else {
        stack.textContent = '–';
      }
      tr.append(
        el('td', l.partition, 'name'),
        el('td', l.kind),
        el('td', age(l.held_seconds)),
        el('td', new Date(l.acquired_at).toLocaleTimeString()),
        stack,
      );
      return tr;
    });
    $('leak-table').tBodies[0].replaceChildren(...rows);
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // chart draws series (each {values, cls}) against times, over the last
  // WINDOW_S seconds before now, with a y axis from 0 to a rounded maximum.
  function chart(target, now, times, series) {
    const W = 600, H = 170, L = 44, R = 8, T = 10, B = 22;
    const box = $(target);
    const nodes = [];
    let top = 0;
    for (const s of series) for (const v of s.values) top = Math.max(top, v);
    top = niceCeil(top);
    const x = (t) => L + ((W - L - R) * (t - (now - WINDOW_S * 1000))) / (WINDOW_S * 1000);
    const y = (v) => T + (H - T - B) * (1 - v / top);
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4;
      nodes.push(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
      nodes.push(svg('text', { x: L - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, fmtTick(v)));
    }
    for (const m of [5, 4, 3, 2, 1, 0]) {
      const t = now - m * 60000;
      nodes.push(svg('text', { x: x(t), y: H - 6, class: 'tick', 'text-anchor': m === 0 ? 'end' : 'middle' },
        m === 0 ? 'now' : '−' + m + ' min'));
    }
    if (times.length < 2) {
      nodes.push(svg('text', { x: (L + W) / 2, y: H / 2, class: 'empty', 'text-anchor': 'middle' }, 'collecting data…'));
    }
    for (const s of series) {
      const pts = [];
      times.forEach((t, i) => { if (t >= now - WINDOW_S * 1000) pts.push(x(t).toFixed(1) + ',' + y(s.values[i]).toFixed(1)); });
      if (pts.length > 1) nodes.push(svg('polyline', { points: pts.join(' '), class: 'line ' + s.cls }));
    }
    box.replaceChildren(...nodes);
  }

  function niceCeil(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function fmtTick(v) {
    if (v >= 1000) return (v / 1000).toFixed(v % 1000 === 0 ? 0 : 1) + 'k';
    return Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/0+$/, '');
  }

  function renderCharts(d) {
    const now = Date.parse(d.time);
    const times = d.history.map((s) => Date.parse(s.time));
    chart('chart-rate', now, times, [
      { values: d.history.map((s) => s.acquires_per_second), cls: 'ok' },
      { values: d.history.map((s) => s.failures_per_second), cls: 'fail' },
    ]);
    chart('chart-borrowed', now, times, [{ values: d.history.map((s) => s.borrowed), cls: 'borrowed' }]);
  }

  // The lists are bounded by the server: say what it left out.
  function renderOmitted(id, n, text) {
    $(id).hidden = n === 0;
    $(id).textContent = n === 0 ? '' : int(n) + text;
  }

  function render(d) {
    renderCards(d);
    renderCharts(d);
    renderPartitions(d.partitions);
    renderLeaks(d.leaks);
    renderOmitted('omitted-partitions', d.omitted_partitions, ' less active partitions are added up under “other”.');
    renderOmitted('omitted-leaks', d.omitted_leaks, ' more leaks, held for less time, are not listed.');
    setText('updated', new Date(d.time).toLocaleTimeString());
  }

  function setStatus(ok, msg) {
    const s = $('status');
    s.textContent = msg;
    s.classList.toggle('live', ok);
    s.classList.toggle('stale', !ok);
  }

  async function refresh() {
    try {
      const res = await fetch('api/dashboard', { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      render(await res.json());
      setStatus(true, 'live');
      document.body.dataset.ready = 'true';
    } catch (e) {
      setStatus(false, 'stale: ' + e.message);
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
