// charts.js - the console's charts, drawn by uPlot (npm, built into
// uplot.js by web/vendor.cmake and embedded like every asset): loaded on
// first use, so pages without a chart never fetch it. Colours come from the
// stylesheet's variables (light and dark). Each chart keeps its uPlot
// instance on its element (el.chart) and follows the element's width.
let lib = null;

function loadLib() {
  if (!lib) {
    if (!document.querySelector('link[href="uplot.css"]')) {
      document.head.append(Object.assign(document.createElement('link'), { rel: 'stylesheet', href: 'uplot.css' }));
    }
    lib = import('./uplot.js').then((m) => m.default);
  }
  return lib;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function axisStyle() {
  const fg = cssVar('--muted'), grid = cssVar('--line');
  return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

function width(el) { return Math.max(200, Math.floor(el.getBoundingClientRect().width || el.clientWidth || 300)); }

// (Re)draws a chart into el with opts and data; the old one goes.
async function draw(el, makeOpts, data) {
  const uPlot = await loadLib();
  if (!el.isConnected) return null;
  if (el.chart) { el.chart.destroy(); el.chart = null; }
  const u = new uPlot(makeOpts(uPlot, width(el)), data, el);
  el.chart = u;
  if (!el.fotaResize && window.ResizeObserver) {
    let last = width(el);
    el.fotaResize = new ResizeObserver(() => {
      const w = width(el);
      if (el.chart && Math.abs(w - last) > 2) { last = w; el.chart.setSize({ width: w, height: el.chart.height }); }
    });
    el.fotaResize.observe(el);
  }
  return u;
}

// Bars of labelled values (one or two series), e.g. devices per version
// with the online ones inside: series [{ label, values, color }].
export function barChart(el, labels, series, { height = 220 } = {}) {
  const xs = labels.map((_, i) => i);
  return draw(el, (uPlot, w) => ({
    width: w, height,
    legend: { show: false },
    cursor: { points: { show: false } },
    scales: { x: { time: false, range: [-0.5, Math.max(0.5, labels.length - 0.5)] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [
      { ...axisStyle(), splits: () => xs, values: (u, vals) => vals.map((v) => labels[v] ?? ''), gap: 4, size: 40 },
      { ...axisStyle(), size: 56 },
    ],
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: cssVar(s.color), fill: cssVar(s.color), width: 0,
      paths: uPlot.paths.bars({ size: [i === 0 ? 0.7 : 0.35, 80], align: 0 }),
      points: { show: false },
    }))],
  }), [xs, ...series.map((s) => s.values)]);
}

// Counts over time: xs in Unix seconds; series [{ label, values, color,
// bars }] (bars: drawn as bars, else a line).
export function timeChart(el, xs, series, { height = 220 } = {}) {
  return draw(el, (uPlot, w) => ({
    width: w, height,
    legend: { show: true, live: true },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{ ...axisStyle() }, { ...axisStyle(), size: 56 }],
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: cssVar(s.color), width: s.bars ? 0 : 2,
      fill: s.bars ? cssVar(s.color) : undefined,
      paths: s.bars ? uPlot.paths.bars({ size: [i === 0 ? 0.8 : 0.45, 40], align: 0 }) : undefined,
      points: { show: false },
    }))],
  }), [xs, ...series.map((s) => s.values)]);
}
