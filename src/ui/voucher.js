// Find: look a voucher up by its code (typed, or "typed" by a barcode scanner followed by
// Enter), show what it is and what is left on it, its ledger newest first, and the actions on
// it: charge or use, refund a charge, release a hold. Every action is confirmed first and
// sent with an Idempotency-Key (see api.js).

import { call, get, may, explain, confirmAction, SignedOut } from './api.js';
import { h, fill, showErrors, clearErrors, money, when, day, spaced, valueOf, minus, isZero, amountInput } from './dom.js';

const LEDGER_PAGE = 10;

/** What is on screen: the voucher, its ledger page, and a message about the last action. */
const state = { voucher: null, page: 1, message: '', refund: null };

function $(id) {
  return document.getElementById(id);
}

export function setupFind() {
  const form = $('find-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    dropFlash();
    lookUp(valueOf(form, 'code')).catch(quiet);
  });
}

/** Shows the find view; with a code (from #find/CODE), looks it up. */
export async function showFind(code) {
  const input = $('find-code');
  if (code && code !== (state.voucher && state.voucher.code)) {
    input.value = code;
    await lookUp(code);
  } else if (!state.voucher) {
    fill($('voucher'), h('p', { class: 'muted empty' }, 'Type or scan a voucher code and press Enter.'));
  }
  input.focus();
  input.select();
}

function quiet(err) {
  if (!(err instanceof SignedOut)) throw err;
}

/** ASCII letters upper-cased, spaces and dashes dropped, nothing else mapped: what the server
 *  does to a code too (so `ß` is refused there, not turned into `SS` here). */
function normalize(code) {
  return code.replace(/[a-z]/g, (c) => c.toUpperCase()).replace(/[ -]/g, '');
}

async function lookUp(typed) {
  const form = $('find-form');
  const code = normalize(typed);
  clearErrors(form);
  if (!code) {
    showErrors(form, [{ field: 'code', message: 'enter or scan a voucher code' }]);
    return;
  }
  let res;
  try {
    // Codes are unique per shop: an admin may find the same code in several shops.
    res = await get('/v1/vouchers', { 'filter[code]': code, per_page: '2' });
  } catch (err) {
    if (err instanceof SignedOut) return;
    showErrors(form, [], 'The server cannot be reached. Check the connection and try again.');
    return;
  }
  if (!res.ok) {
    const { errors, general } = explain(res.problem);
    showErrors(
      form,
      errors.map((e) => ({ ...e, field: e.field === 'filter[code]' ? 'code' : e.field })),
      general,
    );
    return;
  }
  const found = res.data.data[0];
  if (!found) {
    showErrors(form, [{ field: 'code', message: `no voucher has the code ${code}` }]);
    return;
  }
  if (res.data.data.length > 1) {
    const message = `vouchers of several shops have the code ${code}: sign in as the shop's client`;
    showErrors(form, [{ field: 'code', message }]);
    return;
  }
  history.replaceState(null, '', `#find/${encodeURIComponent(found.code)}`);
  state.voucher = found;
  state.page = 1;
  state.message = '';
  state.refund = null;
  await render();
  const input = $('find-code');
  input.value = found.code;
  input.select();
}

/** Reloads the voucher after an action and shows the newest ledger page. */
async function refresh(message) {
  const res = await call('GET', `/v1/vouchers/${encodeURIComponent(state.voucher.id)}`);
  if (res.ok) state.voucher = res.data;
  state.page = 1;
  state.message = message || '';
  await render();
}

// ---- what the voucher is ------------------------------------------------------------------

function isValue(v) {
  return v.amount !== null && v.amount !== undefined;
}

function kindText(v) {
  if (isValue(v)) return 'Gift card (value voucher)';
  const d = v.discount;
  const off = d.type === 'percentage' ? `${d.value.replace(/\.00$/, '')} % off` : `${money(d.value, v.currency)} off`;
  return `Discount voucher: ${off}`;
}

