// The emoji picker: every emoji by category (the built-in list of emoji-data.js, no
// network), recently used ones first, a search by name, category tabs that scroll to their
// section. Keyboard: Tab goes search → categories → emoji; arrow keys move in the grid
// (rows of COLUMNS), Enter picks, Escape closes (popover.js). Built once, on first use.

import { h, $ } from './dom.js';
import { EMOJI_CATEGORIES } from './emoji-data.js';
import { openPopover, replacePopover, closePopover } from './popover.js';

/** Quick reactions: in the message menu, the first ones also in the hover toolbar. */
export const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

const COLUMNS = 8;
const RECENT_KEY = 'parley.emoji.recent';
const RECENT_MAX = 16;

let built = false;
let onPick = null;
const names = new Map(); // emoji -> its name

/** The name of an emoji ("thumbs up"), for labels. */
export function emojiName(emoji) {
  ensureNames();
  return names.get(emoji) || names.get(`${emoji}\uFE0F`) || names.get(emoji.replace(/\uFE0F/g, '')) || 'emoji';
}

function ensureNames() {
  if (names.size) return;
  for (const category of EMOJI_CATEGORIES) {
    for (const [emoji, name] of category.emoji) names.set(emoji, name.split(' · ')[0]);
  }
}

function recent() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(list) ? list.filter((e) => typeof e === 'string').slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

function remember(emoji) {
  try {
    const list = [emoji, ...recent().filter((e) => e !== emoji)].slice(0, RECENT_MAX);
    localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch {
    /* storage disabled */
  }
}

function emojiButton(emoji, name) {
  return h('button', {
    type: 'button', class: 'emoji-btn', testid: 'emoji-option', tabindex: '-1',
    dataset: { emoji }, title: name, 'aria-label': name, text: emoji,
  });
}

function section(id, label, list) {
  const headingId = `emoji-h-${id}`;
  return h('section', { class: 'emoji-section', dataset: { category: id } },
    h('h3', { id: headingId, class: 'emoji-section-title', text: label }),
    h('div', { class: 'emoji-grid', role: 'group', 'aria-labelledby': headingId },
      list.map(([emoji, name]) => emojiButton(emoji, name.split(' · ')[0]))));
}

function build() {
  ensureNames();
  const picker = $('#emoji-picker');
  const search = h('input', {
    type: 'search', class: 'emoji-search', testid: 'emoji-search', placeholder: 'Search emoji',
    'aria-label': 'Search emoji', autocomplete: 'off', spellcheck: 'false', 'data-autofocus': true,
  });
  const tabs = h('div', { class: 'emoji-tabs', role: 'toolbar', 'aria-label': 'Emoji categories' },
    EMOJI_CATEGORIES.map((c, i) => h('button', {
      type: 'button', class: 'emoji-tab', testid: 'emoji-category', dataset: { category: c.id },
      title: c.label, 'aria-label': c.label, tabindex: i === 0 ? '0' : '-1', text: c.icon,
    })));
  const body = h('div', { class: 'emoji-body', testid: 'emoji-body' });
  const results = h('div', { class: 'emoji-results', testid: 'emoji-results', hidden: true });
  picker.replaceChildren(search, tabs, body, results);
  for (const c of EMOJI_CATEGORIES) body.appendChild(section(c.id, c.label, c.emoji));

  search.addEventListener('input', () => runSearch(search.value));
  search.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || (e.key === 'Enter' && search.value.trim())) {
      const first = visibleButtons()[0];
      if (first) {
        e.preventDefault();
        if (e.key === 'Enter') pick(first.dataset.emoji);
        else focusButton(first);
      }
    }
  });
  tabs.addEventListener('click', (e) => {
    const tab = e.target.closest('.emoji-tab');
    if (!tab) return;
    search.value = '';
    runSearch('');
    const target = body.querySelector(`.emoji-section[data-category="${tab.dataset.category}"]`);
    if (target) body.scrollTop = target.offsetTop - body.offsetTop;
    setTab(tab);
  });
  tabs.addEventListener('keydown', (e) => {
    const all = [...tabs.querySelectorAll('.emoji-tab')];
    const index = all.indexOf(document.activeElement);
    let next = null;
    if (e.key === 'ArrowRight') next = all[(index + 1) % all.length];
    else if (e.key === 'ArrowLeft') next = all[(index - 1 + all.length) % all.length];
    if (next) {
      e.preventDefault();
      setTab(next);
      next.focus();
    }
  });
  body.addEventListener('scroll', () => {
    // The tab of the section at the top is the current one.
    const top = body.scrollTop + 8;
    let currentId = null;
    for (const s of body.querySelectorAll('.emoji-section')) if (s.offsetTop - body.offsetTop <= top) currentId = s.dataset.category;
    const tab = currentId && tabs.querySelector(`.emoji-tab[data-category="${currentId}"]`);
    if (tab) setTab(tab, false);
  }, { passive: true });
  for (const box of [body, results]) {
    box.addEventListener('click', (e) => {
      const button = e.target.closest('.emoji-btn');
      if (button) pick(button.dataset.emoji);
    });
    box.addEventListener('keydown', onGridKey);
  }
  built = true;
}

