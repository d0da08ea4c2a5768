// Each user's own control over their chats from the list: the per-chat menu (mute with
// durations, pin, archive, mark unread), the "Archived" view, pinned and muted icons, all
// following the user to another device live and surviving a reload; drafts kept across
// reloads and shown in the list.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest,
  screenshot, until, waitOnline, sleep, DESKTOP, PHONE,
} from './helpers.mjs';

let server;
let browser;
let desk;
let phone;
const users = {};
const names = { amy: uniqueName('amy'), bo: uniqueName('bo'), cy: uniqueName('cy') };
const chats = {};

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  users.amy = await registerApi(server.url, names.amy, 'Amy Pond');
  users.bo = await registerApi(server.url, names.bo, 'Bo Peep');
  users.cy = await registerApi(server.url, names.cy, 'Cy Young');
  const direct = (token, other) => rest(server.url, 'POST', '/conversations', {
    token, body: { type: 'direct', participant_ids: [other] },
  });
  chats.bo = (await direct(users.amy.token, users.bo.user_id)).conversation_id;
  chats.cy = (await direct(users.amy.token, users.cy.user_id)).conversation_id;
  chats.group = (await rest(server.url, 'POST', '/conversations', {
    token: users.amy.token, body: { type: 'group', name: 'Book club', member_ids: [users.bo.user_id] },
  })).conversation_id;
  await rest(server.url, 'POST', `/conversations/${chats.bo}/messages`, {
    token: users.bo.token, body: { client_msg_id: 'bo-1', content: 'Tea later?' },
  });
  desk = await openApp(browser, server.url, { viewport: DESKTOP, name: 'amy-desk' });
  phone = await openApp(browser, server.url, { viewport: PHONE, name: 'amy-phone' });
  for (const { page } of [desk, phone]) {
    await page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
    await logIn(page, names.amy);
  }
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function listItem(page, title) {
  return page.getByTestId('conversation-item').filter({
    has: page.getByTestId('conversation-title').getByText(title, { exact: true }),
  });
}

async function titles(page) {
  return page.getByTestId('conversation-item').getByTestId('conversation-title').allTextContents();
}

async function openMenu(page, title) {
  const item = listItem(page, title);
  await item.hover();
  await item.getByTestId('conversation-menu-button').click();
  await page.getByTestId('chat-menu').waitFor();
}

test('pin puts a chat first, on both devices, with a pin icon', async () => {
  const a = desk.page;
  await listItem(a, 'Cy Young').waitFor();
  await openMenu(a, 'Cy Young');
  await screenshot(a, 'desktop-chat-menu');
  await a.getByTestId('chat-menu-pin').click();
  await until(async () => (await titles(a))[0] === 'Cy Young', { message: 'Cy first on the desktop' });
  await listItem(a, 'Cy Young').getByTestId('pinned-icon').waitFor();
  await until(async () => (await titles(phone.page))[0] === 'Cy Young', { message: 'Cy first on the phone, live' });
});

test('mute for 8 hours shows the muted icon; unmute takes it away', async () => {
  const a = desk.page;
  await openMenu(a, 'Bo Peep');
  await a.getByTestId('mute-8h').click();
  await listItem(a, 'Bo Peep').getByTestId('muted-icon').waitFor();
  await listItem(phone.page, 'Bo Peep').getByTestId('muted-icon').waitFor();
  const seen = await rest(server.url, 'GET', `/conversations/${chats.bo}`, { token: users.amy.token });
  const hours = (Date.parse(seen.muted_until) - Date.now()) / 3600e3;
  assert.ok(hours > 7.9 && hours <= 8, `muted for ${hours} h`);
  await openMenu(a, 'Bo Peep');
  await a.getByTestId('chat-menu-unmute').click();
  await until(async () => (await listItem(a, 'Bo Peep').getByTestId('muted-icon').count()) === 0, { message: 'unmuted' });
});

test('mark as unread shows a dot until the chat is opened', async () => {
  const a = desk.page;
  await openMenu(a, 'Book club');
  await a.getByTestId('chat-menu-unread').click();
  await listItem(a, 'Book club').getByTestId('marked-unread-badge').waitFor();
  await listItem(phone.page, 'Book club').getByTestId('marked-unread-badge').waitFor();
  await listItem(a, 'Book club').click();
  await until(async () => (await listItem(phone.page, 'Book club').getByTestId('marked-unread-badge').count()) === 0,
    { message: 'opening it on the desktop cleared the mark on the phone' });
});

test('archive moves a chat to the Archived view; a new message brings it back', async () => {
  const a = desk.page;
  await openMenu(a, 'Bo Peep');
  await a.getByTestId('chat-menu-archive').click();
  await until(async () => !(await titles(a)).includes('Bo Peep'), { message: 'Bo left the list' });
  await a.getByTestId('archived-entry').waitFor();
  assert.equal(await a.getByTestId('archived-count').textContent(), '1');
  await a.getByTestId('archived-entry').click();
  await a.getByTestId('archive-header').waitFor();
  assert.deepEqual(await titles(a), ['Bo Peep']);
  await screenshot(a, 'desktop-archived');
  const p = phone.page;
  await p.getByTestId('archived-entry').click();
  await listItem(p, 'Bo Peep').waitFor();
  await screenshot(p, 'phone-archived');
  await p.getByTestId('archive-back').click();

  // After a reload it is still archived.
  await a.reload();
  await waitOnline(a);
  await a.getByTestId('archived-entry').waitFor();
  assert.ok(!(await titles(a)).includes('Bo Peep'));

  await rest(server.url, 'POST', `/conversations/${chats.bo}/messages`, {
    token: users.bo.token, body: { client_msg_id: 'bo-2', content: 'Still on for tea?' },
  });
  await until(async () => (await titles(a)).includes('Bo Peep'), { message: 'a new message brought Bo back' });
  assert.equal(await a.getByTestId('archived-entry').count(), 0);
});

