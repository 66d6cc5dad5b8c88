// The report page's shell: token and tenant, the page-wide query bar, the view
// tabs (#compare, #trend, …) and re-querying the shown view on every change.
import './style.css';
import { ApiError, describe, get, setToken, token, type Attribution, type TenantInfo } from './api';
import { addDays, day, el, input, labelled, setStatus } from './dom';
import type { Ctx, View } from './view';
import { compare } from './views/compare';
import { trend } from './views/trend';
import { journeys } from './views/journeys';
import { campaigns } from './views/campaigns';
import { cohorts } from './views/cohorts';
import { person } from './views/person';
import { cluster } from './views/cluster';

const VIEWS: View[] = [compare, trend, journeys, campaigns, cohorts, person, cluster];
const TENANT_KEY = 'touchline.tenant';

const app = document.getElementById('app')!;
const tenantBox = el('span', { class: 'tenant' });
const tokenButton = el('button', { type: 'button', 'data-testid': 'change-token' }, 'Token…');
const notice = el('p', { class: 'notice', 'data-testid': 'notice', hidden: '' });
const bar = {
  from: input('from', '', { type: 'date' }),
  to: input('to', '', { type: 'date' }),
  currency: input('currency', '', { placeholder: 'as recorded', size: '8', maxlength: '3', pattern: '[A-Z]{3}' }),
  lookback_days: input('lookback_days', '', { type: 'number', min: '0', max: '3650', placeholder: 'tenant default', size: '6' }),
  half_life_hours: input('half_life_hours', '', { type: 'number', min: '0', step: 'any', placeholder: '168', size: '6' }),
  weights: input('weights', '', { placeholder: 'F,M,L e.g. 0.4,0.2,0.4', size: '14' }),
};
const nav = el('nav');
const main = el('main');
const sections = new Map<string, HTMLElement>();
let tenant = '';
let current: AbortController | null = null;

function shell(): void {
  app.append(
    el('header', {}, el('h1', {}, 'touchline'), tenantBox, tokenButton),
    el(
      'form',
      { class: 'bar', 'data-testid': 'query-bar' },
      labelled('from', bar.from),
      labelled('to (exclusive)', bar.to),
      labelled('currency', bar.currency),
      labelled('lookback days', bar.lookback_days),
      labelled('half-life hours', bar.half_life_hours),
      labelled('custom weights', bar.weights),
    ),
    notice,
    nav,
    main,
  );
  for (const v of VIEWS) {
    nav.append(el('a', { href: `#${v.id}`, 'data-testid': `tab-${v.id}` }, v.title));
    const controls = el('form', { class: 'controls' });
    const section = el(
      'section',
      { id: `view-${v.id}`, 'data-testid': `view-${v.id}`, hidden: '' },
      el('h2', {}, v.title),
      controls,
      el('p', { class: 'status', role: 'status', hidden: '' }),
      el('div', { class: 'out' }),
    );
    controls.addEventListener('submit', (e) => e.preventDefault());
    v.mount(controls, () => void show());
    sections.set(v.id, section);
    main.append(section);
  }
  Object.values(bar).forEach((i) => i.addEventListener('change', () => void show()));
  bar.from.form!.addEventListener('submit', (e) => e.preventDefault());
  tokenButton.addEventListener('click', () => askToken('Enter a token (admin, or a tenant token for its tenant).'));
  window.addEventListener('hashchange', () => void show());
}

