// Small DOM helpers shared by the views: elements, tables, select boxes,
// number formatting and the status line (loading / empty / error in words).

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const numberFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** Two decimals with thousands separators; `—` for a missing number. */
export function num(v: number | null | undefined): string {
  return v === null || v === undefined || Number.isNaN(v) ? '—' : numberFormat.format(v);
}

export function int(v: number | null | undefined): string {
  return v === null || v === undefined ? '—' : intFormat.format(v);
}

export function pct(v: number | null | undefined): string {
  return v === null || v === undefined || Number.isNaN(v) ? '—' : `${numberFormat.format(v * 100)} %`;
}

export type Cell = string | number | null | undefined | { text: string; value?: number };

/** A table with a header; numeric cells are right-aligned and keep the raw number in `data-value`. */
export function table(headers: string[], rows: Cell[][], testid: string): HTMLTableElement {
  const thead = el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h))));
  const tbody = el('tbody');
  for (const r of rows) {
    const tr = el('tr');
    for (const c of r) {
      if (typeof c === 'number') tr.append(el('td', { class: 'n', 'data-value': String(c) }, num(c)));
      else if (c && typeof c === 'object') {
        const td = el('td', c.value === undefined ? {} : { class: 'n', 'data-value': String(c.value) }, c.text);
        tr.append(td);
      } else tr.append(el('td', {}, c ?? '—'));
    }
    tbody.append(tr);
  }
  return el('table', { 'data-testid': testid }, thead, tbody);
}

export function select(name: string, options: [string, string][], value: string): HTMLSelectElement {
  const s = el('select', { name, 'data-testid': `control-${name}` });
  for (const [v, label] of options) {
    const o = el('option', { value: v }, label);
    if (v === value) o.selected = true;
    s.append(o);
  }
  return s;
}

export function labelled(text: string, control: HTMLElement): HTMLLabelElement {
  return el('label', {}, el('span', {}, text), control);
}

export function input(name: string, value: string, attrs: Record<string, string> = {}): HTMLInputElement {
  const i = el('input', { name, 'data-testid': `control-${name}`, ...attrs });
  i.value = value;
  return i;
}

export const opts = (values: readonly string[]): [string, string][] => values.map((v) => [v, v.replace(/_/g, ' ')]);

/** The status line of a view: `state` is loading | empty | error | ready (the browser test waits on it). */
export function setStatus(view: HTMLElement, state: 'loading' | 'empty' | 'error' | 'ready', message = ''): void {
  view.dataset.state = state;
  const s = view.querySelector<HTMLElement>('.status');
  if (s) {
    s.textContent = message;
    s.className = `status ${state}`;
    s.hidden = message === '';
  }
}

/** `YYYY-MM-DD` of a Date (UTC). */
export const day = (d: Date): string => d.toISOString().slice(0, 10);

export const addDays = (d: Date, n: number): Date => new Date(d.getTime() + n * 86_400_000);
