// The server dies (kill -9) and comes back: the client shows it is reconnecting, backs
// off, reconnects by itself, syncs, and sends what was written meanwhile exactly once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, signUp, uniqueName, startDirectChat, sendText,
  messagesWithText, waitForStatus, waitOnline, openConversationTitled, sleep, DESKTOP,
} from './helpers.mjs';

let server;
let browser;
let kim;
let lou;
const names = { kim: uniqueName('kim'), lou: uniqueName('lou') };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  kim = await openApp(browser, server.url, { viewport: DESKTOP, name: 'kim' });
  lou = await openApp(browser, server.url, { viewport: DESKTOP, name: 'lou' });
  await signUp(kim.page, names.kim, 'Kim Possible');
  await signUp(lou.page, names.lou, 'Lou Reed');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('server killed and restarted: reconnect, sync, queued message sent once', { skip: !!process.env.PARLEY_URL }, async () => {
  const k = kim.page;
  const l = lou.page;
  await startDirectChat(k, names.lou);
  await sendText(k, 'Before the crash');
  await openConversationTitled(l, 'Kim Possible');
  await waitForStatus(k, 'Before the crash', 'read');

  await server.kill();
  await k.waitForFunction(() => ['reconnecting', 'connecting'].includes(
    document.querySelector('[data-testid="connection-banner"]')?.dataset.state,
  ), null, { timeout: 15000 });
  assert.match(await k.getByTestId('connection-banner').textContent(), /Reconnecting|Connection lost/);

  await sendText(k, 'Written while the server was down');
  const queued = messagesWithText(k, 'Written while the server was down');
  await queued.waitFor();
  assert.equal(await queued.getAttribute('data-status'), 'sending');
  await sleep(1500); // a few backoff rounds against a dead port

  await server.restart();
  await waitOnline(k, 45000);
  await waitOnline(l, 45000);
  await messagesWithText(l, 'Written while the server was down').waitFor({ timeout: 20000 });
  await waitForStatus(k, 'Written while the server was down', 'read', 20000);
  await sleep(1000);
  for (const p of [k, l]) {
    assert.equal(await messagesWithText(p, 'Written while the server was down').count(), 1);
    assert.equal(await messagesWithText(p, 'Before the crash').count(), 1);
    const seqs = await p.getByTestId('message').evaluateAll((els) => els.map((el) => Number(el.dataset.seq)));
    assert.deepEqual(seqs, [1, 2]);
  }
  // And the conversation goes on live.
  await sendText(l, 'Welcome back');
  await messagesWithText(k, 'Welcome back').waitFor();
});
