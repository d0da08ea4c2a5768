// Two people, two browser contexts: a direct chat with ticks, typing, presence, replies,
// links, and HTML that must stay text.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, signUp, uniqueName, startDirectChat, sendText,
  messagesWithText, waitForStatus, screenshot, openConversationTitled, until, sleep, DESKTOP,
} from './helpers.mjs';

let server;
let browser;
let alice;
let bob;
const names = { alice: uniqueName('alice'), bob: uniqueName('bob') };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  alice = await openApp(browser, server.url, { viewport: DESKTOP, name: 'alice' });
  bob = await openApp(browser, server.url, { viewport: DESKTOP, name: 'bob' });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('sign up shows the login screen first and then the app', async () => {
  await alice.page.getByTestId('auth-view').waitFor();
  await screenshot(alice.page, 'desktop-login');
  await signUp(alice.page, names.alice, 'Alice Liddell');
  await signUp(bob.page, names.bob, 'Bob Builder');
  assert.equal(await alice.page.getByTestId('me-name').textContent(), 'Alice Liddell');
});

test('two users exchange messages and ticks go from sent to read', async () => {
  const a = alice.page;
  const b = bob.page;
  await startDirectChat(a, names.bob);
  assert.equal(await a.getByTestId('chat-title').textContent(), 'Bob Builder');

  await sendText(a, 'Hi Bob! Are you there?');
  const mine = messagesWithText(a, 'Hi Bob! Are you there?');
  await mine.waitFor();
  assert.equal(await mine.count(), 1);
  assert.equal(await mine.getAttribute('data-own'), 'true');
  // sent (✓) or already delivered (✓✓): Bob's device is online and acks at once.
  await a.waitForFunction(() => {
    const el = document.querySelector('[data-testid="message"][data-own="true"]');
    return el && ['sent', 'delivered'].includes(el.dataset.status);
  });
  // Delivered to Bob's device (he is online but has not opened the chat).
  await waitForStatus(a, 'Hi Bob! Are you there?', 'delivered');

  // Bob sees an unread badge and the total in the tab title.
  const item = b.getByTestId('conversation-item').first();
  await item.getByTestId('unread-badge').waitFor();
  assert.equal(await item.getByTestId('unread-badge').textContent(), '1');
  await until(async () => (await b.title()) === '(1) parley', { message: 'tab title with unread count' });
  assert.match(await item.getByTestId('conversation-preview').textContent(), /Hi Bob! Are you there\?/);

  await openConversationTitled(b, 'Alice Liddell');
  await messagesWithText(b, 'Hi Bob! Are you there?').waitFor();
  // Opening the chat reads it: Alice's ticks turn to read, Bob's badge goes away.
  await waitForStatus(a, 'Hi Bob! Are you there?', 'read');
  await until(async () => (await b.title()) === 'parley', { message: 'title without unread' });
  assert.equal(await b.getByTestId('unread-badge').count(), 0);

  // Typing indicator on Alice's side while Bob types.
  await b.getByTestId('composer-input').pressSequentially('Yes, ', { delay: 20 });
  await a.waitForFunction(() => /is typing/.test(document.querySelector('[data-testid="typing-indicator"]')?.textContent || ''));
  await b.getByTestId('composer-input').pressSequentially('I am here.');
  await b.getByTestId('composer-input').press('Enter');
  await messagesWithText(a, 'Yes, I am here.').waitFor();
  // Sender names and times are shown; messages are ordered by seq.
  const seqs = await a.getByTestId('message').evaluateAll((els) => els.map((el) => Number(el.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
  assert.match(await messagesWithText(a, 'Yes, I am here.').getByTestId('message-time').textContent(), /\d{1,2}:\d{2}/);
  assert.ok(await a.getByTestId('day-separator').count() >= 1);

  // Presence of the other side in the header.
  await a.waitForFunction(() => document.querySelector('[data-testid="chat-subtitle"]')?.textContent === 'online');
  await b.waitForFunction(() => document.querySelector('[data-testid="chat-subtitle"]')?.textContent === 'online');
});

test('shift+enter makes a new line and replies quote the original', async () => {
  const a = alice.page;
  const b = bob.page;
  const input = a.getByTestId('composer-input');
  await input.fill('');
  await input.pressSequentially('line one');
  await input.press('Shift+Enter');
  await input.pressSequentially('line two');
  assert.equal(await input.inputValue(), 'line one\nline two');
  await input.press('Enter');
  await messagesWithText(b, 'line one\nline two').waitFor();

  // Bob replies to Alice's first message.
  const original = messagesWithText(b, 'Hi Bob! Are you there?');
  await original.hover();
  await original.getByTestId('reply-button').click();
  await b.getByTestId('reply-bar').waitFor();
  // Esc cancels a reply…
  await b.getByTestId('composer-input').press('Escape');
  await b.getByTestId('reply-bar').waitFor({ state: 'hidden' });
  // …and a new one goes through.
  await original.hover();
  await original.getByTestId('reply-button').click();
  await sendText(b, 'Replying to your first message');
  const reply = messagesWithText(a, 'Replying to your first message');
  await reply.waitFor();
  await until(async () => /Hi Bob! Are you there\?/.test(await reply.getByTestId('reply-quote').textContent()), {
    message: 'quoted snippet',
  });
  await waitForStatus(b, 'Replying to your first message', 'read');
});

test('HTML in a message is shown as text and links are safe', async () => {
  const a = alice.page;
  const b = bob.page;
  let dialogs = 0;
  for (const p of [a, b]) p.on('dialog', async (d) => { dialogs += 1; await d.dismiss(); });
  const evil = '<img src=x onerror=alert(1)>';
  await sendText(b, evil);
  const shown = messagesWithText(a, evil);
  await shown.waitFor();
  assert.equal(await shown.getByTestId('message-content').textContent(), evil);
  assert.equal(await a.locator('[data-testid="message-list"] img').count(), 0);
  assert.equal(await b.locator('[data-testid="message-list"] img').count(), 0);
  // The conversation list preview is text too.
  assert.equal(await a.locator('[data-testid="conversation-list"] img').count(), 0);

  await sendText(b, 'docs at https://example.com/a?b=1&c=<2>. and javascript:alert(2) <a href="javascript:alert(3)">x</a>');
  const link = a.locator('[data-testid="message-link"]').last();
  await link.waitFor();
  assert.equal(await link.getAttribute('href'), 'https://example.com/a?b=1&c=');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await link.getAttribute('target'), '_blank');
  const hrefs = await a.locator('[data-testid="message-list"] a').evaluateAll((els) => els.map((el) => el.getAttribute('href')));
  assert.ok(hrefs.every((href) => /^https?:/.test(href)), `only http(s) links: ${hrefs}`);
  await sleep(300);
  assert.equal(dialogs, 0, 'no alert() ran');
});

test('content over 64 KiB is refused before sending', async () => {
  const a = alice.page;
  const big = 'é'.repeat(33000); // 66,000 bytes in UTF-8, 33,000 characters
  await a.getByTestId('composer-input').fill(big);
  assert.equal(await a.getByTestId('send-button').isDisabled(), true);
  assert.match(await a.getByTestId('composer-count').textContent(), /KiB/);
  await a.getByTestId('composer-input').press('Enter');
  await a.getByTestId('composer-error').waitFor();
  assert.equal(await messagesWithText(a, big).count(), 0);
  await a.getByTestId('composer-input').fill('');
});

test('screenshots of the direct chat', async () => {
  await alice.page.mouse.move(0, 0);
  await screenshot(alice.page, 'desktop-direct-chat');
  await screenshot(bob.page, 'desktop-direct-chat-bob');
  await alice.page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(alice.page, 'desktop-direct-chat-dark');
  await alice.page.emulateMedia({ colorScheme: 'light' });
});

test('search filters the list and finds people', async () => {
  const a = alice.page;
  await a.getByTestId('search-input').fill(names.bob.slice(0, 4));
  await a.locator(`[data-testid="user-result"][data-username="${names.bob}"]`).waitFor();
  await a.getByTestId('search-input').press('Escape');
  await a.getByTestId('search-results').waitFor({ state: 'hidden' });
});

test('notifications: asked politely, shown for messages while the tab is hidden', async () => {
  const a = alice.page;
  const b = bob.page;
  // A stand-in Notification API that records what the app shows.
  await a.evaluate(() => {
    window.__notes = [];
    class FakeNotification {
      static permission = 'default';
      static async requestPermission() {
        FakeNotification.permission = 'granted';
        return 'granted';
      }
      constructor(title, options) {
        window.__notes.push({ title, body: options && options.body });
      }
      close() {}
    }
    window.Notification = FakeNotification;
  });
  // Re-evaluate the banner with the stand-in in place: switching chats re-renders it.
  await a.evaluate(() => localStorage.removeItem('parley.notify.dismissed'));
  await a.getByTestId('notify-banner').waitFor();
  await a.getByTestId('notify-enable').click();
  await a.getByTestId('notify-banner').waitFor({ state: 'hidden' });

  await a.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await sendText(b, 'Ping while you are away');
  await until(async () => (await a.evaluate(() => window.__notes.length)) === 1, { message: 'one notification' });
  const [note] = await a.evaluate(() => window.__notes);
  assert.equal(note.title, 'Bob Builder');
  assert.equal(note.body, 'Ping while you are away');
  // Hidden tab: the message is not marked read, so Bob still sees it as delivered.
  await waitForStatus(b, 'Ping while you are away', 'delivered');
  await until(async () => (await a.title()) === '(1) parley', { message: 'unread in title while hidden' });

  await a.evaluate(() => {
    delete document.visibilityState;
    delete document.hidden;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await waitForStatus(b, 'Ping while you are away', 'read');
  await until(async () => (await a.title()) === 'parley', { message: 'read after coming back' });
});

test('when the other side goes away, their last seen is shown', async () => {
  const a = alice.page;
  await bob.context.close();
  await a.waitForFunction(
    () => /last seen/.test(document.querySelector('[data-testid="chat-subtitle"]')?.textContent || ''),
    null,
    { timeout: 20000 },
  );
  assert.equal(await a.getByTestId('online-dot').count(), 0);
});
