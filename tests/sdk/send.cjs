// Sends a fixed set of calls with the official Segment Node SDK to a touchline
// node (tests/tests/collect_sdk.rs): `node send.cjs <sdk dir> <http://host:port> <write key>`.
// The SDK batches them into POSTs of /v1/collect/batch with `writeKey` in the body.
const path = require('path');
const [sdkDir, host, writeKey] = process.argv.slice(2);
const { Analytics } = require(path.join(sdkDir, 'node_modules', '@segment', 'analytics-node'));

async function main() {
  const analytics = new Analytics({ writeKey, host, path: '/v1/collect/batch', flushAt: 20, maxRetries: 0 });
  const failures = [];
  analytics.on('error', (e) => failures.push(String(e && (e.reason || e.message || e.code) || e)));
  const at = (h) => new Date(Date.UTC(2026, 11, 3, h, 0, 0));
  // a1: paid search page, an email newsletter, a login as u1; u1 buys for 80.
  analytics.page({ messageId: 'sdk-1', anonymousId: 'sdk-a1', name: 'Landing', timestamp: at(9),
    context: { page: { url: 'https://shop.example/landing?utm_source=google&utm_medium=cpc' }, campaign: { name: 'sdk-winter' } } });
  analytics.track({ messageId: 'sdk-2', anonymousId: 'sdk-a1', event: 'Newsletter Opened', timestamp: at(10),
    context: { campaign: { name: 'sdk-winter', source: 'newsletter', medium: 'email' } } });
  analytics.identify({ messageId: 'sdk-3', anonymousId: 'sdk-a1', userId: 'sdk-u1', traits: { plan: 'pro' }, timestamp: at(11) });
  analytics.track({ messageId: 'sdk-4', userId: 'sdk-u1', event: 'Order Completed', properties: { revenue: 80, currency: 'USD' }, timestamp: at(12) });
  // a2: a social screen, buys for 20.
  analytics.screen({ messageId: 'sdk-5', anonymousId: 'sdk-a2', name: 'Home', timestamp: at(13),
    context: { campaign: { name: 'sdk-spring', source: 'facebook', medium: 'social' } } });
  analytics.track({ messageId: 'sdk-6', anonymousId: 'sdk-a2', event: 'Order Completed', properties: { value: 20 }, timestamp: at(14) });
  await analytics.closeAndFlush({ timeout: 20000 });
  if (failures.length) {
    console.error('failed: ' + failures.join('; '));
    process.exit(1);
  }
  console.log('sent 6');
}

main().catch((e) => { console.error(e); process.exit(1); });
