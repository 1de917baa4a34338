// End-to-end tests of the back-room page (issue 7) in headless Chromium: the real vouchd
// binary on a free port with a temporary database, Debian's chromium driven by playwright-core.
// Every claim that matters is also checked through the API, not only on screen. Screenshots of
// the main screens at desktop and phone width go to target/ui-screenshots/.
//
// Run: ui-tests/install.sh once, then `node --test ui-tests/page.test.mjs` (test.sh does both).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, chromiumPath, ROOT } from './server.mjs';

const SHOTS = join(ROOT, 'target', 'ui-screenshots');
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };
const CASHIER = ['vouchers:read', 'vouchers:write', 'charges:read', 'charges:write'];
const GIFT = 'GIFT2025';
const TIMEOUT = { timeout: 90000 };

let server;
let browser;
let shop;
/** Requests to anywhere but the server, console errors and page errors, from every page. */
const foreign = [];
const consoleErrors = [];
/** 4xx answers the tests provoke on purpose; the browser logs each as a failed resource. */
const expectedRefusals = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  shop = await server.client('Main Street Shop', CASHIER);
  const made = await server.api('POST', '/v1/vouchers', shop.token, {
    code: GIFT,
    amount: '25.00',
    currency: 'EUR',
    label: 'Gift card',
    valid_until: '2031-12-31',
  });
  assert.equal(made.status, 201, made.text);
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  if (process.env.UI_TEST_LOG) console.log(server.log.join('\n'));
  if (browser) await browser.close();
  if (server) await server.stop();
});

/** A fresh page at `viewport`, watched for foreign requests and console errors. */
async function openPage(viewport, options = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true, ...options });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const origin = new URL(server.base).origin;
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.protocol === 'blob:' || url.protocol === 'data:') return;
    if (url.origin !== origin) foreign.push(req.url());
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));
  await page.goto(`${server.base}/`);
  return page;
}

async function signIn(page, landing = '#view-find') {
  await page.fill('#signin-id', shop.id);
  await page.fill('#signin-secret', shop.secret);
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector(`${landing}:not([hidden])`);
}

async function find(page, code) {
  await page.fill('#find-code', code);
  await page.press('#find-code', 'Enter');
  // The voucher shown before may still be on screen: wait for this code (shown in groups).
  await page.waitForFunction(
    (want) => document.querySelector('#voucher-code')?.textContent.replace(/\s/g, '') === `Voucher${want}`,
    code.toUpperCase().replace(/[\s-]/g, ''),
  );
  await page.waitForFunction(() => document.querySelector('#ledger, #ledger-empty'));
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function voucherByCode(code) {
  const res = await server.api('GET', `/v1/vouchers?filter%5Bcode%5D=${code}`, shop.token);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.length, 1, `one voucher with code ${code}`);
  return res.body.data[0];
}

async function ledgerOf(code) {
  const v = await voucherByCode(code);
  const res = await server.api('GET', `/v1/vouchers/${v.id}/charges?per_page=100`, shop.token);
  assert.equal(res.status, 200, res.text);
  return res.body.data;
}

/** Confirms the open dialog, waits for the page's confirmation message. */
async function confirmAndWait(page, { dbl = false } = {}) {
  await page.waitForSelector('#confirm[open]');
  if (dbl) await page.dblclick('#confirm [data-confirm]');
  else await page.click('#confirm [data-confirm]');
  await page.waitForSelector('#confirm:not([open])', { state: 'attached' });
  await page.waitForSelector('#flash');
}

// One desktop page carries the cashier's session through the tests below, in order.
let desk;

test('the page and its assets are served with a same-origin Content-Security-Policy', TIMEOUT, async () => {
  for (const path of ['/', '/ui/app.js', '/ui/app.css']) {
    const res = await fetch(`${server.base}${path}`);
    assert.equal(res.status, 200, path);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/, path);
    assert.match(csp, /script-src 'self'/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/, path);
  }
  const html = await (await fetch(`${server.base}/`)).text();
  assert.match(html, /<script type="module" src="\/ui\/app.js">/);
  const missing = await fetch(`${server.base}/ui/nope.js`);
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type'), /problem\+json/);
});

