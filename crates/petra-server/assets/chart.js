// A small canvas line chart for the trends: several series on one time axis, auto-scaled value
// axis, a hover read-out. Lines are steps: a signal holds its value until the next sample (the
// event stream and on-change sampling send changes only), so a ramp between two samples would
// show values the plant never had. Large series stay fast by min/max decimation per pixel column: each
// column is drawn as the first, lowest, highest and last value of the points that fall in it,
// so a draw costs one pass over the visible points plus one path of at most 4 vertices per
// column — 100,000 points draw as fast as the canvas is wide, and no peak is lost.

export const PALETTE = ['#1d4ed8', '#c2410c', '#15803d', '#7e22ce', '#a16207', '#0e7490', '#be185d', '#475569'];

const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const AXIS = '#475569';
const GRID = '#e2e8f0';
const PAD = { l: 60, r: 14, t: 10, b: 26 };

/** First index with `a[i] >= x` (a sorted ascending). */
export function lowerBound(a, x) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
  21600, 43200, 86400, 172800, 604800].map((s) => s * 1000);

function niceStep(range, count) {
  const raw = range / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

const pad2 = (n) => String(n).padStart(2, '0');

function timeLabel(ms, step) {
  const d = new Date(ms);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (step >= 86_400_000) return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  if (step < 60_000) return `${hm}:${pad2(d.getSeconds())}`;
  return hm;
}

function valueLabel(v, step) {
  const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(digits);
}

export class LineChart {
  /** `canvas` is sized by CSS; the chart follows its size. */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    /** `{name, unit, color, t: number[] (ms, ascending), v: number[] (NaN: no value)}` */
    this.series = [];
    this.from = Date.now() - 600_000;
    this.to = Date.now();
    this.hover = null;
    this.queued = false;
    this.emptyText = 'No data in this range.';
    /** When set (ms), each series' last value is drawn on until this time (live: now). */
    this.holdUntil = null;
    this.lastDrawMs = 0;
    this.resize = this.resize.bind(this);
    if (typeof ResizeObserver !== 'undefined') {
      this.observer = new ResizeObserver(this.resize);
      this.observer.observe(canvas);
    }
    canvas.addEventListener('pointermove', (e) => {
      const r = canvas.getBoundingClientRect();
      this.hover = { x: e.clientX - r.left, y: e.clientY - r.top };
      this.requestDraw();
    });
    canvas.addEventListener('pointerleave', () => { this.hover = null; this.requestDraw(); });
    this.resize();
  }

  destroy() {
    this.observer?.disconnect();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.draw();
  }

  setSeries(series) {
    this.series = series.map((s, i) => ({ color: PALETTE[i % PALETTE.length], ...s }));
    this.requestDraw();
  }

  setRange(from, to) {
    this.from = from;
    this.to = to > from ? to : from + 1;
    this.requestDraw();
  }

  /** Adds a point at the end of series `name` (older than its last point: ignored). */
  append(name, t, v) {
    const s = this.series.find((x) => x.name === name);
    if (!s) return false;
    const n = s.t.length;
    if (n && t <= s.t[n - 1]) return false;
    s.t.push(t);
    s.v.push(v);
    return true;
  }

  /** Drops points before `t`, keeping the last one before it (the line enters the chart). */
  trimBefore(t) {
    for (const s of this.series) {
      const i = lowerBound(s.t, t) - 1;
      // Splicing costs a copy: only once a good share of the array is stale.
      if (i > 1024 && i > s.t.length / 4) {
        s.t.splice(0, i);
        s.v.splice(0, i);
      }
    }
  }

  requestDraw() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => { this.queued = false; this.draw(); });
  }

  draw() {
    const started = performance.now();
    const { ctx, canvas } = this;
    const dpr = window.devicePixelRatio || 1;
    const W = canvas.width / dpr, H = canvas.height / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = FONT;
    const plot = { x: PAD.l, y: PAD.t, w: Math.max(1, W - PAD.l - PAD.r), h: Math.max(1, H - PAD.t - PAD.b) };
    const cols = Math.max(1, Math.floor(plot.w * dpr));
    const { from, to } = this;
    const scale = cols / (to - from);

    // Pass 1: decimate every series into columns; find the value range.
    let lo = Infinity, hi = -Infinity;
    const decimated = this.series.map((s) => {
      const d = {
        has: new Uint8Array(cols), brk: new Uint8Array(cols),
        first: new Float64Array(cols), last: new Float64Array(cols),
        min: new Float64Array(cols), max: new Float64Array(cols),
        prev: -1, next: -1, count: 0,
      };
      const { t, v } = s;
      let i = Math.max(0, lowerBound(t, from) - 1);
      let gap = false;
      for (; i < t.length; i++) {
        const x = t[i], y = v[i];
        if (x < from) { d.prev = y === y ? i : -1; gap = y !== y; continue; }
        if (x >= to) { d.next = y === y ? i : -1; break; }
        if (y !== y) { gap = true; continue; }
        const c = Math.min(cols - 1, ((x - from) * scale) | 0);
        if (!d.has[c]) {
          d.has[c] = 1;
          d.first[c] = d.min[c] = d.max[c] = y;
          if (gap) d.brk[c] = 1;
        } else {
          if (y < d.min[c]) d.min[c] = y;
          if (y > d.max[c]) d.max[c] = y;
        }
        gap = false;
        d.last[c] = y;
        d.count++;
        if (y < lo) lo = y;
        if (y > hi) hi = y;
      }
      // The value held from before the range is drawn too: it belongs in the scale.
      if (d.prev >= 0) { lo = Math.min(lo, v[d.prev]); hi = Math.max(hi, v[d.prev]); }
      d.endsBad = gap;
      return d;
    });
    if (lo === Infinity) {
      // Nothing inside: scale to the points just outside, if any.
      this.series.forEach((s, k) => {
        for (const i of [decimated[k].prev, decimated[k].next]) {
          if (i >= 0) { lo = Math.min(lo, s.v[i]); hi = Math.max(hi, s.v[i]); }
        }
      });
    }
    if (lo === Infinity) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { const m = Math.max(Math.abs(lo) * 0.05, 0.5); lo -= m; hi += m; }
    const margin = (hi - lo) * 0.06;
    lo -= margin;
    hi += margin;
    const px = (t) => plot.x + (t - from) * plot.w / (to - from);
    const py = (v) => plot.y + plot.h - (v - lo) * plot.h / (hi - lo);

    // Grid and axes.
    ctx.lineWidth = 1;
    ctx.strokeStyle = GRID;
    ctx.fillStyle = AXIS;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const vStep = niceStep(hi - lo, Math.max(2, Math.floor(plot.h / 50)));
    ctx.beginPath();
    for (let v = Math.ceil(lo / vStep) * vStep; v <= hi; v += vStep) {
      const y = Math.round(py(v)) + 0.5;
      ctx.moveTo(plot.x, y);
      ctx.lineTo(plot.x + plot.w, y);
      ctx.fillText(valueLabel(v, vStep), plot.x - 6, y);
    }
    const want = Math.max(2, Math.floor(plot.w / 110));
    const tStep = TIME_STEPS.find((s) => (to - from) / s <= want) || TIME_STEPS[TIME_STEPS.length - 1];
    const off = new Date(from).getTimezoneOffset() * 60_000;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let t = Math.ceil((from - off) / tStep) * tStep + off; t <= to; t += tStep) {
      const x = Math.round(px(t)) + 0.5;
      ctx.moveTo(x, plot.y);
      ctx.lineTo(x, plot.y + plot.h);
      ctx.fillText(timeLabel(t, tStep), x, plot.y + plot.h + 6);
    }
    ctx.stroke();
    ctx.strokeStyle = AXIS;
    ctx.strokeRect(plot.x + 0.5, plot.y + 0.5, plot.w - 1, plot.h - 1);

    // Pass 2: one path per series, clipped to the plot.
    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.x, plot.y, plot.w, plot.h);
    ctx.clip();
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    let any = false;
    this.series.forEach((s, k) => {
      const d = decimated[k];
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.beginPath();
      let on = false, held = 0;
      if (d.prev >= 0) {
        held = s.v[d.prev];
        ctx.moveTo(Math.max(px(s.t[d.prev]), plot.x - 2), py(held));
        on = true;
      }
      for (let c = 0; c < cols; c++) {
        if (!d.has[c]) continue;
        const x = plot.x + (c + 0.5) / dpr;
        if (!on || d.brk[c]) ctx.moveTo(x, py(d.first[c]));
        else { ctx.lineTo(x, py(held)); ctx.lineTo(x, py(d.first[c])); }
        ctx.lineTo(x, py(d.min[c]));
        ctx.lineTo(x, py(d.max[c]));
        ctx.lineTo(x, py(d.last[c]));
        held = d.last[c];
        on = true;
      }
      if (on && d.next >= 0) {
        const x = Math.min(px(s.t[d.next]), plot.x + plot.w + 2);
        ctx.lineTo(x, py(held));
      } else if (on && !d.endsBad && this.holdUntil !== null) {
        ctx.lineTo(px(Math.min(this.holdUntil, to)), py(held));
      }
      ctx.stroke();
      // A lone point has no line to show it: a dot.
      if (d.count === 1 && d.prev < 0 && d.next < 0) {
        const c = d.has.indexOf(1);
        ctx.fillRect(plot.x + (c + 0.5) / dpr - 2.5, py(d.last[c]) - 2.5, 5, 5);
      }
      if (d.count || d.prev >= 0 || d.next >= 0) any = true;
    });
    ctx.restore();

    if (!any) {
      ctx.fillStyle = AXIS;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(this.emptyText, plot.x + plot.w / 2, plot.y + plot.h / 2);
    }
    if (this.hover && this.hover.x >= plot.x && this.hover.x <= plot.x + plot.w) {
      this.drawHover(plot, px, py);
    }
    this.lastDrawMs = performance.now() - started;
  }

  /** A vertical line at the pointer and the value of each series there: the last sample at or
   *  before that time (the value held then). */
  drawHover(plot, px, py) {
    const { ctx } = this;
    const t = this.from + (this.hover.x - plot.x) * (this.to - this.from) / plot.w;
    const lines = [new Date(t).toLocaleString()];
    ctx.strokeStyle = AXIS;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(Math.round(this.hover.x) + 0.5, plot.y);
    ctx.lineTo(Math.round(this.hover.x) + 0.5, plot.y + plot.h);
    ctx.stroke();
    const colors = [AXIS];
    for (const s of this.series) {
      const j = lowerBound(s.t, t + 1e-6) - 1;
      if (j < 0 || !(s.v[j] === s.v[j])) continue;
      if (j === s.t.length - 1 && this.holdUntil === null && t > s.t[j] + 1) continue;
      ctx.fillStyle = s.color;
      ctx.beginPath();
      ctx.arc(px(s.t[j]), py(s.v[j]), 3.5, 0, 2 * Math.PI);
      ctx.fill();
      lines.push(`${s.name}: ${+s.v[j].toPrecision(6)}${s.unit ? ` ${s.unit}` : ''}`);
      colors.push(s.color);
    }
    const w = Math.max(...lines.map((l) => ctx.measureText(l).width)) + 16;
    const h = lines.length * 16 + 8;
    let x = this.hover.x + 12;
    if (x + w > plot.x + plot.w) x = this.hover.x - 12 - w;
    const y = Math.min(Math.max(plot.y, this.hover.y - h / 2), plot.y + plot.h - h);
    ctx.fillStyle = 'rgba(255,255,255,0.94)';
    ctx.strokeStyle = AXIS;
    ctx.fillRect(x, y, w, h);
    ctx.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    lines.forEach((l, k) => {
      ctx.fillStyle = colors[k];
      ctx.fillText(l, x + 8, y + 6 + k * 16);
    });
  }
}
