// The page's only way to the server: sign-in (OAuth client credentials), JSON calls with the
// bearer token, problem+json turned into plain words, and actions that are confirmed once and
// sent with one Idempotency-Key however often they are retried.
//
// The token lives in this module's memory only: a reload or a closed tab signs out.

let session = null;
const expiredListeners = [];

/** Called with a message when the token stops working (expired or revoked). */
export function onSessionEnd(listener) {
  expiredListeners.push(listener);
}

export function signedIn() {
  return session !== null;
}

export function clientId() {
  return session ? session.clientId : '';
}

/** Whether the token holds `scope` (e.g. 'charges:write'). */
export function may(scope) {
  return session !== null && session.scopes.has(scope);
}

export function signOut() {
  session = null;
}

/**
 * POST /oauth/token with the client's id and secret in the form body. Resolves to null on
 * success, else to a message for the person signing in.
 */
export async function signIn(id, secret) {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret });
  let res;
  try {
    res = await fetch('/oauth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    return 'The server cannot be reached. Check the connection and try again.';
  }
  const body = await res.json().catch(() => ({}));
  if (res.ok && body.access_token) {
    session = {
      token: body.access_token,
      clientId: id,
      scopes: new Set(String(body.scope || '').split(' ').filter(Boolean)),
    };
    return null;
  }
  if (res.status === 429) {
    return `Too many failed sign-ins. Try again in ${res.headers.get('Retry-After') || 'a few'} seconds.`;
  }
  if (body.error === 'invalid_client') return 'The client id or secret is not right.';
  return body.error_description || body.error || `Sign-in failed (HTTP ${res.status}).`;
}

/**
 * One API call. Resolves to {status, ok, data, problem, headers}; `problem` is the
 * problem+json body of a refusal. Rejects only when the server could not be reached (or the
 * answer was cut off): then nobody knows whether a write happened, and the caller may retry
 * with the same Idempotency-Key.
 */
export async function call(method, path, { body, key, raw } = {}) {
  if (!session) throw new SignedOut();
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (key) headers['Idempotency-Key'] = key;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (res.status === 401 && session) {
    session = null;
    for (const listener of expiredListeners) listener('Your sign-in has expired or was revoked. Please sign in again.');
    throw new SignedOut();
  }
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  let problem = null;
  if (raw && res.ok) {
    data = await res.blob();
  } else if (type.includes('json')) {
    const parsed = await res.json();
    if (type.includes('problem+json') || !res.ok) problem = parsed;
    else data = parsed;
  } else if (!res.ok) {
    problem = { status: res.status, detail: `The server answered HTTP ${res.status}.` };
  }
  return { status: res.status, ok: res.ok, data, problem, headers: res.headers };
}

/** Thrown once the session has ended; views stop quietly. */
export class SignedOut extends Error {}

/** `GET` with query pairs (filter names with brackets are encoded as the API expects). */
export function get(path, query) {
  const q = query ? new URLSearchParams(query).toString() : '';
  return call('GET', q ? `${path}?${q}` : path);
}

// ---- problem+json in plain words -------------------------------------------------------

const CODE_WORDS = {
  insufficient_funds: 'Not enough balance on this voucher.',
  voucher_expired: 'This voucher has expired.',
  voucher_not_yet_valid: 'This voucher is not valid yet.',
  voucher_inactive: 'This voucher is switched off (inactive).',
  voucher_cancelled: 'This voucher is cancelled.',
  voucher_used: 'This voucher has been used up.',
  wrong_voucher_kind: 'This kind of voucher cannot be used that way.',
  currency_mismatch: 'The currency does not match the voucher.',
  restriction_mismatch: 'This voucher is limited to another customer, product or store.',
  refund_exceeds_charge: 'That is more than is left to refund of this charge.',
  reservation_not_held: 'This hold has already ended.',
  reservation_expired: 'This hold has expired.',
  duplicate_code: 'That code is taken; choose another one.',
  not_deletable: 'This voucher has ledger entries and cannot be deleted.',
  not_found: 'Not found. It may have been deleted, or it belongs to another shop.',
  insufficient_scope: 'This sign-in is not allowed to do that.',
  idempotency_key_reused: 'This request was already sent with other values. Start it again.',
};

/** Where a refusal without `errors` belongs in a form. */
const CODE_FIELD = {
  insufficient_funds: 'amount',
  refund_exceeds_charge: 'amount',
  duplicate_code: 'code',
};

