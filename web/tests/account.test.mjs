// The Settings screen and the account: profile, last-seen privacy, theme, notification
// previews, blocking (from the chat menu and in Settings), disappearing messages (info
// panel, expiry on screen), the export download, logging out everywhere and deleting the
// account; screenshots on desktop and phone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest,
  screenshot, until, waitOnline, PASSWORD, DESKTOP, PHONE,
} from './helpers.mjs';

let server;
let browser;
const users = {};
const names = { ann: uniqueName('ann'), ben: uniqueName('ben'), cat: uniqueName('cat') };
const chats = {};

before(async () => {
  // A 2-second choice lets a test watch a message disappear; the purge runs often.
  server = await startServer({
    env: {
      PARLEY_LIMITS__DISAPPEARING_CHOICES_SECS: '[2, 86400, 604800, 7776000]',
      PARLEY_LIMITS__EXPIRY_PURGE_INTERVAL_MS: '200',
    },
  });
  browser = await launchBrowser();
  users.ann = await registerApi(server.url, names.ann, 'Ann Lee');
  users.ben = await registerApi(server.url, names.ben, 'Ben Ode');
  users.cat = await registerApi(server.url, names.cat, 'Cat Moss');
  const direct = (token, other) => rest(server.url, 'POST', '/conversations', {
    token, body: { type: 'direct', participant_ids: [other] },
  });
  chats.ben = (await direct(users.ann.token, users.ben.user_id)).conversation_id;
  chats.cat = (await direct(users.ann.token, users.cat.user_id)).conversation_id;
  await rest(server.url, 'POST', `/conversations/${chats.ben}/messages`, {
    token: users.ben.token, body: { client_msg_id: 'ben-1', content: 'Lunch on Friday?' },
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function signedIn(username, viewport = DESKTOP, name = 'page') {
  const app = await openApp(browser, server.url, { viewport, name });
  await app.page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
  await logIn(app.page, username);
  return app;
}

function listItem(page, title) {
  return page.getByTestId('conversation-item').filter({
    has: page.getByTestId('conversation-title').getByText(title, { exact: true }),
  });
}

async function openChat(page, title) {
  await listItem(page, title).click();
  await page.getByTestId('chat-title').getByText(title, { exact: true }).waitFor();
}

test('Settings: profile, last-seen privacy, previews and theme, on desktop and phone', async () => {
  const { page, context } = await signedIn(names.ann, DESKTOP, 'ann-desk');
  await page.getByTestId('settings-button').click();
  const dialog = page.getByTestId('settings-dialog');
  await dialog.waitFor();
  await dialog.getByTestId('last-seen-everyone').waitFor();
  await until(async () => (await dialog.getByTestId('last-seen-everyone').isChecked()), { message: 'privacy loaded' });
  await screenshot(page, 'desktop-settings');

  await dialog.getByTestId('settings-display-name').fill('Ann Lee-Park');
  await dialog.getByTestId('settings-status').fill('Back on Monday');
  await dialog.getByTestId('settings-save-profile').click();
  await until(async () => (await page.getByTestId('me-name').textContent()) === 'Ann Lee-Park', { message: 'name in the sidebar' });
  const me = await rest(server.url, 'GET', '/users/me', { token: users.ann.token });
  assert.equal(me.display_name, 'Ann Lee-Park');
  assert.equal(me.status_message, 'Back on Monday');

  await dialog.getByTestId('last-seen-contacts').check();
  await until(async () => (await rest(server.url, 'GET', '/users/me', { token: users.ann.token })).last_seen_privacy === 'contacts',
    { message: 'privacy stored' });

  await dialog.getByTestId('settings-previews').uncheck();
  assert.equal(await page.evaluate((id) => localStorage.getItem(`parley.previews.${id}`), users.ann.user_id), '0');

  await dialog.getByTestId('theme-dark').check();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await page.reload();
  await page.getByTestId('app-view').waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'the theme survives a reload');
  await page.getByTestId('settings-button').click();
  await dialog.getByTestId('theme-system').check();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), undefined);
  await dialog.getByTestId('settings-close').click();
  await context.close();

  const phone = await signedIn(names.ann, PHONE, 'ann-phone');
  await phone.page.getByTestId('settings-button').click();
  await phone.page.getByTestId('settings-dialog').getByTestId('last-seen-contacts').waitFor();
  await until(async () => phone.page.getByTestId('last-seen-contacts').isChecked(), { message: 'privacy on the phone' });
  await screenshot(phone.page, 'phone-settings');
  await phone.context.close();
});

test('blocking from the chat menu stops the chat; unblocking from Settings opens it', async () => {
  const { page, context } = await signedIn(names.ann, DESKTOP, 'ann-block');
  const item = listItem(page, 'Ben Ode');
  await item.hover();
  await item.getByTestId('conversation-menu-button').click();
  await page.getByTestId('chat-menu-block').click();
  await openChat(page, 'Ben Ode');
  await page.getByTestId('chat-blocked').waitFor();
  assert.match(await page.getByTestId('chat-blocked').textContent(), /You blocked Ben Ode/);
  assert.equal(await page.getByTestId('composer-input').isVisible(), false);
  const refused = await fetch(`${server.url}/api/v1/conversations/${chats.ben}/messages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${users.ben.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_msg_id: 'ben-2', content: 'hello?' }),
  });
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error.code, 'blocked');

  await page.getByTestId('settings-button').click();
  const dialog = page.getByTestId('settings-dialog');
  const row = dialog.getByTestId('blocked-user');
  await row.waitFor();
  assert.match(await row.textContent(), /Ben Ode/);
  await row.getByTestId('unblock-button').click();
  await dialog.getByTestId('blocked-empty').waitFor();
  await dialog.getByTestId('settings-close').click();
  await page.getByTestId('composer-input').waitFor();
  assert.equal(await page.getByTestId('chat-blocked').isVisible(), false);
  await context.close();
});

test('disappearing messages: set in the info panel, announced, and an expired message leaves the screen', async () => {
  const { page, context } = await signedIn(names.ann, DESKTOP, 'ann-disappear');
  await openChat(page, 'Cat Moss');
  await page.getByTestId('chat-header').click();
  const info = page.getByTestId('contact-dialog');
  await info.waitFor();
  await info.getByTestId('settings-disappearing').selectOption('86400');
  await page.getByTestId('system-message').filter({ hasText: 'turned on disappearing messages' }).waitFor();
  await screenshot(page, 'desktop-chat-info-disappearing');
  await info.getByTestId('contact-close').click();

  // The server offers 2 seconds here (test configuration): set it from Cat's side.
  await rest(server.url, 'PATCH', `/conversations/${chats.cat}`, { token: users.cat.token, body: { disappearing_seconds: 2 } });
  await rest(server.url, 'POST', `/conversations/${chats.cat}/messages`, {
    token: users.cat.token, body: { client_msg_id: 'cat-1', content: 'this will vanish' },
  });
  const bubble = page.getByTestId('message').filter({ hasText: 'this will vanish' });
  await bubble.waitFor();
  await bubble.getByTestId('expiry-mark').waitFor();
  await bubble.waitFor({ state: 'detached', timeout: 10000 });
  await page.reload();
  await page.getByTestId('app-view').waitFor();
  await openChat(page, 'Cat Moss');
  await page.getByTestId('system-message').first().waitFor();
  assert.equal(await page.getByTestId('message').filter({ hasText: 'this will vanish' }).count(), 0, 'gone after a reload');
  await context.close();
});

test('export downloads my data as JSON', async () => {
  const { page, context } = await signedIn(names.ann, DESKTOP, 'ann-export');
  await page.getByTestId('settings-button').click();
  const download = page.waitForEvent('download');
  await page.getByTestId('export-button').click();
  const file = await download;
  assert.equal(file.suggestedFilename(), `parley-export-${names.ann}.json`);
  const data = JSON.parse(fs.readFileSync(await file.path(), 'utf8'));
  assert.equal(data.format, 'parley-export-1');
  assert.equal(data.profile.username, names.ann);
  assert.ok(data.messages.every((message) => message.sender_id === users.ann.user_id));
  await context.close();
});

test('log out of all devices, then delete the account with its password', async () => {
  const username = uniqueName('dee');
  const user = await registerApi(server.url, username, 'Dee Ray');
  await rest(server.url, 'POST', '/conversations', {
    token: user.token, body: { type: 'direct', participant_ids: [users.ben.user_id] },
  });
  const one = await signedIn(username, DESKTOP, 'dee-1');
  const two = await signedIn(username, PHONE, 'dee-2');
  await one.page.getByTestId('settings-button').click();
  const logout = one.page.getByTestId('logout-everywhere');
  await logout.click();
  await until(async () => /Click again/.test(await logout.textContent()), { message: 'armed' });
  await logout.click();
  for (const { page } of [one, two]) {
    await page.getByTestId('auth-view').waitFor({ timeout: 15000 });
  }
  assert.match(await one.page.getByTestId('auth-view').textContent(), /logged out of all your devices/);

  await logIn(one.page, username);
  await one.page.getByTestId('settings-button').click();
  const dialog = one.page.getByTestId('settings-dialog');
  await dialog.getByTestId('delete-account-password').fill('not the password');
  await dialog.getByTestId('delete-account-submit').click();
  await until(async () => /not right/.test(await dialog.getByTestId('settings-error').textContent()), { message: 'wrong password said' });
  await dialog.getByTestId('delete-account-password').fill(PASSWORD);
  await dialog.getByTestId('delete-account-submit').click();
  await one.page.getByTestId('auth-view').waitFor();
  assert.match(await one.page.getByTestId('auth-view').textContent(), /account was deleted/);
  const login = await fetch(`${server.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(login.status, 401);

  const ben = await signedIn(names.ben, DESKTOP, 'ben');
  await listItem(ben.page, 'Deleted account').waitFor();
  await waitOnline(ben.page);
  await one.context.close();
  await two.context.close();
  await ben.context.close();
});
