// Webhooks: the group's endpoints (GET /v1/webhooks) and, for each, its most recent
// deliveries (GET /v1/webhooks/{id}/deliveries), so a shop can see what reached its
// bookkeeping and what is still being retried. Managing endpoints stays with the API and CLI.

import { get, explain, SignedOut } from './api.js';
import { h, fill, when } from './dom.js';

/** Deliveries shown per endpoint. */
const SHOWN = 20;

function $(id) {
  return document.getElementById(id);
}

export async function showWebhooks() {
  const box = $('webhooks');
  $('webhooks-title').focus();
  fill(box, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const res = await get('/v1/webhooks');
    if (!res.ok) return fill(box, h('p', { class: 'form-error' }, explain(res.problem).general));
    if (!res.data.data.length) return fill(box, h('p', { class: 'muted' }, 'No webhook endpoints yet.'));
    const cards = [];
    for (const endpoint of res.data.data) {
      const d = await get(`/v1/webhooks/${encodeURIComponent(endpoint.id)}/deliveries`);
      cards.push(card(endpoint, d.ok ? d.data.data.slice(0, SHOWN) : null));
    }
    fill(box, cards);
  } catch (err) {
    if (err instanceof SignedOut) return;
    fill(box, h('p', { class: 'form-error' }, 'The server cannot be reached. Check the connection and try again.'));
  }
}

function card(endpoint, deliveries) {
  const state = endpoint.disabled ? `Disabled: ${endpoint.disabled_reason || ''}` : 'Enabled';
  const rows = (deliveries || []).map((d) =>
    h('tr', {}, h('td', {}, d.event_type), h('td', {}, h('code', {}, d.event_id)), h('td', {}, d.state),
      h('td', {}, String(d.attempts)), h('td', {}, d.last_status === null ? (d.last_error || '—') : String(d.last_status)),
      h('td', {}, d.state === 'pending' ? when(d.next_try_at) : when(d.delivered_at))));
  const table = deliveries === null
    ? h('p', { class: 'form-error' }, 'Its deliveries cannot be read.')
    : rows.length
      ? h('table', { class: 'deliveries' },
        h('thead', {}, h('tr', {}, ['Event', 'Id', 'State', 'Attempts', 'Last answer', 'Next try / delivered'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'Nothing sent yet.');
  return h('section', { class: 'card webhook' },
    h('h2', {}, endpoint.url),
    h('p', { class: endpoint.disabled ? 'form-error' : 'muted' }, `${state} · ${endpoint.events.join(', ')}`),
    table);
}
