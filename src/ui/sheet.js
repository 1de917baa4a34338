// The print sheet of a batch: per voucher its code in large type, what it is worth, its
// validity, a Code 128 barcode and a QR code. The symbols are SVGs rendered by the server
// (GET /v1/vouchers/{id}/barcode.svg and qr.svg); an <img src> cannot send the bearer token,
// so they are fetched with it and shown from blob: URLs, which are released when the sheet
// is left. Print CSS (app.css) hides everything but the cards.

import { call, get, explain, SignedOut } from './api.js';
import { h, fill, money, day, spaced } from './dom.js';

/** Vouchers per screen sheet; a larger batch has several, each printed on its own. */
const PER_SHEET = 100;
/** Symbol downloads at once. */
const PARALLEL = 4;

let urls = [];
let generation = 0;

function $(id) {
  return document.getElementById(id);
}

/** Frees the blob: URLs of the sheet and stops loading it. */
export function leaveSheet() {
  generation += 1;
  for (const url of urls) URL.revokeObjectURL(url);
  urls = [];
}

export async function showSheet(batch, page) {
  leaveSheet();
  const mine = generation;
  const sheet = $('sheet');
  const note = $('print-note');
  sheet.removeAttribute('data-ready');
  $('print-title').textContent = `Batch: ${batch}`;
  $('print-title').focus();
  fill(sheet);
  fill($('print-pager'));
  note.textContent = 'Loading…';
  $('print-now').onclick = () => window.print();
  $('print-csv').onclick = async () => {
    const trouble = await downloadCsv(batch);
    note.textContent = trouble || note.textContent;
  };
  const res = await get('/v1/vouchers', {
    'filter[batch]': batch,
    sort: 'code',
    per_page: String(PER_SHEET),
    page: String(page),
  });
  if (mine !== generation) return;
  if (!res.ok) {
    note.textContent = explain(res.problem).general || 'This batch cannot be shown.';
    return;
  }
  const { data, meta } = res.data;
  if (!data.length) {
    note.textContent = meta.total ? 'There is no such sheet in this batch.' : `No vouchers are in the batch “${batch}”.`;
    return;
  }
  pager(batch, meta);
  note.textContent = `${meta.total} ${meta.total === 1 ? 'voucher' : 'vouchers'}; this sheet shows ${meta.from}–${meta.to}, sorted by code. Loading barcodes…`;
  const jobs = [];
  for (const v of data) {
    const bar = h('img', { class: 'barcode', alt: `Code 128 barcode of ${v.code}` });
    const qr = h('img', { class: 'qr', alt: `QR code of ${v.code}` });
    sheet.append(card(v, bar, qr));
    jobs.push([v, 'barcode.svg', bar], [v, 'qr.svg', qr]);
  }
  let failed = 0;
  const worker = async () => {
    while (jobs.length && mine === generation) {
      const [v, name, img] = jobs.shift();
      try {
        const sym = await call('GET', `/v1/vouchers/${encodeURIComponent(v.id)}/${name}`, { raw: true });
        if (mine !== generation) return;
        if (sym.ok) {
          const url = URL.createObjectURL(sym.data);
          urls.push(url);
          img.src = url;
          await img.decode().catch(() => {});
        } else {
          failed += 1;
        }
      } catch (err) {
        if (err instanceof SignedOut) return;
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  if (mine !== generation) return;
  note.textContent = `${meta.total} ${meta.total === 1 ? 'voucher' : 'vouchers'}; this sheet shows ${meta.from}–${meta.to}, sorted by code.${failed ? ` ${failed} barcodes could not be loaded; reload to try again.` : ''}`;
  sheet.setAttribute('data-ready', failed ? 'partly' : 'yes');
}

function worth(v) {
  if (v.amount !== null) return money(v.amount, v.currency);
  if (v.discount.type === 'percentage') return `${v.discount.value.replace(/\.00$/, '')} % off`;
  return `${money(v.discount.value, v.currency)} off`;
}

function card(v, bar, qr) {
  return h(
    'article',
    { class: 'ticket', 'data-code': v.code },
    h('div', { class: 'ticket-head' }, h('span', { class: 'ticket-label' }, v.label || (v.amount !== null ? 'Gift card' : 'Voucher')), h('span', { class: 'ticket-worth' }, worth(v))),
    h('p', { class: 'ticket-code' }, spaced(v.code)),
    h('div', { class: 'ticket-symbols' }, bar, qr),
    h('p', { class: 'ticket-foot' }, v.valid_until ? `Valid until ${day(v.valid_until)}` : 'No expiry date', v.max_uses > 1 ? ` · ${v.max_uses} uses` : ''),
  );
}

function pager(batch, meta) {
  const box = $('print-pager');
  if (meta.last_page <= 1) return;
  const link = (page, text) =>
    page >= 1 && page <= meta.last_page && page !== meta.current_page
      ? h('a', { href: `#print/${encodeURIComponent(batch)}/${page}`, class: 'button small' }, text)
      : h('span', { class: 'button small disabled', 'aria-disabled': 'true' }, text);
  fill(box, link(meta.current_page - 1, '‹ Previous'), h('span', {}, ` Sheet ${meta.current_page} of ${meta.last_page} `), link(meta.current_page + 1, 'Next ›'));
}

/**
 * Downloads the batch as CSV (GET /v1/vouchers/export.csv?filter[batch]=…, fetched with the
 * token and saved from a blob: link). Resolves to null, or to what went wrong.
 */
export async function downloadCsv(batch) {
  let res;
  try {
    res = await call('GET', `/v1/vouchers/export.csv?${new URLSearchParams({ 'filter[batch]': batch })}`, { raw: true });
  } catch (err) {
    if (err instanceof SignedOut) return null;
    return 'The server cannot be reached. Check the connection and try again.';
  }
  if (!res.ok) return explain(res.problem).general || 'The export failed.';
  const url = URL.createObjectURL(res.data);
  const a = h('a', { href: url, download: `batch-${batch.replace(/[^A-Za-z0-9._-]+/g, '_')}.csv`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return null;
}
