// Changes to messages between two people (and a third in a group): reactions (quick bar,
// full picker, who reacted, taking mine back), edits, delete for everyone and for me,
// mentions with the @ picker and the list's @ badge, forwarding to several chats. Each
// change is seen by the other side live and again after a reload. Also: the message menu
// by keyboard.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest, sendText,
  openConversationTitled, messagesWithText, screenshot, until, sleep, DESKTOP,
} from './helpers.mjs';

let server;
let browser;
let ann;
let ben;
const users = {};
const names = { ann: uniqueName('ann'), ben: uniqueName('ben'), cid: uniqueName('cid') };
const chats = {};
const HARBOUR = 'Shall we meet at the harbour tomorrow?';
const NOON = 'Yes, around noon works for me';

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  users.ann = await registerApi(server.url, names.ann, 'Ann Archer');
  users.ben = await registerApi(server.url, names.ben, 'Ben Baker');
  users.cid = await registerApi(server.url, names.cid, 'Cid Carter');
  const direct = async (who, other) => (await rest(server.url, 'POST', '/conversations', {
    token: users[who].token, body: { type: 'direct', participant_ids: [users[other].user_id] },
  })).conversation_id;
  chats.cid = await direct('ann', 'cid');
  // More chats of Ann's, so that the forward picker has more than five to offer.
  for (const name of ['Book club', 'Climbing', 'Family', 'Work']) {
    await rest(server.url, 'POST', '/conversations', {
      token: users.ann.token, body: { type: 'group', name, member_ids: [users.cid.user_id] },
    });
  }
  chats.trip = (await rest(server.url, 'POST', '/conversations', {
    token: users.ann.token, body: { type: 'group', name: 'Trip planning', member_ids: [users.ben.user_id, users.cid.user_id] },
  })).conversation_id;
  chats.ben = await direct('ann', 'ben');
  await rest(server.url, 'POST', `/conversations/${chats.ben}/messages`, {
    token: users.ben.token, body: { client_msg_id: 'seed-1', content: HARBOUR },
  });
  await rest(server.url, 'POST', `/conversations/${chats.ben}/messages`, {
    token: users.ann.token, body: { client_msg_id: 'seed-2', content: NOON },
  });
  ann = await openApp(browser, server.url, { viewport: DESKTOP, name: 'ann' });
  ben = await openApp(browser, server.url, { viewport: DESKTOP, name: 'ben' });
  for (const [who, app] of [['ann', ann], ['ben', ben]]) {
    await app.page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
    await logIn(app.page, names[who]);
  }
  await openConversationTitled(ann.page, 'Ben Baker');
  await openConversationTitled(ben.page, 'Ann Archer');
  await messagesWithText(ann.page, HARBOUR).waitFor();
  await messagesWithText(ben.page, HARBOUR).waitFor();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The reaction chips under a message, as "👍1* ❤️2" (* = mine). */
function reactionsOf(page, text) {
  return messagesWithText(page, text).first().evaluate((row) => [...row.querySelectorAll('[data-testid="reaction-chip"]')]
    .map((chip) => `${chip.dataset.emoji}${chip.dataset.count}${chip.dataset.mine === 'true' ? '*' : ''}`).join(' '));
}

async function expectReactions(page, text, expected, who) {
  await until(async () => (await reactionsOf(page, text)) === expected, {
    message: `${who} sees reactions "${expected}" on "${text}"`, timeout: 15000,
  }).catch(async (err) => {
    throw new Error(`${err.message}; has "${await reactionsOf(page, text)}"`);
  });
}

/** The chat list's item of a chat, by its exact title. */
function listItem(page, title) {
  return page.getByTestId('conversation-item').filter({
    has: page.getByTestId('conversation-title').getByText(title, { exact: true }),
  });
}

async function openMenu(page, text) {
  const row = messagesWithText(page, text).first();
  await row.hover();
  await row.getByTestId('message-menu-button').click();
  const menu = page.getByTestId('message-menu');
  await menu.waitFor();
  return menu;
}

async function reload(app) {
  await app.page.reload();
  await app.page.getByTestId('app-view').waitFor();
  await app.page.waitForFunction(() => document.querySelector('[data-testid="connection-banner"]')?.dataset.state === 'online');
}

