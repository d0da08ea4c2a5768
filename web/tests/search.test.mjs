// Search: in the open chat (the header's search box: results with the matches marked, a
// pick jumps to the message and highlights it, loading the messages around it when it is
// far back) and across all chats (the sidebar: results labelled by chat, a pick opens the
// chat at the message). Snippets stay text; what was edited is found by its new words,
// what was deleted or hidden is not found.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest, sendText,
  openConversationTitled, messagesWithText, screenshot, until, sleep, DESKTOP,
} from './helpers.mjs';

const FILLER = 320;

let server;
let browser;
let dee;
let eli;
const users = {};
const names = { dee: uniqueName('dee'), eli: uniqueName('eli'), fay: uniqueName('fay') };
const chats = {};

let sent = 0;
async function send(who, chat, content, extra = {}) {
  sent += 1;
  return rest(server.url, 'POST', `/conversations/${chat}/messages`, {
    token: users[who].token, body: { client_msg_id: `seed-${sent}`, content, ...extra },
  });
}

before(async () => {
  // Searching as you type: a generous search limit for the test.
  server = await startServer({
    env: {
      PARLEY_LIMITS__SEARCHES_PER_MINUTE: '600',
      PARLEY_LIMITS__GROUP_MESSAGES_PER_MINUTE: '1000',
      PARLEY_LIMITS__USER_MESSAGES_PER_MINUTE: '1000',
    },
  });
  browser = await launchBrowser();
  users.dee = await registerApi(server.url, names.dee, 'Dee Dee Ramone');
  users.eli = await registerApi(server.url, names.eli, 'Eli Wallach');
  users.fay = await registerApi(server.url, names.fay, 'Fay Wray');
  chats.eli = (await rest(server.url, 'POST', '/conversations', {
    token: users.dee.token, body: { type: 'direct', participant_ids: [users.eli.user_id] },
  })).conversation_id;
  chats.club = (await rest(server.url, 'POST', '/conversations', {
    token: users.dee.token, body: { type: 'group', name: 'Film club', member_ids: [users.eli.user_id, users.fay.user_id] },
  })).conversation_id;
  await send('eli', chats.eli, 'Which film on Friday? I vote for the harbour documentary');
  await send('dee', chats.eli, 'The harbour one, yes. Tickets are cheaper on Fridays');
  await send('eli', chats.eli, 'Then Friday at the Harbour Cinema');
  // Far back in the group: the secret word, then a long history over it.
  await send('fay', chats.club, 'Before we start: the password for the projector is pineapple');
  for (let n = 1; n <= FILLER; n++) await send(n % 2 ? 'eli' : 'fay', chats.club, `Filler message ${n}`);
  await send('dee', chats.club, 'Who remembers the projector password?');
  // Markup is only text, in snippets too.
  await send('eli', chats.eli, '<img src=x onerror="window.__xss=1"> harbour <b>bold</b>');
  dee = await openApp(browser, server.url, { viewport: DESKTOP, name: 'dee' });
  eli = await openApp(browser, server.url, { viewport: DESKTOP, name: 'eli' });
  for (const [who, app] of [['dee', dee], ['eli', eli]]) {
    await app.page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
    await logIn(app.page, names[who]);
  }
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function hitsOf(page, testid) {
  return page.getByTestId(testid).evaluateAll((els) => els.map((el) => ({
    seq: Number(el.dataset.seq),
    conversation: el.dataset.conversationId,
    marks: [...el.querySelectorAll('mark')].map((m) => m.textContent),
    text: el.querySelector('[data-testid="search-snippet"]')?.textContent,
    chat: el.querySelector('[data-testid="search-hit-chat"]')?.textContent,
    elements: [...el.querySelectorAll('[data-testid="search-snippet"] *')].map((e) => e.tagName),
  })));
}

test('search in a chat: marked results, a pick jumps to the message and highlights it', async () => {
  const p = dee.page;
  await openConversationTitled(p, 'Eli Wallach');
  await messagesWithText(p, 'Then Friday at the Harbour Cinema').waitFor();
  await p.getByTestId('chat-search-button').click();
  const input = p.getByTestId('chat-search-input');
  await input.waitFor();
  assert.equal(await p.evaluate(() => document.activeElement?.dataset.testid), 'chat-search-input');
  await input.fill('harb');
  await until(async () => (await p.getByTestId('chat-search-result').count()) === 4, { message: 'four hits (prefix match)' });
  const hits = await hitsOf(p, 'chat-search-result');
  assert.deepEqual(hits.map((h) => h.seq), [...hits.map((h) => h.seq)].sort((x, y) => y - x), 'newest first');
  assert.ok(hits.every((h) => h.marks.length >= 1 && h.marks.every((m) => /^harbour$/i.test(m))), JSON.stringify(hits));
  // The snippet of the message with markup: text only, no elements but <mark>.
  const markup = hits.find((h) => h.text.includes('<b>bold</b>'));
  assert.ok(markup, 'the markup message is found');
  assert.deepEqual(markup.elements, ['MARK']);
  assert.equal(await p.evaluate(() => window.__xss), undefined);
  await screenshot(p, 'desktop-search-results');

  // Keyboard: ↓ into the results, Enter picks the oldest one.
  await input.press('ArrowDown');
  for (let n = 0; n < 3; n++) await p.keyboard.press('ArrowDown');
  const oldest = hits[hits.length - 1].seq;
  assert.equal(Number(await p.evaluate(() => document.activeElement?.dataset.seq)), oldest);
  await p.keyboard.press('Enter');
  const row = p.locator(`[data-testid="message"][data-seq="${oldest}"]`);
  await until(async () => /\bhighlighted\b/.test(await row.getAttribute('class')), { message: 'the message is highlighted' });
  assert.equal(Number(await p.evaluate(() => document.activeElement?.dataset.seq)), oldest, 'and focused');
  // Escape closes the search.
  await input.focus();
  await input.press('Escape');
  await p.getByTestId('chat-search').waitFor({ state: 'hidden' });
});

test('a hit far back is loaded with the messages around it, and the hole closes as you scroll', async () => {
  const p = dee.page;
  await openConversationTitled(p, 'Film club');
  await messagesWithText(p, 'Who remembers the projector password?').waitFor();
  const loaded = await p.getByTestId('message').count();
  assert.ok(loaded < 80, `only the latest page is loaded (${loaded})`);
  await p.getByTestId('chat-search-button').click();
  await p.getByTestId('chat-search-input').fill('pineapple');
  const hit = p.getByTestId('chat-search-result');
  await hit.first().waitFor();
  assert.equal(await hit.count(), 1);
  await hit.first().click();
  const secret = messagesWithText(p, 'Before we start: the password for the projector is pineapple');
  await secret.waitFor();
  await until(async () => /\bhighlighted\b/.test(await secret.getAttribute('class')), { message: 'highlighted' });
  // The messages after it were loaded too, not the whole history: there is a hole.
  await messagesWithText(p, 'Filler message 20').waitFor();
  assert.ok(await p.getByTestId('history-gap').count() >= 1, 'a hole between the two loaded parts');
  assert.ok(await p.getByTestId('message').count() < FILLER, 'not every page up to it');
  // Scrolling down loads the hole.
  for (let round = 0; round < 150 && await p.getByTestId('history-gap').count(); round++) {
    await p.getByTestId('message-list').evaluate((el) => { el.scrollTop += 600; });
    await sleep(150);
  }
  assert.equal(await p.getByTestId('history-gap').count(), 0, 'no hole left');
  const seqs = await p.getByTestId('message').evaluateAll((els) => els.map((el) => Number(el.dataset.seq)));
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], 'in order');
  await messagesWithText(p, `Filler message ${FILLER / 2}`).waitFor();
  await p.getByTestId('chat-search-close').click();
});