/** The states a till cares about, beyond the stored status. */
function condition(v) {
  const now = Date.now();
  if (v.status !== 'active') return { key: v.status, text: v.status === 'inactive' ? 'Inactive' : 'Cancelled' };
  if (v.valid_until && Date.parse(v.valid_until) < now) return { key: 'expired', text: 'Expired' };
  if (v.valid_from && Date.parse(v.valid_from) > now) return { key: 'pending', text: 'Not valid yet' };
  if (!isValue(v) && v.used_at) return { key: 'used', text: 'Used up' };
  if (isValue(v) && isZero(v.remaining_amount)) return { key: 'used', text: 'Spent' };
  return { key: 'active', text: 'Active' };
}

function validityText(v) {
  const parts = [];
  if (v.valid_from) parts.push(`from ${day(v.valid_from)}`);
  parts.push(v.valid_until ? `until ${day(v.valid_until)}` : 'no end date');
  return parts.join(' ');
}

function fact(label, value, extra) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value), extra ? h('dd', { class: 'muted' }, extra) : null);
}

function renderHead(v) {
  const c = condition(v);
  const facts = [];
  if (isValue(v)) {
    facts.push(
      h('div', { class: 'fact main' }, h('dt', {}, 'Balance'), h('dd', { class: 'balance', id: 'balance' }, money(v.remaining_amount, v.currency)), h('dd', { class: 'muted' }, `of ${money(v.amount, v.currency)}`)),
      fact('Held', money(v.held_amount, v.currency)),
      fact('Available', money(minus(v.remaining_amount, v.held_amount), v.currency)),
    );
  } else {
    facts.push(fact('Uses', `${v.uses} of ${v.max_uses}`, v.used_at ? `used up ${when(v.used_at)}` : null));
  }
  facts.push(fact('Valid', validityText(v)));
  if (v.batch) facts.push(fact('Batch', v.batch));
  if (v.label) facts.push(fact('Label', v.label));
  facts.push(fact('Issued', when(v.created_at)));
  return h(
    'article',
    { class: 'card voucher', 'aria-labelledby': 'voucher-code' },
    h(
      'div',
      { class: 'voucher-top' },
      h('h2', { class: 'code', id: 'voucher-code', tabindex: '-1' }, h('span', { class: 'sr-only' }, 'Voucher '), spaced(v.code)),
      h('span', { class: `badge ${c.key}`, id: 'voucher-status' }, c.text),
    ),
    h('p', { class: 'kind' }, kindText(v)),
    h('dl', { class: 'facts' }, facts),
  );
}

// ---- the whole voucher area ------------------------------------------------------------------

async function render() {
  const v = state.voucher;
  const actions = h('div', { class: 'stack' });
  if (state.message) {
    actions.append(h('p', { class: 'flash', role: 'status', id: 'flash' }, state.message));
  }
  if (may('charges:write')) {
    if (state.refund) actions.append(refundForm(v, state.refund));
    actions.append(isValue(v) ? chargeForm(v) : useForm(v));
  }
  const ledger = h('section', { class: 'card ledger', 'aria-labelledby': 'ledger-title' });
  const holds = h('div');
  if (isValue(v) && !isZero(v.held_amount) && may('charges:read')) actions.append(holds);
  fill($('voucher'), renderHead(v), h('div', { class: 'columns' }, actions, ledger));
  await Promise.all([renderLedger(ledger), holds.isConnected ? renderHolds(holds) : null]);
}

// ---- charge / use --------------------------------------------------------------------------

function field(form, name, label, attrs = {}) {
  const id = `${form}-${name.replace(/\W/g, '-')}`;
  return h(
    'div',
    { class: 'field', 'data-field': name },
    h('label', { for: id }, label),
    h('input', { id, name, autocomplete: 'off', ...attrs }),
    h('p', { class: 'error', id: `${id}-error`, hidden: true }),
  );
}