test('reactions: quick bar, full picker, who reacted, taking mine back; live and after a reload', async () => {
  const a = ann.page;
  const b = ben.page;
  // Ann reacts from the hover toolbar.
  const row = messagesWithText(a, HARBOUR);
  await row.hover();
  await row.locator('[data-testid="toolbar-reaction"][data-emoji="👍"]').click();
  await expectReactions(a, HARBOUR, '👍1*', 'Ann');
  await expectReactions(b, HARBOUR, '👍1', 'Ben (live)');

  // Ben reacts from the message menu's quick bar.
  const menu = await openMenu(b, HARBOUR);
  assert.equal(await menu.getByTestId('quick-reaction').count(), 6);
  assert.equal(await menu.getByTestId('menu-edit').count(), 1, 'Ben may edit his own message');
  await screenshot(b, 'desktop-message-menu');
  await menu.locator('[data-testid="quick-reaction"][data-emoji="❤️"]').click();
  await menu.waitFor({ state: 'hidden' });
  await expectReactions(b, HARBOUR, '👍1 ❤️1*', 'Ben');
  await expectReactions(a, HARBOUR, '👍1* ❤️1', 'Ann (live)');

  // Ann clicks Ben's count: who reacted (names of the members), and she joins in.
  await messagesWithText(a, HARBOUR).locator('[data-testid="reaction-chip"][data-emoji="❤️"]').click();
  const who = a.getByTestId('reactions-popover');
  await who.waitFor();
  await until(async () => (await who.getByTestId('reactions-who-row').count()) === 2, { message: 'who reacted' });
  assert.match(await who.locator('[data-testid="reactions-who-row"][data-emoji="👍"]').textContent(), /You/);
  assert.match(await who.locator('[data-testid="reactions-who-row"][data-emoji="❤️"]').textContent(), /Ben Baker/);
  await who.getByTestId('reactions-add').click();
  await expectReactions(a, HARBOUR, '❤️2*', 'Ann (one reaction per person)');
  await expectReactions(b, HARBOUR, '❤️2*', 'Ben (live)');

  // The full picker: search by name, pick.
  await messagesWithText(a, HARBOUR).hover();
  await messagesWithText(a, HARBOUR).getByTestId('react-button').click();
  const picker = a.getByTestId('emoji-picker');
  await picker.waitFor();
  assert.ok(await picker.getByTestId('emoji-option').count() > 1000, 'a complete set of emoji');
  assert.equal(await picker.getByTestId('emoji-category').count(), 9);
  await screenshot(a, 'desktop-emoji-picker');
  await picker.getByTestId('emoji-search').fill('party popper');
  await picker.getByTestId('emoji-results').locator('[data-testid="emoji-option"][data-emoji="🎉"]').click();
  await picker.waitFor({ state: 'hidden' });
  await expectReactions(a, HARBOUR, '❤️1 🎉1*', 'Ann');
  await expectReactions(b, HARBOUR, '❤️1* 🎉1', 'Ben (live)');

  // Clicking my own count takes my reaction back.
  await messagesWithText(a, HARBOUR).locator('[data-testid="reaction-chip"][data-emoji="🎉"]').click();
  await expectReactions(a, HARBOUR, '❤️1', 'Ann');
  await expectReactions(b, HARBOUR, '❤️1*', 'Ben (live)');

  // After a reload the counts come from history, with "mine" for each reader.
  await reload(ann);
  await reload(ben);
  await messagesWithText(a, HARBOUR).waitFor();
  await messagesWithText(b, HARBOUR).waitFor();
  await expectReactions(a, HARBOUR, '❤️1', 'Ann (reloaded)');
  await expectReactions(b, HARBOUR, '❤️1*', 'Ben (reloaded)');

  // Counts from history, then Ben changes his: Ann's side learns whose was which.
  await messagesWithText(a, HARBOUR).hover();
  await messagesWithText(a, HARBOUR).locator('[data-testid="toolbar-reaction"][data-emoji="👍"]').click();
  await expectReactions(b, HARBOUR, '❤️1* 👍1', 'Ben (live)');
  await messagesWithText(b, HARBOUR).hover();
  await messagesWithText(b, HARBOUR).locator('[data-testid="toolbar-reaction"][data-emoji="😂"]').click();
  await expectReactions(b, HARBOUR, '👍1 😂1*', 'Ben');
  await expectReactions(a, HARBOUR, '👍1* 😂1', 'Ann (live, after a reload)');
});

