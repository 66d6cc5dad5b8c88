// What every view gets: the tenant and the page-wide query parameters, and a
// signal that aborts when a newer query supersedes this one.

export interface Ctx {
  tenant: string;
  /** `YYYY-MM-DD`, `[from, to)`. */
  from: string;
  to: string;
  currency: string;
  lookback_days: string;
  half_life_hours: string;
  weights: string;
  signal: AbortSignal;
}

export interface View {
  id: string;
  title: string;
  /** Builds the view's own controls into `controls`; `rerun` re-queries. */
  mount(controls: HTMLElement, rerun: () => void): void;
  /** Queries and draws into `out`; sets the view's status (dom.setStatus). */
  load(ctx: Ctx, view: HTMLElement, out: HTMLElement): Promise<void>;
}

/** The attribution parameters of the page-wide bar, as /v1 query parameters. */
export function attributionParams(ctx: Ctx): Record<string, string> {
  return {
    from: ctx.from,
    to: ctx.to,
    currency: ctx.currency,
    lookback_days: ctx.lookback_days,
    half_life_hours: ctx.half_life_hours,
    weights: ctx.weights,
  };
}
