// Sessions: reload keeps you logged in, log out and back in, a dead token returns to login.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, signUp, logIn, uniqueName, startDirectChat, sendText,
  messagesWithText, waitOnline, until, openConversationTitled, DESKTOP,
} from './helpers.mjs';

let server;
let browser;
let dana;
let eve;
const names = { dana: uniqueName('dana'), eve: uniqueName('eve') };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  dana = await openApp(browser, server.url, { viewport: DESKTOP, name: 'dana' });
  eve = await openApp(browser, server.url, { viewport: DESKTOP, name: 'eve' });
  await signUp(dana.page, names.dana, 'Dana Scully');
  await signUp(eve.page, names.eve, 'Eve Moneypenny');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('wrong password and taken username are explained', async () => {
  const { context } = await openApp(browser, server.url, { name: 'stranger' });
  const page = context.pages()[0];
  await page.getByTestId('auth-username').fill(names.dana);
  await page.getByTestId('auth-password').fill('not the password');
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('auth-error').waitFor();
  assert.match(await page.getByTestId('auth-error').textContent(), /Wrong username or password/);
  await page.getByTestId('auth-tab-signup').click();
  await page.getByTestId('auth-username').fill(names.dana);
  await page.getByTestId('auth-password').fill('long enough password');
  await page.getByTestId('auth-submit').click();
  await until(async () => /taken/.test(await page.getByTestId('auth-error').textContent()), { message: 'taken' });
  await context.close();
});

test('reload keeps the session and the open chat', async () => {
  const d = dana.page;
  await startDirectChat(d, names.eve);
  await sendText(d, 'Before the reload');
  await openConversationTitled(eve.page, 'Dana Scully');
  await messagesWithText(eve.page, 'Before the reload').waitFor();
  await d.reload();
  await d.getByTestId('app-view').waitFor();
  await waitOnline(d);
  assert.equal(await d.getByTestId('auth-view').isVisible(), false);
  assert.equal(await d.getByTestId('me-name').textContent(), 'Dana Scully');
  // The chat is still open (its id is in the URL) with its history.
  await messagesWithText(d, 'Before the reload').waitFor();
  assert.equal(await messagesWithText(d, 'Before the reload').count(), 1);
  assert.equal(await d.getByTestId('chat-title').textContent(), 'Eve Moneypenny');
});

test('log out, then log in again on the same browser', async () => {
  const d = dana.page;
  await d.getByTestId('logout-button').click();
  await d.getByTestId('auth-view').waitFor();
  assert.equal(await d.evaluate(() => localStorage.getItem('parley.session')), null);
  await d.reload();
  await d.getByTestId('auth-view').waitFor();
  await logIn(d, names.dana);
  await d.getByTestId('conversation-item').first().waitFor();
  assert.equal(await d.getByTestId('conversation-title').first().textContent(), 'Eve Moneypenny');
});

test('a token that stops working sends you back to the login screen', async () => {
  const d = dana.page;
  await d.evaluate(() => {
    const session = JSON.parse(localStorage.getItem('parley.session'));
    session.token = 'definitely-not-a-valid-token';
    localStorage.setItem('parley.session', JSON.stringify(session));
  });
  await d.reload();
  await d.getByTestId('auth-view').waitFor();
  assert.match(await d.getByTestId('auth-error').textContent(), /session has ended/);
  await logIn(d, names.dana);
});

test('a second device of the same user sees its own messages as own, live', async () => {
  const second = await openApp(browser, server.url, { viewport: DESKTOP, name: 'dana-2' });
  const d2 = second.page;
  await logIn(d2, names.dana);
  await openConversationTitled(d2, 'Eve Moneypenny');
  const d = dana.page;
  await openConversationTitled(d, 'Eve Moneypenny');
  await sendText(d, 'From my first device');
  const mirrored = messagesWithText(d2, 'From my first device');
  await mirrored.waitFor();
  assert.equal(await mirrored.getAttribute('data-own'), 'true');
  // Esc closes dialogs.
  await d2.getByTestId('new-group-button').click();
  await d2.getByTestId('group-dialog').waitFor();
  await d2.keyboard.press('Escape');
  await d2.getByTestId('group-dialog').waitFor({ state: 'hidden' });
  await second.context.close();
});

test('two tabs of one login: what one tab sends and reads shows in the other', async () => {
  const d = dana.page;
  const tab2 = await dana.context.newPage();
  await tab2.goto('/');
  await waitOnline(tab2);
  await openConversationTitled(tab2, 'Eve Moneypenny');
  await sendText(d, 'Sent from tab one');
  const mirrored = messagesWithText(tab2, 'Sent from tab one');
  await mirrored.waitFor();
  assert.equal(await mirrored.getAttribute('data-own'), 'true');
  assert.equal(await mirrored.count(), 1);
  await tab2.close();
});