test('edit: my own message, "edited" for both, live and after a reload', async () => {
  const a = ann.page;
  const b = ben.page;
  const theirs = await openMenu(a, HARBOUR);
  assert.equal(await theirs.getByTestId('menu-edit').count(), 0, 'no editing of someone else’s message');
  await a.keyboard.press('Escape');
  await theirs.waitFor({ state: 'hidden' });
  await sendText(a, 'Meet at the harbour at 12');
  await messagesWithText(b, 'Meet at the harbour at 12').waitFor();
  const menu = await openMenu(a, 'Meet at the harbour at 12');
  await menu.getByTestId('menu-edit').click();
  await a.getByTestId('edit-bar').waitFor();
  const input = a.getByTestId('composer-input');
  assert.equal(await input.inputValue(), 'Meet at the harbour at 12');
  await input.fill('Meet at the harbour at 1 pm');
  await input.press('Enter');
  await a.getByTestId('edit-bar').waitFor({ state: 'hidden' });
  assert.equal(await input.inputValue(), '', 'the composer is as before editing');
  const edited = messagesWithText(a, 'Meet at the harbour at 1 pm');
  await edited.getByTestId('edited-label').waitFor();
  assert.equal(await messagesWithText(a, 'Meet at the harbour at 12').count(), 0);
  await messagesWithText(b, 'Meet at the harbour at 1 pm').getByTestId('edited-label').waitFor();
  assert.equal(await messagesWithText(b, 'Meet at the harbour at 12').count(), 0, 'Ben sees the new text live');
  // Esc leaves edit mode and brings back what was being written.
  await input.fill('a draft');
  const again = await openMenu(a, 'Meet at the harbour at 1 pm');
  await again.getByTestId('menu-edit').click();
  assert.equal(await input.inputValue(), 'Meet at the harbour at 1 pm');
  await input.press('Escape');
  await a.getByTestId('edit-bar').waitFor({ state: 'hidden' });
  assert.equal(await input.inputValue(), 'a draft');
  // Saving an edit also gives the draft back.
  await (await openMenu(a, 'Meet at the harbour at 1 pm')).getByTestId('menu-edit').click();
  await input.fill('Meet at the harbour at 1:30 pm');
  await input.press('Enter');
  await messagesWithText(a, 'Meet at the harbour at 1:30 pm').waitFor();
  assert.equal(await input.inputValue(), 'a draft');
  await input.fill('');
  // The list's preview follows the edit.
  const preview = listItem(b, 'Ann Archer').getByTestId('conversation-preview');
  await until(async () => (await preview.textContent()) === 'Meet at the harbour at 1:30 pm', { message: 'preview edited' });

  await reload(ben);
  await messagesWithText(b, 'Meet at the harbour at 1:30 pm').getByTestId('edited-label').waitFor();
  assert.equal(await messagesWithText(b, 'Meet at the harbour at 12').count(), 0);
});

