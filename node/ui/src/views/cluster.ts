// The cluster: members (alive, partitions, state) and every partition's owner,
// state, offsets and lag (GET /v1/cluster, admin).
import { get, type Cluster } from '../api';
import { draw } from '../charts';
import { el, setStatus, table } from '../dom';
import type { View } from '../view';
import { chartBox } from './common';

export const cluster: View = {
  id: 'cluster',
  title: 'Cluster',
  mount() {},
  async load(ctx, view, out) {
    const r = await get<Cluster>('/v1/cluster', {}, ctx.signal);
    const chart = chartBox('chart-cluster');
    const int = (v: number | null): { text: string; value?: number } => (v === null ? { text: '—' } : { text: String(v), value: v });
    out.replaceChildren(
      el('p', { class: 'totals' }, `answered by node ${r.node_id} · ${r.topic_partitions} partitions`),
      el('h3', {}, 'Members'),
      r.members.length === 0
        ? el('p', { class: 'status empty' }, 'No member has sent a heartbeat yet.')
        : table(['node', 'HTTP address', 'alive', 'state', 'partitions', 'standby'], r.members.map((m) => [m.node_id, m.http_addr, m.alive ? 'yes' : 'no', m.state, m.partitions.join(', ') || 'none', (m.standby ?? []).join(', ') || 'none']), 'table-members'),
      el('h3', {}, 'Partitions'),
      chart,
      table(['partition', 'owner', 'state', 'consumed offset', 'end offset', 'lag', 'watermark'], r.partitions.map((p) => [int(p.partition), p.owner ?? 'no owner', p.state ?? 'unknown', int(p.consumed_offset), int(p.end_offset), int(p.lag), p.watermark]), 'table-partitions'),
    );
    draw(chart, {
      tooltip: { trigger: 'axis' },
      grid: { top: 30, bottom: 30, left: 60, right: 20 },
      xAxis: { type: 'category', data: r.partitions.map((p) => `p${p.partition}`) },
      yAxis: { type: 'value', name: 'lag (records)', minInterval: 1 },
      series: [{ name: 'lag', type: 'bar', data: r.partitions.map((p) => p.lag ?? 0) }],
    });
    setStatus(view, 'ready');
  },
};
