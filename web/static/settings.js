// The Settings screen: profile (name, status, picture), privacy (last seen, blocked users), notifications,
// appearance (theme), and the account (export, log out everywhere, delete). Also the
// two preferences the rest of the app reads: the theme and notification previews.

import { h, $, avatar, formatDateTime } from './dom.js';
import { PictureEditor } from './avatars.js';

const THEME_KEY = 'parley.theme';
const THEMES = [['system', 'Same as the system'], ['light', 'Light'], ['dark', 'Dark']];
const LAST_SEEN = [
  ['everyone', 'Everyone'],
  ['contacts', 'People I chat with'],
  ['nobody', 'Nobody'],
];

/** Applies the stored theme (or `choice`): `light`/`dark` force one, `system` follows the OS. */
export function applyTheme(choice = localStorage.getItem(THEME_KEY) || 'system') {
  const root = document.documentElement;
  if (choice === 'light' || choice === 'dark') root.dataset.theme = choice;
  else delete root.dataset.theme;
}

const previewsKey = (userId) => `parley.previews.${userId}`;

/** Whether notifications may show message text (on unless turned off, per user). */
export function previewsOn(userId) {
  return localStorage.getItem(previewsKey(userId)) !== '0';
}

/**
 * The Settings dialog. `ctx` gives what it needs of the app: `api`, `media` (the
 * MediaClient, to upload a picture), `me()` (the signed-in user's profile as the app holds
 * it), `userAvatar(userId, name, extraClass)` (an avatar with the user's picture once
 * known), `onProfile(profile)`, `blocked` (the app's set of
 * blocked user ids), `onBlockedChanged()`, `toast(text)`, `revoking(reason)` (said before
 * a request that ends this session: `everywhere` or `deleted`) and `signOut(reason)`.
 */
