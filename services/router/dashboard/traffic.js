// Live traffic: one card per model with its figures now and uPlot charts of the last 60 s,
// polled every second while the section is shown.
import uPlot from './vendor/uPlot.esm.js';
import { api } from './api.js';
import { $, figure, h } from './dom.js';

const charts = new Map();
let timer;

const COLORS = ['#2563eb', '#d97706', '#dc2626', '#059669', '#7c3aed'];

function chartOptions(title, series, width) {
  return {
    title, width, height: 160,
    scales: { x: { time: true } },
    axes: [{}, { size: 50 }],
    series: [{}, ...series.map((label, index) => ({ label, stroke: COLORS[index], width: 2, spanGaps: true }))],
    legend: { live: false },
  };
}

const CHARTS = [
  { key: 'throughput', title: 'Requests per second', series: ['requests/s', 'errors/s'], pick: (p) => [p.requestsPerSecond, p.errorsPerSecond] },
  { key: 'latency', title: 'Latency (ms)', series: ['p50', 'p95', 'p99'], pick: (p) => [p.p50Ms, p.p95Ms, p.p99Ms] },
  { key: 'batching', title: 'Queue depth and mean batch rows', series: ['queue depth', 'rows per batch'], pick: (p) => [p.queueDepth, p.meanBatchRows] },
  { key: 'gpu', title: 'GPU time per batch (ms)', series: ['GPU ms'], pick: (p) => [p.gpuMsPerBatch] },
  { key: 'cache', title: 'Cache hit rate', series: ['hit rate'], pick: (p) => [p.cacheHitRate] },
];

function dataOf(traffic, chart) {
  const columns = [traffic.points.map((point) => point.t)];
  chart.series.forEach((_, index) => columns.push(traffic.points.map((point) => chart.pick(point)[index])));
  return columns;
}

function batchBars(traffic) {
  const max = Math.max(1, ...traffic.batchSizes.map((bin) => bin.batches));
  return h('figure', { class: 'bars' },
    h('figcaption', {}, 'Batches by rows, last 60 s'),
    h('ul', { 'aria-label': 'Batch-size distribution' }, traffic.batchSizes.filter((bin) => bin.batches > 0).map((bin) =>
      h('li', {}, h('span', { class: 'bar-label' }, `≤${bin.rows}`),
        h('span', { class: 'bar', style: undefined, 'data-width': Math.round((bin.batches / max) * 100) }),
        h('span', {}, String(bin.batches))))));
}

function card(traffic) {
  const now = traffic.points.at(-2) ?? traffic.points.at(-1);
  const summary = h('dl', { class: 'figures' },
    h('dt', {}, 'Requests/s'), h('dd', { class: 'rps', 'data-value': now.requestsPerSecond }, String(now.requestsPerSecond)),
    h('dt', {}, 'p50 / p95 / p99 (10 s)'), h('dd', {}, `${figure(traffic.recent.p50Ms)} / ${figure(traffic.recent.p95Ms)} / ${figure(traffic.recent.p99Ms)} ms`),
    h('dt', {}, 'Queue depth'), h('dd', {}, String(now.queueDepth)),
    h('dt', {}, 'Requests (10 s)'), h('dd', { class: 'recent', 'data-value': traffic.recent.requests }, String(traffic.recent.requests)));
  const chartsBox = h('div', { class: 'charts' });
  const section = h('section', { class: 'card traffic', 'data-model': traffic.model, 'aria-labelledby': `traffic-${traffic.model}` },
    h('h3', { id: `traffic-${traffic.model}` }, traffic.model), summary, chartsBox, batchBars(traffic));
  return { section, chartsBox };
}

function sizeBars(root) {
  // Widths from data attributes: the Content-Security-Policy allows no inline style attributes in markup.
  for (const bar of root.querySelectorAll('.bar[data-width]')) bar.style.width = `${bar.dataset.width}%`;
}

async function refresh() {
  const box = $('#traffic-models');
  let snapshot;
  try {
    snapshot = await api('/api/dashboard/traffic');
  } catch (error) {
    box.replaceChildren(h('p', { class: 'error' }, `Traffic unavailable: ${error.message}`));
    return;
  }
  if (snapshot.models.length === 0) {
    box.replaceChildren(h('p', {}, 'No traffic in the last 60 s.'));
    charts.clear();
    return;
  }
  // Charts in a fixed grid that fits the section: three across on a laptop, fewer when narrower.
  const available = (box.clientWidth || 900) - 44;
  const columns = available >= 960 ? 3 : available >= 620 ? 2 : 1;
  const width = Math.floor((available - 12 * (columns - 1)) / columns) - 4;
  const cards = snapshot.models.map((traffic) => {
    const { section, chartsBox } = card(traffic);
    chartsBox.style.gridTemplateColumns = `repeat(${columns}, ${width}px)`;
    let plots = charts.get(traffic.model);
    if (!plots) {
      plots = new Map();
      charts.set(traffic.model, plots);
    }
    for (const chart of CHARTS) {
      const holder = h('div', { class: 'chart', 'data-chart': chart.key, role: 'img', 'aria-label': `${chart.title} of ${traffic.model}, last 60 seconds` });
      chartsBox.append(holder);
      const data = dataOf(traffic, chart);
      let plot = plots.get(chart.key);
      if (!plot) {
        plot = new uPlot(chartOptions(chart.title, chart.series, width), data, holder);
        plots.set(chart.key, plot);
      } else {
        holder.append(plot.root);
        if (plot.width !== width) plot.setSize({ width, height: 160 });
        plot.setData(data);
      }
    }
    sizeBars(section);
    return section;
  });
  box.replaceChildren(...cards);
}

export function startTraffic() {
  stopTraffic();
  void refresh();
  timer = setInterval(refresh, 1000);
}

export function stopTraffic() {
  if (timer) clearInterval(timer);
  timer = undefined;
}
