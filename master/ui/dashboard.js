// The dfs dashboard: polls GET /v1/ui/state on the leader once a second and redraws what changed.
// Plain browser JavaScript, no framework and no build step; the reply's shape is UiState in
// common/dashboard.ts. The page moves on to another master when the one it polls stops leading
// or stops answering, so it keeps working across a leader change.
'use strict';

const POLL_MS = 1000;
/** A poll that takes longer is abandoned and the next master is tried. */
const FETCH_TIMEOUT_MS = 4000;
/** The charts' window. */
const HISTORY_MS = 5 * 60 * 1000;
/** Masters whose address ever appeared in a reply, the one that served the page first. */
const known = [location.host];
let current = location.host;
let failures = 0;
let lastOk = 0;
/** Chart samples: { t, rateBps, under }. */
const history = [];
let prevRepair;
/** Each master's last answer to the leader's status call, as this page saw it: id -> the reply's generatedAtMs. */
const lastAnswered = new Map();
/** What each panel last drew, to redraw only what changed (and keep links still under a pointer). */
const drawn = new Map();

// ---- helpers ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : String(c));
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function ago(ms) {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s ago` : ms < 120_000 ? `${Math.round(ms / 1000)} s ago` : `${Math.round(ms / 60_000)} min ago`;
}

/** Redraws a panel only when its data changed. */
function panel(id, data, draw) {
  const key = JSON.stringify(data);
  if (drawn.get(id) === key) return;
  drawn.set(id, key);
  draw(document.getElementById(id), data);
}

function table(headers, rows) {
  return [
    h('thead', {}, h('tr', {}, headers.map(([label, cls]) => h('th', { class: cls }, label)))),
    h('tbody', {}, rows),
  ];
}

// ---- the token the namespace browser sends: #token=<token> once, then kept for this tab ----

const TOKEN_KEY = 'dfs-token';
(function takeToken() {
  const q = new URLSearchParams(location.hash.slice(1));
  const token = q.get('token');
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  q.delete('token');
  // Out of the address bar (and its history) once kept.
  window.history.replaceState(null, '', `${location.pathname}${location.search}${q.toString() ? `#${q}` : ''}`);
})();

// ---- where we are in the namespace: #dir=/a&file=/a/b ----

function view() {
  const q = new URLSearchParams(location.hash.slice(1));
  return { dir: q.get('dir') || '/', file: q.get('file') || undefined };
}

function viewHref(dir, file) {
  const q = new URLSearchParams({ dir });
  if (file) q.set('file', file);
  return `#${q.toString()}`;
}

// ---- polling ----

async function fetchState(addr) {
  const v = view();
  const q = new URLSearchParams({ dir: v.dir });
  if (v.file) q.set('file', v.file);
  const base = addr === location.host ? '' : `http://${addr}`;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const res = await fetch(`${base}/v1/ui/state?${q}`, { signal: ctl.signal, cache: 'no-store', headers });
    const body = await res.json();
    return { status: res.status, body };
  } finally {
    clearTimeout(timer);
  }
}

async function poll() {
  // Ask the master we poll; on NOT_LEADER follow its hint, otherwise try the next one we know.
  for (let tries = 0; tries < known.length + 1; tries++) {
    let reply;
    try {
      reply = await fetchState(current);
    } catch {
      current = known[(known.indexOf(current) + 1) % known.length];
      continue;
    }
    if (reply.status === 200) {
      failures = 0;
      lastOk = Date.now();
      render(reply.body);
      return;
    }
    const hint = reply.body && reply.body.error && reply.body.error.leader;
    if (hint && hint !== current) {
      if (!known.includes(hint)) known.push(hint);
      current = hint;
    } else {
      current = known[(known.indexOf(current) + 1) % known.length];
    }
  }
  failures++;
  showConnection(false, failures);
}

function loop() {
  poll().finally(() => setTimeout(loop, POLL_MS));
}

function showConnection(ok, n) {
  const el = document.getElementById('conn');
  el.dataset.state = ok ? 'live' : 'stale';
  el.textContent = ok ? 'live' : `no leader answers (${n} ${n === 1 ? 'try' : 'tries'}); retrying`;
  if (!ok && lastOk) document.getElementById('where').textContent = `last update ${ago(Date.now() - lastOk)}`;
}

// ---- drawing ----

