// Status: readiness per component (GET /ready), and from the Prometheus text of GET /metrics
// the scan time and jitter per task, the drivers, and the history's WAL lag per sink.

import { api } from './api.js';
import { h, fmtSeconds, fmtTime } from './util.js';

const EVERY_MS = 2000;

/** Parses the Prometheus text format into `{name, labels, value}` samples. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

/** Per label value of `key`, the histogram `name`: `{count, sum, buckets: [[le, cumulative]]}`. */
export function histograms(samples, name, key) {
  const by = new Map();
  const get = (k) => {
    if (!by.has(k)) by.set(k, { count: 0, sum: 0, buckets: [] });
    return by.get(k);
  };
  for (const s of samples) {
    if (s.name === `${name}_bucket`) get(s.labels[key]).buckets.push([Number(s.labels.le === '+Inf' ? Infinity : s.labels.le), s.value]);
    else if (s.name === `${name}_count`) get(s.labels[key]).count = s.value;
    else if (s.name === `${name}_sum`) get(s.labels[key]).sum = s.value;
  }
  for (const hist of by.values()) hist.buckets.sort((a, b) => a[0] - b[0]);
  return by;
}

/** The upper bound of the bucket that holds quantile `q`: the quantile is at most this (the
 *  exact value is not in the text format; Prometheus' histogram_quantile interpolates). */
export function quantileBound(hist, q) {
  if (!hist || !hist.count) return null;
  const rank = q * hist.count;
  for (const [le, cum] of hist.buckets) if (cum >= rank) return le;
  return Infinity;
}

function fmtBound(b) {
  if (b === null) return '–';
  if (b === Infinity) return '> 1 s';
  return `≤ ${fmtSeconds(b)}`;
}

