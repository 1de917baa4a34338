// Dashboard: vouchers issued, the outstanding balance per currency, and a bar chart of the
// ledger per day over the last 90 days (GET /v1/stats), drawn here as SVG. The same numbers
// are also given as text and as a table, for screen readers and for copying.

import { get, explain, SignedOut } from './api.js';
import { h, s, fill } from './dom.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function $(id) {
  return document.getElementById(id);
}

let onResize = null;
let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => onResize && onResize(), 150);
});

export async function showDashboard() {
  const box = $('dashboard');
  $('dashboard-title').focus();
  fill(box, h('p', { class: 'muted' }, 'Loading…'));
  let res;
  try {
    res = await get('/v1/stats');
  } catch (err) {
    if (err instanceof SignedOut) return;
    fill(box, h('p', { class: 'form-error' }, 'The server cannot be reached. Check the connection and try again.'));
    return;
  }
  if (!res.ok) {
    fill(box, h('p', { class: 'form-error' }, explain(res.problem).general));
    return;
  }
  render(box, res.data);
}

function tile(title, big, ...lines) {
  return h('section', { class: 'card tile' }, h('h2', {}, title), h('p', { class: 'big' }, big), lines.map((l) => h('p', { class: 'muted' }, l)));
}

function render(box, stats) {
  const i = stats.issued;
  const liability = stats.liability.length
    ? h('ul', { class: 'plain big-list', id: 'liability' }, stats.liability.map((l) => h('li', {}, h('strong', {}, `${l.amount} ${l.currency}`), h('span', { class: 'muted' }, ` on ${l.vouchers} ${l.vouchers === 1 ? 'voucher' : 'vouchers'}`))))
    : h('p', { class: 'big', id: 'liability' }, 'None');
  const days = stats.charges_per_day;
  const currencies = [...new Set(days.flatMap((d) => d.amounts.map((a) => a.currency)))].sort();
  const select = h(
    'select',
    { id: 'chart-metric' },
    h('option', { value: '' }, 'Redemptions (charges and uses)'),
    currencies.map((c) => h('option', { value: c }, `Amount charged, ${c}`)),
  );
  const chart = h('div', { class: 'chart', id: 'chart' });
  select.addEventListener('change', () => drawChart(chart, days, select.value));
  onResize = () => {
    if (chart.isConnected) drawChart(chart, days, select.value);
  };
  fill(
    box,
    h(
      'div',
      { class: 'tiles' },
      tile('Vouchers issued', h('span', { id: 'issued-total' }, String(i.total)), `${count(i.value, 'gift card')} · ${count(i.discount, 'discount voucher')}`, `${i.active} active · ${i.inactive} inactive · ${i.cancelled} cancelled`, `${i.last_90_days} issued in the last 90 days`),
      h('section', { class: 'card tile' }, h('h2', {}, 'Outstanding balance'), liability, h('p', { class: 'muted' }, 'What is left on gift cards that are not cancelled or expired.')),
    ),
    h(
      'section',
      { class: 'card stack', 'aria-labelledby': 'chart-title' },
      h('div', { class: 'chart-head' }, h('h2', { id: 'chart-title' }, 'Last 90 days'), h('label', { class: 'inline' }, 'Show ', select)),
      chart,
      h('p', { class: 'muted', id: 'chart-summary' }, summary(days, currencies)),
      table(days, currencies),
    ),
    h('p', { class: 'muted small' }, `As of ${stats.as_of.slice(0, 16).replace('T', ' ')} (shop time).`),
  );
  drawChart(chart, days, '');
}

/** The value a bar shows: redemptions, or the amount charged in one currency. */
function valueOf(d, currency) {
  if (!currency) return d.charges + d.uses;
  const a = d.amounts.find((x) => x.currency === currency);
  return a ? Number(a.charged) : 0;
}