function setTab(tab, roving = true) {
  for (const t of $('#emoji-picker').querySelectorAll('.emoji-tab')) {
    t.classList.toggle('active', t === tab);
    if (roving) t.tabIndex = t === tab ? 0 : -1;
  }
}

function renderRecent() {
  const body = $('#emoji-picker .emoji-body');
  const old = body.querySelector('.emoji-section[data-category="recent"]');
  if (old) old.remove();
  const list = recent();
  if (list.length) body.prepend(section('recent', 'Recently used', list.map((e) => [e, emojiName(e)])));
}

function runSearch(query) {
  const picker = $('#emoji-picker');
  const body = picker.querySelector('.emoji-body');
  const results = picker.querySelector('.emoji-results');
  const q = query.trim().toLowerCase();
  if (!q) {
    results.hidden = true;
    results.replaceChildren();
    body.hidden = false;
    resetRoving();
    return;
  }
  const found = [];
  for (const c of EMOJI_CATEGORIES) {
    for (const [emoji, name] of c.emoji) {
      if (name.toLowerCase().includes(q)) found.push([emoji, name]);
      if (found.length >= 240) break;
    }
  }
  body.hidden = true;
  results.hidden = false;
  results.replaceChildren(found.length
    ? h('div', { class: 'emoji-grid', role: 'group', 'aria-label': `Emoji matching ${query.trim()}` },
      found.map(([emoji, name]) => emojiButton(emoji, name.split(' · ')[0])))
    : h('p', { class: 'emoji-none', testid: 'emoji-none', text: 'No emoji found.' }));
  resetRoving();
}

function visibleButtons() {
  const picker = $('#emoji-picker');
  const box = picker.querySelector('.emoji-results:not([hidden])') || picker.querySelector('.emoji-body');
  return [...box.querySelectorAll('.emoji-btn')];
}

/** One emoji of the grid is its tab stop. */
function resetRoving() {
  const buttons = visibleButtons();
  for (const b of $('#emoji-picker').querySelectorAll('.emoji-btn[tabindex="0"]')) b.tabIndex = -1;
  if (buttons[0]) buttons[0].tabIndex = 0;
}

function focusButton(button) {
  for (const b of $('#emoji-picker').querySelectorAll('.emoji-btn[tabindex="0"]')) b.tabIndex = -1;
  button.tabIndex = 0;
  button.focus();
  button.scrollIntoView({ block: 'nearest' });
}

function onGridKey(event) {
  const button = event.target.closest('.emoji-btn');
  if (!button) return;
  const grid = button.parentElement;
  const inGrid = [...grid.children];
  const all = visibleButtons();
  const index = all.indexOf(button);
  const col = inGrid.indexOf(button) % COLUMNS;
  let target = null;
  switch (event.key) {
    case 'ArrowRight': target = all[index + 1]; break;
    case 'ArrowLeft': target = all[index - 1]; break;
    case 'ArrowDown': {
      const below = inGrid[inGrid.indexOf(button) + COLUMNS];
      if (below) target = below;
      else {
        // Into the next section's first row, same column where there is one.
        const nextGrid = all[all.indexOf(inGrid[inGrid.length - 1]) + 1]?.parentElement;
        if (nextGrid) target = nextGrid.children[Math.min(col, nextGrid.children.length - 1)];
      }
      break;
    }
    case 'ArrowUp': {
      const above = inGrid[inGrid.indexOf(button) - COLUMNS];
      if (above) target = above;
      else {
        const prevGrid = all[all.indexOf(inGrid[0]) - 1]?.parentElement;
        if (prevGrid) {
          const rows = Math.ceil(prevGrid.children.length / COLUMNS);
          target = prevGrid.children[Math.min((rows - 1) * COLUMNS + col, prevGrid.children.length - 1)];
        }
      }
      break;
    }
    case 'Home': target = all[0]; break;
    case 'End': target = all[all.length - 1]; break;
    default: return;
  }
  event.preventDefault();
  if (target) focusButton(target);
}

function pick(emoji) {
  const callback = onPick;
  remember(emoji);
  closePopover();
  if (callback) callback(emoji);
}

/**
 * Open the picker by `anchor`; `onChoose(emoji)` gets the choice. With `replace`, it takes
 * the place of the open popover (the message menu's "more reactions").
 */
export function openEmojiPicker({ anchor = null, opener = null, onChoose, replace = false, label = 'Choose a reaction' }) {
  if (!built) build();
  const picker = $('#emoji-picker');
  picker.setAttribute('aria-label', label);
  onPick = onChoose;
  const search = picker.querySelector('.emoji-search');
  search.value = '';
  runSearch('');
  renderRecent();
  resetRoving();
  picker.querySelector('.emoji-body').scrollTop = 0;
  setTab(picker.querySelector('.emoji-tab'));
  const options = { anchor, onClose: () => { onPick = null; }, focus: search };
  if (replace) replacePopover(picker, options);
  else openPopover(picker, { ...options, opener });
}
