// A group of three: create with members, system messages, "read by N of M", rename,
// roles, remove a member, and leave.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, signUp, uniqueName, sendText, messagesWithText,
  waitForStatus, screenshot, openConversationTitled, until, DESKTOP,
} from './helpers.mjs';

let server;
let browser;
const people = {};
const names = { alice: uniqueName('ann'), bob: uniqueName('ben'), carol: uniqueName('cat') };
const display = { alice: 'Ann Archer', bob: 'Ben Baker', carol: 'Cat Carter' };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  for (const who of ['alice', 'bob', 'carol']) {
    people[who] = await openApp(browser, server.url, { viewport: DESKTOP, name: who });
    await signUp(people[who].page, names[who], display[who]);
  }
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function pickMember(page, username) {
  await page.getByTestId('group-member-search').fill(username);
  const row = page.locator(`[data-testid="group-user-result"][data-username="${username}"]`);
  await row.waitFor();
  await row.click();
  await page.locator('[data-testid="group-chip"]').filter({ hasText: display[Object.keys(names).find((k) => names[k] === username)] }).waitFor();
}

test('create a group of three; everyone sees it with a system message', async () => {
  const a = people.alice.page;
  await a.getByTestId('new-group-button').click();
  await a.getByTestId('group-dialog').waitFor();
  await a.getByTestId('group-name-input').fill('Weekend trip');
  await pickMember(a, names.bob);
  await pickMember(a, names.carol);
  await screenshot(a, 'desktop-new-group');
  await a.getByTestId('group-create-submit').click();
  await a.getByTestId('group-dialog').waitFor({ state: 'hidden' });
  await until(async () => (await a.getByTestId('chat-title').textContent()) === 'Weekend trip', { message: 'group open' });
  await a.getByTestId('system-message').first().waitFor();
  assert.match(await a.getByTestId('system-message').first().textContent(), /You created the group “Weekend trip”/);
  assert.match(await a.getByTestId('chat-subtitle').textContent(), /3 members/);

  for (const who of ['bob', 'carol']) {
    const p = people[who].page;
    await openConversationTitled(p, 'Weekend trip');
    await p.getByTestId('system-message').first().waitFor();
    assert.match(await p.getByTestId('system-message').first().textContent(), /Ann Archer created the group/);
  }
});

test('messages reach all members with sender names; read by N of M counts up', async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  const c = people.carol.page;
  // Carol looks elsewhere so only Bob reads at first.
  await c.getByTestId('search-input').fill('zzz-nothing');
  await c.evaluate(() => { location.hash = ''; });

  await sendText(a, 'Who brings the tent?');
  await messagesWithText(b, 'Who brings the tent?').waitFor();
  assert.equal(await messagesWithText(b, 'Who brings the tent?').getByTestId('message-sender').textContent(), 'Ann Archer');
  const readBy = a.getByTestId('read-by');
  await until(async () => (await readBy.count()) === 1 && /Read by 1 of 2/.test(await readBy.textContent()), { message: 'read by 1 of 2' });

  await c.getByTestId('search-input').fill('');
  await openConversationTitled(c, 'Weekend trip');
  await messagesWithText(c, 'Who brings the tent?').waitFor();
  await until(async () => /Read by 2 of 2/.test(await readBy.textContent()), { message: 'read by 2 of 2' });
  await waitForStatus(a, 'Who brings the tent?', 'read');

  await sendText(b, 'I will!');
  await sendText(c, 'I bring snacks 🍫');
  await messagesWithText(a, 'I will!').waitFor();
  await messagesWithText(a, 'I bring snacks 🍫').waitFor();
  assert.equal(await messagesWithText(a, 'I bring snacks 🍫').getByTestId('message-sender').textContent(), 'Cat Carter');
  await screenshot(a, 'desktop-group-chat');
});

