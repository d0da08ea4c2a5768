// DOM helpers. Every user-provided string goes into the page through `textContent` or
// attribute setters on elements built here; nothing in the client uses innerHTML with data.
// Dates and times are formatted in the UI's language (the page's `lang`), never in the
// browser's locale, so an English page does not name German weekdays. Text is cut and
// initials are taken by grapheme cluster, so emoji and accents stay whole.

/** The one language of the UI, for every date, time and text segmentation. */
export const UI_LOCALE = (typeof document !== 'undefined' && document.documentElement.lang) || 'en';

/**
 * Build an element: h('div', {class: 'x', testid: 'y', onclick: fn}, child, 'text', ...).
 * Strings become text nodes; null/undefined/false children are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'text') el.textContent = value;
    else if (key === 'style') for (const [p, v] of Object.entries(value)) el.style.setProperty(p, v);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/**
 * Turn text into a fragment of text nodes and <a> elements for http(s) URLs only.
 * The link text is the URL as written; the href is the parsed, normalised URL.
 */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let raw = match[0];
    const trail = raw.match(TRAILING);
    if (trail) {
      // Keep a closing parenthesis when the URL itself opened one, e.g. wiki links.
      let cut = trail[0];
      if (cut.startsWith(')') && raw.slice(0, -cut.length).includes('(')) cut = cut.slice(1);
      if (cut) raw = raw.slice(0, -cut.length);
    }
    let url;
    try {
      url = new URL(raw);
    } catch {
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    if (match.index > last) frag.appendChild(document.createTextNode(text.slice(last, match.index)));
    const a = document.createElement('a');
    a.href = url.href;
    a.textContent = raw;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.dataset.testid = 'message-link';
    frag.appendChild(a);
    last = match.index + raw.length;
  }
  if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
  return frag;
}

const encoder = new TextEncoder();
export const utf8Length = (text) => encoder.encode(text).length;

export function formatTime(date) {
  return date.toLocaleTimeString(UI_LOCALE, { hour: '2-digit', minute: '2-digit' });
}

/** Date and time in full, for tooltips. */
export function formatDateTime(date) {
  return date.toLocaleString(UI_LOCALE, { dateStyle: 'full', timeStyle: 'short' });
}

export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function formatDay(date, now = new Date()) {
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const that = new Date(date.getFullYear(), date.getMonth(), date.getDate());
  const days = Math.round((today - that) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days < 7 && days > 0) return date.toLocaleDateString(UI_LOCALE, { weekday: 'long' });
  return date.toLocaleDateString(UI_LOCALE, {
    day: 'numeric',
    month: 'long',
    year: date.getFullYear() === now.getFullYear() ? undefined : 'numeric',
  });
}

/** Short time for the conversation list: "14:03", "Yesterday", "Mon", "12/03/26". */
export function formatListTime(date, now = new Date()) {
  const label = formatDay(date, now);
  if (label === 'Today') return formatTime(date);
  if (label === 'Yesterday') return label;
  const days = (now - date) / 86400000;
  if (days < 7) return date.toLocaleDateString(UI_LOCALE, { weekday: 'short' });
  return date.toLocaleDateString(UI_LOCALE, { day: '2-digit', month: '2-digit', year: '2-digit' });
}

export function formatLastSeen(date, now = new Date()) {
  const seconds = (now - date) / 1000;
  if (seconds < 60) return 'last seen just now';
  if (seconds < 3600) return `last seen ${Math.floor(seconds / 60)} min ago`;
  const day = formatDay(date, now);
  if (day === 'Today') return `last seen today at ${formatTime(date)}`;
  if (day === 'Yesterday') return `last seen yesterday at ${formatTime(date)}`;
  return `last seen ${day} at ${formatTime(date)}`;
}

/** Stable pleasant colour for an id. */
export function colorFor(id) {
  let hash = 0;
  for (let i = 0; i < id.length; i++) hash = (hash * 31 + id.charCodeAt(i)) | 0;
  const hue = Math.abs(hash) % 360;
  return `hsl(${hue} 58% 44%)`;
}

