// Drives the report page (/ui) in headless Debian Chromium with playwright-core
// for tests/tests/ui.rs: signs in with the admin token, picks the tenant and
// range, visits every view, changes controls, checks the empty and the 403
// states, and prints what each view showed (tables, totals, status, the /v1
// requests it made, the time until its data showed) as one JSON line; the Rust
// test compares the numbers with the /v1 answers. Screenshots go to cfg.out.
//
// usage: node check.cjs <dir holding node_modules/playwright-core> '<config JSON>'
'use strict';
const path = require('path');
const { chromium } = require(path.join(process.argv[2], 'node_modules', 'playwright-core'));
const cfg = JSON.parse(process.argv[3]);

const result = { views: {}, screenshots: [], console_errors: [] };
const requests = [];

async function settled(page, view) {
  // A view is settled when its status is no longer `loading` and it recorded its load time.
  await page.waitForFunction(
    (id) => {
      const s = document.querySelector(`[data-testid="view-${id}"]`);
      return s && !s.hidden && s.dataset.state && s.dataset.state !== 'loading' && s.dataset.loadMs;
    },
    view,
    { timeout: 60000 },
  );
}

/** What a view shows: state, status words, load time, every table (text and raw numbers), totals, whether a chart is drawn. */
async function read(page, view) {
  return page.evaluate((id) => {
    const s = document.querySelector(`[data-testid="view-${id}"]`);
    const tables = {};
    for (const t of s.querySelectorAll('table')) {
      tables[t.dataset.testid] = {
        headers: [...t.querySelectorAll('thead th')].map((th) => th.textContent),
        rows: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
      };
    }
    const status = s.querySelector('.status');
    const total = (tid) => s.querySelector(`[data-testid="${tid}"]`)?.textContent ?? null;
    return {
      state: s.dataset.state,
      load_ms: Number(s.dataset.loadMs),
      status: status && !status.hidden ? status.textContent : '',
      tables,
      total_conversions: total('total-conversions'),
      total_value: total('total-value'),
      canvases: [...s.querySelectorAll('.chart:not([hidden]) canvas')].length,
      controls: Object.fromEntries([...s.querySelectorAll('.controls [name]')].map((c) => [c.name, c.value])),
    };
  }, view);
}

