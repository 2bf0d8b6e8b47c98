// Trends: one or several signals over a time range, from GET /api/v1/history, and — for the
// ranges that end now — moving on with the values of the event stream.

import { api, live } from './api.js';
import { h, fmtValue, fmtTime, toLocalInput } from './util.js';
import { LineChart } from './chart.js';

const RANGES = { '1m': 60e3, '10m': 600e3, '1h': 3600e3, '8h': 8 * 3600e3, '24h': 24 * 3600e3 };
const RANGE_NAMES = { '1m': 'last minute', '10m': 'last 10 minutes', '1h': 'last hour', '8h': 'last 8 hours', '24h': 'last 24 hours', custom: 'custom…' };
const LIMIT = 100000;
const PICK_MAX = 200;
const KEY = 'petra.trends';

export function mount(root, params) {
  const saved = JSON.parse(sessionStorage.getItem(KEY) || '{}');
  const chosen = params.get('s') ?? saved.s ?? '';
  const sel = new Set(chosen.split(',').filter(Boolean));
  let range = params.get('range') || saved.range || '10m';
  if (!RANGES[range] && range !== 'custom') range = '10m';
  /** name -> signal (for units and types) */
  const meta = new Map();
  let following = false;
  let loads = 0;

  const filter = h('input', {
    id: 'trend-filter', type: 'search', placeholder: 'filter, e.g. tank.*', autocomplete: 'off',
    spellcheck: 'false', maxlength: '256',
  });
  const pickList = h('ul', { class: 'pick-list', 'aria-label': 'Signals to trend' });
  const pickNote = h('p', { class: 'muted' });
  const rangeSel = h('select', { id: 'trend-range' },
    ...Object.entries(RANGE_NAMES).map(([k, t]) => h('option', { value: k, selected: k === range }, t)));
  const now = Date.now();
  const fromIn = h('input', { id: 'trend-from', type: 'datetime-local', value: toLocalInput(params.get('from') ? Date.parse(params.get('from')) : now - 3600e3) });
  const toIn = h('input', { id: 'trend-to', type: 'datetime-local', value: toLocalInput(params.get('to') ? Date.parse(params.get('to')) : now) });
  const custom = h('span', { class: 'custom', hidden: range !== 'custom' },
    h('label', { for: 'trend-from' }, 'From'), fromIn,
    h('label', { for: 'trend-to' }, 'To'), toIn);
  const note = h('p', { class: 'note', role: 'status' });
  const legend = h('ul', { class: 'legend', 'aria-label': 'Series' });
  const canvas = h('canvas', { class: 'chart', role: 'img', 'aria-label': 'Trend chart' });
  const chart = new LineChart(canvas);
  chart.emptyText = 'Pick one or more signals.';

  rangeSel.addEventListener('change', () => {
    range = rangeSel.value;
    custom.hidden = range !== 'custom';
    if (range !== 'custom') show();
  });

  root.append(
    h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, 'Trends')),
    h('div', { class: 'trends' },
      h('aside', { class: 'picker card' },
        h('label', { for: 'trend-filter' }, 'Signals'),
        filter,
        pickList,
        pickNote),
      h('section', { class: 'trend-main' },
        h('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); show(); } },
          h('label', { for: 'trend-range' }, 'Range'),
          rangeSel,
          custom,
          h('button', { type: 'submit', class: 'primary' }, 'Show')),
        note,
        legend,
        h('div', { class: 'chart-box' }, canvas))));

  filter.addEventListener('input', () => {
    clearTimeout(filter.timer);
    filter.timer = setTimeout(loadPicker, 250);
  });

  async function loadPicker() {
    const pattern = filter.value.trim();
    let list;
    try {
      list = await api('GET', `api/v1/signals${pattern ? `?match=${encodeURIComponent(pattern)}` : ''}`);
    } catch (e) {
      pickNote.textContent = e.message;
      return;
    }
    if (pattern !== filter.value.trim()) return;
    const plottable = list.filter((s) => s.type !== 'string');
    for (const s of plottable) meta.set(s.name, s);
    // The chosen ones first, whatever the filter.
    const names = [...sel, ...plottable.map((s) => s.name).filter((n) => !sel.has(n))];
    pickList.replaceChildren(...names.slice(0, PICK_MAX + sel.size).map((name) => {
      const box = h('input', { type: 'checkbox', value: name, checked: sel.has(name) });
      box.addEventListener('change', () => {
        if (box.checked) sel.add(name); else sel.delete(name);
        show();
      });
      const unit = meta.get(name)?.unit;
      return h('li', {}, h('label', { class: 'check' }, box, name, unit ? h('span', { class: 'muted' }, ` ${unit}`) : null));
    }));
    pickNote.textContent = plottable.length > PICK_MAX
      ? `${plottable.length} signals match; ${PICK_MAX} shown — narrow the filter` : '';
  }

  function window_() {
    if (range === 'custom') {
      return [new Date(fromIn.value).getTime(), new Date(toIn.value).getTime()];
    }
    const to = Date.now();
    return [to - RANGES[range], to];
  }

  function remember(from, to) {
    const s = [...sel].join(',');
    sessionStorage.setItem(KEY, JSON.stringify({ s, range }));
    const q = new URLSearchParams();
    if (s) q.set('s', s);
    q.set('range', range);
    if (range === 'custom') {
      q.set('from', new Date(from).toISOString());
      q.set('to', new Date(to).toISOString());
    }
    history.replaceState(null, '', `#/trends?${q.toString().replaceAll('%2C', ',')}`);
  }

  function toNumber(v, quality) {
    if (quality === 'bad') return NaN;
    if (typeof v === 'boolean') return v ? 1 : 0;
    return typeof v === 'number' ? v : NaN;
  }

  async function show() {
    const [from, to] = window_();
    if (!(from < to)) {
      say('Pick a “from” before the “to”.', 'error');
      return;
    }
    remember(from, to);
    following = range !== 'custom';
    chart.holdUntil = following ? to : null;
    const names = [...sel];
    const load = ++loads;
    chart.emptyText = names.length ? 'No data in this range yet.' : 'Pick one or more signals.';
    chart.setSeries(names.map((name) => ({ name, unit: meta.get(name)?.unit || live.signals.get(name)?.unit, t: [], v: [] })));
    chart.setRange(from, to);
    canvas.setAttribute('aria-label', names.length
      ? `Trend of ${names.join(', ')} from ${fmtTime(from, { ms: false, date: true })} to ${fmtTime(to, { ms: false, date: true })}`
      : 'Trend chart: no signal picked');
    updateLegend();
    if (!names.length) {
      say('Pick one or more signals on the left.');
      return;
    }
    say('Loading…');
    const q = (n) => `api/v1/history?signal=${encodeURIComponent(n)}&from=${new Date(from).toISOString()}`
      + `&to=${new Date(to).toISOString()}&limit=${LIMIT}`;
    const answers = await Promise.all(names.map((n) => api('GET', q(n)).then((ok) => ({ ok }), (err) => ({ err }))));
    if (load !== loads) return; // a newer request replaced this one
    const messages = [];
    let stored = 0;
    answers.forEach((a, k) => {
      const s = chart.series[k];
      if (a.err) {
        messages.push(a.err.status === 501
          ? `${a.err.message}.${following ? ' Showing live values from now on.' : ''}`
          : `${s.name}: ${a.err.message}`);
        return;
      }
      const t = [], v = [];
      for (const x of a.ok.samples) {
        const ms = Date.parse(x.ts);
        if (t.length && ms <= t[t.length - 1]) continue;
        t.push(ms);
        v.push(toNumber(x.value, x.quality));
      }
      stored += t.length;
      if (a.ok.truncated) messages.push(`${s.name}: only the first ${LIMIT.toLocaleString()} samples of this range are shown.`);
      // Live values that arrived while loading come after the stored ones.
      const last = t.length ? t[t.length - 1] : -Infinity;
      for (let i = 0; i < s.t.length; i++) {
        if (s.t[i] > last) { t.push(s.t[i]); v.push(s.v[i]); }
      }
      s.t = t;
      s.v = v;
    });
    if (following) {
      // Start the live part with the value the stream knows now.
      for (const name of names) {
        const cur = live.signals.get(name);
        if (cur) chart.append(name, Date.parse(cur.ts), toNumber(cur.value, cur.quality));
      }
    }
    const unique = [...new Set(messages)].join(' ');
    say(unique || `${stored.toLocaleString()} stored sample${stored === 1 ? '' : 's'}${following ? '; following live values' : ''}.`,
      answers.some((a) => a.err && a.err.status !== 501) ? 'error' : '');
    chart.requestDraw();
    updateLegend();
  }

  function say(text, kind = '') {
    note.className = `note ${kind}`;
    note.textContent = text;
  }

  function updateLegend() {
    legend.replaceChildren(...chart.series.map((s) => {
      const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
      swatch.style.backgroundColor = s.color;
      const n = s.t.length;
      const lastV = n ? s.v[n - 1] : null;
      return h('li', { 'data-series': s.name, 'data-points': String(n) },
        swatch, h('b', {}, s.name),
        ` ${n && lastV === lastV ? fmtValue(lastV) : '–'}${s.unit ? ` ${s.unit}` : ''}`,
        h('span', { class: 'muted' }, ` (${n.toLocaleString()} point${n === 1 ? '' : 's'})`));
    }));
  }

  function onSignal(e) {
    const s = e.detail;
    if (!following || !sel.has(s.name)) return;
    if (chart.append(s.name, Date.parse(s.ts), toNumber(s.value, s.quality))) {
      chart.requestDraw();
      legendSoon();
    }
  }

  let legendQueued = false;
  function legendSoon() {
    if (legendQueued) return;
    legendQueued = true;
    setTimeout(() => { legendQueued = false; updateLegend(); }, 250);
  }

  // The window of a range that ends now moves with the clock.
  const timer = setInterval(() => {
    if (!following) return;
    const [from, to] = window_();
    chart.holdUntil = to;
    chart.setRange(from, to);
    chart.trimBefore(from);
  }, 1000);

  live.changes.addEventListener('signal', onSignal);
  loadPicker();
  show();
  return () => {
    clearInterval(timer);
    live.changes.removeEventListener('signal', onSignal);
    chart.destroy();
  };
}