/**
 * A problem as [{field, message}] for the form, plus a general message. `hints` may add
 * words for a code (e.g. how much is available for insufficient_funds).
 */
export function explain(problem, hints = {}) {
  const p = problem || {};
  if (Array.isArray(p.errors) && p.errors.length) {
    return {
      errors: p.errors.map((e) => ({
        field: e.field,
        message: e.row ? `row ${e.row}: ${e.message}` : e.message,
      })),
      general: p.code === 'validation_failed' || p.code === 'invalid_parameter' ? '' : p.detail,
    };
  }
  let words = CODE_WORDS[p.code] || p.detail || `The server refused (HTTP ${p.status}).`;
  if (hints[p.code]) words = `${words} ${hints[p.code]}`;
  if (p.code === 'rate_limited') words = `Too many tries. ${p.detail || ''}`.trim();
  const field = CODE_FIELD[p.code];
  return field ? { errors: [{ field, message: words }], general: '' } : { errors: [], general: words };
}

// ---- confirmed actions -------------------------------------------------------------------

/**
 * Asks for confirmation in the page's dialog and runs the action once confirmed.
 *
 * `send(key)` performs the request with the Idempotency-Key `key`. The key is made when the
 * person first confirms and kept for every retry of this same action, so a retry after a lost
 * answer replays the first result instead of charging again. The button is disabled while a
 * request is in flight, so a double click sends one request. A definitive answer (2xx or a
 * refusal) closes the dialog and goes to `done(result)`; no answer, a 5xx, or "still being
 * processed" keeps the dialog open with a Retry button.
 */
export function confirmAction({ title, text, confirmLabel, busyLabel, send, done, cancelled }) {
  const dialog = document.getElementById('confirm');
  const ok = dialog.querySelector('[data-confirm]');
  const cancel = dialog.querySelector('[data-cancel]');
  const note = dialog.querySelector('[data-note]');
  dialog.querySelector('[data-title]').textContent = title;
  dialog.querySelector('[data-text]').textContent = text;
  note.textContent = '';
  note.hidden = true;
  ok.textContent = confirmLabel;
  ok.disabled = false;
  cancel.disabled = false;
  let key = null;
  let busy = false;
  let tried = false;

  const finish = () => {
    ok.removeEventListener('click', onConfirm);
    cancel.removeEventListener('click', onCancel);
    dialog.removeEventListener('cancel', onEscape);
    if (dialog.open) dialog.close();
  };
  const onCancel = () => {
    if (busy) return;
    finish();
    if (cancelled) cancelled(tried);
  };
  const onEscape = (event) => {
    event.preventDefault();
    onCancel();
  };
  const onConfirm = async () => {
    if (busy) return;
    busy = true;
    tried = true;
    key = key || newActionKey();
    ok.disabled = true;
    cancel.disabled = true;
    ok.textContent = busyLabel;
    let result = null;
    let trouble = '';
    try {
      result = await send(key);
      if (result.status >= 500 || (result.problem && result.problem.code === 'idempotency_conflict')) {
        trouble = 'The server could not finish this just now.';
      }
    } catch (err) {
      if (err instanceof SignedOut) {
        busy = false;
        finish();
        return;
      }
      trouble = 'No answer from the server: the connection may have dropped.';
    }
    busy = false;
    cancel.disabled = false;
    if (trouble) {
      note.textContent = `${trouble} Retry sends the very same request again; it cannot happen twice.`;
      note.hidden = false;
      ok.textContent = 'Retry';
      ok.disabled = false;
      ok.focus();
      return;
    }
    finish();
    done(result);
  };
  ok.addEventListener('click', onConfirm);
  cancel.addEventListener('click', onCancel);
  dialog.addEventListener('cancel', onEscape);
  dialog.showModal();
  ok.focus();
}

/** Runs a form's create request once per submission, keeping its key for retries of the same
 * values: the same body with the same key is replayed by the server, never created twice. */
export function keyedSubmit() {
  let last = null;
  return {
    /** The key for `body`: the previous one while the body is unchanged and unanswered. */
    keyFor(body) {
      const text = JSON.stringify(body);
      if (!last || last.text !== text) last = { text, key: newActionKey() };
      return last.key;
    },
    /** The server answered definitively: the next submission is a new action. */
    answered() {
      last = null;
    },
  };
}

/** A fresh random key for one action (RFC 4122 version 4 layout). getRandomValues works on
 * plain http too, where crypto.randomUUID is missing (a back room reached by LAN address). */
export function newActionKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
