// Keyboard and screen reader use: few tab stops (the chat list and the message list are
// one stop each, arrow keys move inside), only new incoming messages are announced, user
// text carries dir="auto", the direct-chat header opens the contact's info, and message
// ticks tell read from delivered without colour, with enough contrast.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest, sendText,
  openConversationTitled, messagesWithText, waitForStatus, until, sleep, DESKTOP,
} from './helpers.mjs';

let server;
let browser;
let uma;
const users = {};
const names = { uma: uniqueName('uma'), vic: uniqueName('vic'), wes: uniqueName('wes') };
const chats = {};

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  users.uma = await registerApi(server.url, names.uma, 'Uma Thurman');
  users.vic = await registerApi(server.url, names.vic, 'Vic Vega');
  users.wes = await registerApi(server.url, names.wes, 'Wes Anderson');
  await rest(server.url, 'PATCH', '/users/me', { token: users.vic.token, body: { status_message: 'Out surfing' } });
  const direct = async (other) => (await rest(server.url, 'POST', '/conversations', {
    token: users.uma.token, body: { type: 'direct', participant_ids: [users[other].user_id] },
  })).conversation_id;
  chats.wes = await direct('wes');
  await rest(server.url, 'POST', `/conversations/${chats.wes}/messages`, {
    token: users.wes.token, body: { client_msg_id: 'wes-1', content: 'Hi from Wes' },
  });
  chats.vic = await direct('vic');
  // 30 messages, each with a reply button; some with a link or a quote too.
  for (let n = 1; n <= 30; n++) {
    const who = n % 2 ? 'vic' : 'uma';
    const content = n % 3 === 1 ? `Message ${n}: see https://example.com/${n}` : `Message ${n}`;
    await rest(server.url, 'POST', `/conversations/${chats.vic}/messages`, {
      token: users[who].token, body: { client_msg_id: `seed-${n}`, content, reply_to_seq: n % 4 ? null : n - 2 },
    });
  }
  uma = await openApp(browser, server.url, { viewport: DESKTOP, name: 'uma' });
  await uma.page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
  await logIn(uma.page, names.uma);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  return { testid: el?.dataset?.testid || el?.id || el?.tagName, seq: el?.dataset?.seq, conv: el?.dataset?.conversationId };
});

test('from the search box to the composer takes a handful of Tab presses', async () => {
  const p = uma.page;
  await openConversationTitled(p, 'Vic Vega');
  await messagesWithText(p, 'Message 30').waitFor();
  await p.getByTestId('search-input').focus();
  let presses = 0;
  const path = [];
  while (presses < 100) {
    await p.keyboard.press('Tab');
    presses += 1;
    const where = await focused(p);
    path.push(where.testid);
    if (where.testid === 'composer-input') break;
  }
  // search → chat list → chat header → the current message → its reply button → composer
  assert.ok(presses <= 7, `${presses} Tab presses: ${path.join(' → ')}`);
  assert.ok(path.includes('conversation-item') && path.includes('message'), `list and messages are reachable: ${path.join(' → ')}`);
});

test('arrow keys move between messages and between chats', async () => {
  const p = uma.page;
  await p.getByTestId('composer-input').focus();
  await p.keyboard.press('Shift+Tab');
  let where = await focused(p);
  for (let presses = 1; where.testid !== 'message' && presses < 10; presses++) {
    await p.keyboard.press('Shift+Tab');
    where = await focused(p);
  }
  assert.equal(where.testid, 'message', 'Shift+Tab from the composer reaches a message');
  const start = Number(where.seq);
  await p.keyboard.press('ArrowUp');
  assert.equal(Number((await focused(p)).seq), start - 1);
  await p.keyboard.press('ArrowUp');
  assert.equal(Number((await focused(p)).seq), start - 2);
  await p.keyboard.press('ArrowDown');
  assert.equal(Number((await focused(p)).seq), start - 1);
  await p.keyboard.press('End');
  assert.equal(Number((await focused(p)).seq), 30);
  // Tab from a message reaches its own actions, then leaves the list for the composer
  // (its attach button first).
  await p.keyboard.press('Tab');
  assert.equal((await focused(p)).testid, 'reply-button');
  await p.keyboard.press('Tab');
  assert.equal((await focused(p)).testid, 'attach-button');
  await p.keyboard.press('Tab');
  assert.equal((await focused(p)).testid, 'composer-input');

  await p.getByTestId('search-input').focus();
  await p.keyboard.press('ArrowDown');
  const first = await focused(p);
  assert.equal(first.testid, 'conversation-item');
  await p.keyboard.press('ArrowDown');
  const second = await focused(p);
  assert.equal(second.testid, 'conversation-item');
  assert.notEqual(second.conv, first.conv);
  await p.keyboard.press('ArrowUp');
  assert.equal((await focused(p)).conv, first.conv);
  const target = await p.evaluate((id) => document.querySelector(`[data-conversation-id="${id}"] [data-testid="conversation-title"]`).textContent, second.conv);
  await p.keyboard.press('ArrowDown');
  await p.keyboard.press('Enter');
  await until(async () => (await p.getByTestId('chat-title').textContent()) === target, { message: `opened ${target}` });
  // Only one chat in the list is a tab stop.
  assert.equal(await p.locator('[data-testid="conversation-item"][tabindex="0"]').count(), 1);
});

