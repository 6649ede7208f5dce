// Building the page: elements are made with `h`, and text always goes in as text nodes,
// never as HTML, so nothing a buyer typed into a checkout can run in the console.

import { lang } from './i18n.js';

/**
 * Makes an element. `attrs`: `class`, `on<event>` handlers, booleans as present/absent
 * attributes, anything else as an attribute. Children: nodes, strings, arrays, or
 * null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'value' && (tag === 'input' || tag === 'textarea' || tag === 'select')) {
      el.value = value;
      el.setAttribute('value', value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
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

/** Replaces everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A date and time in the console's language, or a dash. */
export function when(value) {
  if (!value) return '—';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(lang(), { dateStyle: 'short', timeStyle: 'short' }).format(date);
}

/** An amount of money in the console's language, or a dash. */
export function money(value, currency) {
  if (value === null || value === undefined) return '—';
  try {
    return new Intl.NumberFormat(lang(), { style: 'currency', currency: currency || 'BRL' }).format(value);
  } catch {
    return `${value} ${currency ?? ''}`.trim();
  }
}

/** Copies `text` to the clipboard, with a fallback where the Clipboard API is refused. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { class: 'offscreen', readonly: true }, text);
    document.body.append(area);
    area.select();
    const done = document.execCommand('copy');
    area.remove();
    return done;
  }
}

/** Shows a short message in the status bar that screen readers announce. */
export function toast(message, kind = 'info') {
  const bar = document.getElementById('toast');
  bar.className = `toast ${kind}`;
  bar.setAttribute('aria-live', kind === 'error' ? 'assertive' : 'polite');
  bar.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    bar.textContent = '';
    bar.className = 'toast';
  }, kind === 'error' ? 10000 : 4000);
}

/** A labelled form field. `input` is the control element; its id ties the label to it. */
export function field(label, input, hint) {
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hint ? h('small', {}, hint) : null);
}

/** A labelled checkbox. */
export function checkbox(id, label, checked, attrs = {}) {
  return h(
    'label',
    { class: 'check', for: id },
    h('input', { type: 'checkbox', id, checked: !!checked, ...attrs }),
    ' ',
    label,
  );
}

/** A select with `options` as `[value, text]` pairs. */
export function select(id, options, value, attrs = {}) {
  const el = h('select', { id, ...attrs }, options.map(([v, text]) => h('option', { value: v }, text)));
  el.value = value ?? '';
  return el;
}

/** A small coloured status badge. */
export function badge(text, kind) {
  return h('span', { class: `badge ${kind ?? ''}` }, text);
}