test('rename, see roles, remove a member, and leave', async () => {
  const a = people.alice.page;
  const b = people.bob.page;
  const c = people.carol.page;
  await a.getByTestId('group-info-button').click();
  await a.getByTestId('info-dialog').waitFor();
  const ownerRow = a.locator(`[data-testid="member-row"][data-role="owner"]`);
  await ownerRow.waitFor();
  assert.match(await ownerRow.textContent(), /Ann Archer \(you\)/);
  assert.equal(await ownerRow.getByTestId('member-role').textContent(), 'owner');
  assert.equal(await a.getByTestId('member-row').count(), 3);

  // Carol looks away and gets an unread message; the rename must not reset her badge.
  await c.evaluate(() => { location.hash = ''; });
  await a.keyboard.press('Escape');
  await sendText(a, 'Unread for Cat');
  const carolItem = c.getByTestId('conversation-item').filter({ hasText: 'Weekend trip' });
  await carolItem.getByTestId('unread-badge').waitFor();
  await a.getByTestId('group-info-button').click();
  await a.getByTestId('info-dialog').waitFor();

  // The owner makes Ben an admin; everyone sees the note and the role.
  await a.locator('[data-testid="member-row"]').filter({ hasText: 'Ben Baker' }).getByTestId('member-promote').click();
  await a.locator('[data-testid="member-row"][data-role="admin"]').filter({ hasText: 'Ben Baker' }).waitFor();
  await b.getByTestId('system-message').filter({ hasText: 'Ann Archer made you an admin' }).waitFor();

  await a.getByTestId('rename-input').fill('Mountain trip');
  await a.getByTestId('rename-submit').click();
  await until(async () => (await a.getByTestId('info-title').textContent()) === 'Mountain trip', { message: 'renamed in dialog' });
  await screenshot(a, 'desktop-group-info');
  // Others see the new name and a system note.
  await until(async () => (await b.getByTestId('chat-title').textContent()) === 'Mountain trip', { message: 'rename reaches Bob' });
  await b.getByTestId('system-message').filter({ hasText: 'renamed the group to “Mountain trip”' }).waitFor();
  const renamedItem = c.getByTestId('conversation-item').filter({ hasText: 'Mountain trip' });
  await renamedItem.waitFor();
  assert.ok(Number(await renamedItem.getByTestId('unread-badge').textContent()) >= 1, 'unread survives the rename');

  // Remove Carol.
  const carolRow = a.locator('[data-testid="member-row"]').filter({ hasText: 'Cat Carter' });
  await carolRow.getByTestId('member-remove').click();
  await until(async () => (await a.getByTestId('member-row').count()) === 2, { message: 'two members left' });
  await b.getByTestId('system-message').filter({ hasText: 'Ann Archer removed Cat Carter' }).waitFor();
  // Carol's client drops the group.
  await until(async () => (await c.getByTestId('conversation-item').filter({ hasText: 'Mountain trip' }).count()) === 0, {
    message: 'group gone for Carol', timeout: 15000,
  });
  await a.keyboard.press('Escape');
  await a.getByTestId('info-dialog').waitFor({ state: 'hidden' });

  // Bob leaves (two clicks: the second confirms).
  await b.getByTestId('group-info-button').click();
  await b.getByTestId('info-dialog').waitFor();
  assert.equal(await b.getByTestId('member-remove').count(), 0, 'an admin cannot remove the owner');
  assert.equal(await b.getByTestId('member-promote').count(), 0, 'only the owner sets roles');
  await b.getByTestId('leave-button').click();
  await b.getByTestId('leave-button').click();
  await b.getByTestId('info-dialog').waitFor({ state: 'hidden' });
  await until(async () => (await b.getByTestId('conversation-item').filter({ hasText: 'Mountain trip' }).count()) === 0, {
    message: 'group gone for Bob',
  });
  await a.getByTestId('system-message').filter({ hasText: 'Ben Baker left' }).waitFor();
  await until(async () => /1 member\b/.test(await a.getByTestId('chat-subtitle').textContent()), { message: 'one member' });
});