test('only new incoming messages are announced, and user text has dir="auto"', async () => {
  const p = uma.page;
  await openConversationTitled(p, 'Vic Vega');
  await messagesWithText(p, 'Message 30').waitFor();
  const liveRegions = await p.evaluate(() => [...document.querySelectorAll('[aria-live], [role="log"], [role="status"]')]
    .map((el) => ({ testid: el.dataset.testid, hasMessages: !!el.querySelector('[data-testid="message"]') })));
  assert.ok(liveRegions.every((r) => !r.hasMessages), `the message list is not a live region: ${JSON.stringify(liveRegions)}`);
  const live = p.getByTestId('live-region');
  assert.equal(await live.textContent(), '', 'switching chats announces nothing');

  await rest(server.url, 'POST', `/conversations/${chats.vic}/messages`, {
    token: users.vic.token, body: { client_msg_id: 'vic-hebrew', content: 'שלום, מה שלומך?' },
  });
  const hebrew = messagesWithText(p, 'שלום, מה שלומך?');
  await hebrew.waitFor();
  await until(async () => (await live.textContent()).includes('Vic Vega: שלום, מה שלומך?'), { message: 'announced' });
  const content = hebrew.getByTestId('message-content');
  assert.equal(await content.getAttribute('dir'), 'auto');
  assert.equal(await content.evaluate((el) => getComputedStyle(el).direction), 'rtl');
  const preview = p.getByTestId('conversation-item').filter({ hasText: 'Vic Vega' }).getByTestId('conversation-preview');
  assert.equal(await preview.getAttribute('dir'), 'auto');
  assert.equal(await p.getByTestId('chat-title').getAttribute('dir'), 'auto');
  assert.equal(await messagesWithText(p, 'Message 30').getByTestId('message-content').getAttribute('dir'), 'auto');
});

test('the direct-chat header opens the contact’s info', async () => {
  const p = uma.page;
  await p.getByTestId('chat-header').click();
  const dialog = p.getByTestId('contact-dialog');
  await dialog.waitFor();
  assert.equal(await p.getByTestId('contact-name').textContent(), 'Vic Vega');
  assert.equal(await p.getByTestId('contact-username').textContent(), `@${names.vic}`);
  await until(async () => (await p.getByTestId('contact-status').textContent()) === 'Out surfing', { message: 'status message' });
  await p.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
});

/** Contrast ratio (WCAG) of an element's text colour over the background it is painted on. */
async function contrastOf(locator) {
  return locator.evaluate((el) => {
    const parse = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const ch = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
    };
    let bgEl = el;
    let bg = null;
    while (bgEl) {
      const c = parse(getComputedStyle(bgEl).backgroundColor);
      if (c.length >= 3 && (c.length === 3 || c[3] > 0.99)) { bg = c.slice(0, 3); break; }
      bgEl = bgEl.parentElement;
    }
    let alpha = 1;
    for (let node = el; node && node !== bgEl; node = node.parentElement) alpha *= Number(getComputedStyle(node).opacity);
    const fg = parse(getComputedStyle(el).color);
    if (fg.length === 4) alpha *= fg[3];
    const mixed = fg.slice(0, 3).map((v, i) => v * alpha + bg[i] * (1 - alpha));
    const [a, b] = [lum(mixed), lum(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  });
}

test('read and delivered differ in shape, and ticks and times have 4.5:1 contrast', async () => {
  const p = uma.page;
  // Vic online but elsewhere: delivered; then Vic reads: read.
  const vic = await openApp(browser, server.url, { viewport: DESKTOP, name: 'vic' });
  await logIn(vic.page, names.vic);
  await sendText(p, 'Delivered, not read');
  await waitForStatus(p, 'Delivered, not read', 'delivered');
  const seq = Number(await messagesWithText(p, 'Delivered, not read').getAttribute('data-seq'));
  await rest(server.url, 'POST', `/conversations/${chats.vic}/read`, { token: users.vic.token, body: { up_to_seq: seq - 1 } });
  await waitForStatus(p, 'Message 30', 'read');
  await p.getByTestId('message-list').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  const ticks = (text) => messagesWithText(p, text).getByTestId('message-ticks');
  const read = ticks('Message 30');
  const delivered = ticks('Delivered, not read');
  const shape = (locator) => locator.evaluate((el) => el.querySelector('svg').innerHTML);
  assert.notEqual(await shape(read), await shape(delivered), 'a different glyph, not only a colour');
  assert.equal(await read.getAttribute('aria-label'), 'Read');
  assert.equal(await delivered.getAttribute('aria-label'), 'Delivered');

  for (const scheme of ['light', 'dark']) {
    await p.emulateMedia({ colorScheme: scheme });
    await sleep(100);
    for (const [what, locator] of [
      ['read ticks', read],
      ['delivered ticks', delivered],
      ['own time', messagesWithText(p, 'Delivered, not read').getByTestId('message-time')],
      ['their time', messagesWithText(p, 'שלום, מה שלומך?').getByTestId('message-time')],
      ['list preview', p.getByTestId('conversation-preview').first()],
    ]) {
      const ratio = await contrastOf(locator);
      assert.ok(ratio >= 4.5, `${what} (${scheme}): contrast ${ratio.toFixed(2)}:1`);
    }
  }
  await p.emulateMedia({ colorScheme: 'light' });
  await vic.context.close();
});