/** 1, 2 or 5 times a power of ten, at least `max`. */
function niceTop(max) {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** "1 charge", "3 charges". */
function count(n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function describe(d) {
  const parts = [count(d.charges, 'charge'), count(d.uses, 'use'), count(d.refunds, 'refund')];
  for (const a of d.amounts) parts.push(`${a.charged} ${a.currency} charged`);
  return `${d.date}: ${parts.join(', ')}`;
}

function drawChart(box, days, currency) {
  // Drawn at the box's own width, so text keeps its size on a phone.
  const W = Math.max(300, Math.round(box.clientWidth || 720));
  const H = Math.min(220, Math.round(W * 0.6));
  const left = 48;
  const bottom = 26;
  const top = 10;
  const plotW = W - left - 8;
  const plotH = H - top - bottom;
  const values = days.map((d) => valueOf(d, currency));
  const max = niceTop(Math.max(0, ...values));
  const step = plotW / days.length;
  const y = (v) => top + plotH - (v / max) * plotH;
  const label = (v) => (currency ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(Math.round(v)));
  // A middle line only where its value reads exactly (no "2.5 redemptions").
  const levels = currency || Number.isInteger(max / 2) ? [0, max / 2, max] : [0, max];
  const grid = levels.map((v) =>
    s('g', { class: 'tick' }, s('line', { x1: left, x2: W - 8, y1: y(v), y2: y(v) }), s('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, label(v))),
  );
  const bars = days.map((d, i) => {
    const v = values[i];
    if (!v) return null;
    const height = Math.max(1, (v / max) * plotH);
    return s('rect', { class: 'bar', x: (left + i * step + step * 0.15).toFixed(2), y: (top + plotH - height).toFixed(2), width: (step * 0.7).toFixed(2), height: height.toFixed(2), 'data-date': d.date }, s('title', {}, describe(d)));
  });
  // The first day and each first of a month, where there is room for the label.
  let lastX = -Infinity;
  const ticks = days.map((d, i) => {
    const x = left + i * step + step / 2;
    if (!(d.date.endsWith('-01') || i === 0) || x - lastX < 48 || x > W - 24) return null;
    lastX = x;
    const month = MONTHS[Number(d.date.slice(5, 7)) - 1];
    const text = `${month} ${Number(d.date.slice(8, 10))}`;
    return s('g', { class: 'tick' }, s('line', { x1: x, x2: x, y1: top + plotH, y2: top + plotH + 4 }), s('text', { x, y: H - 8, 'text-anchor': 'middle' }, text));
  });
  const what = currency ? `amount charged in ${currency}` : 'redemptions (charges and uses)';
  const svg = s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Bar chart of ${what} per day, ${days[0].date} to ${days[days.length - 1].date}; highest day ${label(Math.max(0, ...values))}.`, width: W, height: H, class: 'chart-svg' },
    grid,
    s('line', { class: 'axis', x1: left, x2: W - 8, y1: top + plotH, y2: top + plotH }),
    bars,
    ticks,
  );
  fill(box, svg);
}

function summary(days, currencies) {
  const sum = (key) => days.reduce((n, d) => n + d[key], 0);
  const charged = currencies.map((c) => {
    let cents = 0n;
    let scale = 0;
    for (const d of days) {
      const a = d.amounts.find((x) => x.currency === c);
      if (!a) continue;
      const [whole, frac = ''] = a.charged.split('.');
      scale = frac.length;
      cents += BigInt(whole + frac);
    }
    const digits = cents.toString().padStart(scale + 1, '0');
    return `${scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits} ${c}`;
  });
  const counts = `${count(sum('charges'), 'charge')}, ${count(sum('uses'), 'discount use')} and ${count(sum('refunds'), 'refund')} in the last 90 days`;
  return charged.length ? `${counts}; charged: ${charged.join(', ')}.` : `${counts}.`;
}

function table(days, currencies) {
  const active = days.filter((d) => d.charges || d.uses || d.refunds).reverse();
  const head = h('tr', {}, h('th', { scope: 'col' }, 'Date'), h('th', { scope: 'col', class: 'num' }, 'Charges'), h('th', { scope: 'col', class: 'num' }, 'Uses'), h('th', { scope: 'col', class: 'num' }, 'Refunds'), currencies.map((c) => h('th', { scope: 'col', class: 'num' }, `Charged ${c}`)));
  const rows = active.map((d) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, d.date),
      h('td', { class: 'num' }, String(d.charges)),
      h('td', { class: 'num' }, String(d.uses)),
      h('td', { class: 'num' }, String(d.refunds)),
      currencies.map((c) => {
        const a = d.amounts.find((x) => x.currency === c);
        return h('td', { class: 'num' }, a ? a.charged : '');
      }),
    ),
  );
  return h(
    'details',
    {},
    h('summary', {}, `Days with activity, as a table (${active.length})`),
    active.length ? h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, head), h('tbody', {}, rows))) : h('p', { class: 'muted' }, 'No activity in the last 90 days.'),
  );
}