function render(state) {
  const s = state.status;
  for (const m of s.masters) if (!known.includes(m.addr)) known.push(m.addr);
  showConnection(true, 0);
  document.getElementById('where').textContent = `cluster ${s.clusterId} · leader ${s.leader}`;
  document.getElementById('safe-mode').hidden = !s.safeMode;
  document.getElementById('tolerance-cs').textContent = state.tolerance.chunkservers;
  document.getElementById('tolerance-masters').textContent = state.tolerance.masters;
  document.getElementById('tolerance-racks').textContent = state.tolerance.racks || '';
  document.getElementById('tolerance-card').dataset.losable = String(state.tolerance.chunkserversLosable);
  panel('totals', { m: state.matrix, s: [s.files, s.dirs, s.chunks], live: liveServers(s).map((c) => c.usedBytes), trash: s.trash || null }, drawTotals);
  for (const m of s.masters) if (m.reachable) lastAnswered.set(m.id, state.generatedAtMs);
  panel('masters', s.masters.map((m) => ({ ...m, silentS: m.reachable ? 0 : lastAnswered.has(m.id) ? Math.round((state.generatedAtMs - lastAnswered.get(m.id)) / 1000) : null })), drawMasters);
  const copies = state.copies || {};
  panel('chunkservers', { servers: s.chunkservers.map((c) => ({ ...c, lastHeartbeatAgoMs: Math.round(c.lastHeartbeatAgoMs / 100) * 100, copies: copies[c.id] || { in: 0, out: 0 } })), dead: state.deadTimeoutMs }, drawChunkservers);
  panel('matrix', state.matrix.cells, drawMatrix);
  panel('balance', liveServers(s).map((c) => [c.id, c.chunkCount, c.usedBytes]), drawBalance);
  panel('balance-racks', rackUsage(liveServers(s)), drawRackBalance);
  sample(state.generatedAtMs, s.repair, state.matrix.underReplicated);
  drawRepair(s.repair, state.repairQueued || 0);
  panel('crumbs', view().dir, drawCrumbs);
  panel('listing', state.dir || null, drawListing);
  panel('file', state.file || null, drawFile);
}

function liveServers(s) {
  return s.chunkservers.filter((c) => c.alive);
}

function drawTotals(el, { m, s, live, trash }) {
  const items = [
    ['files', 'files', s[0]], ['dirs', 'directories', s[1]], ['chunks', 'chunks', m.chunks],
    ['bytes', 'data (one copy)', bytes(m.bytes)], ['stored', 'stored (all copies)', bytes(live.reduce((a, b) => a + b, 0))],
    ['underReplicated', 'under-replicated', m.underReplicated], ['missing', 'missing', m.missing], ['corrupt', 'corrupt', m.corrupt],
    ['overReplicated', 'over-replicated', m.overReplicated],
  ];
  // What rm moved aside, still on disk until the trash interval passes (dfs trash).
  if (trash) items.push(['trash', `trash (kept ${trashKept(trash.intervalMs)})`, `${trash.files} ${trash.files === 1 ? 'file' : 'files'} · ${bytes(trash.bytes)}`]);
  el.replaceChildren(...items.map(([key, label, value]) => {
    const bad = ['underReplicated', 'missing', 'corrupt'].includes(key) && value > 0;
    return h('div', { class: bad ? 'bad' : '', 'data-key': key }, h('dt', { text: label }), h('dd', { text: String(value) }));
  }));
}

function trashKept(ms) {
  return ms >= 86_400_000 ? `${+(ms / 86_400_000).toFixed(1)} d` : ms >= 3_600_000 ? `${+(ms / 3_600_000).toFixed(1)} h` : ms >= 60_000 ? `${+(ms / 60_000).toFixed(1)} min` : `${+(ms / 1000).toFixed(1)} s`;
}

function drawMasters(el, masters) {
  el.replaceChildren(...table(
    [['id'], ['address'], ['role'], ['term', 'num'], ['commit', 'num'], ['applied', 'num'], ['reachable'], ['last contact']],
    masters.map((m) => h('tr', { class: m.role === 'leader' ? 'leader' : '', 'data-master': m.id, 'data-role': m.role },
      h('td', { text: m.role === 'leader' ? `${m.id} ★` : m.id }), h('td', { class: 'mono', text: m.addr }), h('td', { text: m.role }),
      h('td', { class: 'num', text: m.term ?? '–' }), h('td', { class: 'num', text: m.commitIndex ?? '–' }), h('td', { class: 'num', text: m.appliedIndex ?? '–' }),
      h('td', { title: m.error, text: m.reachable ? 'yes' : 'no' }),
      h('td', { 'data-last-contact': m.silentS ?? '', text: m.reachable ? 'now' : m.silentS === null ? 'not since this page opened' : ago(m.silentS * 1000) }))),
  ));
}

