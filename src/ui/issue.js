// Issue: create one voucher (POST /v1/vouchers) or a batch (POST /v1/vouchers/batch), then
// open the batch's print sheet or download it as CSV. A submission carries an
// Idempotency-Key kept while the same values are retried, so a double submit creates once.

import { call, explain, keyedSubmit, SignedOut } from './api.js';
import { h, fill, showErrors, clearErrors, money, valueOf, day, amountInput } from './dom.js';
import { downloadCsv } from './sheet.js';

function $(id) {
  return document.getElementById(id);
}

const submission = keyedSubmit();
let busy = false;

/** The radio value chosen in `form` for `name`. */
function choice(form, name) {
  const checked = form.querySelector(`input[name="${name}"]:checked`);
  return checked ? checked.value : '';
}

/** Shows the fields that belong to the chosen mode and kind, hides (and disables) the rest. */
function adapt(form) {
  const mode = choice(form, 'mode');
  const kind = choice(form, 'kind');
  for (const el of form.querySelectorAll('[data-mode]')) {
    el.hidden = el.dataset.mode !== mode;
  }
  for (const el of form.querySelectorAll('[data-kind]')) {
    if (el.closest('[data-mode]') && el.closest('[data-mode]').hidden) continue;
    el.hidden = !el.dataset.kind.split(' ').includes(kind);
  }
  for (const box of form.querySelectorAll('.field')) {
    for (const input of box.querySelectorAll('input, select')) input.disabled = box.hidden;
  }
  $('issue-submit').textContent = mode === 'batch' ? 'Create batch' : 'Create voucher';
}

/** A whole number as a number, anything else as typed (the server names what is wrong). */
function integer(text) {
  return /^\d+$/.test(text) ? Number(text) : text;
}

/** The request body for what the form says; only filled-in fields are sent. */
function bodyOf(form) {
  const mode = choice(form, 'mode');
  const kind = choice(form, 'kind');
  const body = {};
  const text = (name) => valueOf(form, name);
  if (mode === 'batch') {
    body.count = integer(text('count'));
    if (text('code_length')) body.code_length = integer(text('code_length'));
    if (text('code_prefix')) body.code_prefix = text('code_prefix');
  } else if (text('code')) {
    body.code = text('code');
  }
  if (kind === 'value') {
    body.amount = amountInput(text('amount'));
  } else {
    body.discount = { type: kind, value: amountInput(text('discount.value')) };
    if (text('max_uses')) body.max_uses = integer(text('max_uses'));
  }
  if (kind !== 'percentage' && text('currency')) body.currency = text('currency').toUpperCase();
  if (text('valid_until')) body.valid_until = text('valid_until');
  if (text('validity_value')) {
    body.validity_value = integer(text('validity_value'));
    body.validity_interval = text('validity_interval');
  }
  if (text('batch')) body.batch = text('batch');
  if (text('label')) body.label = text('label');
  return body;
}

export function setupIssue() {
  const form = $('issue-form');
  form.addEventListener('change', (event) => {
    if (event.target.name === 'mode' || event.target.name === 'kind') adapt(form);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    create(form).catch((err) => {
      if (!(err instanceof SignedOut)) throw err;
    });
  });
  const batchForm = $('batch-form');
  batchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = valueOf(batchForm, 'batch');
    if (!name) {
      showErrors(batchForm, [{ field: 'filter[batch]', message: 'enter the batch name' }]);
      return;
    }
    location.hash = `print/${encodeURIComponent(name)}`;
  });
  $('batch-csv').addEventListener('click', async () => {
    clearErrors(batchForm);
    const name = valueOf(batchForm, 'batch');
    if (!name) {
      showErrors(batchForm, [{ field: 'filter[batch]', message: 'enter the batch name' }]);
      return;
    }
    const trouble = await downloadCsv(name);
    if (trouble) showErrors(batchForm, [], trouble);
  });
  adapt(form);
}

export function showIssue() {
  $('issue-title').focus();
}

async function create(form) {
  if (busy) return;
  clearErrors(form);
  const batch = choice(form, 'mode') === 'batch';
  const body = bodyOf(form);
  const button = $('issue-submit');
  busy = true;
  button.disabled = true;
  const label = button.textContent;
  button.textContent = 'Creating…';
  let res;
  try {
    res = await call('POST', batch ? '/v1/vouchers/batch' : '/v1/vouchers', { body, key: submission.keyFor(body) });
  } catch (err) {
    if (err instanceof SignedOut) throw err;
    showErrors(form, [], 'No answer from the server. Submit again to retry: the same request is sent, so nothing is created twice.');
    return;
  } finally {
    busy = false;
    button.disabled = false;
    button.textContent = label;
  }
  if (res.status >= 500 || (res.problem && res.problem.code === 'idempotency_conflict')) {
    showErrors(form, [], 'The server could not finish this just now. Submit again to retry; nothing is created twice.');
    return;
  }
  submission.answered();
  if (!res.ok) {
    const { errors, general } = explain(res.problem);
    showErrors(form, errors, general);
    return;
  }
  if (batch) showBatch(res.data, body);
  else showVoucher(res.data);
}

function showVoucher(v) {
  const what = v.amount !== null ? money(v.amount, v.currency) : v.discount.type === 'percentage' ? `${v.discount.value} % off` : `${money(v.discount.value, v.currency)} off`;
  const box = h(
    'div',
    { class: 'card stack result', id: 'issued' },
    h('h2', { tabindex: '-1' }, 'Voucher created'),
    h('p', {}, 'Code ', h('strong', { class: 'code-inline' }, v.code), ` · ${what}`, v.valid_until ? ` · valid until ${day(v.valid_until)}` : ''),
    h('div', { class: 'actions' }, h('a', { class: 'button primary', href: `#find/${encodeURIComponent(v.code)}` }, 'Open it')),
  );
  fill($('issue-result'), box);
  box.querySelector('h2').focus();
}

function showBatch(result, body) {
  const sheet = `#print/${encodeURIComponent(result.batch)}`;
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const codes = result.data.slice(0, 12).map((v) => h('li', { class: 'code-inline' }, v.code));
  const box = h(
    'div',
    { class: 'card stack result', id: 'issued' },
    h('h2', { tabindex: '-1' }, `Batch created: ${result.count} ${result.count === 1 ? 'voucher' : 'vouchers'}`),
    h('p', {}, 'Batch name ', h('strong', { id: 'issued-batch' }, result.batch), body.amount ? ` · ${body.amount} each` : ''),
    h('ul', { class: 'codes' }, codes, result.count > codes.length ? h('li', { class: 'muted' }, `and ${result.count - codes.length} more`) : null),
    h(
      'div',
      { class: 'actions' },
      h('a', { class: 'button primary', href: sheet, id: 'open-sheet' }, 'Open print sheet'),
      h(
        'button',
        {
          type: 'button',
          onclick: async () => {
            const trouble = await downloadCsv(result.batch);
            error.textContent = trouble || '';
            error.hidden = !trouble;
          },
        },
        'Download CSV',
      ),
    ),
    error,
  );
  fill($('issue-result'), box);
  $('batch-name').value = result.batch;
  box.querySelector('h2').focus();
}
