// Pieces several views share: the grouping and model lists, the totals line,
// and the words shown when a query has nothing to draw.
import { int, num, el } from '../dom';
import type { Ctx } from '../view';

export const GROUP_BY = ['channel', 'campaign', 'journey', 'sequence', 'content', 'variant', 'source_medium'] as const;
export const MODELS = [
  'first_touch',
  'last_touch',
  'linear',
  'time_decay',
  'position_based',
  'j_curve',
  'inverse_j',
  'last_non_direct',
  'participation',
  'markov',
  'shapley',
  'custom',
] as const;

/** `N conversions · V CUR` (with test ids on both numbers). */
export function totals(conversions: number, value: number, currency: string | null): HTMLElement {
  return el(
    'p',
    { class: 'totals' },
    el('strong', { 'data-testid': 'total-conversions', 'data-value': String(conversions) }, int(conversions)),
    ' conversions · ',
    el('strong', { 'data-testid': 'total-value', 'data-value': String(value) }, num(value)),
    ` ${currency ?? ''}`,
  );
}

export const range = (ctx: Ctx): string => (ctx.from || ctx.to ? `between ${ctx.from || 'the default start'} and ${ctx.to || 'now'}` : 'in the last 30 days');

export const chartBox = (testid: string, tall = false): HTMLElement => el('div', { class: tall ? 'chart tall' : 'chart', 'data-testid': testid });
