// Cohorts: first-touch week (or day) × channel (or another grouping) as a
// heatmap of conversion rate or revenue (GET cohorts), and the rows below.
import { get, tenantPath, type CohortRow } from '../api';
import { draw } from '../charts';
import { labelled, opts, pct, select, setStatus, table } from '../dom';
import type { View } from '../view';
import { chartBox, GROUP_BY, range } from './common';

const cohort = select('cohort', [['week', 'week'], ['day', 'day']], 'week');
const by = select('by', opts(GROUP_BY), 'channel');
const metric = select('metric', [['rate', 'conversion rate'], ['revenue', 'revenue']], 'rate');

const rate = (r: CohortRow): number => (r.persons > 0 ? r.converted_persons / r.persons : 0);

export const cohorts: View = {
  id: 'cohorts',
  title: 'Cohorts',
  mount(controls, rerun) {
    controls.append(labelled('cohort of first touch per', cohort), labelled('by', by), labelled('colour', metric));
    [cohort, by, metric].forEach((c) => c.addEventListener('change', rerun));
  },
  async load(ctx, view, out) {
    const r = await get<{ currency: string | null; rows: CohortRow[] }>(
      tenantPath(ctx.tenant, 'cohorts'),
      { cohort: cohort.value, by: by.value, from: ctx.from, to: ctx.to, currency: ctx.currency },
      ctx.signal,
    );
    if (r.rows.length === 0) {
      out.replaceChildren();
      setStatus(view, 'empty', `No person of tenant ${ctx.tenant} had a first touch ${range(ctx)}.`);
      return;
    }
    const starts = [...new Set(r.rows.map((x) => x.cohort_start))].sort();
    const keys = [...new Set(r.rows.map((x) => x.key))].sort();
    const value = (x: CohortRow): number => (metric.value === 'rate' ? rate(x) : x.revenue);
    const cells = r.rows.map((x) => [starts.indexOf(x.cohort_start), keys.indexOf(x.key), value(x)]);
    const max = Math.max(...cells.map((c) => c[2]), 0);
    const chart = chartBox('chart-cohorts', true);
    out.replaceChildren(
      chart,
      table(
        ['cohort start', 'key', 'persons', 'converted persons', 'conversion rate', 'conversions', `revenue ${r.currency ?? ''}`],
        r.rows.map((x) => [x.cohort_start.slice(0, 10), x.key, { text: String(x.persons), value: x.persons }, { text: String(x.converted_persons), value: x.converted_persons }, { text: pct(rate(x)), value: rate(x) }, { text: String(x.conversions), value: x.conversions }, x.revenue]),
        'table-cohorts',
      ),
    );
    draw(chart, {
      tooltip: { position: 'top' },
      grid: { top: 20, bottom: 90, left: 110, right: 20 },
      xAxis: { type: 'category', data: starts.map((s) => s.slice(0, 10)), splitArea: { show: true } },
      yAxis: { type: 'category', data: keys, splitArea: { show: true } },
      visualMap: { min: 0, max: max || 1, calculable: true, orient: 'horizontal', left: 'center', bottom: 0 },
      series: [{ name: metric.value === 'rate' ? 'conversion rate' : 'revenue', type: 'heatmap', data: cells, label: { show: starts.length * keys.length <= 120, formatter: (p: { value: number[] }) => (metric.value === 'rate' ? `${Math.round(p.value[2] * 100)}%` : String(Math.round(p.value[2]))) } }],
    });
    setStatus(view, 'ready');
  },
};
