// The back-room page: sign-in, the views (find, issue, print sheet, dashboard) chosen by the
// URL's fragment, and the header. Each view lives in its own module.

import { signIn, signOut, signedIn, clientId, onSessionEnd, may, SignedOut } from './api.js';
import { clearErrors, showErrors, valueOf } from './dom.js';
import { showFind, setupFind } from './voucher.js';
import { showIssue, setupIssue } from './issue.js';
import { showSheet, leaveSheet } from './sheet.js';
import { showDashboard } from './dashboard.js';
import { showWebhooks } from './webhooks.js';

const VIEWS = ['signin', 'find', 'issue', 'print', 'dashboard', 'webhooks'];
let wanted = '';

function $(id) {
  return document.getElementById(id);
}

/** Shows one view, hides the others, and marks the current section in the header. */
function activate(name) {
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (name !== 'print') leaveSheet();
}

/** Shows what the fragment names: #find[/CODE], #issue, #print/BATCH[/PAGE], #dashboard, #webhooks. */
async function route() {
  const raw = location.hash.replace(/^#/, '');
  const hash = decodeURIComponent(raw);
  if (!signedIn()) {
    wanted = raw;
    activate('signin');
    $('signin-id').focus();
    return;
  }
  const [name, ...rest] = hash.split('/');
  if (name === 'issue' && may('vouchers:write')) {
    activate('issue');
    showIssue();
  } else if (name === 'print' && rest.length) {
    activate('print');
    await showSheet(rest[0], Number(rest[1]) || 1);
  } else if (name === 'dashboard') {
    activate('dashboard');
    await showDashboard();
  } else if (name === 'webhooks' && may('webhooks')) {
    activate('webhooks');
    await showWebhooks();
  } else {
    activate('find');
    await showFind(name === 'find' ? rest.join('/') : '');
  }
}

function showSession() {
  const on = signedIn();
  $('nav').hidden = !on;
  $('session').hidden = !on;
  $('who').textContent = on ? `Signed in as ${clientId()}` : '';
  const issue = document.querySelector('#nav a[data-view="issue"]');
  issue.hidden = !may('vouchers:write');
  document.querySelector('#nav a[data-view="webhooks"]').hidden = !may('webhooks');
}

function setupSignIn() {
  const form = $('signin-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const id = valueOf(form, 'client_id');
    const secret = form.elements.namedItem('client_secret').value;
    const missing = [];
    if (!id) missing.push({ field: 'client_id', message: 'enter the client id' });
    if (!secret) missing.push({ field: 'client_secret', message: 'enter the client secret' });
    if (missing.length) {
      showErrors(form, missing);
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const trouble = await signIn(id, secret);
    button.disabled = false;
    if (trouble) {
      showErrors(form, [], trouble);
      return;
    }
    form.reset();
    showSession();
    // Back to what was asked for before signing in (a reload or an expired token).
    history.replaceState(null, '', `#${wanted || 'find'}`);
    wanted = '';
    await route().catch(report);
  });
  $('sign-out').addEventListener('click', () => {
    signOut();
    showSession();
    history.replaceState(null, '', location.pathname);
    route().catch(report);
  });
  onSessionEnd((message) => {
    showSession();
    wanted = location.hash.replace(/^#/, '');
    activate('signin');
    showErrors(form, [], message);
  });
}

function start() {
  $('loading').hidden = true;
  setupSignIn();
  setupFind();
  setupIssue();
  showSession();
  window.addEventListener('hashchange', () => {
    route().catch(report);
  });
  route().catch(report);
}

/** An unexpected failure in a view: say so on the page rather than only in the console. */
function report(err) {
  if (err instanceof SignedOut) return;
  const main = $('main');
  const p = document.createElement('p');
  p.className = 'form-error';
  p.setAttribute('role', 'alert');
  p.textContent = `Something went wrong: ${err && err.message ? err.message : err}. Reload the page to start again.`;
  main.prepend(p);
}

start();