test('search across chats in the sidebar: labelled by chat, a pick opens the chat at the message', async () => {
  const p = eli.page;
  const search = p.getByTestId('search-input');
  await search.fill('pineapple');
  const result = p.getByTestId('message-result');
  await result.first().waitFor();
  const hits = await hitsOf(p, 'message-result');
  assert.equal(hits.length, 1);
  assert.equal(hits[0].chat, 'Film club');
  assert.deepEqual(hits[0].marks, ['pineapple']);
  await search.fill('harbour');
  await until(async () => (await p.getByTestId('message-result').count()) === 4, { message: 'hits in the direct chat' });
  assert.ok((await hitsOf(p, 'message-result')).every((h) => h.chat === 'Dee Dee Ramone'));
  await screenshot(p, 'desktop-global-search');
  await search.fill('pineapple');
  await until(async () => (await hitsOf(p, 'message-result')).length === 1 && (await hitsOf(p, 'message-result'))[0].chat === 'Film club', { message: 'pineapple again' });
  await p.getByTestId('message-result').first().click();
  await p.waitForFunction(() => document.querySelector('[data-testid="chat-title"]')?.textContent === 'Film club');
  const secret = messagesWithText(p, 'Before we start: the password for the projector is pineapple');
  await secret.waitFor();
  await until(async () => /\bhighlighted\b/.test(await secret.getAttribute('class')), { message: 'opened at the message' });
  await search.fill('');
});

