// Small pieces of the client checked inside the browser: linkify, byte counting, the
// model's merge by (conversation_id, seq) and its outbox.

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
