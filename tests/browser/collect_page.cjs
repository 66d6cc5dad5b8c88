// A landing page that reports to the collector the way a Segment-style web
// snippet does, in headless Debian Chromium driven by playwright-core, for
// tests/tests/collect_browser.rs. The page is served by this script (its own
// origin on 127.0.0.1, so every call to the node is cross-origin), opened with
// UTM parameters in its URL and a search-engine referrer. It keeps an
// anonymous id in localStorage, sends a `page` call as analytics.js does
// (text/plain JSON with `writeKey` in the body: no preflight) and a `track`
// "Order Completed" with HTTP Basic and application/json (a CORS preflight),
// each with `fetch`, and prints one JSON line: the anonymous id, the page URL,
// and the status and body each fetch could read.
//
// usage: node collect_page.cjs <dir holding node_modules/playwright-core> '<config JSON>'
//   config: {"collector": "http://127.0.0.1:port", "write_key": "...", "chromium": "/usr/bin/chromium", "query": "utm_source=...", "referrer": "https://..."}
'use strict';
const http = require('http');
const path = require('path');
const { chromium } = require(path.join(process.argv[2], 'node_modules', 'playwright-core'));
const cfg = JSON.parse(process.argv[3]);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Winter sale</title></head>
<body><h1>Winter sale</h1>
<script>
(function () {
  var COLLECTOR = ${JSON.stringify(cfg.collector)}, WRITE_KEY = ${JSON.stringify(cfg.write_key)};
  var anon = localStorage.getItem('ajs_anonymous_id');
  if (!anon) { anon = crypto.randomUUID(); localStorage.setItem('ajs_anonymous_id', anon); }
  function base(type) {
    var now = new Date().toISOString();
    return { type: type, messageId: 'ajs-' + crypto.randomUUID(), anonymousId: anon, originalTimestamp: now, sentAt: now,
             context: { page: { url: location.href, path: location.pathname, search: location.search, title: document.title, referrer: document.referrer },
                        userAgent: navigator.userAgent, locale: navigator.language, library: { name: 'touchline-test-page', version: '1' } } };
  }
  async function send(call, init) {
    try {
      var r = await fetch(COLLECTOR + '/v1/collect/' + call, Object.assign({ method: 'POST' }, init));
      return { status: r.status, body: await r.text() };
    } catch (e) {
      return { status: 0, body: String(e) };
    }
  }
  window.collected = (async function () {
    var page = Object.assign(base('page'), { writeKey: WRITE_KEY, properties: { title: document.title } });
    var p = await send('page', { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(page) });
    var order = Object.assign(base('track'), { event: 'Order Completed', properties: { revenue: 42.5, currency: 'EUR' } });
    var t = await send('track', { headers: { 'Content-Type': 'application/json', 'Authorization': 'Basic ' + btoa(WRITE_KEY + ':') }, body: JSON.stringify(order) });
    return { anonymous_id: anon, url: location.href, page: p, track: t };
  })();
})();
</script></body></html>`;

(async () => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const browser = await chromium.launch({ executablePath: cfg.chromium, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    const url = `http://127.0.0.1:${server.address().port}/landing?${cfg.query}`;
    await page.goto(url, { referer: cfg.referrer, timeout: 30000 });
    const result = await page.evaluate(() => window.collected);
    result.console_errors = errors;
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
    server.close();
  }
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
