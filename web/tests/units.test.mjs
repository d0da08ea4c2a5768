// Small pieces of the client checked inside the browser: linkify, byte counting, the
// model's merge by (conversation_id, seq) and its outbox, avatar initials by grapheme,
// dates in the UI's language whatever the browser's, and the send queue's order.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openApp } from './helpers.mjs';

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  ({ page } = await openApp(browser, server.url, { name: 'units' }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('linkify makes only http(s) links, trims trailing punctuation, keeps text as text', async () => {
  const cases = await page.evaluate(async () => {
    const { linkify } = await import('/dom.js');
    const run = (text) => {
      const box = document.createElement('div');
      box.appendChild(linkify(text));
      return {
        text: box.textContent,
        links: [...box.querySelectorAll('a')].map((a) => ({ href: a.getAttribute('href'), text: a.textContent, rel: a.rel, target: a.target })),
        elements: box.querySelectorAll('*').length,
      };
    };
    return {
      plain: run('no links here <b>bold</b>'),
      sentence: run('See https://example.com/path.'),
      paren: run('(https://en.wikipedia.org/wiki/Dune_(novel))'),
      schemes: run('javascript:alert(1) data:text/html,hi ftp://x.y file:///etc/passwd'),
      two: run('http://a.example and https://b.example/x?y=1#z!'),
      quote: run('"https://q.example/"onmouseover="alert(1)'),
    };
  });
  assert.equal(cases.plain.elements, 0);
  assert.equal(cases.plain.text, 'no links here <b>bold</b>');
  assert.deepEqual(cases.sentence.links.map((l) => l.href), ['https://example.com/path']);
  assert.equal(cases.sentence.text, 'See https://example.com/path.');
  assert.deepEqual(cases.paren.links.map((l) => l.text), ['https://en.wikipedia.org/wiki/Dune_(novel)']);
  assert.equal(cases.schemes.links.length, 0);
  assert.deepEqual(cases.two.links.map((l) => l.href), ['http://a.example/', 'https://b.example/x?y=1#z']);
  assert.ok(cases.two.links.every((l) => l.rel === 'noopener noreferrer' && l.target === '_blank'));
  assert.deepEqual(cases.quote.links.map((l) => l.href), ['https://q.example/']);
});

test('content length is measured in UTF-8 bytes', async () => {
  const sizes = await page.evaluate(async () => {
    const { utf8Length } = await import('/dom.js');
    return [utf8Length('abc'), utf8Length('é'), utf8Length('😀'), utf8Length('日本')];
  });
  assert.deepEqual(sizes, [3, 2, 4, 6]);
});

test('the model merges by (conversation_id, seq) and resolves the outbox by client_msg_id', async () => {
  const result = await page.evaluate(async () => {
    const { Store } = await import('/store.js');
    localStorage.removeItem('parley.outbox.u_me');
    const store = new Store({ user_id: 'u_me', device_id: 'd_me' });
    store.upsertConversation({
      conversation_id: 'c_1', type: 'direct', name: null, last_seq: 2, unread_count: 1,
      members: [{ user_id: 'u_me', role: 'member' }, { user_id: 'u_you', role: 'member', display_name: 'You Two' }],
      created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z',
    });
    const conv = store.convs.get('c_1');
    const msg = (seq, sender, extra = {}) => ({
      message_id: `m${seq}`, conversation_id: 'c_1', seq, sender_id: sender, sender_device_id: 'd',
      client_msg_id: `x${seq}`, content: `m${seq}`, content_type: 'text', reply_to_seq: null,
      created_at: `2026-01-01T00:00:0${seq}Z`, ...extra,
    });
    store.enqueue({ client_msg_id: 'mine-1', conversation_id: 'c_1', content: 'hello', created_at: new Date().toISOString() });
    const queued = JSON.parse(localStorage.getItem('parley.outbox.u_me')).length;
    store.addMessage(msg(1, 'u_you'));
    store.addMessage(msg(2, 'u_you'));
    store.addMessage(msg(2, 'u_you')); // duplicate from sync
    store.applyAck({ client_msg_id: 'mine-1', conversation_id: 'c_1', message_id: 'm3', seq: 3, created_at: '2026-01-01T00:00:03Z' });
    store.addMessage(msg(3, 'u_me', { client_msg_id: 'mine-1', content: 'hello' })); // echo of the same message
    const afterAck = JSON.parse(localStorage.getItem('parley.outbox.u_me')).length;
    store.applyReceipt(conv, 'u_you', 'delivered', 3);
    const delivered = store.messageStatus(conv, 3).status;
    store.applyReceipt(conv, 'u_you', 'read', 3);
    const read = store.messageStatus(conv, 3).status;
    return {
      queued,
      afterAck,
      seqs: store.sortedMessages(conv).map((m) => m.seq),
      synced: conv.syncedSeq,
      title: store.title(conv),
      delivered,
      read,
    };
  });
  assert.equal(result.queued, 1);
  assert.equal(result.afterAck, 0);
  assert.deepEqual(result.seqs, [1, 2, 3]);
  assert.equal(result.synced, 3);
  assert.equal(result.title, 'You Two');
  assert.equal(result.delivered, 'delivered');
  assert.equal(result.read, 'read');
});

test('initials take whole grapheme clusters', async () => {
  const result = await page.evaluate(async () => {
    const { initials, truncate, avatar } = await import('/dom.js');
    const names = ['Weekend trip 🏕️', '🏕️', '🏕️ 🔥', 'Émile Zola', 'e\u0301lodie', 'ана мария', '👩‍👩‍👧 family', '  ', 'Bob'];
    const shown = names.map((name) => initials(name));
    return {
      shown,
      wellFormed: shown.every((text) => text.isWellFormed()),
      avatarText: avatar('c_1', 'Weekend trip 🏕️').textContent,
      cut: truncate('ab😀😀😀', 3),
      cutFamily: truncate('👩‍👩‍👧👩‍👩‍👧', 1),
    };
  });
  assert.deepEqual(result.shown.map((text) => text.normalize('NFC')), ['WT', '🏕️', '🏕️🔥', 'ÉZ', 'ÉL', 'АМ', 'FA', '?', 'BO']);
  assert.equal(result.wellFormed, true, 'no lone surrogates');
  assert.equal(result.avatarText, 'WT');
  assert.equal(result.cut, 'ab😀…');
  assert.equal(result.cutFamily, '👩‍👩‍👧…');
});

test('dates and times follow the UI language, not a German browser', async () => {
  const context = await browser.newContext({ baseURL: server.url, locale: 'de-DE', timezoneId: 'UTC' });
  const german = await context.newPage();
  await german.goto('/');
  const result = await german.evaluate(async () => {
    const { formatDay, formatListTime, formatTime, formatDateTime } = await import('/dom.js');
    const now = new Date('2026-03-12T15:00:00Z'); // a Thursday
    const monday = new Date('2026-03-09T09:30:00Z');
    return {
      browser: navigator.language,
      day: formatDay(monday, now),
      list: formatListTime(monday, now),
      old: formatDay(new Date('2025-11-02T10:00:00Z'), now),
      time: formatTime(new Date('2026-03-12T14:05:00Z')),
      full: formatDateTime(monday),
    };
  });
  await context.close();
  assert.equal(result.browser, 'de-DE');
  assert.equal(result.day, 'Monday');
  assert.equal(result.list, 'Mon');
  assert.equal(result.old, '2 November 2025');
  assert.equal(result.time, '14:05');
  assert.match(result.full, /^Monday,? 9 March 2026/);
});

test('the send queue is first in, first out per conversation and honours retry_after', async () => {
  const result = await page.evaluate(async () => {
    const { SendQueue } = await import('/sendqueue.js');
    const wire = [];
    const items = ['a1', 'a2', 'a3', 'a4'].map((id) => ({ client_msg_id: id, conversation_id: 'a', status: 'sending' }));
    items.push({ client_msg_id: 'b1', conversation_id: 'b', status: 'sending' });
    const queue = new SendQueue({ items: () => items, transmit: (item) => { wire.push(item.client_msg_id); return true; }, canSend: () => true });
    const ack = (id) => {
      const index = items.findIndex((i) => i.client_msg_id === id);
      const [item] = items.splice(index, 1);
      queue.onAck(item.conversation_id);
    };
    queue.pump();
    const first = [...wire];
    wire.length = 0;
    ack('a1');
    const toast = queue.onRefused('a2', 150); // a2 refused for 150 ms; a3 and a4 were already sent
    const again = queue.onRefused('a3', 150);
    const paused = queue.pausedUntil('a') > 0;
    ack('b1');
    queue.pump(); // nothing of "a" may go while paused
    const duringPause = [...wire];
    await new Promise((resolve) => setTimeout(resolve, 250));
    const afterPause = [...wire]; // one at a time now: a2 only
    ack('a2');
    const afterAck = [...wire];
    ack('a3');
    ack('a4');
    queue.clear();
    return { first, toast, again, paused, duringPause, afterPause, afterAck };
  });
  assert.deepEqual(result.first, ['a1', 'a2', 'a3', 'a4', 'b1']);
  assert.equal(result.toast, true, 'a new pause is reported once');
  assert.equal(result.again, false);
  assert.equal(result.paused, true);
  assert.deepEqual(result.duringPause, []);
  assert.deepEqual(result.afterPause, ['a2']);
  assert.deepEqual(result.afterAck, ['a2', 'a3']);
});