function chargeForm(v) {
  const available = minus(v.remaining_amount, v.held_amount);
  const form = h(
    'form',
    { class: 'card stack', id: 'charge-form', novalidate: true, 'aria-labelledby': 'charge-title' },
    h('h2', { id: 'charge-title' }, 'Charge'),
    h('div', { class: 'row' }, field('charge', 'amount', `Amount (${v.currency})`, { inputmode: 'decimal', placeholder: `max ${available}` }), field('charge', 'order_number', 'Order number', { placeholder: 'optional', maxlength: '255' })),
    h('p', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'charge-button' }, 'Charge')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    dropFlash();
    const amount = amountInput(valueOf(form, 'amount'));
    if (!amount) {
      showErrors(form, [{ field: 'amount', message: 'enter the amount to charge' }]);
      return;
    }
    clearErrors(form);
    const body = { type: 'charge', amount };
    const order = valueOf(form, 'order_number');
    if (order) body.order_number = order;
    confirmAction({
      title: 'Charge this voucher?',
      text: `Charge ${money(amount, v.currency)} to voucher ${spaced(v.code)}. Available now: ${money(available, v.currency)}.`,
      confirmLabel: `Charge ${money(amount, v.currency)}`,
      busyLabel: 'Charging…',
      send: (key) => call('POST', `/v1/vouchers/${encodeURIComponent(v.id)}/charges`, { body, key }),
      done: (res) => {
        if (res.ok) {
          refresh(`Charged ${money(res.data.amount, v.currency)}${replayed(res)}.`).then(focusCode, quiet);
        } else {
          const hints = { insufficient_funds: `Available: ${money(available, v.currency)}.` };
          const { errors, general } = explain(res.problem, hints);
          showErrors(form, errors, general);
        }
      },
      cancelled: (tried) => tried && refresh('').catch(quiet),
    });
  });
  return form;
}

function useForm(v) {
  const form = h(
    'form',
    { class: 'card stack', id: 'use-form', novalidate: true, 'aria-labelledby': 'use-title' },
    h('h2', { id: 'use-title' }, 'Use on a ticket'),
    h('div', { class: 'row' }, field('use', 'ticket_total', `Ticket total (${v.currency})`, { inputmode: 'decimal', placeholder: '40.00' }), field('use', 'order_number', 'Order number', { placeholder: 'optional', maxlength: '255' })),
    h('p', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'use-button' }, 'Use')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    dropFlash();
    const total = amountInput(valueOf(form, 'ticket_total'));
    if (!total) {
      showErrors(form, [{ field: 'ticket_total', message: 'enter the ticket total' }]);
      return;
    }
    clearErrors(form);
    const body = { type: 'use', ticket_total: total };
    const order = valueOf(form, 'order_number');
    if (order) body.order_number = order;
    confirmAction({
      title: 'Use this voucher?',
      text: `Use voucher ${spaced(v.code)} (${kindText(v)}) on a ticket of ${money(total, v.currency)}.`,
      confirmLabel: 'Use voucher',
      busyLabel: 'Using…',
      send: (key) => call('POST', `/v1/vouchers/${encodeURIComponent(v.id)}/charges`, { body, key }),
      done: (res) => {
        if (res.ok) {
          refresh(`Discount granted: ${money(res.data.amount, v.currency)}${replayed(res)}.`).then(focusCode, quiet);
        } else {
          const { errors, general } = explain(res.problem);
          showErrors(form, errors, general);
        }
      },
      cancelled: (tried) => tried && refresh('').catch(quiet),
    });
  });
  return form;
}

/** A new action starts: the message about the last one no longer applies. */
function dropFlash() {
  const flash = $('flash');
  if (flash) flash.remove();
}

function replayed(res) {
  return res.headers.get('Idempotent-Replayed') ? ' (the server had already done it)' : '';
}

function focusCode() {
  const input = $('find-code');
  input.focus();
  input.select();
}

