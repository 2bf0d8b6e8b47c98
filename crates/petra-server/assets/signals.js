// Signals: every signal matching a name pattern (the API's `match` glob), updated live from
// the event stream; "Set…" writes a value after confirmation, showing the server's refusal.

import { api, live } from './api.js';
import { h, glob, fmtValue, fmtTime, modal } from './util.js';

/** Rows drawn at most: a plant may have 100,000 signals; a pattern narrows them. */
const MAX_ROWS = 1000;
const FILTER_KEY = 'petra.signals.match';

export function mount(root, params) {
  let pattern = params.get('match') ?? sessionStorage.getItem(FILTER_KEY) ?? '';
  /** name -> { tr, value, quality, ts, sig } */
  const rows = new Map();
  const dirty = new Set();
  let queued = false;
  let total = 0;

  const input = h('input', {
    id: 'sig-match', type: 'search', value: pattern, placeholder: 'e.g. tank.*',
    autocomplete: 'off', spellcheck: 'false', maxlength: '256',
    'aria-describedby': 'sig-match-help',
  });
  const count = h('span', { class: 'muted', role: 'status' });
  const note = h('p', { class: 'note', role: 'status' });
  const body = h('tbody');
  const table = h('table', { class: 'grid signals' },
    h('caption', { class: 'sr-only' }, 'Signals'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Name'),
      h('th', { scope: 'col', class: 'num' }, 'Value'),
      h('th', { scope: 'col' }, 'Unit'),
      h('th', { scope: 'col' }, 'Quality'),
      h('th', { scope: 'col' }, 'Timestamp'),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
    body);

  root.append(
    h('div', { class: 'view-head' },
      h('h1', { tabindex: '-1' }, 'Signals'),
      h('form', { class: 'filter', role: 'search', onsubmit: (e) => { e.preventDefault(); apply(); } },
        h('label', { for: 'sig-match' }, 'Name pattern'),
        input,
        h('button', { type: 'submit', class: 'secondary' }, 'Filter'),
        h('span', { id: 'sig-match-help', class: 'muted hint' }, '* any characters, ? one'),
        count)),
    note,
    h('div', { class: 'scroll' }, table));

  input.addEventListener('input', () => {
    clearTimeout(input.timer);
    input.timer = setTimeout(apply, 250);
  });

  function apply() {
    pattern = input.value.trim();
    sessionStorage.setItem(FILTER_KEY, pattern);
    load();
  }

  async function load() {
    const asked = pattern;
    let list;
    try {
      list = await api('GET', `api/v1/signals${pattern ? `?match=${encodeURIComponent(pattern)}` : ''}`);
    } catch (e) {
      note.textContent = e.message;
      note.className = 'note error';
      return;
    }
    if (asked !== pattern) return; // a newer filter is on its way
    note.textContent = '';
    note.className = 'note';
    rows.clear();
    body.replaceChildren();
    total = list.length;
    for (const s of list.slice(0, MAX_ROWS)) {
      // The stream may already know a newer value than this answer.
      const known = live.signals.get(s.name);
      addRow(known && known.ts >= s.ts ? known : s);
    }
    updateCount();
  }

  function updateCount() {
    count.textContent = total > rows.size
      ? `showing ${rows.size} of ${total} signals — narrow the pattern`
      : `${total} signal${total === 1 ? '' : 's'}`;
  }

  function addRow(s) {
    const value = h('td', { class: 'num value' });
    const quality = h('td', { class: 'quality' });
    const ts = h('td', { class: 'ts' });
    const numeric = s.type === 'float' || s.type === 'int' || s.type === 'bool';
    const tr = h('tr', { 'data-signal': s.name },
      h('th', { scope: 'row', class: 'name' }, s.name),
      value,
      h('td', { class: 'unit' }, s.unit || ''),
      quality,
      ts,
      h('td', { class: 'actions' },
        h('button', {
          type: 'button', class: 'small', 'aria-label': `Set ${s.name}`,
          onclick: () => setDialog(rows.get(s.name).sig),
        }, 'Set…'),
        numeric ? h('a', {
          class: 'small button-link', href: `#/trends?s=${encodeURIComponent(s.name)}`,
          'aria-label': `Trend of ${s.name}`,
        }, 'Trend') : null));
    const row = { tr, value, quality, ts, sig: s };
    rows.set(s.name, row);
    fill(row);
    body.append(tr);
  }

  function fill(row) {
    const s = row.sig;
    row.value.textContent = fmtValue(s.value);
    row.quality.replaceChildren(h('span', { class: `badge q-${s.quality}` }, s.quality));
    row.ts.textContent = fmtTime(s.ts);
    row.ts.title = s.ts;
  }

  function onSignal(e) {
    const s = e.detail;
    const row = rows.get(s.name);
    if (row) {
      row.sig = s;
      dirty.add(s.name);
      if (!queued) {
        queued = true;
        requestAnimationFrame(flush);
      }
    } else if (glob(pattern, s.name) && rows.size < MAX_ROWS) {
      // A signal the table does not have yet: a reload added it.
      addRow(s);
      total++;
      updateCount();
    }
  }

  function flush() {
    queued = false;
    for (const name of dirty) {
      const row = rows.get(name);
      if (row) fill(row);
    }
    dirty.clear();
  }

  function setDialog(s) {
    let field;
    if (s.type === 'bool') {
      field = h('select', { id: 'set-value' },
        h('option', { value: 'true', selected: s.value === true }, 'true'),
        h('option', { value: 'false', selected: s.value !== true }, 'false'));
    } else {
      field = h('input', {
        id: 'set-value', required: true, autocomplete: 'off',
        type: s.type === 'string' ? 'text' : 'number',
        step: s.type === 'int' ? '1' : s.type === 'float' ? 'any' : null,
        inputmode: s.type === 'int' ? 'numeric' : s.type === 'float' ? 'decimal' : null,
        maxlength: s.type === 'string' ? '4096' : null,
        value: s.value === null ? '' : String(s.value),
      });
    }
    const unit = s.unit ? ` ${s.unit}` : '';
    modal({
      title: `Set ${s.name}`,
      content: [
        h('p', {}, `Now: ${fmtValue(s.value)}${unit} (${s.type}, ${s.quality})`),
        h('label', { for: 'set-value' }, `New value${unit ? ` (${s.unit})` : ''}`),
        field,
        h('p', { class: 'muted' }, 'The value is written to the plant at once. Petra checks your role, the type and the range, and records the write in the audit log.'),
      ],
      confirm: 'Write',
      onConfirm: async () => {
        const value = parse(s.type, field.value);
        const after = await api('PUT', `api/v1/signals/${encodeURIComponent(s.name)}`, { value });
        live.signals.set(after.name, after);
        const row = rows.get(after.name);
        if (row && after.ts >= row.sig.ts) { row.sig = after; fill(row); }
        note.className = 'note ok';
        note.textContent = `${after.name} set to ${fmtValue(after.value)}${unit}.`;
      },
    });
  }

  live.changes.addEventListener('signal', onSignal);
  load();
  return () => live.changes.removeEventListener('signal', onSignal);
}

/** The typed value of the Set dialog's field, as the API expects it in JSON. */
function parse(type, text) {
  switch (type) {
    case 'bool': return text === 'true';
    case 'int':
      if (!/^[-+]?\d+$/.test(text.trim())) throw new Error('enter a whole number');
      return Number(text.trim());
    case 'float': {
      const v = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(v)) throw new Error('enter a number');
      return v;
    }
    default: return text;
  }
}