export function createSettings(ctx) {
  const dialog = $('#settings-dialog');
  const body = $('#settings-body');
  const state = { profile: null, blocked: [], error: '', logoutArmed: false, busy: false };
  // Kept across redraws of the dialog: an upload under way survives them.
  const picture = new PictureEditor({
    media: ctx.media,
    noun: 'profile picture',
    testid: 'settings-picture',
    save: (mediaId) => ctx.api.updateMe({ avatar_media_id: mediaId }),
    onSaved: (profile, mediaId) => {
      state.profile = profile;
      ctx.onProfile(profile);
      ctx.toast(mediaId ? 'Profile picture changed' : 'Profile picture removed');
      renderPicture();
    },
  });

  /** The picture at the top of the profile: drawn again alone when it changes. */
  function renderPicture() {
    const me = state.profile || ctx.me();
    const box = $('#settings-picture-preview');
    const mediaId = me.avatar_media_id || null;
    if (box) {
      box.replaceChildren(avatar(me.user_id, me.display_name || me.username || '?', 'large', {
        mediaId, alt: mediaId ? 'Your profile picture' : null,
      }));
    }
    picture.update({ hasPicture: !!mediaId });
  }

  function error(text) {
    state.error = text;
    const el = $('#settings-error');
    el.textContent = text;
    el.hidden = !text;
  }

  async function open() {
    state.logoutArmed = false;
    error('');
    render();
    dialog.showModal();
    try {
      const [profile, blocked] = await Promise.all([ctx.api.me(), ctx.api.blockedUsers()]);
      state.profile = profile;
      state.blocked = blocked.blocked || [];
      ctx.blocked.clear();
      for (const user of state.blocked) ctx.blocked.add(user.user_id);
      ctx.onProfile(profile);
      render();
    } catch (err) {
      if (err.status !== 401) error('Could not load your settings. Try again.');
    }
  }

  function section(title, testid, ...children) {
    return h('section', { class: 'settings-section', testid, 'aria-labelledby': `${testid}-title` },
      h('h3', { id: `${testid}-title`, text: title }), ...children);
  }

  function radios(name, choices, current, onchange) {
    return h('div', { class: 'settings-radios', role: 'radiogroup' },
      ...choices.map(([value, label]) => h('label', { class: 'settings-radio' },
        h('input', {
          type: 'radio', name, value, testid: `${name}-${value}`, checked: current === value ? '' : null,
          onchange: () => onchange(value),
        }),
        h('span', { text: label }))));
  }

  function profileSection() {
    const me = state.profile || ctx.me();
    const name = h('input', {
      id: 'settings-name', maxlength: 64, required: '', value: me.display_name || '', testid: 'settings-display-name',
      autocomplete: 'name',
    });
    const status = h('textarea', {
      id: 'settings-status', maxlength: 256, rows: 2, testid: 'settings-status', placeholder: 'What are you up to?',
    });
    status.value = me.status_message || '';
    const form = h('form', {
      class: 'settings-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const displayName = name.value.trim();
        if (!displayName) {
          error('Your name cannot be empty.');
          return;
        }
        try {
          const profile = await ctx.api.updateMe({ display_name: displayName, status_message: status.value.trim() });
          state.profile = profile;
          ctx.onProfile(profile);
          error('');
          ctx.toast('Profile saved');
          render();
        } catch (err) {
          error(err.message || 'Could not save your profile.');
        }
      },
    },
    h('div', { class: 'settings-profile-head' },
      h('div', { id: 'settings-picture-preview', testid: 'settings-picture-preview' }),
      h('div', { class: 'settings-picture-side' },
        h('p', { class: 'settings-label', text: 'Profile picture' }),
        h('p', { class: 'muted', text: 'Everyone you chat with sees it. Without one, your initials show.' }),
        picture.el)),
    h('label', { class: 'field', for: 'settings-name' }, h('span', { text: 'Name' }), name),
    h('label', { class: 'field', for: 'settings-status' }, h('span', { text: 'Status' }), status),
    h('div', { class: 'muted', text: me.username ? `Username: @${me.username}` : '' }),
    h('button', { type: 'submit', class: 'btn primary small', testid: 'settings-save-profile', text: 'Save profile' }));
    return section('Profile', 'settings-profile', form);
  }

  function privacySection() {
    const current = state.profile ? state.profile.last_seen_privacy : null;
    const lastSeen = radios('last-seen', LAST_SEEN, current, async (value) => {
      try {
        state.profile = await ctx.api.updateMe({ last_seen_privacy: value });
        ctx.onProfile(state.profile);
        ctx.toast('Privacy updated');
      } catch (err) {
        error(err.message || 'Could not change your privacy.');
        render();
      }
    });
    const rows = state.blocked.map((user) => h('li', { class: 'member-row', testid: 'blocked-user' },
      ctx.userAvatar(user.user_id, user.display_name, 'small'),
      h('span', { class: 'member-text' },
        h('span', { class: 'member-name', dir: 'auto', text: user.display_name }),
        h('span', { class: 'member-sub', text: `@${user.username} · blocked ${formatDateTime(new Date(user.blocked_at))}` })),
      h('button', {
        type: 'button', class: 'btn small ghost', testid: 'unblock-button', text: 'Unblock',
        onclick: async () => {
          try {
            await ctx.api.unblock(user.user_id);
            state.blocked = state.blocked.filter((other) => other.user_id !== user.user_id);
            ctx.blocked.delete(user.user_id);
            ctx.onBlockedChanged();
            ctx.toast(`${user.display_name} unblocked`);
            render();
          } catch (err) {
            error(err.message || 'Could not unblock.');
          }
        },
      })));
    return section('Privacy', 'settings-privacy',
      h('p', { class: 'settings-label', text: 'Who sees when I am online and my last seen' }),
      lastSeen,
      h('p', { class: 'settings-label', text: 'Blocked people' }),
      rows.length
        ? h('ul', { class: 'member-list', testid: 'blocked-list' }, ...rows)
        : h('p', { class: 'muted', testid: 'blocked-empty', text: 'You have not blocked anyone. Block someone from their chat’s menu.' }));
  }

  function notificationsSection() {
    const me = ctx.me();
    const supported = 'Notification' in window;
    const permission = supported ? Notification.permission : 'unsupported';
    const permissionText = {
      granted: 'On for this browser.',
      denied: 'Blocked in this browser’s site settings.',
      default: 'Off for this browser.',
      unsupported: 'This browser cannot show notifications.',
    }[permission];
    return section('Notifications', 'settings-notifications',
      h('label', { class: 'settings-toggle' },
        h('input', {
          type: 'checkbox', testid: 'settings-previews', checked: previewsOn(me.user_id) ? '' : null,
          onchange: (e) => {
            localStorage.setItem(previewsKey(me.user_id), e.target.checked ? '1' : '0');
            ctx.toast(e.target.checked ? 'Notifications show the message' : 'Notifications hide the message');
          },
        }),
        h('span', { text: 'Show the message text in notifications' })),
      h('p', { class: 'muted', testid: 'settings-permission', text: permissionText }),
      permission === 'default'
        ? h('button', {
          type: 'button', class: 'btn small', testid: 'settings-notify-enable', text: 'Turn on notifications',
          onclick: async () => {
            await Notification.requestPermission();
            render();
          },
        })
        : null);
  }

  function appearanceSection() {
    const current = localStorage.getItem(THEME_KEY) || 'system';
    return section('Appearance', 'settings-appearance',
      h('p', { class: 'settings-label', text: 'Theme' }),
      radios('theme', THEMES, current, (value) => {
        localStorage.setItem(THEME_KEY, value);
        applyTheme(value);
      }));
  }

  function accountSection() {
    const password = h('input', {
      id: 'settings-delete-password', type: 'password', autocomplete: 'current-password', testid: 'delete-account-password',
    });
    return section('Account', 'settings-account',
      h('div', { class: 'settings-actions' },
        h('button', {
          type: 'button', class: 'btn small', testid: 'export-button', text: 'Export my data',
          onclick: exportData,
        }),
        h('button', {
          type: 'button', class: `btn small${state.logoutArmed ? ' armed' : ''}`, testid: 'logout-everywhere',
          text: state.logoutArmed ? 'Click again to log out everywhere' : 'Log out of all devices',
          onclick: logoutEverywhere,
        })),
      h('form', {
        class: 'settings-form danger-zone', testid: 'delete-account-form',
        onsubmit: (e) => {
          e.preventDefault();
          deleteAccount(password.value);
        },
      },
      h('p', { class: 'settings-label', text: 'Delete my account' }),
      h('p', { class: 'muted', text: 'You leave your groups and every device is logged out. Your messages stay for the others, from “Deleted account”. This cannot be undone.' }),
      h('label', { class: 'field', for: 'settings-delete-password' }, h('span', { text: 'Your password' }), password),
      h('button', { type: 'submit', class: 'btn small danger', testid: 'delete-account-submit', text: 'Delete my account' })));
  }

  async function exportData() {
    try {
      const data = await ctx.api.exportData();
      const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, download: `parley-export-${data.profile.username}.json`, hidden: '' });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      ctx.toast('Your data was downloaded');
    } catch (err) {
      error(err.code === 'rate_limited' ? 'Too many exports just now. Try again in a minute.' : 'Could not export your data.');
    }
  }

  async function logoutEverywhere() {
    if (!state.logoutArmed) {
      state.logoutArmed = true;
      render();
      return;
    }
    ctx.revoking('everywhere');
    try {
      await ctx.api.logoutEverywhere();
    } catch (err) {
      if (err.status !== 401) {
        ctx.revoking(null);
        error('Could not log out everywhere.');
        return;
      }
    }
    dialog.close();
    ctx.signOut('everywhere');
  }

  async function deleteAccount(password) {
    if (!password || state.busy) {
      if (!password) error('Type your password to delete your account.');
      return;
    }
    state.busy = true;
    ctx.revoking('deleted');
    try {
      await ctx.api.deleteAccount(password);
      dialog.close();
      ctx.signOut('deleted');
    } catch (err) {
      ctx.revoking(null);
      error(err.status === 403 ? 'That password is not right.' : (err.message || 'Could not delete your account.'));
    } finally {
      state.busy = false;
    }
  }

  function render() {
    body.replaceChildren(profileSection(), privacySection(), notificationsSection(), appearanceSection(), accountSection());
    renderPicture();
  }

  return { open, isOpen: () => dialog.open };
}