test('a draft shows as "Draft: …" in the list and survives a reload', async () => {
  const a = desk.page;
  await listItem(a, 'Cy Young').click();
  await a.getByTestId('composer-input').fill('half a thought about tea');
  await listItem(a, 'Book club').click();
  const preview = listItem(a, 'Cy Young').getByTestId('conversation-preview');
  let seen = '';
  await until(async () => (seen = await preview.textContent()) === 'Draft: half a thought about tea', { message: 'the draft in the list' })
    .catch((error) => { throw new Error(`${error.message}: ${seen}`); });
  await a.reload();
  await waitOnline(a);
  await until(async () => (await listItem(a, 'Cy Young').getByTestId('conversation-preview').textContent()) === 'Draft: half a thought about tea',
    { message: 'the draft after a reload' });
  await listItem(a, 'Cy Young').click();
  assert.equal(await a.getByTestId('composer-input').inputValue(), 'half a thought about tea');
  await a.getByTestId('composer-input').fill('');
  await listItem(a, 'Book club').click();
  await until(async () => !(await listItem(a, 'Cy Young').getByTestId('conversation-preview').textContent()).startsWith('Draft:'),
    { message: 'an emptied draft is gone' });
});

test('the info panel of the open chat has its settings', async () => {
  const a = desk.page;
  await listItem(a, 'Cy Young').click();
  await a.getByTestId('chat-header').click();
  const dialog = a.getByTestId('contact-dialog');
  await dialog.waitFor();
  assert.equal(await dialog.getByTestId('settings-pin').isChecked(), true, 'pinned from the list earlier');
  await dialog.getByTestId('settings-mute').selectOption('forever');
  await listItem(a, 'Cy Young').getByTestId('muted-icon').waitFor();
  await dialog.getByTestId('settings-pin').uncheck();
  await until(async () => (await listItem(a, 'Cy Young').getByTestId('pinned-icon').count()) === 0, { message: 'unpinned' });
  await screenshot(a, 'desktop-chat-info-settings');
  const seen = await rest(server.url, 'GET', `/conversations/${chats.cy}`, { token: users.amy.token });
  assert.equal(seen.muted_until, 'forever');
  assert.equal(seen.pinned, false);
  await dialog.getByTestId('settings-mute').selectOption('off');
  await until(async () => (await listItem(a, 'Cy Young').getByTestId('muted-icon').count()) === 0, { message: 'unmuted' });
  await a.keyboard.press('Escape');
});

test('delete chat takes it off both devices for good; a new message brings it back alone', async () => {
  const a = desk.page;
  await listItem(a, 'Bo Peep').waitFor();
  await openMenu(a, 'Bo Peep');
  await a.getByTestId('chat-menu-delete').click();
  const dialog = a.getByTestId('clear-dialog');
  await dialog.waitFor();
  assert.match(await dialog.getByTestId('clear-text').textContent(), /Bo Peep keeps theirs/);
  await screenshot(a, 'desktop-delete-chat');
  await dialog.getByTestId('clear-confirm').click();
  await until(async () => !(await titles(a)).includes('Bo Peep'), { message: 'gone from the desktop list' });
  await until(async () => !(await titles(phone.page)).includes('Bo Peep'), { message: 'gone from the phone list, live' });
  await a.reload();
  await waitOnline(a);
  await listItem(a, 'Book club').waitFor();
  assert.ok(!(await titles(a)).includes('Bo Peep'), 'still gone after a reload');
  const bos = await rest(server.url, 'GET', `/conversations/${chats.bo}/messages`, { token: users.bo.token });
  assert.ok(bos.messages.some((m) => m.content === 'Tea later?'), 'Bo keeps his messages');

  await rest(server.url, 'POST', `/conversations/${chats.bo}/messages`, {
    token: users.bo.token, body: { client_msg_id: 'bo-after-clear', content: 'Still on for tea?' },
  });
  await until(async () => (await titles(a)).includes('Bo Peep'), { message: 'the new message brought Bo back' });
  await until(async () => (await titles(phone.page)).includes('Bo Peep'), { message: 'back on the phone too' });
  await listItem(a, 'Bo Peep').click();
  await a.getByTestId('message').filter({ hasText: 'Still on for tea?' }).waitFor();
  const texts = await a.getByTestId('message').allTextContents();
  assert.ok(!texts.some((text) => text.includes('Tea later?')), `nothing from before the delete: ${texts}`);
});

test('on a touch phone a long press opens the chat menu as a sheet', async () => {
  const context = await browser.newContext({
    viewport: PHONE, hasTouch: true, isMobile: true, baseURL: server.url, locale: 'en-GB', timezoneId: 'UTC',
  });
  const p = await context.newPage();
  await p.goto('/');
  await p.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
  await logIn(p, names.amy);
  const item = listItem(p, 'Book club');
  await item.waitFor();
  let box = null;
  await until(async () => { box = await item.boundingBox(); return !!box; }, { message: 'the chat in view' });
  const cdp = await context.newCDPSession(p);
  const point = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [point] });
  await sleep(700);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await p.getByTestId('chat-menu').waitFor({ timeout: 3000 });
  await screenshot(p, 'phone-chat-menu');
  assert.equal(await p.getByTestId('chat-title').isVisible(), false, 'the long press did not open the chat');
  await p.keyboard.press('Escape');
  await context.close();
});