function serverState(c, deadTimeoutMs) {
  if (!c.alive) return 'dead';
  if (c.state === 'decommissioning') return 'draining';
  if (c.state === 'decommissioned') return 'drained';
  // Suspect: its connection to the leader dropped (dead after the grace unless it connects
  // again), a failed probe after a client's report, or silent for a third of the dead timeout.
  return c.suspect || c.lastHeartbeatAgoMs > deadTimeoutMs / 3 ? 'suspect' : 'live';
}

function drawChunkservers(el, { servers, dead }) {
  el.replaceChildren(...table(
    [['id'], ['rack'], ['address'], ['state'], ['capacity', 'num'], ['used', 'num'], ['free', 'num'], ['chunks', 'num'], ['reads/writes', 'num'], ['copies in/out', 'num'], ['last heartbeat']],
    [...servers].sort((a, b) => rackOf(a).localeCompare(rackOf(b))).map((c) => {
      const st = serverState(c, dead);
      return h('tr', { class: st, 'data-server': c.id, 'data-state': st, 'data-rack': rackOf(c) },
        h('td', { text: c.id }), h('td', { class: 'rack', text: rackOf(c) }), h('td', { class: 'mono', text: c.addr }),
        h('td', {}, h('span', { class: `pill state-${st}`, text: st === 'draining' ? `draining (${c.decommissionRemaining ?? '?'} left)` : st })),
        h('td', { class: 'num', text: bytes(c.capacityBytes) }), h('td', { class: 'num', text: bytes(c.usedBytes) }),
        h('td', { class: 'num', text: bytes(c.freeBytes) }), h('td', { class: 'num', text: c.chunkCount }),
        h('td', { class: 'num', text: `${c.activeReads}/${c.activeWrites}` }),
        h('td', { class: 'num', 'data-copies-in': c.copies.in, 'data-copies-out': c.copies.out, title: 're-replication copies in flight into and out of this server', text: `${c.copies.in}/${c.copies.out}` }),
        h('td', { text: ago(c.lastHeartbeatAgoMs) }));
    }),
  ));
}

function drawMatrix(el, cells) {
  if (cells.length === 0) {
    el.replaceChildren(h('tbody', {}, h('tr', {}, h('td', { class: 'muted', text: 'no chunks yet' }))));
    return;
  }
  const reps = [...new Set(cells.map((c) => c.replication))].sort((a, b) => a - b);
  const maxLive = Math.max(...cells.map((c) => Math.max(c.live, c.replication)));
  const cols = Array.from({ length: maxLive + 1 }, (_, i) => i);
  const count = new Map(cells.map((c) => [`${c.replication}/${c.live}`, c.chunks]));
  el.replaceChildren(
    h('thead', {}, h('tr', {}, h('th', { text: 'wanted \\ live' }), cols.map((i) => h('th', { text: i })))),
    h('tbody', {}, reps.map((r) => h('tr', {}, h('th', { text: r }), cols.map((live) => {
      const n = count.get(`${r}/${live}`);
      if (!n) return h('td', { class: 'empty', text: '·' });
      const cls = live === 0 ? 'lost' : live < r ? (live === 1 ? 'danger' : 'warn') : live > r ? 'over' : 'ok';
      return h('td', { class: `cell ${cls}`, 'data-cell': `${r}/${live}`, title: `${n} chunks want ${r}, have ${live}`, text: n });
    })))),
  );
}

function sample(t, repair, under) {
  let rateBps = 0;
  if (prevRepair && t > prevRepair.t) {
    // A new leader counts from zero: no negative rate at the switch.
    rateBps = Math.max(0, ((repair.bytesCopied - prevRepair.bytesCopied) * 1000) / (t - prevRepair.t));
  }
  prevRepair = { t, bytesCopied: repair.bytesCopied };
  history.push({ t, rateBps, under });
  while (history.length > 0 && history[0].t < t - HISTORY_MS) history.shift();
}