let segmenter = null;

/** The user-perceived characters (grapheme clusters) of a text. */
export function graphemes(text) {
  const value = String(text ?? '');
  if (typeof Intl === 'undefined' || !Intl.Segmenter) return Array.from(value); // code points at least
  segmenter = segmenter || new Intl.Segmenter(UI_LOCALE, { granularity: 'grapheme' });
  return Array.from(segmenter.segment(value), (part) => part.segment);
}

/** At most `max` characters of a text, cut between grapheme clusters, with "…" if cut. */
export function truncate(text, max) {
  const value = String(text ?? '');
  if (value.length <= max) return value;
  const parts = graphemes(value);
  return parts.length <= max ? value : `${parts.slice(0, max).join('')}…`;
}

const LETTER_OR_DIGIT = /^[\p{L}\p{N}]/u;

/**
 * Two-character avatar initials: the first and last words' first characters, or the first
 * two of a single word. Words starting with a letter or digit win over emoji and
 * punctuation ("Weekend trip 🏕️" → "WT"); a name of only emoji keeps its emoji whole.
 */
export function initials(name) {
  const words = String(name || '').trim().split(/\s+/).filter(Boolean);
  const lettered = words.filter((word) => LETTER_OR_DIGIT.test(word));
  const parts = lettered.length ? lettered : words;
  if (!parts.length) return '?';
  const first = graphemes(parts[0]);
  const letters = parts.length > 1
    ? first[0] + graphemes(parts[parts.length - 1])[0]
    : first.slice(0, 2).join('');
  return letters.toLocaleUpperCase(UI_LOCALE);
}

// Pictures in avatars. dom.js knows nothing of the API: the app says where the signed
// link of a picture comes from (the media client's thumbnail links, shared and cached).
let pictureLinks = null;
// Picture URLs this page has already shown. The lists are redrawn whole, so an avatar is
// rebuilt often; a picture already in the browser's memory is drawn at once (not lazily),
// so redrawing never flashes the initials.
const shownPictures = new Set();

/** `source`: {cached(mediaId) → url or null, link(mediaId) → Promise<url>}. */
export function setPictureLinks(source) {
  pictureLinks = source;
}

/**
 * A person's or group's avatar: initials on their colour and, when they have a picture
 * (`mediaId`), the picture over them once it has loaded. The initials stay underneath:
 * they are what shows while the picture loads, when there is none, and when it fails.
 * An avatar is decoration next to the name (hidden from screen readers) unless `alt` is
 * given: then it is an image with that name (where it stands alone).
 */
export function avatar(id, name, extraClass = '', { mediaId = null, alt = null } = {}) {
  const el = h('div', {
    class: `avatar ${extraClass}`.trim(),
    'aria-hidden': alt === null ? 'true' : null,
    role: alt === null ? null : 'img',
    'aria-label': alt,
    style: { 'background-color': colorFor(id || name || '?') },
    text: initials(name),
  });
  if (mediaId && pictureLinks) el.appendChild(pictureEl(el, mediaId));
  return el;
}

