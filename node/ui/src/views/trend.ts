// One model over time: the credit per key in each day or week of the range as
// stacked areas, from one attribution query per bucket (there is no series
// endpoint), at most four in flight.
import { get, tenantPath, type Attribution } from '../api';
import { draw } from '../charts';
import { addDays, day, labelled, opts, select, setStatus, table } from '../dom';
import { attributionParams, type View } from '../view';
import { chartBox, GROUP_BY, MODELS, range } from './common';

const model = select('model', opts(MODELS), 'linear');
const groupBy = select('group_by', opts(GROUP_BY), 'channel');
const bucket = select('bucket', [['day', 'day'], ['week', 'week']], 'day');
const MAX_BUCKETS = 92;
const PARALLEL = 4;

/** `[start, end)` days of each bucket of `[from, to)`, the last one cut at `to`. */
export function buckets(from: string, to: string, days: number): [string, string][] {
  const out: [string, string][] = [];
  const end = new Date(`${to}T00:00:00Z`);
  for (let d = new Date(`${from}T00:00:00Z`); d < end; d = addDays(d, days)) {
    const next = addDays(d, days);
    out.push([day(d), day(next < end ? next : end)]);
  }
  return out;
}

export const trend: View = {
  id: 'trend',
  title: 'One model over time',
  mount(controls, rerun) {
    controls.append(labelled('model', model), labelled('group by', groupBy), labelled('per', bucket));
    [model, groupBy, bucket].forEach((c) => c.addEventListener('change', rerun));
  },
  async load(ctx, view, out) {
    if (!ctx.from || !ctx.to) {
      out.replaceChildren();
      setStatus(view, 'error', 'Choose a range (from and to) to see credit over time.');
      return;
    }
    const spans = buckets(ctx.from, ctx.to, bucket.value === 'week' ? 7 : 1);
    if (spans.length === 0 || spans.length > MAX_BUCKETS) {
      out.replaceChildren();
      setStatus(view, 'error', spans.length === 0 ? 'The range is empty: `to` must be after `from`.' : `${spans.length} ${bucket.value}s is too many buckets (at most ${MAX_BUCKETS}): choose weeks or a shorter range.`);
      return;
    }
    const results: Attribution[] = new Array(spans.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < spans.length) {
        const i = next++;
        const [from, to] = spans[i];
        results[i] = await get<Attribution>(
          tenantPath(ctx.tenant, 'attribution'),
          { ...attributionParams(ctx), from, to, model: model.value, group_by: groupBy.value },
          ctx.signal,
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, spans.length) }, worker));
    const keys = [...new Set(results.flatMap((r) => r.rows.map((x) => x.key)))].sort();
    if (keys.length === 0) {
      out.replaceChildren();
      setStatus(view, 'empty', `No conversions ${range(ctx)} for tenant ${ctx.tenant}: no credit to show over time.`);
      return;
    }
    const credit = (i: number, k: string): number => results[i].rows.find((x) => x.key === k)?.credit ?? 0;
    const chart = chartBox('chart-trend', true);
    out.replaceChildren(
      chart,
      table(['from', 'to (exclusive)', ...keys], spans.map(([from, to], i) => [from, to, ...keys.map((k) => credit(i, k))]), 'table-trend'),
    );
    draw(chart, {
      tooltip: { trigger: 'axis' },
      legend: { type: 'scroll', top: 0 },
      grid: { top: 40, bottom: 40, left: 60, right: 20 },
      xAxis: { type: 'category', boundaryGap: false, data: spans.map(([f]) => f) },
      yAxis: { type: 'value', name: `${model.value} credit` },
      series: keys.map((k) => ({ name: k, type: 'line', stack: 'credit', areaStyle: {}, symbol: 'none', data: spans.map((_, i) => credit(i, k)) })),
    });
    setStatus(view, 'ready');
  },
};
