// Popovers: the message menu, the emoji picker, "who reacted". One is open at a time. It
// floats next to what opened it (on a phone it is a sheet at the bottom, see style.css),
// takes the focus, and gives it back to its opener when closed with Escape or a choice.
// A click outside, resizing or scrolling the message list closes it. Menus (role="menu")
// move between their items with the arrow keys, Home and End, as ARIA's menu pattern says.

import { $ } from './dom.js';

let current = null; // {el, opener, onClose}
let lastClose = { opener: null, at: 0 }; // a click outside that closed it

const FOCUSABLE = 'button:not([disabled]), input:not([disabled]), [tabindex]:not([tabindex="-1"]), a[href]';
const PHONE = '(max-width: 760px)';

/**
 * Open `el` (a hidden element of the page). `anchor`: an element or a point {x, y} to
 * place it by; `opener`: what gets the focus back; `focus`: the element to focus first.
 */
export function openPopover(el, { anchor = null, opener = null, onClose = null, focus = null } = {}) {
  closePopover({ restoreFocus: false });
  current = { el, opener: opener || document.activeElement, onClose };
  el.hidden = false;
  const backdrop = $('#popover-backdrop');
  if (backdrop) backdrop.hidden = false;
  place(el, anchor);
  const first = focus || el.querySelector('[data-autofocus]') || menuItems(el)[0] || el.querySelector(FOCUSABLE);
  if (first) first.focus({ preventScroll: true });
  if (current.opener && current.opener.setAttribute && current.opener.hasAttribute('aria-haspopup')) {
    current.opener.setAttribute('aria-expanded', 'true');
  }
}

/** Close the open popover (if any); by default the focus goes back to its opener. */
export function closePopover({ restoreFocus = true } = {}) {
  if (!current) return false;
  const { el, opener, onClose } = current;
  current = null;
  el.hidden = true;
  const backdrop = $('#popover-backdrop');
  if (backdrop) backdrop.hidden = true;
  if (opener && opener.setAttribute && opener.hasAttribute('aria-haspopup')) opener.setAttribute('aria-expanded', 'false');
  if (onClose) onClose();
  if (restoreFocus && opener && opener.isConnected && opener.focus) opener.focus({ preventScroll: true });
  return true;
}

export function openPopoverElement() {
  return current ? current.el : null;
}

/** Swap the open popover for another one, keeping the original opener (menu → picker). */
export function replacePopover(el, options = {}) {
  const opener = current ? current.opener : null;
  closePopover({ restoreFocus: false });
  openPopover(el, { ...options, opener: options.opener || opener });
}

function place(el, anchor) {
  el.style.left = '';
  el.style.top = '';
  el.style.maxHeight = '';
  if (window.matchMedia(PHONE).matches) return; // a sheet at the bottom
  const rect = anchor && anchor.getBoundingClientRect
    ? anchor.getBoundingClientRect()
    : { left: anchor ? anchor.x : 0, right: anchor ? anchor.x : 0, top: anchor ? anchor.y : 0, bottom: anchor ? anchor.y : 0 };
  const margin = 8;
  const width = el.offsetWidth;
  const height = el.offsetHeight;
  const vw = window.innerWidth;
  const vh = window.innerHeight;
  let left = rect.left;
  if (left + width > vw - margin) left = Math.max(margin, rect.right - width);
  left = Math.max(margin, Math.min(left, vw - width - margin));
  let top = rect.bottom + 4;
  if (top + height > vh - margin) {
    const above = rect.top - height - 4;
    top = above >= margin ? above : Math.max(margin, vh - height - margin);
  }
  el.style.left = `${Math.round(left)}px`;
  el.style.top = `${Math.round(top)}px`;
}

function menuItems(el) {
  return [...el.querySelectorAll('[role="menuitem"], [role="menuitemcheckbox"], [role="menuitemradio"]')]
    .filter((item) => !item.disabled && !item.hidden && item.offsetParent !== null);
}

function onKeyDown(event) {
  if (!current) return;
  const { el } = current;
  if (!el.contains(event.target)) return;
  if (event.key === 'Escape') {
    event.preventDefault();
    event.stopPropagation();
    closePopover();
    return;
  }
  if (el.getAttribute('role') === 'menu') {
    const items = menuItems(el);
    const index = items.indexOf(document.activeElement);
    let next = null;
    if (event.key === 'ArrowDown' || event.key === 'ArrowRight') next = items[(index + 1) % items.length];
    else if (event.key === 'ArrowUp' || event.key === 'ArrowLeft') next = items[(index - 1 + items.length) % items.length];
    else if (event.key === 'Home') next = items[0];
    else if (event.key === 'End') next = items[items.length - 1];
    else if (event.key === 'Tab') {
      event.preventDefault();
      closePopover();
      return;
    }
    if (next) {
      event.preventDefault();
      next.focus();
    }
    return;
  }
  if (event.key === 'Tab') {
    // Keep Tab inside a picker while it is open.
    const focusable = [...el.querySelectorAll(FOCUSABLE)].filter((f) => f.offsetParent !== null);
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }
}

function onPointerDown(event) {
  if (!current) return;
  if (current.el.contains(event.target)) return;
  lastClose = { opener: current.opener, at: Date.now() };
  closePopover({ restoreFocus: false });
  const backdrop = $('#popover-backdrop');
  if (backdrop && event.target === backdrop) {
    // The tap that dismisses a sheet must not also press what lies under it.
    backdrop.hidden = false;
    setTimeout(() => { if (!current) backdrop.hidden = true; }, 300);
  }
}

/** Whether a press on `button` just closed its own popover (so its click must not reopen it). */
export function justClosedBy(button) {
  return !!(lastClose.opener && button && (lastClose.opener === button || button.contains(lastClose.opener))
    && Date.now() - lastClose.at < 400);
}

export function bindPopovers() {
  document.addEventListener('keydown', onKeyDown, true);
  document.addEventListener('pointerdown', onPointerDown, true);
  window.addEventListener('resize', () => {
    if (current && !window.matchMedia(PHONE).matches) closePopover({ restoreFocus: false });
  });
  const messages = $('#messages');
  if (messages) {
    // Scrolling the list by hand would leave a popover behind its message.
    messages.addEventListener('wheel', () => {
      if (current && !window.matchMedia(PHONE).matches) closePopover({ restoreFocus: false });
    }, { passive: true });
  }
}
