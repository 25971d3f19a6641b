/**
 * The live dashboard served at `/dashboard` on the admin listener: one self-contained HTML page (inline CSS
 * and JavaScript, canvas charts, no external resources, no build step) that polls `/stats` every second and
 * draws, per pool and per backend, health, requests/s, error rate and p50/p99 latency over the last minute,
 * plus recent health transitions and reloads.
 *
 * With `admin.token` set, the page itself is static and carries no data; it reads the token from the URL
 * fragment (`/dashboard#token=...`, never sent to the server) or asks for it, keeps it in sessionStorage and
 * sends it as `Authorization: Bearer` with every `/stats` request.
 *
 * Stable hooks for tests: `#conn` (`data-state` live/stale/auth), `#total-rps`, and one
 * `[data-backend="pool/id"]` row per backend with `data-healthy="true|false"` and a `.rps` cell.
 */

const CSS = `
:root { --bg:#0f1419; --panel:#171e26; --line:#243040; --text:#d7dee7; --dim:#8393a7; --ok:#3fb950; --bad:#f85149; --warn:#d29922; --blue:#58a6ff; --violet:#bc8cff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--text); font:13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display:flex; align-items:center; gap:18px; padding:12px 20px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
header h1 { font-size:16px; margin:0; letter-spacing:.5px; }
.kv { color:var(--dim); } .kv b { color:var(--text); font-weight:600; font-variant-numeric:tabular-nums; }
#conn { margin-left:auto; padding:2px 8px; border-radius:10px; font-size:12px; background:var(--line); }
#conn[data-state=live] { color:var(--ok); } #conn[data-state=stale], #conn[data-state=auth] { color:var(--bad); }
main { padding:16px 20px; display:grid; gap:16px; }
.panel { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.panel h2 { font-size:14px; margin:0 0 8px; display:flex; gap:10px; align-items:baseline; }
.panel h2 .sub { color:var(--dim); font-weight:normal; font-size:12px; }
.charts { display:grid; grid-template-columns:repeat(3, minmax(0,1fr)); gap:12px; }
.chart { min-width:0; } .chart .t { color:var(--dim); font-size:11px; display:flex; justify-content:space-between; }
.chart canvas { width:100%; height:64px; display:block; }
table { width:100%; border-collapse:collapse; margin-top:10px; font-variant-numeric:tabular-nums; }
th { text-align:left; color:var(--dim); font-weight:normal; font-size:11px; border-bottom:1px solid var(--line); padding:4px 6px; }
td { padding:4px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
td canvas { width:140px; height:22px; display:block; }
.badge { display:inline-block; min-width:52px; text-align:center; padding:1px 6px; border-radius:9px; font-size:11px; font-weight:600; }
.up { background:rgba(63,185,80,.15); color:var(--ok); } .down { background:rgba(248,81,73,.18); color:var(--bad); }
.pill-ok { color:var(--ok); } .pill-bad { color:var(--bad); } .pill-warn { color:var(--warn); }
#events { list-style:none; margin:0; padding:0; max-height:240px; overflow:auto; }
#events li { padding:3px 0; border-bottom:1px solid var(--line); } #events time { color:var(--dim); margin-right:8px; font-variant-numeric:tabular-nums; }
.empty { color:var(--dim); }
@media (max-width: 900px) { .charts { grid-template-columns:1fr; } }
`;

