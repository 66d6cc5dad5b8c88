// Model comparison: every model's credit (or value) per key of a grouping as
// grouped bars, the conversions and value totals, and the numbers in a table
// (GET attribution/compare).
import { get, tenantPath, type Compare } from '../api';
import { draw } from '../charts';
import { labelled, opts, select, setStatus, table } from '../dom';
import { attributionParams, type View } from '../view';
import { chartBox, GROUP_BY, MODELS, range, totals } from './common';

const groupBy = select('group_by', opts(GROUP_BY), 'channel');
const metric = select('metric', [['credit', 'credit (conversions)'], ['value', 'value (revenue)']], 'credit');

export const compare: View = {
  id: 'compare',
  title: 'Model comparison',
  mount(controls, rerun) {
    controls.append(labelled('group by', groupBy), labelled('show', metric));
    groupBy.addEventListener('change', rerun);
    metric.addEventListener('change', rerun);
  },
  async load(ctx, view, out) {
    const r = await get<Compare>(tenantPath(ctx.tenant, 'attribution/compare'), { ...attributionParams(ctx), group_by: groupBy.value }, ctx.signal);
    // Models in the order of attribution.md (the JSON object is sorted by name).
    const models = [...MODELS.filter((m) => m in r.models), ...Object.keys(r.models).filter((m) => !(MODELS as readonly string[]).includes(m))];
    const field = metric.value as 'credit' | 'value';
    // Keys ordered by linear credit (as the API orders rows), then any key only another model credits.
    const keys: string[] = [];
    for (const m of ['linear', ...models]) for (const row of r.models[m] ?? []) if (!keys.includes(row.key)) keys.push(row.key);
    const at = (m: string, k: string): number | null => r.models[m].find((x) => x.key === k)?.[field] ?? null;
    if (r.conversions === 0 || keys.length === 0) {
      out.replaceChildren(totals(r.conversions, r.conversion_value, r.currency));
      setStatus(view, 'empty', `No conversions ${range(ctx)} for tenant ${ctx.tenant}: nothing to compare.`);
      return;
    }
    const chart = chartBox('chart-compare', true);
    out.replaceChildren(
      totals(r.conversions, r.conversion_value, r.currency),
      chart,
      table(['key', ...models], keys.map((k) => [k, ...models.map((m) => at(m, k) ?? 0)]), 'table-compare'),
    );
    draw(chart, {
      tooltip: { trigger: 'axis' },
      legend: { type: 'scroll', top: 0 },
      grid: { top: 40, bottom: 60, left: 60, right: 20 },
      xAxis: { type: 'category', data: keys, axisLabel: { rotate: keys.length > 8 ? 30 : 0 } },
      yAxis: { type: 'value', name: field },
      series: models.map((m) => ({ name: m, type: 'bar', data: keys.map((k) => at(m, k) ?? 0) })),
    });
    setStatus(view, 'ready');
  },
};