function currentView(): View {
  const id = location.hash.replace(/^#/, '');
  return VIEWS.find((v) => v.id === id) ?? VIEWS[0];
}

/** Queries the shown view again (aborting the previous query). */
async function show(): Promise<void> {
  const view = currentView();
  nav.querySelectorAll('a').forEach((a) => a.classList.toggle('active', a.getAttribute('href') === `#${view.id}`));
  sections.forEach((s, id) => (s.hidden = id !== view.id));
  const section = sections.get(view.id)!;
  const out = section.querySelector<HTMLElement>('.out')!;
  current?.abort();
  const ac = new AbortController();
  current = ac;
  if (!tenant && view.id !== 'cluster') {
    out.replaceChildren();
    setStatus(section, 'error', 'Choose a tenant first.');
    return;
  }
  const ctx: Ctx = {
    tenant,
    from: bar.from.value,
    to: bar.to.value,
    currency: bar.currency.value.trim().toUpperCase(),
    lookback_days: bar.lookback_days.value,
    half_life_hours: bar.half_life_hours.value,
    weights: bar.weights.value.trim(),
    signal: ac.signal,
  };
  const started = performance.now();
  section.dataset.loadMs = '';
  setStatus(section, 'loading', 'Loading…');
  try {
    await view.load(ctx, section, out);
  } catch (e) {
    if ((e as Error).name === 'AbortError') return;
    out.replaceChildren();
    setStatus(section, 'error', describe(e));
  }
  if (current === ac) section.dataset.loadMs = String(Math.round(performance.now() - started));
}

function askToken(why: string): void {
  const field = el('input', { type: 'password', name: 'token', 'data-testid': 'token-input', autocomplete: 'off', size: '40' });
  const form = el(
    'form',
    { class: 'token', 'data-testid': 'token-form' },
    el('p', {}, why, ' It is kept in this tab only (sessionStorage).'),
    field,
    el('button', { type: 'submit', 'data-testid': 'token-submit' }, 'Use token'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(field.value.trim() || null);
    form.remove();
    void start();
  });
  document.querySelector('form.token')?.remove();
  app.insertBefore(form, notice);
  field.focus();
}

function tenantInput(value: string): void {
  const i = input('tenant', value, { placeholder: 'tenant', size: '16', 'data-testid': 'tenant' });
  i.addEventListener('change', () => {
    tenant = i.value.trim();
    sessionStorage.setItem(TENANT_KEY, tenant);
    void defaultRange().then(show);
  });
  tenantBox.replaceChildren(labelled('tenant', i));
}

/** A range covering the tenant's events: its first day (at most 92 days back) to the day after its last. */
function setRange(first: string | null, last: string | null): void {
  if (!last) return;
  const to = addDays(new Date(`${last.slice(0, 10)}T00:00:00Z`), 1);
  const firstDay = first ? new Date(`${first.slice(0, 10)}T00:00:00Z`) : addDays(to, -30);
  const from = to.getTime() - firstDay.getTime() <= 92 * 86_400_000 ? firstDay : addDays(to, -30);
  bar.from.value = day(from);
  bar.to.value = day(to);
}

let tenants: TenantInfo[] = [];

/** Without the tenant list (a tenant token), the range ends the day after the tenant's watermark. */
async function defaultRange(): Promise<void> {
  const info = tenants.find((t) => t.tenant === tenant);
  if (info) return setRange(info.first_event, info.last_event);
  if (!tenant) return;
  try {
    // Any range answers the watermark (`consumed_through`); the default one is within every range limit.
    const a = await get<Attribution>(`/v1/tenants/${encodeURIComponent(tenant)}/attribution`);
    setRange(null, a.consumed_through);
  } catch {
    // The view's own query shows the error in words.
  }
}

/** Finds out what the token reaches: every tenant (a list to pick from) or one (typed in). */
async function start(): Promise<void> {
  notice.hidden = true;
  tokenButton.textContent = token() ? 'Change token' : 'Token…';
  try {
    tenants = (await get<{ tenants: TenantInfo[] }>('/v1/tenants')).tenants;
    const saved = sessionStorage.getItem(TENANT_KEY);
    tenant = tenants.find((t) => t.tenant === saved)?.tenant ?? tenants[0]?.tenant ?? '';
    if (tenants.length === 0) {
      notice.textContent = 'This cluster holds no tenant yet: no event has been accepted.';
      notice.hidden = false;
    }
    const s = el('select', { name: 'tenant', 'data-testid': 'tenant' });
    for (const t of tenants) s.append(el('option', { value: t.tenant }, `${t.tenant} (${t.persons} persons)`));
    s.value = tenant;
    s.addEventListener('change', () => {
      tenant = s.value;
      sessionStorage.setItem(TENANT_KEY, tenant);
      void defaultRange().then(show);
    });
    tenantBox.replaceChildren(labelled('tenant', s));
  } catch (e) {
    tenants = [];
    if (e instanceof ApiError && e.status === 401) {
      tenantBox.replaceChildren();
      askToken(token() ? 'The node does not know this token.' : 'This node needs a token.');
      return;
    }
    if (e instanceof ApiError && e.status === 403) {
      // A tenant token: the tenant list is admin-only, so the tenant is typed in.
      tenant = sessionStorage.getItem(TENANT_KEY) ?? '';
      tenantInput(tenant);
    } else {
      notice.textContent = describe(e);
      notice.hidden = false;
    }
  }
  await defaultRange();
  await show();
}

shell();
void start();
