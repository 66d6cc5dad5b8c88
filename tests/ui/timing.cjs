// Times every view of the report page (/ui) in headless Debian Chromium with
// playwright-core, from navigation to its data shown (issue 21.4): for each
// round and view, a fresh browser context (its own sessionStorage holding the
// token and tenant, as after a sign-in) opens `/ui#<view>`; the clock runs
// from `page.goto` until the view's status is no longer `loading` (the page
// asked the tenant list, picked the range from it, queried and drew). Prints
// one JSON line: per round and view, `shown_ms` (navigation to data shown),
// `load_ms` (the page's own query + draw time), the view's state and the /v1
// requests it made. Not an assertion: the numbers go to BENCHMARKS.md.
//
// usage: node timing.cjs <dir holding node_modules/playwright-core> '<config JSON>'
//   config: {"base": "http://127.0.0.1:PORT", "token": "...", "tenant": "acme",
//            "views": ["compare", ...] (default: all seven), "rounds": 2, "chromium": "/usr/bin/chromium"}
'use strict';
const path = require('path');
const { chromium } = require(path.join(process.argv[2], 'node_modules', 'playwright-core'));
const cfg = JSON.parse(process.argv[3]);
const VIEWS = cfg.views || ['compare', 'trend', 'journeys', 'campaigns', 'cohorts', 'person', 'cluster'];

async function timeView(browser, view) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(
    ([token, tenant]) => {
      sessionStorage.setItem('touchline.token', token);
      sessionStorage.setItem('touchline.tenant', tenant);
    },
    [cfg.token, cfg.tenant],
  );
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/v1/')) requests.push(u.pathname + u.search);
  });
  const started = Date.now();
  await page.goto(`${cfg.base}/ui#${view}`);
  await page.waitForFunction(
    (id) => {
      const s = document.querySelector(`[data-testid="view-${id}"]`);
      return s && !s.hidden && s.dataset.state && s.dataset.state !== 'loading' && s.dataset.loadMs;
    },
    view,
    { timeout: 120000 },
  );
  const shown_ms = Date.now() - started;
  const r = await page.evaluate((id) => {
    const s = document.querySelector(`[data-testid="view-${id}"]`);
    return { state: s.dataset.state, load_ms: Number(s.dataset.loadMs) };
  }, view);
  await context.close();
  return { shown_ms, ...r, requests };
}

(async () => {
  const browser = await chromium.launch({ executablePath: cfg.chromium || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const result = { rounds: [] };
  try {
    for (let i = 0; i < (cfg.rounds || 2); i++) {
      const round = {};
      for (const v of VIEWS) round[v] = await timeView(browser, v);
      result.rounds.push(round);
    }
  } catch (e) {
    result.failure = String(e && e.stack ? e.stack : e);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
