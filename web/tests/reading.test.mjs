// Reading a busy chat: it opens at the first unread message under an "Unread messages"
// divider and marks messages read as they come into view; a quote whose original is not
// loaded yet loads it and jumps there; the day separator never covers message text.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest, until, sleep,
  openConversationTitled, messagesWithText, DESKTOP,
} from './helpers.mjs';

const EARLIER = 10;
const UNREAD = 70;
const LONG = 'is a long message that wraps over several lines of the bubble, so that it spans the middle of the chat where the day separator sits, and any overlap would cover its text.';

let server;
let browser;
let rae;
const users = {};
const names = { rae: uniqueName('rae'), sid: uniqueName('sid'), tia: uniqueName('tia'), ugo: uniqueName('ugo') };
const chats = {};

let sent = 0;
async function send(who, chat, content, extra = {}) {
  sent += 1;
  return rest(server.url, 'POST', `/conversations/${chat}/messages`, {
    token: users[who].token, body: { client_msg_id: `seed-${sent}`, content, ...extra },
  });
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  for (const [who, display] of [['rae', 'Rae Sremmurd'], ['sid', 'Sid Vicious'], ['tia', 'Tia Carrere'], ['ugo', 'Ugo Tognazzi']]) {
    users[who] = await registerApi(server.url, names[who], display);
  }
  const direct = async (who, other) => (await rest(server.url, 'POST', '/conversations', {
    token: users[who].token, body: { type: 'direct', participant_ids: [users[other].user_id] },
  })).conversation_id;
  // Sid: a few messages Rae has read (her own answer moves her read pointer), then many unread.
  chats.sid = await direct('sid', 'rae');
  for (let n = 1; n <= EARLIER; n++) await send('sid', chats.sid, `Earlier ${n}`);
  await send('rae', chats.sid, 'All caught up');
  for (let n = 1; n <= UNREAD; n++) await send('sid', chats.sid, `Unread ${n} ${LONG}`);
  // Tia: a long history, all read, then a reply to one of the first messages.
  chats.tia = await direct('tia', 'rae');
  for (let n = 1; n <= 130; n++) await send('tia', chats.tia, `Old ${n}`);
  await rest(server.url, 'POST', `/conversations/${chats.tia}/read`, { token: users.rae.token, body: { up_to_seq: 130 } });
  await send('tia', chats.tia, 'Remember this one?', { reply_to_seq: 3 });
  await sleep(600); // receipts are flushed every 250 ms
  rae = await openApp(browser, server.url, { viewport: DESKTOP, name: 'rae' });
  await logIn(rae.page, names.rae);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Where an element is relative to the message list's visible area. */
async function placement(locator) {
  return locator.evaluate((el) => {
    const box = document.querySelector('[data-testid="message-list"]').getBoundingClientRect();
    const r = el.getBoundingClientRect();
    return { inView: r.bottom > box.top && r.top < box.bottom, fromTop: r.top - box.top };
  });
}

async function readPointer(chat) {
  return (await rest(server.url, 'GET', `/conversations/${chat}`, { token: users.rae.token })).last_read_seq;
}

test('a chat with many unread opens at the first unread and is read as it is seen', async () => {
  const p = rae.page;
  const item = p.getByTestId('conversation-item').filter({ hasText: 'Sid Vicious' });
  await until(async () => (await item.getByTestId('unread-badge').textContent()) === String(UNREAD), { message: 'unread badge' });
  await openConversationTitled(p, 'Sid Vicious');

  const divider = p.getByTestId('unread-divider');
  await divider.waitFor();
  const first = messagesWithText(p, `Unread 1 ${LONG}`);
  await first.waitFor();
  await until(async () => (await placement(divider)).inView, { message: 'the divider in view' });
  const dividerAt = await placement(divider);
  assert.ok(dividerAt.fromTop < 120, `the divider is near the top (${dividerAt.fromTop}px)`);
  assert.equal((await placement(first)).inView, true, 'the first unread message is on screen');
  assert.equal((await placement(messagesWithText(p, `Unread ${UNREAD} ${LONG}`))).inView, false, 'the last one is not');
  // The divider sits right after the last read message.
  const seqs = await p.getByTestId('message-list').evaluate((box) => {
    const divider = box.querySelector('[data-testid="unread-divider"]');
    return {
      before: Number(divider.previousElementSibling?.dataset.seq),
      after: Number(divider.nextElementSibling?.dataset.seq),
    };
  });
  assert.deepEqual(seqs, { before: EARLIER + 1, after: EARLIER + 2 });

  // What is on screen is read, the rest is not.
  const lastSeq = EARLIER + 1 + UNREAD;
  await until(async () => (await readPointer(chats.sid)) > EARLIER + 1, { message: 'the visible messages are read' });
  await sleep(800);
  const pointer = await readPointer(chats.sid);
  assert.ok(pointer < lastSeq, `not everything is read (read up to ${pointer} of ${lastSeq})`);
  const badge = Number(await item.getByTestId('unread-badge').textContent());
  assert.ok(badge > 0 && badge < UNREAD, `the badge counts what is left (${badge})`);

  // Scrolling down reads the rest.
  await until(async () => {
    await p.getByTestId('message-list').evaluate((el) => { el.scrollTop = el.scrollHeight; });
    return (await readPointer(chats.sid)) === lastSeq;
  }, { interval: 300, message: 'read to the end after scrolling down' });
  await until(async () => (await item.getByTestId('unread-badge').count()) === 0, { message: 'badge gone' });
});

test('the day separator never covers message text', async () => {
  const p = rae.page;
  await p.getByTestId('message-list').evaluate((el) => { el.scrollTop = el.scrollHeight / 2; });
  await sleep(300);
  const overlaps = await p.getByTestId('message-list').evaluate((box) => {
    const view = box.getBoundingClientRect();
    const visible = (r) => r.bottom > view.top && r.top < view.bottom;
    const intersects = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const pills = [...box.querySelectorAll('[data-testid="day-separator"] span')].map((el) => el.getBoundingClientRect()).filter(visible);
    const texts = [...box.querySelectorAll('[data-testid="message-content"]')].map((el) => el.getBoundingClientRect()).filter(visible);
    return pills.flatMap((pill) => texts.filter((text) => intersects(pill, text))).length;
  });
  assert.equal(overlaps, 0);
});

test('a quote whose original is not loaded loads it and jumps there', async () => {
  const p = rae.page;
  await openConversationTitled(p, 'Tia Carrere');
  const reply = messagesWithText(p, 'Remember this one?');
  await reply.waitFor();
  assert.equal(await messagesWithText(p, 'Old 3').count(), 0, 'the original is not loaded yet');
  const quote = reply.getByTestId('reply-quote');
  await until(async () => /Old 3/.test(await quote.textContent()), { message: 'the quote shows the original' });
  await quote.click();
  const original = messagesWithText(p, 'Old 3');
  await original.waitFor();
  await until(async () => (await placement(original)).inView, { message: 'scrolled to the original' });
  assert.equal(await original.evaluate((el) => el === document.activeElement), true, 'the original has the focus');
  assert.equal(await p.getByTestId('toast').isVisible(), false, 'no "further back" toast');
});

test('messages that arrived live before the chat was opened are not read by opening it', async () => {
  const p = rae.page;
  chats.ugo = (await rest(server.url, 'POST', '/conversations', {
    token: users.ugo.token, body: { type: 'direct', participant_ids: [users.rae.user_id] },
  })).conversation_id;
  const total = 60;
  for (let n = 1; n <= total; n++) await send('ugo', chats.ugo, `Live ${n} ${LONG}`);
  const item = p.getByTestId('conversation-item').filter({ hasText: 'Ugo Tognazzi' });
  await until(async () => /Live 60/.test(await item.getByTestId('conversation-preview').textContent()), { message: 'the last one arrived live' });
  await openConversationTitled(p, 'Ugo Tognazzi');
  await p.getByTestId('unread-divider').waitFor();
  const first = messagesWithText(p, `Live 1 ${LONG}`);
  await first.waitFor();
  await until(async () => (await placement(first)).inView, { message: 'opened at the first unread' });
  await until(async () => (await readPointer(chats.ugo)) > 0, { message: 'what is on screen is read' });
  await sleep(800);
  const pointer = await readPointer(chats.ugo);
  assert.ok(pointer < total, `opening did not read everything (read up to ${pointer} of ${total})`);
});
