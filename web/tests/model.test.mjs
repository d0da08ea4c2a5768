// The model's handling of changes to messages, checked inside the browser: change entries
// count for the seq cursors but are never the preview; edits, deletes and reactions apply
// last writer (highest seq) wins, in whatever order they arrive; a message's state from
// history already holds the changes up to its version; counts-only reactions ask who
// reacted, then replay what came after. And the text helpers: mentions as whole words,
// search snippets with « » as <mark>, nothing parsed as HTML.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openApp } from './helpers.mjs';

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  ({ page } = await openApp(browser, server.url, { name: 'model' }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Runs in the page: a store with one direct conversation and message helpers. */
const SETUP = `
  const { Store } = await import('/store.js');
  localStorage.removeItem('parley.outbox.u_me');
  const wanted = [];
  const store = new Store({ user_id: 'u_me', device_id: 'd_me' }, { onNeedReactors: (conv, seq) => wanted.push(seq) });
  store.upsertConversation({
    conversation_id: 'c_1', type: 'direct', last_seq: 0, unread_count: 0,
    members: [{ user_id: 'u_me', role: 'member' }, { user_id: 'u_you', role: 'member' }],
    created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z',
  });
  const conv = store.convs.get('c_1');
  const at = (seq) => '2026-01-01T00:00:' + String(seq).padStart(2, '0') + 'Z';
  const msg = (seq, sender, content, extra = {}) => ({
    message_id: 'm' + seq, conversation_id: 'c_1', seq, sender_id: sender, sender_device_id: 'd',
    client_msg_id: 'x' + seq, content, content_type: 'text', reply_to_seq: null, created_at: at(seq),
    deleted: false, reactions: [], ...extra,
  });
  const change = (seq, sender, kind, target, content = '') => msg(seq, sender, content, { content_type: kind, target_seq: target });
  const reactions = (seq) => conv.msgs.get(seq).reactions.map((r) => r.emoji + r.count + (r.me ? '*' : '')).join(' ');
`;

test('change entries move the cursors, never the preview or the order of the list', async () => {
  const result = await page.evaluate(`(async () => {
    ${SETUP}
    store.addMessage(msg(1, 'u_you', 'hello'));
    store.addMessage(change(2, 'u_you', 'reaction', 1, '👍'));
    store.addMessage(change(3, 'u_me', 'edit', 1, 'nope'));
    return {
      last_seq: conv.last_seq, synced: conv.syncedSeq, preview: store.previewMessage(conv).seq,
      activity: conv.last_activity_at, reactions: reactions(1), changes: conv.changes.get(1).length,
    };
  })()`);
  assert.deepEqual(result, {
    last_seq: 3, synced: 3, preview: 1, activity: '2026-01-01T00:00:01Z', reactions: '👍1', changes: 2,
  });
});

test('last writer wins whatever the order of arrival; a deleted message takes no more changes', async () => {
  const result = await page.evaluate(`(async () => {
    ${SETUP}
    store.addMessage(msg(1, 'u_you', 'first text'));
    // Arrival order 5, 3, 4: the edit of seq 5 stays, the older one does not come back.
    store.addMessage(change(5, 'u_you', 'edit', 1, 'third text'));
    store.addMessage(change(3, 'u_you', 'edit', 1, 'second text'));
    const afterEdits = conv.msgs.get(1).content;
    // Reactions of one person: ❤️ (seq 6) after 👍 (seq 4), arriving the other way round.
    store.addMessage(change(6, 'u_you', 'reaction', 1, '❤️'));
    store.addMessage(change(4, 'u_you', 'reaction', 1, '👍'));
    const afterReactions = reactions(1);
    store.addMessage(change(7, 'u_me', 'reaction', 1, '❤️'));
    const both = reactions(1);
    store.addMessage(change(8, 'u_me', 'reaction', 1, ''));
    const mineGone = reactions(1);
    store.addMessage(change(9, 'u_you', 'delete', 1));
    store.addMessage(change(10, 'u_you', 'edit', 1, 'too late'));
    const m = conv.msgs.get(1);
    return { afterEdits, edited: !!m.edited_at, afterReactions, both, mineGone, deleted: m.deleted, content: m.content, left: reactions(1) };
  })()`);
  assert.deepEqual(result, {
    afterEdits: 'third text', edited: true, afterReactions: '❤️1', both: '❤️2*', mineGone: '❤️1',
    deleted: true, content: '', left: '',
  });
});

test('a message from history holds the changes up to its version; later ones apply on top', async () => {
  const result = await page.evaluate(`(async () => {
    ${SETUP}
    // History (asked for when the last seq was 6): the edit of seq 4 is in it already.
    store.addMessage(msg(1, 'u_you', 'edited at 4', { edited_at: at(4), reactions: [{ emoji: '👍', count: 2, me: true }] }), { version: 6 });
    store.addMessage(change(2, 'u_you', 'edit', 1, 'original edit'), { version: 6 });
    store.addMessage(change(4, 'u_you', 'edit', 1, 'edited at 4'), { version: 6 });
    const content = conv.msgs.get(1).content;
    // My own reaction is known from "me": changed without asking anybody.
    store.addMessage(change(7, 'u_me', 'reaction', 1, '🎉'));
    const mine = reactions(1);
    // Someone else's: who had which is not known from counts, so it is asked for.
    store.addMessage(change(8, 'u_you', 'reaction', 1, '😂'));
    const asked = wanted.slice();
    const before = reactions(1);
    // The answer (as of seq 7) and the reaction of seq 8 replayed on it.
    store.setReactors('c_1', 1, [{ emoji: '👍', user_ids: ['u_you'] }, { emoji: '🎉', user_ids: ['u_me'] }], 7);
    return { content, mine, asked, before, after: reactions(1) };
  })()`);
  assert.deepEqual(result, {
    content: 'edited at 4', mine: '👍1 🎉1*', asked: [1], before: '👍1 🎉1*', after: '🎉1* 😂1',
  });
});

test('delete for me hides a message and the preview falls back to the one before', async () => {
  const result = await page.evaluate(`(async () => {
    ${SETUP}
    store.addMessage(msg(1, 'u_you', 'keep me'));
    store.addMessage(msg(2, 'u_you', 'hide me'));
    store.hideMessage('c_1', 2);
    // The same message delivered again (a sync) stays hidden.
    store.addMessage(msg(2, 'u_you', 'hide me'), { version: 5 });
    return { preview: store.previewMessage(conv).content, hidden: conv.msgs.get(2).hidden, content: conv.msgs.get(2).content };
  })()`);
  assert.deepEqual(result, { preview: 'keep me', hidden: true, content: '' });
});

test('my changes wait in the outbox like messages and are acknowledged into the stream', async () => {
  const result = await page.evaluate(`(async () => {
    ${SETUP}
    store.addMessage(msg(1, 'u_you', 'hello'));
    store.enqueue({ client_msg_id: 'r1', conversation_id: 'c_1', content: '👍', content_type: 'reaction', target_seq: 1, created_at: at(2) });
    store.enqueue({ client_msg_id: 't1', conversation_id: 'c_1', content: 'a text', created_at: at(3) });
    const waiting = { all: store.pendingFor('c_1').length, shown: store.pendingMessages('c_1').map((i) => i.content), changes: store.pendingChanges('c_1', 1).length };
    store.applyAck({ client_msg_id: 'r1', conversation_id: 'c_1', message_id: 'm2', seq: 2, created_at: at(2) });
    return { waiting, reactions: reactions(1), entry: conv.msgs.get(2).content_type, left: store.pendingFor('c_1').length };
  })()`);
  assert.deepEqual(result, {
    waiting: { all: 2, shown: ['a text'], changes: 1 }, reactions: '👍1*', entry: 'reaction', left: 1,
  });
});

test('mentions are whole words, links stay links, snippets mark matches, all as text', async () => {
  const result = await page.evaluate(async () => {
    const { findMentions, richText, markedSnippet, queryTerms } = await import('/dom.js');
    const hits = (text) => findMentions(text, [{ text: '@bob' }, { text: '@ann lee' }]).map((h) => text.slice(h.index, h.index + h.length));
    const box = document.createElement('div');
    box.appendChild(richText('Hi @bob and @Ann Lee, see https://x.example/@bob <b>x</b>', [
      { text: '@bob', userId: 'u_b', me: true }, { text: '@Ann Lee', userId: 'u_a' },
    ]));
    const snippet = document.createElement('div');
    snippet.appendChild(markedSnippet('…<img src=x onerror=alert(1)> «harbour» and «Harbour»'));
    // Quotation marks the author typed are not matches: only words the query starts.
    const quoted = document.createElement('div');
    quoted.appendChild(markedSnippet('Il a dit «bonjour» au ««Port»» de «Nîmes»', queryTerms('port nimes')));
    return {
      plain: hits('@bob, hi'),
      longer: hits('@bob.smith is not bob'),
      sentence: hits('thanks @bob.'),
      email: hits('mail me at me@bob'),
      spaced: hits('and @Ann Lee too'),
      mentions: [...box.querySelectorAll('.mention')].map((m) => [m.textContent, m.dataset.userId, m.classList.contains('mention-me')]),
      links: [...box.querySelectorAll('a')].map((a) => a.textContent),
      bold: box.querySelectorAll('b').length,
      text: box.textContent,
      marks: [...snippet.querySelectorAll('mark')].map((m) => m.textContent),
      elements: [...snippet.querySelectorAll('*')].map((e) => e.tagName),
      snippetText: snippet.textContent,
      quotedMarks: [...quoted.querySelectorAll('mark')].map((m) => m.textContent),
      quotedText: quoted.textContent,
    };
  });
  assert.deepEqual(result.plain, ['@bob']);
  assert.deepEqual(result.longer, []);
  assert.deepEqual(result.sentence, ['@bob']);
  assert.deepEqual(result.email, []);
  assert.deepEqual(result.spaced, ['@Ann Lee']);
  assert.deepEqual(result.mentions, [['@bob', 'u_b', true], ['@Ann Lee', 'u_a', false]]);
  assert.deepEqual(result.links, ['https://x.example/@bob']);
  assert.equal(result.bold, 0);
  assert.equal(result.text, 'Hi @bob and @Ann Lee, see https://x.example/@bob <b>x</b>');
  assert.deepEqual(result.marks, ['harbour', 'Harbour']);
  assert.deepEqual(result.elements, ['MARK', 'MARK']);
  assert.equal(result.snippetText, '…<img src=x onerror=alert(1)> harbour and Harbour');
  assert.deepEqual(result.quotedMarks, ['Port', 'Nîmes']);
  assert.equal(result.quotedText, 'Il a dit «bonjour» au «Port» de Nîmes');
});
