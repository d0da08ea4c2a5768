// The chat list: ticks of my last message are right without opening the chat (after a
// reload, and live as receipts arrive), no ticks in front of "typing…", and the filter
// finds a group by its name only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest, sendText,
  openConversationTitled, waitForStatus, waitOnline, until, sleep, DESKTOP,
} from './helpers.mjs';

let server;
let browser;
let amy;
const users = {};
const names = { amy: uniqueName('amy'), bo: uniqueName('bo'), cy: uniqueName('cy'), zed: uniqueName('zed') };
const chats = {};

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  users.amy = await registerApi(server.url, names.amy, 'Amy Pond');
  users.bo = await registerApi(server.url, names.bo, 'Bo Peep');
  users.cy = await registerApi(server.url, names.cy, 'Cy Young');
  users.zed = await registerApi(server.url, names.zed, 'Zed Zebra');
  const direct = (token, other) => rest(server.url, 'POST', '/conversations', {
    token, body: { type: 'direct', participant_ids: [other] },
  });
  chats.bo = (await direct(users.amy.token, users.bo.user_id)).conversation_id;
  chats.cy = (await direct(users.amy.token, users.cy.user_id)).conversation_id;
  chats.group = (await rest(server.url, 'POST', '/conversations', {
    token: users.amy.token, body: { type: 'group', name: 'Book club', member_ids: [users.zed.user_id] },
  })).conversation_id;
  const send = async (who, chat, content) => rest(server.url, 'POST', `/conversations/${chat}/messages`, {
    token: users[who].token, body: { client_msg_id: `${who}-${content}`, content },
  });
  await send('amy', chats.group, 'Chapter one by Friday');
  // Bo reads Amy's message; Cy has not even received hers.
  const hello = await send('amy', chats.bo, 'Hello Bo');
  await rest(server.url, 'POST', `/conversations/${chats.bo}/read`, { token: users.bo.token, body: { up_to_seq: hello.seq } });
  await send('amy', chats.cy, 'Hello Cy');
  await sleep(600); // receipts are flushed every 250 ms
  amy = await openApp(browser, server.url, { viewport: DESKTOP, name: 'amy' });
  await logIn(amy.page, names.amy);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function listItem(page, title) {
  return page.getByTestId('conversation-item').filter({
    has: page.getByTestId('conversation-title').getByText(title, { exact: true }),
  });
}

async function listTicks(page, title) {
  const ticks = listItem(page, title).getByTestId('message-ticks');
  return (await ticks.count()) ? ticks.getAttribute('data-status') : null;
}

test('after a reload the list shows read ticks without opening the chat', async () => {
  const a = amy.page;
  await listItem(a, 'Bo Peep').waitFor();
  assert.match(await listItem(a, 'Bo Peep').getByTestId('conversation-preview').textContent(), /^You: Hello Bo$/);
  await until(async () => (await listTicks(a, 'Bo Peep')) === 'read', { message: 'read ticks on Bo’s chat' });
  assert.equal(await listTicks(a, 'Cy Young'), 'sent');
  assert.equal(await a.getByTestId('chat-title').isVisible(), false, 'no chat was opened');

  await a.reload();
  await waitOnline(a);
  await until(async () => (await listTicks(a, 'Bo Peep')) === 'read', { message: 'read ticks after the reload' });
  assert.equal(await listTicks(a, 'Cy Young'), 'sent');
});

test('a receipt redraws the list, not only the open chat', async () => {
  const a = amy.page;
  await openConversationTitled(a, 'Bo Peep'); // a different chat is open
  const seq = (await rest(server.url, 'GET', `/conversations/${chats.cy}`, { token: users.cy.token })).last_seq;
  await rest(server.url, 'POST', `/conversations/${chats.cy}/read`, { token: users.cy.token, body: { up_to_seq: seq } });
  await until(async () => (await listTicks(a, 'Cy Young')) === 'read', { message: 'Cy’s read receipt in the list' });
});

test('no ticks in front of "typing…"', async () => {
  const a = amy.page;
  await sendText(a, 'Are you typing?');
  await waitForStatus(a, 'Are you typing?', 'sent');
  const bo = await openApp(browser, server.url, { viewport: DESKTOP, name: 'bo' });
  await logIn(bo.page, names.bo);
  await openConversationTitled(bo.page, 'Amy Pond');
  await openConversationTitled(a, 'Cy Young'); // Bo's chat is only in the list now
  await until(async () => (await listTicks(a, 'Bo Peep')) === 'read', { message: 'Bo read it' });

  await bo.page.getByTestId('composer-input').pressSequentially('Typing an answer', { delay: 30 });
  const preview = listItem(a, 'Bo Peep').getByTestId('conversation-preview');
  await until(async () => (await preview.textContent()) === 'typing…', { message: 'typing… in the list' });
  assert.equal(await listItem(a, 'Bo Peep').getByTestId('message-ticks').count(), 0, 'no ticks while typing');
  await bo.context.close();
});

test('the filter finds a group by its name, not by a member’s username', async () => {
  const a = amy.page;
  const search = a.getByTestId('search-input');
  await search.fill(names.zed);
  await sleep(300);
  assert.equal(await listItem(a, 'Book club').count(), 0, 'the group is not found by Zed’s username');
  await search.fill('book');
  await listItem(a, 'Book club').waitFor();
  await search.fill(names.bo);
  await listItem(a, 'Bo Peep').waitFor();
  assert.equal(await a.getByTestId('conversation-item').count(), 1);
  await search.press('Escape');
});
