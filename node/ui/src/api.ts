// Calls to the node's /v1 API: the bearer token (kept in this tab's
// sessionStorage only), JSON errors turned into ApiError with the server's
// message, and aborting superseded requests.

const TOKEN_KEY = 'touchline.token';

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

/** An error in words: the server's message with its status. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) {
    const what: Record<number, string> = { 401: 'Not signed in', 403: 'Forbidden', 404: 'Not found', 400: 'Bad query', 503: 'Unavailable' };
    return `${what[e.status] ?? `Error ${e.status}`}: ${e.message}`;
  }
  return `Error: ${(e as Error).message}`;
}

export type Query = Record<string, string | number | undefined | null>;

/** `path` with the set (non-empty) parameters of `q` as its query string. */
export function url(path: string, q: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

/** GET `path` as JSON; an error answer becomes an ApiError carrying its message. */
export async function get<T>(path: string, q: Query = {}, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let resp: Response;
  try {
    resp = await fetch(url(path, q), { headers, signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `the node did not answer (${(e as Error).message})`);
  }
  const text = await resp.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(resp.status, 'bad_response', `the node answered ${resp.status} with a body that is not JSON`);
  }
  if (!resp.ok) {
    const err = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(resp.status, err?.code ?? 'error', err?.message ?? `HTTP ${resp.status}`);
  }
  return body as T;
}

export const tenantPath = (tenant: string, rest: string): string => `/v1/tenants/${encodeURIComponent(tenant)}/${rest}`;

// Shapes of the answers used by the page (http-api.md).
export interface Row {
  key: string;
  credit: number;
  value: number;
}
export interface Attribution {
  tenant: string;
  model: string;
  group_by: string;
  from: string;
  to: string;
  conversions: number;
  conversion_value: number;
  currency: string | null;
  rows: Row[];
  consumed_through: string | null;
}
export interface SeriesBucket {
  from: string;
  to: string;
  conversions: number;
  conversion_value: number;
  rows: Row[];
}
export interface Series extends Omit<Attribution, 'rows'> {
  bucket: string;
  buckets: SeriesBucket[];
}
export interface Compare extends Omit<Attribution, 'model' | 'rows'> {
  models: Record<string, Row[]>;
}
export interface TenantInfo {
  tenant: string;
  events: number;
  persons: number;
  first_event: string | null;
  last_event: string | null;
}
export interface Bucket {
  start: string;
  key: string;
  touches: number;
  impressions: number;
  clicks: number;
  conversions: number;
  revenue: number;
}
export interface Campaign {
  campaign_id: string;
  name: string | null;
  channel: string | null;
  status: string | null;
  spend: number;
  attributed_conversions: number;
  attributed_revenue: number;
  roas: number | null;
}
export interface CohortRow {
  cohort_start: string;
  key: string;
  persons: number;
  converted_persons: number;
  conversions: number;
  revenue: number;
}
export interface Identifier {
  id: string;
  kind: string;
  method: string;
  confidence: number;
}
export interface Touchpoint {
  event_id: string;
  timestamp: string;
  channel: string | null;
  campaign: string | null;
  interaction_type: string | null;
  key: string | null;
  customer_id: string | null;
}
export interface Credit {
  event_id: string;
  key: string;
  weight: number;
}
export interface Conversion {
  event_id: string;
  timestamp: string;
  value: number;
  currency: string | null;
  conversion_type?: string | null;
  credit: Record<string, Credit[]>;
}
export interface Person {
  person_id: string;
  identifiers: Identifier[];
  touchpoints: Touchpoint[];
  conversions: Conversion[];
  segments?: string[];
}
export interface Listing {
  customers: { person_id: string; identifiers: { id: string; kind: string }[] }[];
  next_cursor: string | null;
}
export interface Cluster {
  node_id: string;
  topic_partitions: number;
  members: { node_id: string; http_addr: string; partitions: number[]; standby: number[]; state: string; alive: boolean }[];
  partitions: {
    partition: number;
    owner: string | null;
    state: string | null;
    consumed_offset: number | null;
    end_offset: number | null;
    lag: number | null;
    watermark: string | null;
  }[];
}