async function shot(page, name) {
  const file = path.join(cfg.out, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  result.screenshots.push(file);
}

/** Waits for `view` to settle, then records what it shows under `name`, with the time since `started`. */
async function record(page, view, name, started) {
  await settled(page, view);
  const r = await read(page, view);
  r.shown_ms = Date.now() - started;
  r.requests = requests.splice(0);
  result.views[name] = r;
  await shot(page, name);
  return r;
}

/** Clicks a view's tab and records what it shows once settled, with the time from the click. */
async function visit(page, view, name = view) {
  await unsettle(page, view);
  const started = Date.now();
  await page.click(`[data-testid="tab-${view}"]`);
  return record(page, view, name, started);
}

/** Changes a control of the shown view and records the re-queried view. */
async function change(page, view, name, act) {
  requests.splice(0);
  await unsettle(page, view);
  const started = Date.now();
  await act();
  return record(page, view, name, started);
}

/** Forgets a view's last load, so `settled` waits for the next one. */
async function unsettle(page, view) {
  await page.evaluate((id) => {
    document.querySelector(`[data-testid="view-${id}"]`).dataset.loadMs = '';
  }, view);
}

/** Sets the range with one change event (one query). */
async function setRange(page, from, to) {
  await page.fill('[data-testid="control-from"]', from);
  await page.fill('[data-testid="control-to"]', to);
  await page.dispatchEvent('[data-testid="control-to"]', 'change');
}

(async () => {
  const browser = await chromium.launch({ executablePath: cfg.chromium || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // Chromium logs every 401/403 answer as a failed resource load: those are expected here.
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && result.console_errors.push(m.text()));
  page.on('pageerror', (e) => result.console_errors.push(String(e)));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/v1/')) requests.push(u.pathname + u.search);
  });
  try {
    await page.goto(`${cfg.base}/ui`);
    // Tokens are configured: the page asks for one before anything else.
    await page.waitForSelector('[data-testid="token-form"]', { timeout: 30000 });
    result.asked_for_token = true;
    await shot(page, 'token');
    await page.fill('[data-testid="token-input"]', cfg.admin_token);
    await page.click('[data-testid="token-submit"]');
    await page.waitForSelector('select[data-testid="tenant"]');
    await page.selectOption('select[data-testid="tenant"]', cfg.tenant);
    await setRange(page, cfg.from, cfg.to);
    result.storage = await page.evaluate(() => ({ session: sessionStorage.getItem('touchline.token'), local: localStorage.length }));

    await visit(page, 'compare');
    await change(page, 'compare', 'compare_campaign', () => page.selectOption('[data-testid="view-compare"] [data-testid="control-group_by"]', 'campaign'));
    // The page-wide model parameters: custom weights add the custom model, half-life and lookback re-query.
    await change(page, 'compare', 'compare_params', async () => {
      await page.fill('[data-testid="control-weights"]', cfg.weights);
      await page.fill('[data-testid="control-half_life_hours"]', cfg.half_life_hours);
      await page.fill('[data-testid="control-lookback_days"]', cfg.lookback_days);
      await page.dispatchEvent('[data-testid="control-weights"]', 'change');
    });
    for (const f of ['weights', 'half_life_hours', 'lookback_days']) await page.fill(`[data-testid="control-${f}"]`, '');
    await page.dispatchEvent('[data-testid="control-weights"]', 'change');
    await visit(page, 'trend');
    await change(page, 'trend', 'trend_week', () => page.selectOption('[data-testid="view-trend"] [data-testid="control-bucket"]', 'week'));
    await visit(page, 'journeys');
    await change(page, 'journeys', 'journeys_week', () => page.selectOption('[data-testid="view-journeys"] [data-testid="control-granularity"]', 'week'));
    await visit(page, 'campaigns');
    await change(page, 'campaigns', 'campaigns_first_touch', () => page.selectOption('[data-testid="view-campaigns"] [data-testid="control-model"]', 'first_touch'));
    await visit(page, 'cohorts');
    await visit(page, 'person', 'person_list');
    await change(page, 'person', 'person', async () => {
      await page.fill('[data-testid="control-person"]', cfg.person);
      await page.click('[data-testid="person-lookup"]');
    });
    await visit(page, 'cluster');

    // A range without events: words, not a blank chart.
    await visit(page, 'compare', 'compare_again');
    await change(page, 'compare', 'compare_empty', () => setRange(page, cfg.empty_from, cfg.empty_to));
    for (const v of ['trend', 'journeys', 'cohorts']) await visit(page, v, `${v}_empty`);
    await visit(page, 'compare', 'compare_empty_again');

    // A tenant token of another tenant: the tenant is typed in, and the 403 is shown in words.
    await page.click('[data-testid="change-token"]');
    await page.fill('[data-testid="token-input"]', cfg.wrong_token);
    await unsettle(page, 'compare');
    await page.click('[data-testid="token-submit"]');
    await page.waitForSelector('input[data-testid="tenant"]');
    await settled(page, 'compare');
    await change(page, 'compare', 'forbidden', async () => {
      await page.fill('input[data-testid="tenant"]', cfg.tenant);
      await page.dispatchEvent('input[data-testid="tenant"]', 'change');
    });
    // The same token on its own tenant: the report shows.
    await change(page, 'compare', 'own_tenant', async () => {
      await page.fill('input[data-testid="tenant"]', cfg.other_tenant);
      await page.dispatchEvent('input[data-testid="tenant"]', 'change');
    });
  } catch (e) {
    result.failure = String(e && e.stack ? e.stack : e);
    await shot(page, 'failure').catch(() => {});
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