export function mount(root) {
  const updated = h('span', { class: 'muted', 'aria-live': 'polite' });
  const note = h('p', { class: 'note', role: 'status' });
  const ready = h('div', { class: 'cards' });
  const tasks = h('tbody');
  const drivers = h('tbody');
  const sinks = h('tbody');
  const summary = h('p', { class: 'kpis' });
  const table = (caption, heads, body) => h('div', { class: 'scroll' },
    h('table', { class: 'grid' },
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, ...heads.map((t) => h('th', { scope: 'col', class: t.endsWith(' ') ? 'num' : '' }, t.trim())))),
      body));

  root.append(
    h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Status'), updated),
    note,
    h('h2', {}, 'Readiness'),
    ready,
    summary,
    h('h2', {}, 'Scan tasks'),
    h('p', { class: 'muted' }, 'Since start. The 99th percentile is read from the histogram buckets: it is at most the bound shown.'),
    table('Scan tasks', ['Task', 'Scans ', 'Mean scan time ', 'p99 scan time ', 'Mean jitter ', 'p99 jitter ', 'Overruns ', 'Watchdog trips '], tasks),
    h('h2', {}, 'Drivers'),
    table('Drivers', ['Driver', 'Connected', 'Connects ', 'Requests ok ', 'Failed requests ', 'Pending writes ', 'Points '], drivers),
    h('h2', {}, 'History'),
    table('History sinks', ['Sink', 'WAL lag (rows) ', 'Rows stored ', 'Rows failed '], sinks));

  async function refresh() {
    try {
      const [r, text] = await Promise.all([
        // /ready needs no token (it answers 503 with the same body when something is down).
        fetch('ready', { cache: 'no-store' }).then((x) => x.json()),
        api('GET', 'metrics', undefined, { text: true }),
      ]);
      render(r, parseMetrics(text));
      note.textContent = '';
      note.className = 'note';
      updated.textContent = `updated ${fmtTime(Date.now(), { ms: false })}`;
    } catch (e) {
      note.className = 'note error';
      note.textContent = e.message;
    }
  }

  function render(r, samples) {
    ready.replaceChildren(
      h('div', { class: `card status-${r.status}` }, h('b', {}, 'Petra: '), r.status.replace('_', ' ')),
      ...Object.entries(r.components || {}).map(([name, state]) =>
        h('div', { class: 'card component', 'data-component': name },
          h('span', { class: `badge c-${state}` }, state), ' ', name)));

    const one = (name, labels = {}) => samples.filter((s) => s.name === name
      && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    const val = (name, labels) => one(name, labels).reduce((a, s) => a + s.value, 0);
    const by = (name, key) => new Map(one(name).map((s) => [s.labels[key], s.value]));

    const version = one('petra_build_info')[0]?.labels.version;
    summary.replaceChildren(
      h('span', {}, h('b', {}, 'Version: '), version || '–'),
      h('span', {}, h('b', {}, 'Signals: '), String(val('petra_signals'))),
      h('span', {}, h('b', {}, 'Bus updates: '), val('petra_bus_updates_total').toLocaleString()),
      h('span', {}, h('b', {}, 'WAL: '), one('petra_wal_bytes').length ? `${(val('petra_wal_bytes') / 1024).toFixed(0)} KiB` : '–'),
      h('span', {}, h('b', {}, 'Active alarms: '), ['critical', 'high', 'medium', 'low']
        .map((p) => `${p} ${val('petra_alarms_active', { priority: p })}`).join(' · ')));

    const dur = histograms(samples, 'petra_scan_duration_seconds', 'task');
    const jit = histograms(samples, 'petra_scan_jitter_seconds', 'task');
    const overruns = by('petra_scan_overruns_total', 'task');
    const trips = by('petra_watchdog_trips_total', 'task');
    tasks.replaceChildren(...[...dur.keys()].sort().map((task) => {
      const d = dur.get(task), j = jit.get(task);
      return h('tr', { 'data-task': task },
        h('th', { scope: 'row' }, task),
        h('td', { class: 'num' }, d.count.toLocaleString()),
        h('td', { class: 'num' }, d.count ? fmtSeconds(d.sum / d.count) : '–'),
        h('td', { class: 'num' }, fmtBound(quantileBound(d, 0.99))),
        h('td', { class: 'num' }, j && j.count ? fmtSeconds(j.sum / j.count) : '–'),
        h('td', { class: 'num' }, fmtBound(quantileBound(j, 0.99))),
        h('td', { class: 'num' }, String(overruns.get(task) ?? 0)),
        h('td', { class: 'num' }, String(trips.get(task) ?? 0)));
    }));

    const connected = by('petra_driver_connected', 'driver');
    const names = [...connected.keys()].sort();
    drivers.replaceChildren(...(names.length ? names.map((d) => {
      const up = connected.get(d) === 1;
      const failed = one('petra_driver_requests_total', { driver: d })
        .filter((s) => s.labels.result !== 'ok').reduce((a, s) => a + s.value, 0);
      return h('tr', { 'data-driver': d },
        h('th', { scope: 'row' }, d),
        h('td', {}, h('span', { class: `badge c-${up ? 'up' : 'down'}` }, up ? 'connected' : 'disconnected')),
        h('td', { class: 'num' }, String(val('petra_driver_connects_total', { driver: d }))),
        h('td', { class: 'num' }, val('petra_driver_requests_total', { driver: d, result: 'ok' }).toLocaleString()),
        h('td', { class: 'num' }, failed.toLocaleString()),
        h('td', { class: 'num' }, String(val('petra_driver_pending_writes', { driver: d }))),
        h('td', { class: 'num' }, String(val('petra_driver_points', { driver: d }))));
    }) : [h('tr', {}, h('td', { colspan: '7', class: 'muted' }, 'No drivers are configured.'))]));

    const lag = by('petra_history_lag_rows', 'sink');
    const sinkNames = [...lag.keys()].sort();
    sinks.replaceChildren(...(sinkNames.length ? sinkNames.map((s) => h('tr', { 'data-sink': s },
      h('th', { scope: 'row' }, s),
      h('td', { class: 'num' }, lag.get(s).toLocaleString()),
      h('td', { class: 'num' }, val('petra_history_rows_total', { sink: s, result: 'ok' }).toLocaleString()),
      h('td', { class: 'num' }, val('petra_history_rows_total', { sink: s, result: 'error' }).toLocaleString())))
      : [h('tr', {}, h('td', { colspan: '4', class: 'muted' }, 'No history is kept (no `history` section).'))]));
  }

  refresh();
  const timer = setInterval(refresh, EVERY_MS);
  return () => clearInterval(timer);
}
