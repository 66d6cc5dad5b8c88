// Campaigns: spend, attributed revenue and ROAS per campaign under a chosen
// model (GET campaigns), as paired bars and a table.
import { get, tenantPath, type Campaign } from '../api';
import { draw } from '../charts';
import { labelled, opts, select, setStatus, table } from '../dom';
import { attributionParams, type View } from '../view';
import { chartBox, MODELS } from './common';

const model = select('model', opts(MODELS), 'linear');

export const campaigns: View = {
  id: 'campaigns',
  title: 'Campaigns',
  mount(controls, rerun) {
    controls.append(labelled('model', model));
    model.addEventListener('change', rerun);
  },
  async load(ctx, view, out) {
    const r = await get<{ campaigns: Campaign[] }>(tenantPath(ctx.tenant, 'campaigns'), { ...attributionParams(ctx), model: model.value }, ctx.signal);
    if (r.campaigns.length === 0) {
      out.replaceChildren();
      setStatus(view, 'empty', `Tenant ${ctx.tenant} has no campaign: no campaign event and no touchpoint naming one.`);
      return;
    }
    const rows = [...r.campaigns].sort((a, b) => b.attributed_revenue - a.attributed_revenue || a.campaign_id.localeCompare(b.campaign_id));
    const chart = chartBox('chart-campaigns', true);
    out.replaceChildren(
      chart,
      table(
        ['campaign', 'name', 'channel', 'status', 'spend', 'attributed conversions', 'attributed revenue', 'ROAS'],
        rows.map((c) => [c.campaign_id, c.name, c.channel, c.status, c.spend, c.attributed_conversions, c.attributed_revenue, c.roas]),
        'table-campaigns',
      ),
    );
    draw(chart, {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { top: 40, bottom: 80, left: 70, right: 60 },
      xAxis: { type: 'category', data: rows.map((c) => c.campaign_id), axisLabel: { rotate: 30 } },
      yAxis: [{ type: 'value', name: 'money' }, { type: 'value', name: 'ROAS' }],
      series: [
        { name: 'spend', type: 'bar', data: rows.map((c) => c.spend) },
        { name: `attributed revenue (${model.value})`, type: 'bar', data: rows.map((c) => c.attributed_revenue) },
        { name: 'ROAS', type: 'line', yAxisIndex: 1, data: rows.map((c) => c.roas) },
      ],
    });
    setStatus(view, 'ready');
  },
};
