// Sending under pressure: a burst into a group beyond the server's rate limit is stored in
// the order it was written (the conversation's queue pauses for `retry_after_ms` and goes
// on in order), and logging out with messages still waiting asks first.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest, sendText,
  openConversationTitled, messagesWithText, until, sleep, DESKTOP,
} from './helpers.mjs';

const GROUP_LIMIT = 30; // sends per minute per user in one group: bursts of 30, then one every 2 s
const BURST = GROUP_LIMIT + 6;

let server;
let browser;
let ann;
const users = {};
const names = { ann: uniqueName('ann'), ben: uniqueName('ben') };
const frames = []; // {at, dir: 'in'|'out', frame} of Ann's WebSockets
let groupId;
let directId;

before(async () => {
  server = await startServer({ env: { PARLEY_LIMITS__GROUP_MESSAGES_PER_MINUTE: String(GROUP_LIMIT) } });
  browser = await launchBrowser();
  users.ann = await registerApi(server.url, names.ann, 'Ann Archer');
  users.ben = await registerApi(server.url, names.ben, 'Ben Baker');
  const group = await rest(server.url, 'POST', '/conversations', {
    token: users.ann.token, body: { type: 'group', name: 'Burst club', member_ids: [users.ben.user_id] },
  });
  groupId = group.conversation_id;
  const direct = await rest(server.url, 'POST', '/conversations', {
    token: users.ann.token, body: { type: 'direct', participant_ids: [users.ben.user_id] },
  });
  directId = direct.conversation_id;
  ann = await openApp(browser, server.url, { viewport: DESKTOP, name: 'ann' });
  ann.page.on('websocket', (ws) => {
    const record = (dir) => ({ payload }) => {
      try {
        frames.push({ at: Date.now(), dir, frame: JSON.parse(String(payload)) });
      } catch {
        /* not JSON */
      }
    };
    ws.on('framereceived', record('in'));
    ws.on('framesent', record('out'));
  });
  await logIn(ann.page, names.ann);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Texts of a conversation's stored text messages, in seq order (read with Ben's token). */
async function storedTexts(conversationId) {
  const page = await rest(server.url, 'GET', `/conversations/${conversationId}/messages?after_seq=0&limit=100`, {
    token: users.ben.token,
  });
  return page.messages.filter((m) => m.content_type === 'text').map((m) => m.content);
}

const refusals = () => frames.filter((f) => f.dir === 'in' && f.frame.type === 'error' && f.frame.code === 'rate_limited');
const sends = () => frames.filter((f) => f.dir === 'out' && f.frame.type === 'send_message');

async function outboxLength(page) {
  return page.evaluate(() => Object.keys(localStorage)
    .filter((k) => k.startsWith('parley.outbox.'))
    .flatMap((k) => JSON.parse(localStorage.getItem(k) || '[]')).length);
}

test('a burst beyond the group rate limit is stored in the order it was written', async () => {
  const a = ann.page;
  await openConversationTitled(a, 'Burst club');
  const texts = Array.from({ length: BURST }, (_, k) => `Burst ${k + 1}`);
  for (const text of texts) await sendText(a, text);
  await until(() => refusals().length > 0, { message: 'a rate_limited refusal from the server' });
  await a.getByTestId('toast').filter({ hasText: 'Slow down' }).waitFor();

  await until(async () => (await storedTexts(groupId)).length >= BURST, {
    timeout: 60000, interval: 500, message: 'every message of the burst stored',
  });
  assert.deepEqual(await storedTexts(groupId), texts, 'stored once each, in the order written');
  await until(async () => (await outboxLength(a)) === 0, { message: 'outbox drained' });

  // While a refusal's wait runs, nothing more of that conversation goes out; the refused
  // message is the first to go after it.
  for (const refusal of refusals()) {
    const wait = refusal.frame.retry_after_ms;
    const early = sends().filter((s) => s.frame.conversation_id === groupId
      && s.at > refusal.at + 50 && s.at < refusal.at + wait - 100);
    assert.deepEqual(early.map((s) => s.frame.content), [], `nothing sent during the ${wait} ms wait`);
  }
  const lastRefusal = refusals().at(-1);
  const next = sends().find((s) => s.at > lastRefusal.at + 50);
  assert.equal(next.frame.client_msg_id, lastRefusal.frame.client_msg_id, 'the refused message goes first after the wait');

  // The page shows them in that order too, and Ben's view is the same.
  const shown = await a.getByTestId('message').evaluateAll((els) => els
    .map((el) => el.querySelector('[data-testid="message-content"]')?.textContent)
    .filter((t) => t && t.startsWith('Burst ')));
  assert.deepEqual(shown, texts);
});

test('log out with rate-limited messages waiting: asked first, and no toast on the login screen', async () => {
  const a = ann.page;
  const before = refusals().length;
  // The group's allowance is used up: most of these have to wait.
  for (let k = 1; k <= 4; k++) await sendText(a, `Late ${k}`);
  await until(() => refusals().length > before, { message: 'the late ones are refused for now' });
  await a.getByTestId('toast').filter({ hasText: 'Slow down' }).waitFor();

  await a.getByTestId('logout-button').click();
  const dialog = a.getByTestId('logout-dialog');
  await dialog.waitFor();
  assert.match(await a.getByTestId('logout-unsent').textContent(), /waiting to be sent/);
  // Stay: nothing is lost, the app goes on.
  await a.getByTestId('logout-cancel').click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await a.getByTestId('app-view').isVisible(), true);
  assert.ok(await outboxLength(a) > 0, 'still queued');

  // Discard: logged out, the queue is gone, and the "Slow down" toast does not follow.
  await a.getByTestId('logout-button').click();
  await dialog.waitFor();
  await a.getByTestId('logout-discard').click();
  await a.getByTestId('auth-view').waitFor();
  assert.equal(await a.getByTestId('toast').isVisible(), false, 'no toast on the login screen');
  assert.equal(await outboxLength(a), 0);
  await sleep(4000); // past any pause the discarded messages were waiting for
  assert.equal(await a.getByTestId('toast').isVisible(), false, 'still no toast');
  assert.equal(await a.getByTestId('auth-view').isVisible(), true);
});

test('log out while offline: wait for the message to be sent, then log out', async () => {
  const a = ann.page;
  await logIn(a, names.ann);
  await openConversationTitled(a, 'Ben Baker');
  await ann.context.setOffline(true);
  await a.waitForFunction(() => document.querySelector('[data-testid="connection-banner"]')?.dataset.state === 'offline');
  await sendText(a, 'Written offline before logging out');
  await messagesWithText(a, 'Written offline before logging out').waitFor();

  await a.getByTestId('logout-button').click();
  await a.getByTestId('logout-dialog').waitFor();
  assert.match(await a.getByTestId('logout-unsent').textContent(), /1 message is still waiting to be sent\. You are offline\./);
  await a.getByTestId('logout-wait').click();
  await sleep(500);
  assert.equal(await a.getByTestId('app-view').isVisible(), true, 'still in while the message waits');

  await ann.context.setOffline(false);
  await a.getByTestId('auth-view').waitFor({ timeout: 30000 });
  const stored = await storedTexts(directId);
  assert.equal(stored.filter((t) => t === 'Written offline before logging out').length, 1, 'sent exactly once');
  assert.equal(await outboxLength(a), 0);
});
