// Going offline and back: a visible banner, the message typed offline is queued (and
// persisted), then delivered exactly once after the reconnect and sync.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, signUp, uniqueName, startDirectChat, sendText,
  messagesWithText, waitForStatus, waitOnline, openConversationTitled, screenshot, sleep, until, DESKTOP,
} from './helpers.mjs';

let server;
let browser;
let fay;
let gus;
const names = { fay: uniqueName('fay'), gus: uniqueName('gus') };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  fay = await openApp(browser, server.url, { viewport: DESKTOP, name: 'fay' });
  gus = await openApp(browser, server.url, { viewport: DESKTOP, name: 'gus' });
  await signUp(fay.page, names.fay, 'Fay Wray');
  await signUp(gus.page, names.gus, 'Gus Grissom');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function historyCount(page, text) {
  return page.evaluate(async (t) => {
    const { token } = JSON.parse(localStorage.getItem('parley.session'));
    const headers = { Authorization: `Bearer ${token}` };
    const list = await (await fetch('/api/v1/conversations?limit=100', { headers })).json();
    let count = 0;
    for (const conv of list.conversations) {
      const page = await (await fetch(`/api/v1/conversations/${conv.conversation_id}/messages?limit=100&before_seq=${conv.last_seq + 1}`, { headers })).json();
      count += page.messages.filter((m) => m.content === t).length;
    }
    return count;
  }, text);
}

test('a message written offline is queued and delivered once when back online', async () => {
  const f = fay.page;
  const g = gus.page;
  await startDirectChat(f, names.gus);
  await sendText(f, 'Online hello');
  await openConversationTitled(g, 'Fay Wray');
  await messagesWithText(g, 'Online hello').waitFor();

  await fay.context.setOffline(true);
  await f.waitForFunction(() => document.querySelector('[data-testid="connection-banner"]')?.dataset.state === 'offline');
  assert.equal(await f.getByTestId('connection-banner').isVisible(), true);

  await sendText(f, 'Sent while offline');
  const queued = messagesWithText(f, 'Sent while offline');
  await queued.waitFor();
  assert.equal(await queued.getAttribute('data-status'), 'sending');
  const outbox = await f.evaluate(() => Object.keys(localStorage)
    .filter((k) => k.startsWith('parley.outbox.'))
    .flatMap((k) => JSON.parse(localStorage.getItem(k))));
  assert.equal(outbox.length, 1, 'the queued message is persisted');
  assert.match(await f.getByTestId('connection-banner').textContent(), /1 message waiting/);
  await screenshot(f, 'desktop-offline');
  await sleep(500);
  assert.equal(await messagesWithText(g, 'Sent while offline').count(), 0);

  await fay.context.setOffline(false);
  await waitOnline(f, 30000);
  await waitForStatus(f, 'Sent while offline', 'read', 20000);
  await messagesWithText(g, 'Sent while offline').waitFor();
  await sleep(1000);
  assert.equal(await messagesWithText(g, 'Sent while offline').count(), 1);
  assert.equal(await messagesWithText(f, 'Sent while offline').count(), 1);
  assert.equal(await f.evaluate(() => Object.keys(localStorage)
    .filter((k) => k.startsWith('parley.outbox.'))
    .flatMap((k) => JSON.parse(localStorage.getItem(k))).length), 0, 'outbox drained');

  // The server stored it once too, and a reload shows it once.
  assert.equal(await historyCount(f, 'Sent while offline'), 1);
  await f.reload();
  await waitOnline(f);
  await messagesWithText(f, 'Sent while offline').waitFor();
  assert.equal(await messagesWithText(f, 'Sent while offline').count(), 1);
});

test('messages sent to you while you were offline arrive through sync', async () => {
  const f = fay.page;
  const g = gus.page;
  await fay.context.setOffline(true);
  await f.waitForFunction(() => document.querySelector('[data-testid="connection-banner"]')?.dataset.state === 'offline');
  await sendText(g, 'Missed one');
  await sendText(g, 'Missed two');
  await waitForStatus(g, 'Missed two', 'sent');
  await fay.context.setOffline(false);
  await waitOnline(f, 30000);
  await messagesWithText(f, 'Missed one').waitFor();
  await messagesWithText(f, 'Missed two').waitFor();
  const seqs = await f.getByTestId('message').evaluateAll((els) => els.map((el) => Number(el.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'seq order');
  assert.equal(new Set(seqs).size, seqs.length, 'no duplicates');
  await waitForStatus(g, 'Missed two', 'read', 20000);
});

test('a queued message survives a reload and is sent after it', async () => {
  const f = fay.page;
  const g = gus.page;
  // Keep the WebSocket from ever connecting so the message stays queued, then reload.
  await f.evaluate(() => {
    const { user_id: userId } = JSON.parse(localStorage.getItem('parley.session'));
    const convId = decodeURIComponent(location.hash.replace('#/c/', ''));
    const key = `parley.outbox.${userId}`;
    const items = JSON.parse(localStorage.getItem(key) || '[]');
    items.push({
      client_msg_id: 'test-queued-across-reload-1', conversation_id: convId, content: 'Queued across a reload',
      reply_to_seq: null, created_at: new Date().toISOString(), status: 'sending',
    });
    localStorage.setItem(key, JSON.stringify(items));
  });
  await f.reload();
  await waitOnline(f);
  await messagesWithText(g, 'Queued across a reload').waitFor();
  await until(async () => (await messagesWithText(f, 'Queued across a reload').count()) === 1, { message: 'one copy' });
  await sleep(1000);
  assert.equal(await messagesWithText(g, 'Queued across a reload').count(), 1);
});
