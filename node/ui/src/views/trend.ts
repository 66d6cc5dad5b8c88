// One model over time: the credit per key in each day or week of the range as
// stacked areas. A rule model is one `attribution/series` query (the node
// buckets the range's conversions in one pass); markov and shapley are fitted
// per bucket, one attribution query per bucket, at most four in flight.
import { get, tenantPath, type Attribution, type Row, type Series } from '../api';
import { draw } from '../charts';
import { addDays, day, labelled, opts, select, setStatus, table } from '../dom';
import { attributionParams, type Ctx, type View } from '../view';
import { chartBox, GROUP_BY, MODELS, range } from './common';

const model = select('model', opts(MODELS), 'linear');
const groupBy = select('group_by', opts(GROUP_BY), 'channel');
const bucket = select('bucket', [['day', 'day'], ['week', 'week']], 'day');
const FITTED = ['markov', 'shapley'];
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

type Spans = { spans: [string, string][]; rows: Row[][] };

/** A rule model's series: one query. */
async function series(ctx: Ctx): Promise<Spans> {
  const s = await get<Series>(
    tenantPath(ctx.tenant, 'attribution/series'),
    { ...attributionParams(ctx), model: model.value, group_by: groupBy.value, bucket: bucket.value },
    ctx.signal,
  );
  return { spans: s.buckets.map((b) => [b.from.slice(0, 10), b.to.slice(0, 10)]), rows: s.buckets.map((b) => b.rows) };
}

/** A fitted model per bucket: one attribution query each. */
async function perBucket(ctx: Ctx, spans: [string, string][]): Promise<Spans> {
  const rows: Row[][] = new Array(spans.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < spans.length) {
      const i = next++;
      const [from, to] = spans[i];
      const a = await get<Attribution>(tenantPath(ctx.tenant, 'attribution'), { ...attributionParams(ctx), from, to, model: model.value, group_by: groupBy.value }, ctx.signal);
      rows[i] = a.rows;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, spans.length) }, worker));
  return { spans, rows };
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
    let got: Spans;
    if (FITTED.includes(model.value)) {
      const spans = buckets(ctx.from, ctx.to, bucket.value === 'week' ? 7 : 1);
      if (spans.length === 0 || spans.length > MAX_BUCKETS) {
        out.replaceChildren();
        setStatus(view, 'error', spans.length === 0 ? 'The range is empty: `to` must be after `from`.' : `${spans.length} ${bucket.value}s is too many buckets for ${model.value} (at most ${MAX_BUCKETS}, each fitted on its own): choose weeks or a shorter range.`);
        return;
      }
      got = await perBucket(ctx, spans);
    } else {
      got = await series(ctx);
    }
    const { spans, rows } = got;
    const keys = [...new Set(rows.flatMap((r) => r.map((x) => x.key)))].sort();
    if (keys.length === 0) {
      out.replaceChildren();
      setStatus(view, 'empty', `No conversions ${range(ctx)} for tenant ${ctx.tenant}: no credit to show over time.`);
      return;
    }
    const credit = (i: number, k: string): number => rows[i].find((x) => x.key === k)?.credit ?? 0;
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