test('sign-in refuses a wrong secret in plain words, then signs in', TIMEOUT, async () => {
  desk = await openPage(DESKTOP);
  await desk.waitForSelector('#view-signin:not([hidden])');
  await shot(desk, 'desktop-1-sign-in');
  expectedRefusals.push(401);
  await desk.fill('#signin-id', shop.id);
  await desk.fill('#signin-secret', 'not-the-secret');
  await desk.click('#signin-form button[type="submit"]');
  const error = desk.locator('#signin-form .form-error');
  await error.waitFor({ state: 'visible' });
  assert.match(await error.textContent(), /client id or secret is not right/);
  await signIn(desk);
  assert.match(await desk.textContent('#who'), new RegExp(shop.id));
  // The token lives in memory only.
  const stored = await desk.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length);
  assert.equal(stored, 0);
});

test('finding a typed code shows kind, status, validity, balance and an empty ledger', TIMEOUT, async () => {
  // As a person types it: lower case, with a space; the page and the server normalise.
  await find(desk, 'gift 2025');
  assert.equal(await desk.textContent('#voucher-code'), 'Voucher GIFT 2025');
  assert.equal(await desk.textContent('#voucher-status'), 'Active');
  const text = await desk.textContent('#voucher');
  assert.match(text, /Gift card \(value voucher\)/);
  assert.match(text, /until 2031-12-31/);
  assert.equal(await desk.textContent('#balance'), '25.00 EUR');
  assert.match(text, /Held0\.00 EUR/);
  assert.match(text, /No entries yet/);
  assert.equal(desk.url(), `${server.base}/#find/${GIFT}`);
  // An unknown code is said next to the field (the list answers 200 with no match).
  await desk.fill('#find-code', 'NOPE99');
  await desk.press('#find-code', 'Enter');
  await desk.locator('#find-code-error').waitFor({ state: 'visible' });
  assert.match(await desk.textContent('#find-code-error'), /No voucher has the code NOPE99/);
  await find(desk, GIFT);
  await shot(desk, 'desktop-2-voucher');
});

test('a charge lowers the balance and adds a ledger row', TIMEOUT, async () => {
  await desk.fill('#charge-amount', '7.50');
  await desk.fill('#charge-order_number', 'R-881');
  await desk.click('#charge-button');
  await desk.waitForSelector('#confirm[open]');
  assert.match(await desk.textContent('#confirm-text'), /Charge 7\.50 EUR to voucher GIFT 2025/);
  await shot(desk, 'desktop-3-confirm-charge');
  await confirmAndWait(desk);
  assert.match(await desk.textContent('#flash'), /Charged 7\.50 EUR/);
  assert.equal(await desk.textContent('#balance'), '17.50 EUR');
  const rows = desk.locator('#ledger tbody tr');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /Charge.*−7\.50 EUR.*R-881/);
  const entries = await ledgerOf(GIFT);
  assert.deepEqual(entries.map((e) => [e.type, e.amount, e.order_number]), [['charge', '7.50', 'R-881']]);
  assert.equal((await voucherByCode(GIFT)).remaining_amount, '17.50');
});

