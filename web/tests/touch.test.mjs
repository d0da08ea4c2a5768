// A phone with a touch screen (390×844): a long press on a message opens its menu as a
// sheet, the full emoji picker from there, a swipe to the right replies, and search in
// the chat. Touches are real touch events (Chromium's Input.dispatchTouchEvent).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, logIn, uniqueName, registerApi, rest, openConversationTitled,
  messagesWithText, screenshot, until, sleep, PHONE,
} from './helpers.mjs';

let server;
let browser;
let context;
let page;
let cdp;
const users = {};
const names = { gus: uniqueName('gus'), hal: uniqueName('hal') };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  users.gus = await registerApi(server.url, names.gus, 'Gus Grissom');
  users.hal = await registerApi(server.url, names.hal, 'Hal Hartley');
  const chat = (await rest(server.url, 'POST', '/conversations', {
    token: users.gus.token, body: { type: 'direct', participant_ids: [users.hal.user_id] },
  })).conversation_id;
  const lines = [
    ['hal', 'Are you coming to the launch on Saturday?'],
    ['gus', 'Wouldn’t miss it. What time is the countdown?'],
    ['hal', 'Countdown starts at 9, launch at 9:30 if the weather holds'],
    ['gus', 'I will bring the telescope and some coffee'],
    ['hal', 'Perfect. Meet at the north gate of the launch site'],
  ];
  let n = 0;
  for (const [who, content] of lines) {
    n += 1;
    await rest(server.url, 'POST', `/conversations/${chat}/messages`, {
      token: users[who].token, body: { client_msg_id: `seed-${n}`, content },
    });
  }
  context = await browser.newContext({
    viewport: PHONE, hasTouch: true, isMobile: true, baseURL: server.url, locale: 'en-GB', timezoneId: 'UTC',
  });
  page = await context.newPage();
  page.on('pageerror', (err) => console.error('[gus] page error:', err.message));
  await page.goto('/');
  await page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
  await logIn(page, names.gus);
  cdp = await context.newCDPSession(page);
  await openConversationTitled(page, 'Hal Hartley');
  await messagesWithText(page, 'Perfect. Meet at the north gate of the launch site').waitFor();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function centre(locator) {
  const box = await locator.boundingBox();
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

async function longPress(locator) {
  const { x, y } = await centre(locator);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x, y }] });
  await sleep(700);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
}

async function swipeRight(locator) {
  const { x, y } = await centre(locator);
  const start = Math.max(20, x - 60);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: start, y }] });
  for (let step = 1; step <= 10; step++) {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x: start + step * 10, y }] });
    await sleep(16);
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
}

test('a long press opens the message menu as a sheet; the full picker reacts', async () => {
  const text = 'Countdown starts at 9, launch at 9:30 if the weather holds';
  const bubble = messagesWithText(page, text).locator('.bubble');
  await longPress(bubble);
  const menu = page.getByTestId('message-menu');
  await menu.waitFor();
  const box = await menu.boundingBox();
  assert.ok(Math.abs(box.y + box.height - PHONE.height) < 2 && box.width >= PHONE.width - 2, `a sheet at the bottom: ${JSON.stringify(box)}`);
  await screenshot(page, 'phone-message-menu');
  await menu.getByTestId('quick-reaction-more').tap();
  const picker = page.getByTestId('emoji-picker');
  await picker.waitFor();
  await menu.waitFor({ state: 'hidden' });
  await picker.locator('[data-testid="emoji-category"][data-category="travel"]').tap();
  await sleep(200);
  await screenshot(page, 'phone-emoji-picker');
  await picker.locator('[data-testid="emoji-option"][data-emoji="🚀"]').first().tap();
  await picker.waitFor({ state: 'hidden' });
  const chip = messagesWithText(page, text).locator('[data-testid="reaction-chip"][data-emoji="🚀"]');
  await chip.waitFor();
  assert.equal(await chip.getAttribute('data-mine'), 'true');
  // A tap outside closes an open menu without doing anything.
  await longPress(bubble);
  await menu.waitFor();
  await page.touchscreen.tap(200, 120);
  await menu.waitFor({ state: 'hidden' });
  // The dimmed backdrop takes that tap (and only it), then goes.
  await page.locator('#popover-backdrop').waitFor({ state: 'hidden' });
  assert.equal(await page.getByTestId('reply-bar').isVisible(), false);
});

test('swiping a message to the right replies to it', async () => {
  const text = 'I will bring the telescope and some coffee';
  await swipeRight(messagesWithText(page, text).locator('.bubble'));
  const bar = page.getByTestId('reply-bar');
  await bar.waitFor();
  assert.match(await bar.textContent(), /telescope/);
  await sleep(400); // Chromium makes no click of a tap right after a swipe gesture
  await page.getByTestId('reply-cancel').tap();
  await bar.waitFor({ state: 'hidden' });
  assert.equal(await page.getByTestId('message-menu').isVisible(), false, 'a swipe is not a long press');
});

test('search in the chat on a phone', async () => {
  await page.getByTestId('chat-search-button').tap();
  await page.getByTestId('chat-search-input').fill('launch');
  await until(async () => (await page.getByTestId('chat-search-result').count()) === 3, { message: 'three hits' });
  await screenshot(page, 'phone-search-results');
  await page.getByTestId('chat-search-result').last().tap();
  const row = messagesWithText(page, 'Are you coming to the launch on Saturday?');
  await until(async () => /\bhighlighted\b/.test(await row.getAttribute('class')), { message: 'highlighted' });
});