// ---- refund ----------------------------------------------------------------------------------

function refundForm(v, entry) {
  const form = h(
    'form',
    { class: 'card stack refund-card', id: 'refund-form', novalidate: true, 'aria-labelledby': 'refund-title' },
    h('h2', { id: 'refund-title' }, 'Refund a charge'),
    h('p', { class: 'muted' }, `The charge of ${money(entry.amount, v.currency)} on ${when(entry.created_at)}${entry.order_number ? `, order ${entry.order_number}` : ''}.`),
    field('refund', 'amount', `Refund amount (${v.currency})`, { inputmode: 'decimal', placeholder: 'all that is left' }),
    h('p', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true }),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', onclick: () => { state.refund = null; render().then(focusCode, quiet); } }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary', id: 'refund-button' }, 'Refund'),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    dropFlash();
    clearErrors(form);
    const amount = amountInput(valueOf(form, 'amount'));
    const body = { type: 'refund', refers_to: entry.id };
    if (amount) body.amount = amount;
    confirmAction({
      title: 'Refund this charge?',
      text: amount
        ? `Give ${money(amount, v.currency)} back to voucher ${spaced(v.code)}.`
        : `Give back to voucher ${spaced(v.code)} all that is not yet refunded of the ${money(entry.amount, v.currency)} charge.`,
      confirmLabel: 'Refund',
      busyLabel: 'Refunding…',
      send: (key) => call('POST', `/v1/vouchers/${encodeURIComponent(v.id)}/charges`, { body, key }),
      done: (res) => {
        if (res.ok) {
          state.refund = null;
          refresh(`Refunded ${money(res.data.amount, v.currency)}${replayed(res)}.`).then(focusCode, quiet);
        } else {
          const { errors, general } = explain(res.problem);
          showErrors(form, errors.map((e) => ({ ...e, field: e.field === 'refers_to' ? 'amount' : e.field })), general);
        }
      },
      cancelled: (tried) => tried && refresh('').catch(quiet),
    });
  });
  return form;
}

// ---- holds -----------------------------------------------------------------------------------

async function renderHolds(box) {
  const v = state.voucher;
  const res = await get(`/v1/vouchers/${encodeURIComponent(v.id)}/reservations`, { per_page: '50' });
  if (!res.ok) {
    fill(box, h('p', { class: 'form-error' }, explain(res.problem).general));
    return;
  }
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const rows = res.data.data.map((hold) =>
    h(
      'li',
      {},
      h('span', {}, `${money(hold.amount, v.currency)} held`, hold.order_number ? ` for order ${hold.order_number}` : '', ` until ${when(hold.expires_at)}`),
      may('charges:write')
        ? h('button', { type: 'button', class: 'small', onclick: () => releaseHold(v, hold, error) }, 'Release')
        : null,
    ),
  );
  fill(
    box,
    h(
      'section',
      { class: 'card stack holds', 'aria-labelledby': 'holds-title' },
      h('h2', { id: 'holds-title' }, 'Holds'),
      rows.length ? h('ul', { class: 'plain' }, rows) : h('p', { class: 'muted' }, 'No live holds.'),
      error,
    ),
  );
}

function releaseHold(v, hold, error) {
  confirmAction({
    title: 'Release this hold?',
    text: `Release the hold of ${money(hold.amount, v.currency)}${hold.order_number ? ` for order ${hold.order_number}` : ''}. The amount becomes available again; nothing is charged.`,
    confirmLabel: 'Release hold',
    busyLabel: 'Releasing…',
    send: (key) => call('DELETE', `/v1/vouchers/${encodeURIComponent(v.id)}/reservations/${encodeURIComponent(hold.id)}`, { key }),
    done: (res) => {
      if (res.ok) {
        refresh(`Released the hold of ${money(hold.amount, v.currency)}.`).then(focusCode, quiet);
      } else {
        error.textContent = explain(res.problem).general;
        error.hidden = false;
      }
    },
    cancelled: (tried) => tried && refresh('').catch(quiet),
  });
}