test('delete for everyone and delete for me, with a confirmation; live, on another device, after a reload', async () => {
  const a = ann.page;
  const b = ben.page;
  await sendText(a, 'Oops, wrong chat');
  await messagesWithText(b, 'Oops, wrong chat').waitFor();
  const menu = await openMenu(a, 'Oops, wrong chat');
  await menu.getByTestId('menu-delete').click();
  const dialog = a.getByTestId('delete-dialog');
  await dialog.waitFor();
  // Cancel first: nothing happens.
  await dialog.getByTestId('delete-cancel').click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await messagesWithText(a, 'Oops, wrong chat').count(), 1);
  await (await openMenu(a, 'Oops, wrong chat')).getByTestId('menu-delete').click();
  await dialog.getByTestId('delete-for-everyone').click();
  const placeholder = (page) => page.locator('[data-testid="message"][data-deleted="true"]');
  await placeholder(a).waitFor();
  await placeholder(b).waitFor();
  assert.equal(await placeholder(b).getByTestId('message-content').textContent(), 'This message was deleted');
  assert.equal(await messagesWithText(b, 'Oops, wrong chat').count(), 0, 'gone for Ben, live');
  const preview = listItem(b, 'Ann Archer').getByTestId('conversation-preview');
  assert.equal(await preview.textContent(), 'This message was deleted');

  // Ben on a second device.
  const ben2 = await openApp(browser, server.url, { viewport: DESKTOP, name: 'ben2' });
  await logIn(ben2.page, names.ben);
  await openConversationTitled(ben2.page, 'Ann Archer');
  await messagesWithText(ben2.page, NOON).waitFor();
  await placeholder(ben2.page).waitFor();

  // Ben may not delete Ann's message for everyone in a direct chat, only for himself.
  await (await openMenu(b, NOON)).getByTestId('menu-delete').click();
  const benDialog = b.getByTestId('delete-dialog');
  await benDialog.waitFor();
  assert.equal(await benDialog.getByTestId('delete-for-everyone').isVisible(), false);
  await benDialog.getByTestId('delete-for-me').click();
  await until(async () => (await messagesWithText(b, NOON).count()) === 0, { message: 'hidden for Ben' });
  await until(async () => (await messagesWithText(ben2.page, NOON).count()) === 0, { message: 'hidden on Ben’s other device' });
  await sleep(500);
  assert.equal(await messagesWithText(a, NOON).count(), 1, 'Ann still has it');

  await reload(ann);
  await reload(ben);
  await placeholder(a).waitFor();
  await placeholder(b).waitFor();
  await messagesWithText(a, NOON).waitFor();
  await messagesWithText(b, HARBOUR).waitFor();
  assert.equal(await messagesWithText(b, NOON).count(), 0, 'still hidden for Ben after a reload');
  assert.equal(await messagesWithText(b, 'Oops, wrong chat').count(), 0);
  await ben2.context.close();
});

test('mentions: the @ picker in a group, highlighted in the bubble, the @ badge until read', async () => {
  const a = ann.page;
  const b = ben.page;
  await openConversationTitled(a, 'Trip planning');
  const input = a.getByTestId('composer-input');
  await input.fill('');
  await input.pressSequentially('Ask @Ben');
  const picker = a.getByTestId('mention-picker');
  await picker.waitFor();
  const options = picker.getByTestId('mention-option');
  assert.equal(await options.count(), 1, 'filtered as you type');
  assert.equal(await options.first().getAttribute('data-username'), names.ben);
  for (let n = 0; n < 3; n++) await input.press('Backspace');
  await until(async () => (await options.count()) === 2, { message: 'both other members offered' });
  await input.press('ArrowDown');
  assert.equal(await picker.locator('[aria-selected="true"]').getAttribute('data-username'), names.cid);
  await input.press('ArrowUp');
  assert.equal(await picker.locator('[aria-selected="true"]').getAttribute('data-username'), names.ben);
  await input.press('Enter'); // picks, does not send
  assert.equal(await input.inputValue(), `Ask @${names.ben} `);
  await picker.waitFor({ state: 'hidden' });
  await input.pressSequentially('about the tickets');
  await input.press('Enter');
  const text = `Ask @${names.ben} about the tickets`;
  const sent = messagesWithText(a, text);
  await sent.waitFor();
  await sent.getByTestId('message-mention').waitFor();

  // Ben has not opened the group: the list shows "@".
  const item = listItem(b, 'Trip planning');
  await item.getByTestId('mention-badge').waitFor();
  await reload(ben);
  await item.getByTestId('mention-badge').waitFor(); // the server's unread_mentions
  await openConversationTitled(b, 'Trip planning');
  const mention = messagesWithText(b, text).getByTestId('message-mention');
  await mention.waitFor();
  assert.equal(await mention.textContent(), `@${names.ben}`);
  assert.match(await mention.getAttribute('class'), /\bmention-me\b/, 'a mention of the reader stands out');
  await until(async () => (await item.getByTestId('mention-badge').count()) === 0, { message: 'badge gone once read' });
  // The read pointer reaches the server (receipts are written in batches), then reload.
  await until(async () => {
    const list = await rest(server.url, 'GET', '/conversations', { token: users.ben.token });
    return list.conversations.find((c) => c.conversation_id === chats.trip)?.unread_mentions === 0;
  }, { message: 'unread_mentions 0 on the server' });
  await reload(ben);
  await item.waitFor();
  await sleep(300);
  assert.equal(await item.getByTestId('mention-badge').count(), 0, 'and after a reload');
});

