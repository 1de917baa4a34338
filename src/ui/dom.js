// Small DOM helpers shared by every view: building elements (never from HTML strings, so no
// value from the server is ever parsed as markup), showing errors next to form fields, and
// formatting money and times as the server sends them.

/** h('p', {class: 'x'}, 'text', child…): an element with attributes and children. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) {
      el.addEventListener(name.slice(2), value);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes and children. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "must be positive" → "Must be positive." */
export function sentence(text) {
  const t = String(text || '').trim();
  if (!t) return '';
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** Removes every error shown in `form`. */
export function clearErrors(form) {
  for (const el of form.querySelectorAll('.error')) {
    el.textContent = '';
    el.hidden = true;
  }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const general = form.querySelector('.form-error');
  if (general) {
    general.textContent = '';
    general.hidden = true;
  }
}

/** The `.field` wrapper of a server field name in `form`, if the form has one. */
function fieldBox(form, field) {
  return Array.from(form.querySelectorAll('[data-field]')).find((el) => el.dataset.field === field);
}

/**
 * Shows `errors` ([{field, message}]) next to their fields in `form`; errors for fields the
 * form does not show, and `general`, go to the form's general error line. Focuses the first
 * field in error. Returns true when anything was shown.
 */
export function showErrors(form, errors, general) {
  clearErrors(form);
  const leftover = [];
  let first = null;
  for (const { field, message } of errors) {
    const box = field ? fieldBox(form, field) : null;
    const line = box && box.querySelector('.error');
    if (!line) {
      leftover.push(field ? `${field}: ${message}` : message);
      continue;
    }
    line.textContent = line.textContent ? `${line.textContent} ${sentence(message)}` : sentence(message);
    line.hidden = false;
    const input = box.querySelector('input, select, textarea');
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      first = first || input;
    }
  }
  if (general) leftover.unshift(general);
  const out = form.querySelector('.form-error');
  if (leftover.length && out) {
    out.textContent = leftover.map(sentence).join(' ');
    out.hidden = false;
  }
  if (first) first.focus();
  else if (leftover.length && out) out.focus();
  return errors.length > 0 || leftover.length > 0;
}

/** "12.50" and "EUR" → "12.50 EUR". */
export function money(amount, currency) {
  return amount === null || amount === undefined ? '—' : `${amount} ${currency}`;
}

// Amounts are decimal strings as the server writes them, computed on exactly (BigInt), never
// as floating point.

/** "17.50" → {units: 1750n, scale: 2}. */
function parse(amount) {
  const [whole, frac = ''] = String(amount).split('.');
  return { units: BigInt(whole + frac), scale: frac.length };
}

/** a − b for two amounts of one currency, written with the same decimals. */
export function minus(a, b) {
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  const units = x.units * 10n ** BigInt(scale - x.scale) - y.units * 10n ** BigInt(scale - y.scale);
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  if (scale) digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${digits}` : digits;
}

export function isZero(amount) {
  return parse(amount).units === 0n;
}

/** "7,50" → "7.50": a comma is the decimal mark on many keyboards. */
export function amountInput(text) {
  const t = text.replace(/\s/g, '');
  return !t.includes('.') && (t.match(/,/g) || []).length === 1 ? t.replace(',', '.') : t;
}

/** "2025-07-21T17:32:28+02:00" → "2025-07-21 17:32" (the shop's own time, as sent). */
export function when(stamp) {
  if (!stamp) return '—';
  return `${stamp.slice(0, 10)} ${stamp.slice(11, 16)}`;
}

/** "2025-07-21T17:32:28+02:00" → "2025-07-21". */
export function day(stamp) {
  return stamp ? stamp.slice(0, 10) : '—';
}

/** A code in groups of four for reading aloud and typing ("ABCD EFGH"); the server drops the
 * space again wherever a code is typed. */
export function spaced(code) {
  return String(code).replace(/(.{4})(?=.)/g, '$1 ');
}

/** The value of a form control by name, trimmed ('' when absent). */
export function valueOf(form, name) {
  const el = form.elements.namedItem(name);
  return el && 'value' in el ? String(el.value).trim() : '';
}