const SCRIPT = `
(function () {
  'use strict';
  var POLL_MS = 1000;
  var token = null;
  var m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) { token = decodeURIComponent(m[1]); try { sessionStorage.setItem('spooky-token', token); } catch (e) {} history.replaceState(null, '', location.pathname); }
  if (!token) { try { token = sessionStorage.getItem('spooky-token'); } catch (e) {} }

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function num(v, digits) { return v === null || v === undefined ? '\\u2013' : Number(v).toFixed(digits); }
  function ms(v) { return v === null || v === undefined ? '\\u2013' : (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) + ' ms'; }
  function pct(v) { return v === null || v === undefined ? '\\u2013' : (v * 100).toFixed(v < 0.1 ? 2 : 1) + ' %'; }

  // Draws one or more series (arrays, null = gap) into a canvas, scaled to the largest value.
  function draw(canvas, lines, opts) {
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || 140, h = canvas.clientHeight || 22;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    var c = canvas.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, w, h);
    var max = (opts && opts.min) || 0;
    lines.forEach(function (l) { l.data.forEach(function (v) { if (v !== null && v > max) max = v; }); });
    if (max <= 0) max = 1;
    c.strokeStyle = '#243040'; c.lineWidth = 1; c.beginPath(); c.moveTo(0, h - 0.5); c.lineTo(w, h - 0.5); c.stroke();
    lines.forEach(function (l) {
      var n = l.data.length; if (n < 2) return;
      c.strokeStyle = l.color; c.lineWidth = 1.5; c.beginPath();
      var pen = false;
      for (var i = 0; i < n; i++) {
        var v = l.data[i];
        if (v === null) { pen = false; continue; }
        var x = (i / (n - 1)) * (w - 2) + 1, y = h - 2 - (v / max) * (h - 4);
        if (pen) c.lineTo(x, y); else c.moveTo(x, y);
        pen = true;
      }
      c.stroke();
      if (l.fill) { c.lineTo(w - 1, h); c.lineTo(1, h); c.closePath(); c.globalAlpha = 0.12; c.fillStyle = l.color; c.fill(); c.globalAlpha = 1; }
    });
  }

  function chart(parent, title, key) {
    var box = el('div', { class: 'chart' });
    var t = el('div', { class: 't' });
    t.appendChild(el('span', null, title));
    var now = el('span', { 'data-now': key });
    t.appendChild(now);
    box.appendChild(t);
    var cv = el('canvas', { 'data-chart': key });
    box.appendChild(cv);
    parent.appendChild(box);
    return { canvas: cv, now: now };
  }

  // One panel per pool, built once and updated in place (rebuilt when the set of pools/backends changes).
  var layoutKey = '';
  var views = {};
  function build(s) {
    var root = $('pools');
    root.textContent = '';
    views = {};
    s.pools.forEach(function (p) {
      var panel = el('section', { class: 'panel', 'data-pool': p.name });
      var h = el('h2');
      h.appendChild(el('span', null, p.name));
      var sub = el('span', { class: 'sub' });
      h.appendChild(sub);
      panel.appendChild(h);
      var charts = el('div', { class: 'charts' });
      var v = { sub: sub, rps: chart(charts, 'requests/s', 'rps'), err: chart(charts, 'error rate (5xx)', 'err'), lat: chart(charts, 'latency p50 / p99', 'lat'), rows: {} };
      panel.appendChild(charts);
      var table = el('table');
      var head = el('tr');
      ['state', 'backend', 'address', 'in flight', 'req/s', 'errors', 'p50', 'p99', 'last minute'].forEach(function (x) { head.appendChild(el('th', null, x)); });
      table.appendChild(head);
      p.backends.forEach(function (b) {
        var tr = el('tr', { 'data-backend': p.name + '/' + b.id, 'data-healthy': String(b.healthy) });
        var cells = {};
        ['state', 'id', 'address', 'inflight', 'rps', 'err', 'p50', 'p99', 'spark'].forEach(function (k) { var td = el('td', { class: k }); tr.appendChild(td); cells[k] = td; });
        cells.state.appendChild(el('span', { class: 'badge' }));
        cells.id.textContent = b.id;
        cells.address.textContent = b.address;
        var cv = el('canvas');
        cells.spark.appendChild(cv);
        cells.canvas = cv;
        table.appendChild(tr);
        v.rows[b.id] = { tr: tr, cells: cells };
      });
      panel.appendChild(table);
      root.appendChild(panel);
      views[p.name] = v;
    });
  }

  function update(s) {
    var key = s.pools.map(function (p) { return p.name + ':' + p.backends.map(function (b) { return b.id; }).join(','); }).join('|');
    if (key !== layoutKey) { build(s); layoutKey = key; }
    $('gen').textContent = s.generation.id;
    $('loaded').textContent = new Date(s.generation.loaded_at).toLocaleTimeString();
    $('total-rps').textContent = num(s.total.current.rps, 1);
    $('total-err').textContent = pct(s.total.current.error_rate);
    $('total-p50').textContent = ms(s.total.current.p50_ms);
    $('total-p99').textContent = ms(s.total.current.p99_ms);
    $('inflight').textContent = s.in_flight;
    draw($('total-rps-chart'), [{ data: s.total.series.rps, color: '#58a6ff', fill: true }]);
    s.pools.forEach(function (p) {
      var v = views[p.name];
      var total = p.backends.length;
      v.sub.textContent = p.strategy + ' \\u00b7 ' + p.healthy_backends + '/' + total + ' healthy';
      v.sub.className = 'sub ' + (p.healthy_backends === total ? 'pill-ok' : p.healthy_backends === 0 ? 'pill-bad' : 'pill-warn');
      draw(v.rps.canvas, [{ data: p.series.rps, color: '#58a6ff', fill: true }]);
      v.rps.now.textContent = num(p.current.rps, 1);
      draw(v.err.canvas, [{ data: p.series.error_rate, color: '#f85149', fill: true }], { min: 0.05 });
      v.err.now.textContent = pct(p.current.error_rate);
      draw(v.lat.canvas, [{ data: p.series.p99_ms, color: '#bc8cff' }, { data: p.series.p50_ms, color: '#3fb950' }]);
      v.lat.now.textContent = ms(p.current.p50_ms) + ' / ' + ms(p.current.p99_ms);
      p.backends.forEach(function (b) {
        var r = v.rows[b.id];
        r.tr.setAttribute('data-healthy', String(b.healthy));
        var badge = r.cells.state.firstChild;
        badge.textContent = b.healthy ? 'up' : 'DOWN';
        badge.className = 'badge ' + (b.healthy ? 'up' : 'down');
        if (b.last_probe) badge.title = 'last probe: ' + b.last_probe;
        r.cells.inflight.textContent = b.in_flight;
        r.cells.rps.textContent = num(b.current.rps, 1);
        r.cells.err.textContent = pct(b.current.error_rate);
        r.cells.p50.textContent = ms(b.current.p50_ms);
        r.cells.p99.textContent = ms(b.current.p99_ms);
        draw(r.cells.canvas, [{ data: b.series.rps, color: b.healthy ? '#58a6ff' : '#f85149', fill: true }]);
      });
    });
    var ul = $('events');
    ul.textContent = '';
    if (s.events.length === 0) ul.appendChild(el('li', { class: 'empty' }, 'no health changes or reloads yet'));
    s.events.forEach(function (e) {
      var li = el('li', { 'data-kind': e.kind });
      li.appendChild(el('time', null, new Date(e.time).toLocaleTimeString()));
      if (e.kind === 'health') {
        li.appendChild(el('span', { class: e.healthy ? 'pill-ok' : 'pill-bad' }, e.pool + '/' + e.backend + (e.healthy ? ' is up' : ' is DOWN')));
        li.appendChild(document.createTextNode(' (' + e.reason + (e.detail ? ', ' + e.detail : '') + ')'));
      } else {
        li.appendChild(el('span', { class: e.result === 'success' ? 'pill-ok' : 'pill-bad' }, 'reload ' + e.result));
        li.appendChild(document.createTextNode(' \\u2192 generation ' + e.generation + (e.trigger ? ' (' + e.trigger + ')' : '') + (e.errors ? ', ' + e.errors + ' errors' : '')));
      }
      ul.appendChild(li);
    });
  }

  function setConn(state, text) { var c = $('conn'); c.setAttribute('data-state', state); c.textContent = text; }

  function poll() {
    var headers = token ? { authorization: 'Bearer ' + token } : {};
    fetch('stats', { headers: headers, cache: 'no-store' }).then(function (res) {
      if (res.status === 401) {
        setConn('auth', 'token needed');
        var t = window.prompt('Admin token');
        if (t) { token = t; try { sessionStorage.setItem('spooky-token', t); } catch (e) {} }
        return null;
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      return res.json();
    }).then(function (s) {
      if (!s) return;
      update(s);
      setConn('live', 'live \\u00b7 ' + new Date(s.time).toLocaleTimeString());
    }).catch(function (e) {
      setConn('stale', 'no data: ' + e.message);
    }).then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
`;

/** The dashboard page (HTML with inline CSS and JavaScript). */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Spooky dashboard</title>
<style>${CSS}</style>
</head>
<body>
<header>
  <h1>Spooky</h1>
  <span class="kv">generation <b id="gen">–</b> loaded <b id="loaded">–</b></span>
  <span class="kv">req/s <b id="total-rps">–</b></span>
  <span class="kv">errors <b id="total-err">–</b></span>
  <span class="kv">p50 <b id="total-p50">–</b> p99 <b id="total-p99">–</b></span>
  <span class="kv">in flight <b id="inflight">–</b></span>
  <canvas id="total-rps-chart" style="width:160px;height:24px"></canvas>
  <span id="conn" data-state="stale">connecting…</span>
</header>
<main>
  <div id="pools"></div>
  <section class="panel"><h2>Recent health changes and reloads</h2><ul id="events"></ul></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
