// Journeys: the composite-key (`{journey}/SEQ-n/{content}/{variant}`)
// performance of one journey per bucket (GET journeys/{j}/performance). The
// journeys to pick from are the keys of attribution grouped by journey.
import { get, tenantPath, type Attribution, type Bucket } from '../api';
import { draw } from '../charts';
import { el, input, int, labelled, opts, select, setStatus, table } from '../dom';
import { attributionParams, type View } from '../view';
import { chartBox, range } from './common';

const journey = input('journey', '', { list: 'journey-list', placeholder: 'journey id', size: '24' });
const known = el('datalist', { id: 'journey-list' });
const granularity = select('granularity', [['day', 'day'], ['week', 'week'], ['hour', 'hour'], ['5s', '5 s']], 'day');
const METRICS = ['touches', 'impressions', 'clicks', 'conversions', 'revenue'] as const;
const metric = select('metric', opts(METRICS), 'touches');
const listed: { shape: string; ids: string[] } = { shape: '', ids: [] };
/** Most keys the chart stacks one by one. */
const CHART_KEYS = 15;

export const journeys: View = {
  id: 'journeys',
  title: 'Journeys',
  mount(controls, rerun) {
    controls.append(labelled('journey', journey), known, labelled('granularity', granularity), labelled('chart', metric));
    [journey, granularity, metric].forEach((c) => c.addEventListener('change', rerun));
  },
  async load(ctx, view, out) {
    // The journeys of the range, asked once per tenant and query (a change of journey or granularity reuses them).
    const params = { ...attributionParams(ctx), model: 'participation', group_by: 'journey' };
    const shape = JSON.stringify([ctx.tenant, params]);
    if (shape !== listed.shape) {
      const list = await get<Attribution>(tenantPath(ctx.tenant, 'attribution'), params, ctx.signal).catch((e) => {
        if ((e as Error).name === 'AbortError') throw e;
        return null;
      });
      // `(none)` and `(direct)` are the keys of no journey.
      listed.shape = list ? shape : '';
      listed.ids = list ? list.rows.map((r) => r.key).filter((k) => !/^\(.*\)$/.test(k)) : [];
      // Another tenant or range: its first journey unless the chosen one is also among its journeys.
      if (listed.ids.length > 0 && !listed.ids.includes(journey.value)) journey.value = listed.ids[0];
      known.replaceChildren(...listed.ids.map((k) => el('option', { value: k })));
    }
    if (!journey.value) {
      out.replaceChildren();
      setStatus(view, 'empty', `No journey has a conversion ${range(ctx)}: type a journey id.`);
      return;
    }
    const r = await get<{ journey: string; granularity: string; buckets: Bucket[] }>(
      tenantPath(ctx.tenant, `journeys/${encodeURIComponent(journey.value)}/performance`),
      { granularity: granularity.value, from: ctx.from, to: ctx.to },
      ctx.signal,
    );
    if (r.buckets.length === 0) {
      out.replaceChildren();
      setStatus(view, 'empty', `No touches of journey ${journey.value} ${range(ctx)}.`);
      return;
    }
    // Totals per composite key over the range, and the chosen metric per
    // bucket and key: one pass over the buckets (a large journey has
    // thousands of buckets and hundreds of keys).
    const starts = [...new Set(r.buckets.map((b) => b.start))].sort();
    const at = new Map(starts.map((s, i) => [s, i]));
    const m = metric.value as (typeof METRICS)[number];
    const totals = new Map<string, number[]>();
    const perStart = new Map<string, number[]>();
    for (const b of r.buckets) {
      if (!totals.has(b.key)) {
        totals.set(b.key, METRICS.map(() => 0));
        perStart.set(b.key, starts.map(() => 0));
      }
      const t = totals.get(b.key)!;
      METRICS.forEach((x, i) => (t[i] += b[x]));
      perStart.get(b.key)![at.get(b.start)!] += b[m];
    }
    const keys = [...totals.keys()].sort();
    // The chart stacks the keys with the most of the metric; the rest as one series (the table lists every key).
    const mi = METRICS.indexOf(m);
    const top = [...keys].sort((a, b) => totals.get(b)![mi] - totals.get(a)![mi] || (a < b ? -1 : 1)).slice(0, CHART_KEYS);
    const rest = keys.filter((k) => !top.includes(k));
    const series = top.sort().map((k) => ({ name: k, type: 'bar', stack: m, data: perStart.get(k)! }));
    if (rest.length > 0) {
      series.push({ name: `other (${rest.length} keys)`, type: 'bar', stack: m, data: starts.map((_, i) => rest.reduce((s, k) => s + perStart.get(k)![i], 0)) });
    }
    const chart = chartBox('chart-journeys', true);
    out.replaceChildren(
      chart,
      table(['key', ...METRICS], keys.map((k) => [k, ...METRICS.map((x, i) => (x === 'revenue' ? totals.get(k)![i] : { text: int(totals.get(k)![i]), value: totals.get(k)![i] }))]), 'table-journeys'),
    );
    draw(chart, {
      tooltip: { trigger: 'axis' },
      legend: { type: 'scroll', top: 0 },
      grid: { top: 40, bottom: 60, left: 60, right: 20 },
      dataZoom: starts.length > 60 ? [{ type: 'slider' }] : [],
      xAxis: { type: 'category', data: starts.map((s) => s.replace('T00:00:00Z', '').replace('Z', '')) },
      yAxis: { type: 'value', name: m },
      series,
    });
    setStatus(view, 'ready');
  },
};