function drawRepair(repair, queued) {
  const last = history[history.length - 1];
  document.getElementById('repair-now').textContent =
    `now ${bytes(last ? last.rateBps : 0)}/s · ${queued} copies queued · ${Math.max(0, repair.copiesInFlight - queued)} copying · ${repair.copiesDone} done · ${repair.copiesFailed} failed · ${bytes(repair.bytesCopied)} copied since this leader took over`;
  drawChart(document.getElementById('chart-rate'), 'rateBps', (v) => `${bytes(v)}/s`);
  drawChart(document.getElementById('chart-under'), 'under', (v) => String(v));
  const peak = Math.max(0, ...history.map((p) => p.under));
  document.getElementById('chart-under').dataset.peak = String(peak);
}

/** A line chart of the last HISTORY_MS, drawn by hand: no charting library needed for one line. */
function drawChart(el, key, label) {
  const W = 300, H = 90, top = 12;
  const now = history.length ? history[history.length - 1].t : Date.now();
  const max = Math.max(1e-9, ...history.map((p) => p[key]));
  const x = (t) => W - ((now - t) / HISTORY_MS) * W;
  const y = (v) => H - 2 - (v / max) * (H - top - 4);
  const pts = history.map((p) => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`);
  const kids = [];
  if (pts.length > 1) {
    kids.push(svg('polygon', { class: 'area', points: `${x(history[0].t).toFixed(1)},${H} ${pts.join(' ')} ${W},${H}` }));
    kids.push(svg('polyline', { class: 'line', points: pts.join(' ') }));
  }
  const peak = svg('text', { x: 3, y: 10 });
  peak.textContent = `max ${label(max < 1e-6 ? 0 : max)}`;
  const span = svg('text', { x: W - 3, y: 10, 'text-anchor': 'end' });
  span.textContent = '5 min';
  el.replaceChildren(...kids, peak, span);
}

function drawBalance(el, rows) {
  if (rows.length === 0) {
    el.replaceChildren(h('p', { class: 'muted', text: 'no live chunkserver' }));
    return;
  }
  const max = Math.max(1, ...rows.map((r) => r[1]));
  const mean = rows.reduce((a, r) => a + r[1], 0) / rows.length;
  el.replaceChildren(...rows.map(([id, chunks, used]) => {
    const fill = h('div', { class: 'bar-fill' });
    fill.style.width = `${(chunks / max) * 100}%`;
    const meanMark = h('div', { class: 'bar-mean', title: `mean ${mean.toFixed(1)}` });
    meanMark.style.left = `${(mean / max) * 100}%`;
    return h('div', { class: 'bar-row', 'data-server': id },
      h('span', { class: 'mono', text: id }), h('div', { class: 'bar-track' }, fill, meanMark), h('span', { class: 'num small', text: `${chunks} · ${bytes(used)}` }));
  }));
}

function rackOf(c) {
  return c.rack || 'default';
}

/** Per rack: [rack, live servers, used bytes, capacity bytes], racks by name; servers on one disk (fsId) count its capacity once. */
function rackUsage(live) {
  const racks = new Map();
  const disks = new Set();
  for (const c of live) {
    const r = racks.get(rackOf(c)) || [rackOf(c), 0, 0, 0];
    r[1]++;
    r[2] += c.usedBytes;
    const disk = c.fsId ? `${r[0]}/${c.fsId}` : undefined;
    if (!disk || !disks.has(disk)) r[3] += c.capacityBytes;
    if (disk) disks.add(disk);
    racks.set(r[0], r);
  }
  return [...racks.values()].sort((a, b) => a[0].localeCompare(b[0]));
}

function percent(p) {
  return p === 0 ? '0%' : p < 0.01 ? '<0.01%' : p < 10 ? `${p.toFixed(2)}%` : `${p.toFixed(0)}%`;
}

function drawRackBalance(el, rows) {
  if (rows.length === 0) return el.replaceChildren();
  el.replaceChildren(...rows.map(([rack, servers, used, capacity]) => {
    const pct = capacity > 0 ? (used / capacity) * 100 : 0;
    const fill = h('div', { class: 'bar-fill' });
    fill.style.width = `${Math.min(100, pct)}%`;
    return h('div', { class: 'bar-row', 'data-rack': rack, 'data-used-bytes': used, title: `${servers} live ${servers === 1 ? 'server' : 'servers'}, ${bytes(capacity)}` },
      h('span', { class: 'mono', text: rack }), h('div', { class: 'bar-track' }, fill),
      h('span', { class: 'num small', text: `${percent(pct)} · ${bytes(used)}` }));
  }));
}

function drawCrumbs(el, dir) {
  const parts = dir === '/' ? [] : dir.split('/').slice(1);
  const links = [h('a', { href: viewHref('/'), text: '/' })];
  parts.forEach((name, i) => {
    const p = `/${parts.slice(0, i + 1).join('/')}`;
    links.push(h('a', { href: viewHref(p), text: `${name}/` }));
  });
  el.replaceChildren(...links);
}

function drawListing(el, dir) {
  if (!dir) return el.replaceChildren();
  if (dir.error) return el.replaceChildren(h('p', { class: 'error', text: `${dir.error.code}: ${dir.error.message}` }), h('a', { href: viewHref('/'), text: 'back to /' }));
  const rows = dir.entries.map((e) => h('tr', { 'data-entry': e.path },
    h('td', {}, h('a', { href: e.type === 'dir' ? viewHref(e.path) : viewHref(dir.path, e.path), 'data-path': e.path, text: e.type === 'dir' ? `${e.name}/` : e.name })),
    h('td', { text: e.type }), h('td', { class: 'num', text: e.type === 'dir' ? '' : bytes(e.size) }),
    h('td', { class: 'num', text: e.type === 'dir' ? '' : e.replication }), h('td', { class: 'num', text: e.type === 'dir' ? '' : e.chunkCount }),
    h('td', { text: e.state === 'writing' ? 'being written' : new Date(e.mtimeMs).toLocaleString() })));
  const parts = [h('table', {}, ...table([['name'], ['type'], ['size', 'num'], ['replication', 'num'], ['chunks', 'num'], ['modified']], rows))];
  if (dir.entries.length === 0) parts.push(h('p', { class: 'muted', text: 'empty directory' }));
  if (dir.truncated) parts.push(h('p', { class: 'muted small', text: `showing the first ${dir.entries.length} of ${dir.total} entries; dfs ls ${dir.path} lists them all` }));
  el.replaceChildren(...parts);
}

function drawFile(el, file) {
  if (!file) return el.replaceChildren();
  if (file.error) return el.replaceChildren(h('p', { class: 'error', text: `${file.error.code}: ${file.error.message}` }));
  const name = file.path.split('/').pop();
  const rows = file.chunks.map((c) => h('tr', { 'data-chunk': c.index },
    h('td', { class: 'num', text: c.index }), h('td', { class: 'num mono', text: c.handle }), h('td', { class: 'num', text: c.version }),
    h('td', { class: 'num', text: bytes(c.length) }),
    h('td', {}, c.replicas.length === 0
      ? h('span', { class: 'error', text: 'no live replica' })
      // Not links: a chunkserver serves a chunk only with a read token, which this page does not hand out.
      : c.replicas.map((r) => h('span', {
        class: 'replica mono', 'data-replica': r.id, title: `a replica of chunk ${c.index} on ${r.id}`, text: `${r.id} ${r.addr}`,
      })))));
  el.replaceChildren(...[
    h('h3', { text: file.path }),
    h('p', { class: 'small', text: `${bytes(file.size)} · replication ${file.replication} · ${file.totalChunks} chunks of ${bytes(file.chunkSizeBytes)}${file.state === 'writing' ? ' · being written' : ''}` }),
    h('div', { class: 'scroll' }, h('table', { id: 'file-chunks' }, ...table([['chunk', 'num'], ['handle', 'num'], ['version', 'num'], ['length', 'num'], ['live replicas (one chunk each)']], rows))),
    file.truncated ? h('p', { class: 'muted small', text: `showing the first ${file.chunks.length} of ${file.totalChunks} chunks` }) : null,
    h('p', { class: 'small' }, 'To download the whole file, checked end to end, use the CLI (file bytes never pass through a master, so the master has no download link):'),
    h('code', { class: 'cmd', id: 'get-command', text: `dfs get ${shellQuote(file.path)} ${shellQuote(name || 'file')}` }),
  ].filter(Boolean));
}

function shellQuote(s) {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

window.addEventListener('hashchange', () => poll());
loop();