test('forward to up to five chats with a picker; the copies say "Forwarded"', async () => {
  const a = ann.page;
  const b = ben.page;
  await openConversationTitled(a, 'Ben Baker');
  await messagesWithText(a, HARBOUR).waitFor();
  await (await openMenu(a, HARBOUR)).getByTestId('menu-forward').click();
  const dialog = a.getByTestId('forward-dialog');
  await dialog.waitFor();
  const option = (title) => dialog.getByTestId('forward-option').filter({ hasText: title });
  assert.ok(await dialog.getByTestId('forward-option').count() >= 7);
  for (const title of ['Trip planning', 'Cid Carter', 'Book club', 'Climbing', 'Family']) await option(title).click();
  assert.equal(await option('Work').getByTestId('forward-checkbox').isDisabled(), true, 'at most five');
  await option('Family').click(); // unpick one
  assert.equal(await option('Work').getByTestId('forward-checkbox').isDisabled(), false);
  await dialog.getByTestId('forward-search').fill('clim');
  assert.equal(await dialog.getByTestId('forward-option').count(), 4, 'the search keeps the picked ones');
  await dialog.getByTestId('forward-search').fill('');
  assert.equal(await dialog.getByTestId('forward-submit').textContent(), 'Forward to 4 chats');
  await dialog.getByTestId('forward-submit').click();
  await dialog.waitFor({ state: 'hidden' });

  // Ben sees the copy in the group, live, with the label; it is Ann's message there.
  await openConversationTitled(b, 'Trip planning');
  const copy = messagesWithText(b, HARBOUR);
  await copy.waitFor();
  await copy.getByTestId('forwarded-label').waitFor();
  assert.equal(await copy.getAttribute('data-sender'), 'Ann Archer');
  await openConversationTitled(a, 'Cid Carter');
  await messagesWithText(a, HARBOUR).getByTestId('forwarded-label').waitFor();
  await reload(ben);
  await openConversationTitled(b, 'Trip planning');
  await messagesWithText(b, HARBOUR).getByTestId('forwarded-label').waitFor();
});

test('keyboard: Enter on a message opens its menu, arrows move, Escape closes and gives the focus back', async () => {
  const a = ann.page;
  await openConversationTitled(a, 'Ben Baker');
  const row = messagesWithText(a, HARBOUR);
  await row.focus();
  await a.keyboard.press('Enter');
  const menu = a.getByTestId('message-menu');
  await menu.waitFor();
  assert.equal(await menu.getAttribute('role'), 'menu');
  const focusedTestid = () => a.evaluate(() => document.activeElement?.dataset?.testid);
  assert.equal(await focusedTestid(), 'quick-reaction');
  await a.keyboard.press('End');
  assert.equal(await focusedTestid(), 'menu-delete');
  await a.keyboard.press('ArrowDown');
  assert.equal(await focusedTestid(), 'quick-reaction', 'wraps around');
  await a.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden' });
  assert.equal(await focusedTestid(), 'message', 'the focus is back on the message');
  assert.equal(await a.evaluate(() => document.activeElement.textContent.includes('harbour')), true);
  // The toolbar is one tab stop; arrow keys reach the menu button.
  await a.keyboard.press('Tab');
  assert.equal(await focusedTestid(), 'reply-button');
  await a.keyboard.press('End');
  assert.equal(await focusedTestid(), 'message-menu-button');
  assert.equal(await a.evaluate(() => document.activeElement.getAttribute('aria-haspopup')), 'menu');
  await a.keyboard.press('Enter');
  await menu.waitFor();
  await a.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden' });
  assert.equal(await focusedTestid(), 'message-menu-button');
  await a.keyboard.press('Home');
  assert.equal(await focusedTestid(), 'reply-button');
});
