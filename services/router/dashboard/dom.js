// Small DOM helpers: elements built from data with textContent only (no HTML strings, so nothing
// a model's name or a commit message holds can run as markup).

/** An element with attributes (`on*` functions become listeners) and children (strings become text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const $ = (selector) => document.querySelector(selector);

/** Replaces an element's children. */
export function fill(element, ...children) {
  element.replaceChildren(...children.flat().filter((child) => child !== undefined && child !== null && child !== false));
}

/** A time as the reader's locale writes it. */
export const when = (unixMs) => (Number(unixMs) > 0 ? new Date(Number(unixMs)).toLocaleString() : '—');

/** Bytes with a binary unit. */
export function bytes(count) {
  const value = Number(count);
  if (value < 1024) return `${value} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) { scaled /= 1024; unit += 1; }
  return `${scaled.toFixed(1)} ${units[unit]}`;
}

/** A number to `digits` decimals, or a dash for none. */
export const figure = (value, digits = 1) => (value === null || value === undefined || Number.isNaN(value) ? '—' : Number(value).toFixed(digits));

/** Says something to screen readers and sighted users alike. */
export function announce(text, isError = false) {
  const status = $('#status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}