test('edited messages are found by their new words, deleted and hidden ones are not', async () => {
  const d = dee.page;
  const e = eli.page;
  await openConversationTitled(d, 'Eli Wallach');
  await sendText(d, 'Bring the popcorn maker');
  const mine = messagesWithText(d, 'Bring the popcorn maker');
  await until(async () => ['sent', 'delivered', 'read'].includes(await mine.getAttribute('data-status')), { message: 'stored' });
  // The message's own menu by a right click: a hover toolbar can be covered by the
  // message above while the list still settles.
  await mine.click({ button: 'right' });
  await d.getByTestId('menu-edit').click();
  await d.getByTestId('composer-input').fill('Bring the nachos maker');
  await d.getByTestId('composer-input').press('Enter');
  await messagesWithText(d, 'Bring the nachos maker').getByTestId('edited-label').waitFor();
  await openConversationTitled(e, 'Dee Dee Ramone');
  await messagesWithText(e, 'Bring the nachos maker').waitFor();
  const find = async (page, query) => {
    const search = page.getByTestId('search-input');
    await search.fill('');
    await page.getByTestId('search-results').waitFor({ state: 'hidden' });
    await search.fill(query);
    await page.locator('[data-testid="message-results"]').waitFor();
    return page.getByTestId('message-result').count();
  };
  await until(async () => (await find(e, 'nachos')) === 1, { message: 'found by the new word' });
  assert.equal(await find(e, 'popcorn'), 0, 'not by the old one');

  // Eli hides Dee's message for himself: no longer found by him, still by Dee.
  await e.getByTestId('search-input').fill('');
  const theirs = messagesWithText(e, 'Bring the nachos maker');
  await theirs.click({ button: 'right' });
  await e.getByTestId('menu-delete').click();
  await e.getByTestId('delete-for-me').click();
  await until(async () => (await messagesWithText(e, 'Bring the nachos maker').count()) === 0, { message: 'hidden' });
  await until(async () => (await find(e, 'nachos')) === 0, { message: 'hidden ones are not found' });
  await until(async () => (await find(d, 'nachos')) === 1, { message: 'the sender still finds it' });
  // Dee deletes it for everyone: found by nobody.
  await d.getByTestId('search-input').fill('');
  const again = messagesWithText(d, 'Bring the nachos maker');
  await again.click({ button: 'right' });
  await d.getByTestId('menu-delete').click();
  await d.getByTestId('delete-for-everyone').click();
  await d.locator('[data-testid="message"][data-deleted="true"]').waitFor();
  await until(async () => (await find(d, 'nachos')) === 0, { message: 'deleted ones are not found' });
  await d.getByTestId('search-input').fill('');
  await e.getByTestId('search-input').fill('');
});
