// Phone-sized viewport: one pane at a time, back navigation, infinite scroll through a
// long history, and the phone screenshots.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest, screenshot,
  openConversationTitled, sendText, messagesWithText, until, waitForStatus, PHONE,
} from './helpers.mjs';

let server;
let browser;
let hal;
const names = { hal: uniqueName('hal'), ivy: uniqueName('ivy'), jon: uniqueName('jon') };
const tokens = {};
const TOTAL = 130;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const h = await registerApi(server.url, names.hal, 'Hal Jordan');
  const i = await registerApi(server.url, names.ivy, 'Ivy Pepper');
  const j = await registerApi(server.url, names.jon, 'Jon Snow');
  tokens.hal = h.token;
  tokens.ivy = i.token;
  tokens.jon = j.token;
  // A long direct history between Ivy and Hal, sent through the REST fallback.
  const direct = await rest(server.url, 'POST', '/conversations', { token: tokens.ivy, body: { type: 'direct', participant_ids: [h.user_id] } });
  for (let n = 1; n <= TOTAL; n++) {
    const token = n % 3 === 0 ? tokens.hal : tokens.ivy;
    await rest(server.url, 'POST', `/conversations/${direct.conversation_id}/messages`, {
      token, body: { client_msg_id: `seed-${n}`, content: `History message ${n}` },
    });
  }
  // A group so the list has more than one kind of chat.
  const group = await rest(server.url, 'POST', '/conversations', {
    token: tokens.jon, body: { type: 'group', name: 'Book club', member_ids: [h.user_id, i.user_id] },
  });
  await rest(server.url, 'POST', `/conversations/${group.conversation_id}/messages`, {
    token: tokens.jon, body: { client_msg_id: 'g1', content: 'Next book: Dune. Thoughts? https://en.wikipedia.org/wiki/Dune_(novel)' },
  });
  hal = await openApp(browser, server.url, { viewport: PHONE, name: 'hal' });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('phone: login screen, then the list alone', async () => {
  const p = hal.page;
  await p.getByTestId('auth-view').waitFor();
  await screenshot(p, 'phone-login');
  await logIn(p, names.hal);
  await p.getByTestId('conversation-item').nth(1).waitFor();
  assert.equal(await p.getByTestId('chat-view').isVisible(), false, 'chat pane hidden on a phone');
  // Newest activity first: the group got its message last.
  assert.equal(await p.getByTestId('conversation-title').first().textContent(), 'Book club');
  const badges = await p.getByTestId('unread-badge').allTextContents();
  assert.ok(badges.length === 2, `two unread badges: ${badges}`);
  await until(async () => /^\(\d+\) parley$/.test(await p.title()), { message: 'unread in title' });
  await screenshot(p, 'phone-conversations');
});

test('phone: open a chat, scroll back through history, go back', async () => {
  const p = hal.page;
  await openConversationTitled(p, 'Ivy Pepper');
  assert.equal(await p.getByTestId('conversation-list').isVisible(), false, 'list hidden while chatting');
  await messagesWithText(p, `History message ${TOTAL}`).waitFor();
  const first = await p.getByTestId('message').count();
  assert.ok(first <= 60, `one page at first (${first})`);
  // Scroll to the top repeatedly until the beginning is reached.
  await until(async () => {
    await p.getByTestId('message-list').evaluate((el) => { el.scrollTop = 0; });
    return (await messagesWithText(p, 'History message 1').count()) === 1;
  }, { timeout: 20000, interval: 300, message: 'the first message after scrolling up' });
  await until(async () => /beginning/.test(await p.getByTestId('history-status').textContent()), { message: 'beginning marker' });
  const seqs = await p.getByTestId('message').evaluateAll((els) => els.map((el) => Number(el.dataset.seq)));
  assert.equal(seqs.length, TOTAL);
  assert.deepEqual(seqs, Array.from({ length: TOTAL }, (_, k) => k + 1));

  await p.getByTestId('message-list').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await sendText(p, 'Phone reply 📱');
  await waitForStatus(p, 'Phone reply 📱', 'sent').catch(() => waitForStatus(p, 'Phone reply 📱', 'delivered'));
  await screenshot(p, 'phone-chat');

  await p.getByTestId('back-button').click();
  await p.getByTestId('conversation-list').waitFor();
  assert.equal(await p.getByTestId('chat-view').isVisible(), false);
});

test('phone: group chat with a link', async () => {
  const p = hal.page;
  await openConversationTitled(p, 'Book club');
  const link = p.locator('[data-testid="message-link"]');
  await link.waitFor();
  assert.equal(await link.getAttribute('href'), 'https://en.wikipedia.org/wiki/Dune_(novel)');
  await screenshot(p, 'phone-group');
  await p.getByTestId('group-info-button').click();
  await p.getByTestId('info-dialog').waitFor();
  await screenshot(p, 'phone-group-info');
  await p.keyboard.press('Escape');
});