test('an over-balance charge is refused next to the amount field and writes nothing', TIMEOUT, async () => {
  expectedRefusals.push(409);
  await desk.fill('#charge-amount', '100');
  await desk.click('#charge-button');
  await desk.waitForSelector('#confirm[open]');
  await desk.click('#confirm [data-confirm]');
  await desk.waitForSelector('#confirm:not([open])', { state: 'attached' });
  const error = desk.locator('#charge-amount-error');
  await error.waitFor({ state: 'visible' });
  assert.match(await error.textContent(), /Not enough balance on this voucher\. Available: 17\.50 EUR\./);
  assert.equal(await desk.getAttribute('#charge-amount', 'aria-invalid'), 'true');
  assert.equal(await desk.evaluate(() => document.activeElement.id), 'charge-amount');
  await shot(desk, 'desktop-4-over-balance');
  assert.equal((await ledgerOf(GIFT)).length, 1);
  assert.equal((await voucherByCode(GIFT)).remaining_amount, '17.50');
  // A malformed amount is the server's field error, shown in the same place.
  expectedRefusals.push(422);
  await desk.fill('#charge-amount', '1.234');
  await desk.click('#charge-button');
  await desk.click('#confirm [data-confirm]');
  await desk.waitForSelector('#confirm:not([open])', { state: 'attached' });
  await error.waitFor({ state: 'visible' });
  assert.match(await error.textContent(), /decimal/i);
  assert.equal((await ledgerOf(GIFT)).length, 1);
});