// ---- ledger ----------------------------------------------------------------------------------

const TYPE_WORDS = { charge: 'Charge', use: 'Discount use', refund: 'Refund', recharge: 'Recharge' };

async function renderLedger(box) {
  const v = state.voucher;
  const title = h('h2', { id: 'ledger-title' }, 'Ledger ', h('span', { class: 'hint' }, 'newest first'));
  if (!may('charges:read')) {
    fill(box, title, h('p', { class: 'muted' }, 'This sign-in may not read the ledger.'));
    return;
  }
  const res = await get(`/v1/vouchers/${encodeURIComponent(v.id)}/charges`, {
    sort: '-created_at',
    per_page: String(LEDGER_PAGE),
    page: String(state.page),
  });
  if (!res.ok) {
    fill(box, title, h('p', { class: 'form-error' }, explain(res.problem).general));
    return;
  }
  const { data, meta } = res.data;
  if (!data.length) {
    fill(box, title, h('p', { class: 'muted', id: 'ledger-empty' }, 'No entries yet.'));
    return;
  }
  const rows = data.map((e) =>
    h(
      'tr',
      { 'data-entry': e.id, 'data-type': e.type },
      h('td', { class: 'when' }, when(e.created_at)),
      h('td', { class: 'type' }, TYPE_WORDS[e.type] || e.type, e.type === 'charge' && e.refers_to ? h('span', { class: 'hint' }, ' from a hold') : null),
      h('td', { class: `num ${e.type}` }, signed(e), ' ', h('span', { class: 'cur' }, v.currency)),
      h('td', { class: 'order' }, e.order_number || ''),
      h(
        'td',
        { class: 'act' },
        e.type === 'charge' && may('charges:write')
          ? h('button', { type: 'button', class: 'small', 'aria-label': `Refund the charge of ${e.amount} ${v.currency} on ${when(e.created_at)}`, onclick: () => startRefund(e) }, 'Refund…')
          : null,
      ),
    ),
  );
  const pager = h(
    'div',
    { class: 'pager' },
    h('button', { type: 'button', class: 'small', disabled: meta.current_page <= 1, onclick: () => turn(-1) }, '‹ Newer'),
    h('span', { id: 'ledger-page' }, `Page ${meta.current_page} of ${meta.last_page} · ${meta.total} ${meta.total === 1 ? 'entry' : 'entries'}`),
    h('button', { type: 'button', class: 'small', disabled: meta.current_page >= meta.last_page, onclick: () => turn(1) }, 'Older ›'),
  );
  fill(
    box,
    title,
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { id: 'ledger' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col', class: 'num' }, 'Amount'), h('th', { scope: 'col', class: 'order' }, 'Order'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', {}, rows),
      ),
    ),
    meta.last_page > 1 ? pager : null,
  );
}

/** What the entry did to the balance: a charge takes, a refund or recharge gives, a use is a discount. */
function signed(e) {
  if (e.type === 'charge') return `−${e.amount}`;
  if (e.type === 'refund' || e.type === 'recharge') return `+${e.amount}`;
  return `${e.amount} off`;
}

async function turn(step) {
  state.page = Math.max(1, state.page + step);
  const box = document.querySelector('#voucher .ledger');
  await renderLedger(box).catch(quiet);
  const button = box.querySelector(step > 0 ? '.pager button:last-child' : '.pager button:first-child');
  if (button && !button.disabled) {
    button.focus();
  } else {
    const heading = box.querySelector('h2');
    heading.tabIndex = -1;
    heading.focus();
  }
}

function startRefund(entry) {
  state.refund = entry;
  state.message = '';
  render()
    .then(() => {
      const input = document.querySelector('#refund-form input[name="amount"]');
      if (input) input.focus();
    })
    .catch(quiet);
}