function pictureEl(box, mediaId) {
  const img = h('img', { class: 'avatar-img', alt: '', testid: 'avatar-img', dataset: { mediaId } });
  box.dataset.picture = 'loading';
  img.addEventListener('load', () => {
    shownPictures.add(img.src);
    box.dataset.picture = 'shown';
  });
  const fail = () => {
    img.remove();
    box.dataset.picture = 'failed';
  };
  img.addEventListener('error', fail);
  const show = (url) => {
    // `loading` before `src`, or the browser has already started loading it.
    if (!shownPictures.has(url)) img.loading = 'lazy';
    img.src = url;
  };
  const url = pictureLinks.cached(mediaId);
  if (url) show(url);
  else pictureLinks.link(mediaId).then(show, fail);
  return img;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const WORD_CHAR = /[\p{L}\p{N}_]/u;

/**
 * Where the mention tokens (e.g. `@bob`) occur in a text as whole words: not inside a
 * longer name (`@bob.smith` is not `@bob`), not inside a link. Returns the hits in order,
 * without overlaps: [{index, length, token}].
 */
export function findMentions(text, tokens) {
  const value = String(text ?? '');
  const links = [...value.matchAll(URL_RE)].map((m) => [m.index, m.index + m[0].length]);
  const hits = [];
  // Longer tokens first, so "@Ann Lee" wins over "@Ann".
  const sorted = [...tokens].filter((t) => t && t.text && t.text.length > 1).sort((a, b) => b.text.length - a.text.length);
  // Case-insensitive unless lower-casing changes lengths (then indexes would not match).
  const folded = value.toLocaleLowerCase(UI_LOCALE);
  const fold = folded.length === value.length;
  const lower = fold ? folded : value;
  for (const token of sorted) {
    const needle = fold ? token.text.toLocaleLowerCase(UI_LOCALE) : token.text;
    if (fold && needle.length !== token.text.length) continue;
    for (let from = 0; ;) {
      const index = lower.indexOf(needle, from);
      if (index < 0) break;
      from = index + 1;
      const end = index + needle.length;
      const before = value.slice(Math.max(0, index - 1), index);
      const after = value.slice(end, end + 2);
      if (before && (WORD_CHAR.test(before) || before === '.' || before === '@')) continue;
      if (after && (WORD_CHAR.test(after[0]) || (after[0] === '.' && after[1] && WORD_CHAR.test(after[1])))) continue;
      if (links.some(([a, b]) => index < b && end > a)) continue;
      if (hits.some((hit) => index < hit.index + hit.length && end > hit.index)) continue;
      hits.push({ index, length: needle.length, token });
    }
  }
  return hits.sort((a, b) => a.index - b.index);
}

/**
 * A message's text as nodes: http(s) links (see linkify) and mentions, highlighted as
 * `<span class="mention">` (with `mention-me` when they name the reader). `tokens`: [{text, userId, me}].
 */
export function richText(text, tokens = []) {
  const value = String(text ?? '');
  const hits = tokens.length ? findMentions(value, tokens) : [];
  if (!hits.length) return linkify(value);
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const hit of hits) {
    if (hit.index > last) frag.appendChild(linkify(value.slice(last, hit.index)));
    const span = document.createElement('span');
    span.className = `mention${hit.token.me ? ' mention-me' : ''}`;
    span.dataset.testid = 'message-mention';
    if (hit.token.userId) span.dataset.userId = hit.token.userId;
    span.textContent = value.slice(hit.index, hit.index + hit.length);
    frag.appendChild(span);
    last = hit.index + hit.length;
  }
  if (last < value.length) frag.appendChild(linkify(value.slice(last)));
  return frag;
}

/** Text folded for comparing words as the server's search does: no accents, lower case. */
export function foldText(text) {
  return String(text ?? '').normalize('NFD').replace(/\p{M}/gu, '').toLocaleLowerCase(UI_LOCALE);
}

/** The words of a search query, folded (what a match must start with). */
export function queryTerms(query) {
  return foldText(query).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
}

/**
 * A search snippet whose matches the server put between « and »: text nodes, and each
 * match in a <mark>. Built node by node; nothing is parsed as HTML. A word between « and »
 * is a match only if it starts with one of the query's `terms` (when given), so quotation
 * marks the author typed (« like this ») stay as they were written.
 */
export function markedSnippet(snippet, terms = null) {
  const frag = document.createDocumentFragment();
  const value = String(snippet ?? '');
  let last = 0;
  for (const match of value.matchAll(/«([^«»\s]+)»/gu)) {
    const word = match[1];
    const folded = foldText(word);
    if (terms && terms.length && !terms.some((term) => folded.startsWith(term))) continue;
    if (match.index > last) frag.appendChild(document.createTextNode(value.slice(last, match.index)));
    const mark = document.createElement('mark');
    mark.textContent = word;
    frag.appendChild(mark);
    last = match.index + match[0].length;
  }
  if (last < value.length) frag.appendChild(document.createTextNode(value.slice(last)));
  return frag;
}