test('double-clicking "charge" and its confirmation creates exactly one ledger entry', TIMEOUT, async () => {
  const keys = [];
  const watch = (req) => {
    if (req.method() === 'POST' && req.url().endsWith('/charges')) keys.push(req.headers()['idempotency-key']);
  };
  desk.on('request', watch);
  await desk.fill('#charge-amount', '1.00');
  await desk.dblclick('#charge-button');
  await confirmAndWait(desk, { dbl: true });
  desk.off('request', watch);
  assert.equal(keys.length, 1, 'one request went out');
  assert.match(keys[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const entries = await ledgerOf(GIFT);
  assert.equal(entries.filter((e) => e.amount === '1.00').length, 1);
  assert.equal(entries.length, 2);
  assert.equal(await desk.textContent('#balance'), '16.50 EUR');
});

test('a retry after a lost answer sends the same Idempotency-Key and charges once', TIMEOUT, async () => {
  const keys = [];
  let lost = false;
  // The server takes the first charge, but its answer never reaches the page.
  await desk.route('**/v1/vouchers/*/charges', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    keys.push(route.request().headers()['idempotency-key']);
    if (lost) return route.continue();
    lost = true;
    await route.fetch();
    return route.abort('connectionreset');
  });
  await desk.fill('#charge-amount', '2.00');
  await desk.click('#charge-button');
  await desk.waitForSelector('#confirm[open]');
  await desk.click('#confirm [data-confirm]');
  const note = desk.locator('#confirm [data-note]');
  await note.waitFor({ state: 'visible' });
  assert.match(await note.textContent(), /No answer from the server.*Retry sends the very same request/);
  assert.equal(await desk.textContent('#confirm [data-confirm]'), 'Retry');
  await shot(desk, 'desktop-5-retry');
  await desk.click('#confirm [data-confirm]');
  await desk.waitForSelector('#confirm:not([open])', { state: 'attached' });
  await desk.waitForSelector('#flash');
  await desk.unroute('**/v1/vouchers/*/charges');
  assert.equal(keys.length, 2);
  assert.equal(keys[0], keys[1], 'the retry reuses the key');
  assert.match(await desk.textContent('#flash'), /Charged 2\.00 EUR \(the server had already done it\)/);
  const entries = await ledgerOf(GIFT);
  assert.equal(entries.filter((e) => e.amount === '2.00').length, 1);
  assert.equal(await desk.textContent('#balance'), '14.50 EUR');
});

test('a refund gives a charge back and shows in the ledger', TIMEOUT, async () => {
  const first = (await ledgerOf(GIFT)).find((e) => e.amount === '7.50');
  await desk.click(`#ledger tr[data-entry="${first.id}"] button`);
  await desk.waitForSelector('#refund-form');
  assert.equal(await desk.evaluate(() => document.activeElement.id), 'refund-amount');
  await desk.fill('#refund-amount', '5.00');
  await desk.click('#refund-button');
  await confirmAndWait(desk);
  assert.match(await desk.textContent('#flash'), /Refunded 5\.00 EUR/);
  assert.equal(await desk.textContent('#balance'), '19.50 EUR');
  assert.match(await desk.locator('#ledger tbody tr').first().textContent(), /Refund.*\+5\.00 EUR/);
  // Refunding more than is left of that charge is refused next to the amount.
  expectedRefusals.push(409);
  await desk.click(`#ledger tr[data-entry="${first.id}"] button`);
  await desk.fill('#refund-amount', '3.00');
  await desk.click('#refund-button');
  await desk.click('#confirm [data-confirm]');
  await desk.waitForSelector('#confirm:not([open])', { state: 'attached' });
  await desk.locator('#refund-amount-error').waitFor({ state: 'visible' });
  assert.match(await desk.textContent('#refund-amount-error'), /more than is left to refund/);
  await shot(desk, 'desktop-6-refund');
  const entries = await ledgerOf(GIFT);
  assert.deepEqual(entries.filter((e) => e.type === 'refund').map((e) => [e.amount, e.refers_to]), [['5.00', first.id]]);
  assert.equal((await voucherByCode(GIFT)).remaining_amount, '19.50');
  await desk.click('#refund-form button[type="button"]');
});

test('releasing a hold frees the held amount', TIMEOUT, async () => {
  const v = await voucherByCode(GIFT);
  const hold = await server.api('POST', `/v1/vouchers/${v.id}/reservations`, shop.token, { amount: '3.00', order_number: 'T-12' });
  assert.equal(hold.status, 201, hold.text);
  await find(desk, GIFT);
  await desk.waitForSelector('.holds li');
  assert.match(await desk.textContent('#voucher'), /Held3\.00 EUR/);
  assert.match(await desk.textContent('.holds'), /3\.00 EUR held for order T-12/);
  await shot(desk, 'desktop-7-hold');
  await desk.click('.holds li button');
  await confirmAndWait(desk);
  assert.match(await desk.textContent('#flash'), /Released the hold of 3\.00 EUR/);
  assert.match(await desk.textContent('#voucher'), /Held0\.00 EUR/);
  assert.equal((await voucherByCode(GIFT)).held_amount, '0.00');
});

test('a discount voucher is used on a ticket total', TIMEOUT, async () => {
  const made = await server.api('POST', '/v1/vouchers', shop.token, { code: 'TENOFF', discount: { type: 'percentage', value: '10' } });
  assert.equal(made.status, 201, made.text);
  await find(desk, 'TENOFF');
  assert.match(await desk.textContent('#voucher'), /Discount voucher: 10 % off/);
  await desk.fill('#use-ticket_total', '40.00');
  await desk.click('#use-button');
  await confirmAndWait(desk);
  assert.match(await desk.textContent('#flash'), /Discount granted: 4\.00 EUR/);
  assert.equal(await desk.textContent('#voucher-status'), 'Used up');
  const entries = await ledgerOf('TENOFF');
  assert.deepEqual(entries.map((e) => [e.type, e.amount]), [['use', '4.00']]);
});

let batchName;

test('issuing shows field errors next to their fields, then creates a voucher and a batch', TIMEOUT, async () => {
  await desk.click('#nav a[data-view="issue"]');
  await desk.waitForSelector('#view-issue:not([hidden])');
  // One voucher with a code that is too short: the server's error sits under the code field.
  expectedRefusals.push(422);
  await desk.fill('#issue-amount', '15');
  await desk.fill('#issue-code', 'AB');
  await desk.click('#issue-submit');
  await desk.locator('#issue-form [data-field="code"] .error').waitFor({ state: 'visible' });
  await desk.fill('#issue-code', 'SHOP15');
  await desk.click('#issue-submit');
  await desk.waitForSelector('#issued');
  assert.match(await desk.textContent('#issued'), /Voucher created.*SHOP15.*15\.00 EUR/);
  assert.equal((await voucherByCode('SHOP15')).amount, '15.00');
  // A batch: a count of 0 is refused on the count field.
  await desk.check('input[name="mode"][value="batch"]');
  await desk.fill('#issue-count', '0');
  await desk.fill('#issue-amount', '10');
  await desk.fill('#issue-batch', 'Spring Sale');
  await desk.fill('#issue-prefix', 'sp');
  await desk.fill('#issue-length', '6');
  await desk.fill('#issue-validity', '12');
  expectedRefusals.push(422);
  await desk.click('#issue-submit');
  await desk.locator('#issue-form [data-field="count"] .error').waitFor({ state: 'visible' });
  assert.match(await desk.textContent('#issue-form [data-field="count"] .error'), /1/);
  await shot(desk, 'desktop-8-issue-error');
  await desk.fill('#issue-count', '12');
  await desk.dblclick('#issue-submit');
  await desk.waitForSelector('#issued');
  batchName = await desk.textContent('#issued-batch');
  assert.equal(batchName, 'Spring Sale');
  assert.match(await desk.textContent('#issued'), /Batch created: 12 vouchers/);
  await shot(desk, 'desktop-9-batch');
  const list = await server.api('GET', '/v1/vouchers?filter%5Bbatch%5D=Spring%20Sale&per_page=100', shop.token);
  assert.equal(list.body.meta.total, 12, 'a double submit created one batch');
  for (const v of list.body.data) {
    assert.match(v.code, /^SP[2-9A-HJKMNP-Z]{4}$/);
    assert.equal(v.amount, '10.00');
    assert.equal(v.validity_value, 12);
  }
});

test('the batch print sheet shows each code with a Code 128 barcode and a QR code', TIMEOUT, async () => {
  await desk.click('#open-sheet');
  await desk.waitForSelector('#sheet[data-ready="yes"]');
  const tickets = desk.locator('.ticket');
  assert.equal(await tickets.count(), 12);
  const images = await desk.evaluate(() =>
    Array.from(document.querySelectorAll('.ticket img')).map((img) => ({
      cls: img.className,
      ok: img.complete && img.naturalWidth > 0,
      src: img.src.slice(0, 5),
    })),
  );
  assert.equal(images.length, 24);
  assert.ok(images.every((i) => i.ok && i.src === 'blob:'), JSON.stringify(images));
  const codes = await desk.$$eval('.ticket', (els) => els.map((el) => el.dataset.code));
  assert.deepEqual(codes, [...codes].sort(), 'sorted by code');
  assert.match(await tickets.first().textContent(), /Gift card10\.00 EUR/);
  await shot(desk, 'desktop-10-print-sheet');
  await desk.emulateMedia({ media: 'print' });
  await shot(desk, 'print-sheet-as-printed');
  // What a printer gets: A4 pages from the print stylesheet.
  await desk.pdf({ path: join(SHOTS, 'print-sheet.pdf'), format: 'A4', preferCSSPageSize: true });
  await desk.emulateMedia({ media: 'screen' });
  // The server's symbols themselves.
  const v = await voucherByCode(codes[0]);
  const svg = await server.api('GET', `/v1/vouchers/${v.id}/barcode.svg`, shop.token);
  assert.equal(svg.status, 200);
  assert.match(svg.headers.get('content-type'), /image\/svg\+xml/);
});

test('the batch downloads as CSV with the token', TIMEOUT, async () => {
  const [download] = await Promise.all([desk.waitForEvent('download'), desk.click('#print-csv')]);
  assert.equal(download.suggestedFilename(), 'batch-Spring_Sale.csv');
  const text = readFileSync(await download.path(), 'utf8');
  const lines = text.trim().split(/\r?\n/);
  assert.equal(lines.length, 13, 'a header and twelve vouchers');
  assert.match(lines[0], /^id,code,/);
  assert.ok(lines.slice(1).every((l) => l.includes(',Spring Sale,')));
});

test('the dashboard shows what /v1/stats says, with a 90-day chart', TIMEOUT, async () => {
  await desk.click('#nav a[data-view="dashboard"]');
  await desk.waitForSelector('#chart svg');
  const stats = (await server.api('GET', '/v1/stats', shop.token)).body;
  assert.equal(stats.issued.total, 15);
  assert.equal(await desk.textContent('#issued-total'), '15');
  assert.deepEqual(stats.liability, [{ currency: 'EUR', amount: '154.50', vouchers: 14 }]);
  assert.match(await desk.textContent('#liability'), /154\.50 EUR on 14 vouchers/);
  assert.equal(stats.charges_per_day.length, 90);
  const today = stats.charges_per_day[89];
  assert.deepEqual([today.charges, today.uses, today.refunds], [3, 1, 1]);
  const bars = await desk.$$eval('#chart rect.bar', (els) => els.map((el) => el.dataset.date));
  assert.deepEqual(bars, [today.date]);
  assert.match(await desk.textContent('#chart-summary'), /3 charges, 1 discount use and 1 refund in the last 90 days; charged: 10\.50 EUR\./);
  await desk.selectOption('#chart-metric', 'EUR');
  assert.match(await desk.getAttribute('#chart svg', 'aria-label'), /amount charged in EUR/);
  await shot(desk, 'desktop-11-dashboard');
});

test('the webhooks view shows an endpoint and its recent deliveries, only to a client with the scope', TIMEOUT, async () => {
  assert.ok(await desk.isHidden('#nav a[data-view="webhooks"]'), 'a till without `webhooks` sees no link');
  const books = await server.client('Bookkeeping Shop', [...CASHIER, 'webhooks']);
  // Port 9 on 127.0.0.1 refuses: the delivery fails and stays pending.
  const hook = await server.api('POST', '/v1/webhooks', books.token, { url: 'http://127.0.0.1:9/hook', events: ['voucher.created'] });
  assert.equal(hook.status, 201, hook.text);
  assert.equal((await server.api('POST', '/v1/vouchers', books.token, { amount: '5.00' })).status, 201);
  let deliveries = [];
  for (let i = 0; i < 100 && !(deliveries.length && deliveries[0].attempts > 0); i++) {
    await new Promise((done) => setTimeout(done, 100));
    deliveries = (await server.api('GET', `/v1/webhooks/${hook.body.id}/deliveries`, books.token)).body.data;
  }
  assert.equal(deliveries.length, 1);
  const page = await openPage(DESKTOP);
  await page.fill('#signin-id', books.id);
  await page.fill('#signin-secret', books.secret);
  await page.click('#signin-form button[type="submit"]');
  await page.waitForSelector('#view-find:not([hidden])');
  await page.click('#nav a[data-view="webhooks"]');
  await page.waitForSelector('#webhooks table.deliveries');
  assert.match(await page.textContent('#webhooks h2'), /http:\/\/127\.0\.0\.1:9\/hook/);
  const rows = await page.$$eval('#webhooks tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0].slice(0, 3), ['voucher.created', deliveries[0].event_id, 'pending']);
  assert.ok(Number(rows[0][3]) >= 1, 'attempts');
  await shot(page, 'desktop-12-webhooks');
  await page.context().close();
});

test('keyboard only: sign in, find a code and charge it without the mouse', TIMEOUT, async () => {
  const kb = await openPage(DESKTOP);
  await kb.waitForSelector('#view-signin:not([hidden])');
  assert.equal(await kb.evaluate(() => document.activeElement.id), 'signin-id');
  await kb.keyboard.type(shop.id);
  await kb.keyboard.press('Tab');
  await kb.keyboard.type(shop.secret);
  await kb.keyboard.press('Enter');
  await kb.waitForSelector('#view-find:not([hidden])');
  await kb.waitForFunction(() => document.activeElement && document.activeElement.id === 'find-code');
  await kb.keyboard.type('SHOP15');
  await kb.keyboard.press('Enter');
  await kb.waitForSelector('#ledger-empty');
  await kb.keyboard.press('Tab');
  await kb.keyboard.press('Tab');
  assert.equal(await kb.evaluate(() => document.activeElement.id), 'charge-amount');
  await kb.keyboard.type('0.50');
  await kb.keyboard.press('Enter');
  await kb.waitForSelector('#confirm[open]');
  assert.equal(await kb.evaluate(() => document.activeElement.hasAttribute('data-confirm')), true);
  await kb.keyboard.press('Enter');
  await kb.waitForSelector('#flash');
  assert.equal(await kb.textContent('#balance'), '14.50 EUR');
  // Escape cancels a confirmation without sending anything.
  await kb.keyboard.press('Tab');
  await kb.keyboard.press('Tab');
  await kb.keyboard.type('1');
  await kb.keyboard.press('Enter');
  await kb.waitForSelector('#confirm[open]');
  await kb.keyboard.press('Escape');
  await kb.waitForSelector('#confirm:not([open])', { state: 'attached' });
  const entries = await ledgerOf('SHOP15');
  assert.deepEqual(entries.map((e) => e.amount), ['0.50']);
  await kb.context().close();
});

test('at phone width every screen fits and works', TIMEOUT, async () => {
  const phone = await openPage(PHONE, { isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const fits = async (what) => {
    const { scroll, inner } = await phone.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
    assert.ok(scroll <= inner, `${what}: ${scroll}px wide in a ${inner}px window`);
  };
  await phone.waitForSelector('#view-signin:not([hidden])');
  await fits('sign-in');
  await shot(phone, 'phone-1-sign-in');
  await signIn(phone);
  await find(phone, GIFT);
  await fits('voucher');
  await shot(phone, 'phone-2-voucher');
  expectedRefusals.push(409);
  await phone.fill('#charge-amount', '999');
  await phone.click('#charge-button');
  await phone.click('#confirm [data-confirm]');
  await phone.locator('#charge-amount-error').waitFor({ state: 'visible' });
  await shot(phone, 'phone-3-over-balance');
  await phone.click('#nav a[data-view="issue"]');
  await phone.waitForSelector('#view-issue:not([hidden])');
  await fits('issue');
  await shot(phone, 'phone-4-issue');
  // A reload forgets the token; signing in again lands on the page that was asked for.
  await phone.goto(`${server.base}/#print/${encodeURIComponent(batchName)}`);
  await phone.reload();
  await signIn(phone, '#view-print');
  await phone.waitForSelector('#sheet[data-ready="yes"]');
  await fits('print sheet');
  await shot(phone, 'phone-5-print-sheet');
  await phone.click('#nav a[data-view="dashboard"]');
  await phone.waitForSelector('#chart svg');
  await fits('dashboard');
  await shot(phone, 'phone-6-dashboard');
  await phone.context().close();
});

test('no request left the server, and the console stayed clean', TIMEOUT, async () => {
  await desk.context().close();
  if (process.env.UI_TEST_LOG) console.log(consoleErrors);
  assert.deepEqual(foreign, []);
  // Chromium logs each 4xx fetch as a failed resource: exactly the refusals the tests provoked,
  // and the answer the retry test cut off, and nothing else.
  const refusals = [];
  const unexpected = consoleErrors.filter((text) => {
    const m = /^Failed to load resource: the server responded with a status of (\d+)/.exec(text);
    if (m) refusals.push(Number(m[1]));
    return !m && text !== 'Failed to load resource: net::ERR_CONNECTION_RESET';
  });
  assert.deepEqual(refusals.sort(), [...expectedRefusals].sort());
  assert.deepEqual(unexpected, []);
});
