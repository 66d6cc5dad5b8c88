// A person: look up any customer_id or user_id (GET customers/{id}) and see
// the stitched identifiers (method, confidence), the timeline, and each
// conversion's credit per key under every model; or pick one from the
// tenant's persons (GET customers?limit&cursor).
import { get, tenantPath, type Listing, type Person } from '../api';
import { draw } from '../charts';
import { el, input, labelled, opts, select, setStatus, table, num } from '../dom';
import type { View } from '../view';
import { chartBox, GROUP_BY } from './common';

const id = input('person', '', { placeholder: 'customer_id or user_id', size: '30' });
const groupBy = select('group_by', opts(GROUP_BY), 'channel');
const lookup = el('button', { type: 'submit', 'data-testid': 'person-lookup' }, 'Look up');
const PAGE = 20;

function listing(ctx: { tenant: string; signal: AbortSignal }, pick: (id: string) => void): HTMLElement {
  const list = el('ul', { class: 'people', 'data-testid': 'person-list' });
  const more = el('button', { type: 'button', 'data-testid': 'person-more' }, 'More persons');
  let cursor: string | null = null;
  const page = async (): Promise<void> => {
    const r = await get<Listing>(tenantPath(ctx.tenant, 'customers'), { limit: PAGE, cursor }, ctx.signal);
    for (const c of r.customers) {
      const first = c.identifiers[0]?.id ?? c.person_id;
      const a = el('a', { href: '#person', 'data-id': first }, first);
      a.addEventListener('click', (e) => {
        e.preventDefault();
        pick(first);
      });
      list.append(el('li', {}, a, c.identifiers.length > 1 ? ` (+${c.identifiers.length - 1} identifiers)` : ''));
    }
    cursor = r.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', () => void page());
  void page().catch((e) => list.append(el('li', {}, `Could not list persons: ${(e as Error).message}`)));
  return el('div', {}, el('h3', {}, 'Persons of this tenant'), list, more);
}

export const person: View = {
  id: 'person',
  title: 'A person',
  mount(controls, rerun) {
    controls.append(labelled('id', id), labelled('credit by', groupBy), lookup);
    controls.addEventListener('submit', rerun);
    groupBy.addEventListener('change', rerun);
  },
  async load(ctx, view, out) {
    const pick = (v: string): void => {
      id.value = v;
      id.form!.requestSubmit();
    };
    if (!id.value.trim()) {
      out.replaceChildren(listing(ctx, pick));
      setStatus(view, 'ready', 'Type any customer_id or user_id, or pick a person below.');
      return;
    }
    const p = await get<Person>(
      tenantPath(ctx.tenant, `customers/${encodeURIComponent(id.value.trim())}`),
      { lookback_days: ctx.lookback_days, half_life_hours: ctx.half_life_hours, weights: ctx.weights, group_by: groupBy.value },
      ctx.signal,
    );
    const events = [
      ...p.touchpoints.map((t) => ({ ts: t.timestamp, kind: 'touch', what: [t.channel, t.interaction_type].filter(Boolean).join(' · '), detail: t.key ?? t.campaign ?? '', via: t.customer_id ?? '' })),
      ...p.conversions.map((c) => ({ ts: c.timestamp, kind: 'conversion', what: `${num(c.value)} ${c.currency ?? ''}`, detail: c.conversion_type ?? c.event_id, via: '' })),
    ].sort((a, b) => a.ts.localeCompare(b.ts));
    const timeline = chartBox('chart-person');
    const sections: HTMLElement[] = [
      el('p', { class: 'totals' }, 'person ', el('strong', { 'data-testid': 'person-id' }, p.person_id), p.segments?.length ? ` · segments: ${p.segments.join(', ')}` : ''),
      el('h3', {}, 'Identifiers'),
      table(['id', 'kind', 'method', 'confidence'], p.identifiers.map((i) => [i.id, i.kind, i.method, i.confidence]), 'table-identifiers'),
      el('h3', {}, 'Timeline'),
      timeline,
      table(['time', 'event', 'what', 'detail', 'identifier'], events.map((e) => [e.ts, e.kind, e.what, e.detail, e.via]), 'table-timeline'),
      el('h3', {}, 'Conversions: credit per model'),
    ];
    if (p.conversions.length === 0) sections.push(el('p', { class: 'status empty' }, 'This person has no conversion (in the retention window): no credit to show.'));
    for (const c of p.conversions) {
      const models = Object.keys(c.credit);
      const keys = [...new Set(models.flatMap((m) => c.credit[m].map((x) => x.key)))].sort();
      const share = (m: string, k: string): number => c.credit[m].filter((x) => x.key === k).reduce((s, x) => s + x.weight, 0);
      sections.push(
        el('h4', {}, `${c.timestamp} · ${num(c.value)} ${c.currency ?? ''} · ${c.event_id}`),
        models.length === 0
          ? el('p', { class: 'status empty' }, 'No touchpoint within the lookback window: no model credits anything.')
          : table(['model', ...keys], models.map((m) => [m, ...keys.map((k) => share(m, k))]), `table-credit-${c.event_id}`),
      );
    }
    out.replaceChildren(...sections);
    const lanes = [...new Set(p.touchpoints.map((t) => t.channel ?? '(none)'))].sort();
    draw(timeline, {
      tooltip: { trigger: 'item' },
      grid: { top: 10, bottom: 30, left: 110, right: 20 },
      xAxis: { type: 'time', axisLabel: { formatter: '{yyyy}-{MM}-{dd}', hideOverlap: true } },
      yAxis: { type: 'category', data: [...lanes, 'conversion'] },
      series: [
        { name: 'touch', type: 'line', lineStyle: { width: 0 }, symbolSize: 10, data: p.touchpoints.map((t) => [t.timestamp, t.channel ?? '(none)']) },
        { name: 'conversion', type: 'line', lineStyle: { width: 0 }, symbol: 'diamond', symbolSize: 14, data: p.conversions.map((c) => [c.timestamp, 'conversion']) },
      ],
    });
    setStatus(view, 'ready');
  },
};
