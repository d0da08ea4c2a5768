// Profile and group pictures: Ann sets hers in Settings (a file that is not a picture is
// refused with a clear error); Ben sees it in his chat list and the chat header, also
// after a reload, with one link fetched for it however often it shows. Ann sets a group's
// picture from its info panel (by keyboard): Ben sees it live in his list with the system
// line, and as a plain member has no control to change it. Ann removes her picture: Ben's
// view falls back to her initials. Screenshots of a chat list with pictures, desktop and phone.
// In the browser: fifty avatars of one picture ask for one link, asked again once it is
// about to expire; a link or an image that fails leaves the initials.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest,
  openConversationTitled, sendText, screenshot, until, png, DESKTOP, PHONE,
} from './helpers.mjs';

let server;
let browser;
let ann;
let ben;
const users = {};
const names = {
  ann: uniqueName('ann'), ben: uniqueName('ben'), cat: uniqueName('cat'), dan: uniqueName('dan'), eve: uniqueName('eve'),
};
const display = { ann: 'Ann Archer', ben: 'Ben Baker', cat: 'Cat Carter', dan: 'Dan Dorsey', eve: 'Eve Evans' };
let groupId;

const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));

/** A head-and-shoulders silhouette on a gradient: looks like a portrait in a small circle. */
function portrait(top, bottom, skin) {
  return png(240, 240, (x, y) => {
    const head = (x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.19 ** 2;
    const body = ((x - 0.5) / 0.36) ** 2 + ((y - 1.02) / 0.4) ** 2 < 1;
    if (head) return skin;
    if (body) return mix(skin, [40, 40, 60], 0.55);
    return mix(top, bottom, y);
  });
}

/** Sky, sun and hills: a group's picture. */
function landscape() {
  return png(300, 200, (x, y) => {
    if ((x - 0.7) ** 2 + ((y - 0.3) * 1.5) ** 2 < 0.1 ** 2) return [255, 214, 90];
    if (y > 0.62 + 0.12 * Math.sin(x * 7)) return mix([60, 150, 80], [30, 90, 50], y);
    return mix([110, 170, 240], [250, 200, 170], y);
  });
}

/** Uploads a picture through the REST API (for the people the test does not drive). */
async function uploadPicture(token, buffer) {
  const upload = await rest(server.url, 'POST', '/media', { token, body: { content_type: 'image/png', size: buffer.length, filename: 'me.png' } });
  const put = await fetch(new URL(upload.upload_url, server.url), { method: upload.upload_method, headers: upload.upload_headers, body: buffer });
  assert.ok(put.ok, `upload: ${put.status}`);
  const media = await rest(server.url, 'POST', `/media/${upload.media_id}/complete`, { token });
  return media.media_id;
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  for (const who of Object.keys(names)) users[who] = await registerApi(server.url, names[who], display[who]);
  // Ben's other chats, for a list with pictures and initials side by side.
  const pictures = { cat: portrait([250, 190, 120], [200, 90, 60], [255, 224, 196]), dan: portrait([120, 160, 220], [40, 70, 140], [214, 170, 130]) };
  for (const who of ['cat', 'dan']) {
    const mediaId = await uploadPicture(users[who].token, pictures[who]);
    await rest(server.url, 'PATCH', '/users/me', { token: users[who].token, body: { avatar_media_id: mediaId } });
  }
  for (const [who, text] of [['eve', 'See you at the station'], ['dan', 'The slides are ready'], ['cat', 'Lunch on Friday?']]) {
    const conv = await rest(server.url, 'POST', '/conversations', {
      token: users[who].token, body: { type: 'direct', participant_ids: [users.ben.user_id] },
    });
    await rest(server.url, 'POST', `/conversations/${conv.conversation_id}/messages`, {
      token: users[who].token, body: { content: text, client_msg_id: `seed-${who}` },
    });
  }
  await rest(server.url, 'POST', '/conversations', {
    token: users.ann.token, body: { type: 'direct', participant_ids: [users.ben.user_id] },
  });
  ann = await openApp(browser, server.url, { viewport: DESKTOP, name: 'ann' });
  await ann.page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
  await logIn(ann.page, names.ann);
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

/** The loaded picture of an avatar (inside `locator`): its media id and URL, once it has a size. */
async function loadedPicture(locator, message) {
  const img = locator.getByTestId('avatar-img');
  return until(async () => {
    if ((await img.count()) !== 1) return null;
    return img.evaluate((el) => (el.complete && el.naturalWidth > 0
      ? { mediaId: el.dataset.mediaId, src: el.src, width: el.naturalWidth } : null));
  }, { message, timeout: 15000 });
}

/** The picture's URL is the short-lived signed link of its thumbnail, on this server. */
function assertSignedThumbnail(src, mediaId) {
  const url = new URL(src);
  assert.equal(url.origin, server.url);
  assert.equal(url.pathname, `/media-blobs/m/${mediaId}/thumbnail`);
  assert.ok(url.searchParams.get('sig'), 'signed');
  assert.ok(Number(url.searchParams.get('e')) > Date.now(), 'not expired');
}

/** Counts the thumbnail-link requests a page makes, per media id. */
function countLinkRequests(page) {
  const counts = new Map();
  page.on('request', (request) => {
    const match = new URL(request.url()).pathname.match(/^\/api\/v1\/media\/([^/]+)\/thumbnail$/);
    if (match) counts.set(match[1], (counts.get(match[1]) || 0) + 1);
  });
  return counts;
}

test('Ann sets a profile picture in Settings; a file that is not a picture is refused', async () => {
  const page = ann.page;
  await page.getByTestId('settings-button').click();
  const dialog = page.getByTestId('settings-dialog');
  await dialog.waitFor();
  const change = dialog.getByTestId('settings-picture-change');
  assert.equal(await change.getAttribute('aria-label'), 'Choose a profile picture');
  assert.equal(await dialog.getByTestId('settings-picture-remove').isVisible(), false, 'nothing to remove yet');

  await dialog.getByTestId('settings-picture-input').setInputFiles([{ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') }]);
  const error = dialog.getByTestId('settings-picture-error');
  await error.waitFor();
  assert.match(await error.textContent(), /That file is not a picture/);

  // The progress bar shows while the picture goes up (however briefly): record it.
  await page.evaluate(() => {
    const bar = document.querySelector('[data-testid="settings-picture-progress"]');
    window.sawProgress = false;
    new MutationObserver(() => { if (!bar.hidden) window.sawProgress = true; }).observe(bar, { attributes: true });
  });
  await dialog.getByTestId('settings-picture-input').setInputFiles([{
    name: 'ann.png', mimeType: 'image/png', buffer: portrait([200, 120, 220], [90, 50, 140], [240, 200, 170]),
  }]);
  const shown = await loadedPicture(dialog.getByTestId('settings-picture-preview'), 'the picture in Settings');
  const me = await rest(server.url, 'GET', '/users/me', { token: users.ann.token });
  assert.ok(me.avatar_media_id, 'stored on the server');
  assert.equal(shown.mediaId, me.avatar_media_id);
  assertSignedThumbnail(shown.src, me.avatar_media_id);
  assert.equal(await error.isVisible(), false, 'the old error is gone');
  assert.equal(await page.evaluate(() => window.sawProgress), true, 'the upload showed its progress');
  assert.equal(await dialog.getByTestId('settings-picture-progress').isVisible(), false, 'and hid it when done');
  assert.equal(await change.getAttribute('aria-label'), 'Change the profile picture');
  assert.equal(await dialog.getByTestId('settings-picture-remove').isVisible(), true);
  assert.equal(await dialog.getByTestId('settings-picture-preview').locator('[role="img"]').getAttribute('aria-label'), 'Your profile picture');
  // The sidebar's own avatar follows at once.
  const mine = await loadedPicture(page.locator('#me-avatar'), 'my avatar in the sidebar');
  assert.equal(mine.mediaId, me.avatar_media_id);
  await dialog.getByTestId('settings-close').click();
  users.ann.avatar = me.avatar_media_id;
});

test('Ben sees Ann’s picture in his chat list and the chat header, also after a reload, from one link', async () => {
  ben = await openApp(browser, server.url, { viewport: DESKTOP, name: 'ben' });
  await ben.page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
  let links = countLinkRequests(ben.page);
  await logIn(ben.page, names.ben);
  const page = ben.page;
  for (let round = 0; round < 2; round++) {
    const inList = await loadedPicture(listItem(page, 'Ann Archer'), 'Ann’s picture in the list');
    assert.equal(inList.mediaId, users.ann.avatar);
    assertSignedThumbnail(inList.src, users.ann.avatar);
    await openConversationTitled(page, 'Ann Archer');
    const inHeader = await loadedPicture(page.locator('#chat-avatar'), 'Ann’s picture in the header');
    assert.equal(inHeader.src, inList.src, 'the same link');
    // Cat and Dan have pictures too; Eve has none and keeps her initials.
    await loadedPicture(listItem(page, 'Cat Carter'), 'Cat’s picture');
    await loadedPicture(listItem(page, 'Dan Dorsey'), 'Dan’s picture');
    const eve = listItem(page, 'Eve Evans');
    assert.equal(await eve.getByTestId('avatar-img').count(), 0);
    assert.equal(await eve.locator('.avatar').textContent(), 'EE');
    // Redraws of the list ask for no new link, and draw a picture already shown at once
    // (complete when inserted: no flash of initials).
    await page.evaluate(() => {
      window.redrawn = [];
      new MutationObserver((records) => {
        for (const record of records) {
          for (const node of record.addedNodes) {
            for (const img of node.querySelectorAll ? node.querySelectorAll('[data-testid="avatar-img"]') : []) {
              window.redrawn.push(img.complete && img.naturalWidth > 0);
            }
          }
        }
      }).observe(document.querySelector('#conv-list'), { childList: true });
    });
    const text = round ? 'It suits you' : 'Love the new picture!';
    await sendText(page, text);
    await page.getByTestId('message-content').getByText(text, { exact: true }).waitFor();
    const redrawn = await page.evaluate(() => window.redrawn);
    assert.ok(redrawn.length >= 3, `the list was redrawn (${redrawn.length})`);
    assert.ok(redrawn.every(Boolean), `pictures drawn at once: ${redrawn}`);
    assert.equal(links.get(users.ann.avatar), 1, `one link request for Ann’s picture (round ${round})`);
    if (round === 0) {
      links = countLinkRequests(page);
      await page.reload();
      await page.getByTestId('app-view').waitFor();
    }
  }
});

test('Ann sets the group picture by keyboard; Ben sees it live, with the system line, and cannot change it', async () => {
  const a = ann.page;
  const b = ben.page;
  const group = await rest(server.url, 'POST', '/conversations', {
    token: users.ann.token, body: { type: 'group', name: 'Weekend trip', member_ids: [users.ben.user_id, users.cat.user_id] },
  });
  groupId = group.conversation_id;
  await openConversationTitled(a, 'Weekend trip');
  await listItem(b, 'Weekend trip').waitFor();
  assert.equal(await listItem(b, 'Weekend trip').getByTestId('avatar-img').count(), 0, 'no picture yet');

  await a.getByTestId('group-info-button').click();
  const info = a.getByTestId('info-dialog');
  await info.waitFor();
  const change = info.getByTestId('group-picture-change');
  assert.equal(await change.getAttribute('aria-label'), 'Choose a group picture');
  // By keyboard: Tab reaches the button, Enter opens the file chooser. (Waiting for the
  // chooser first: Playwright intercepts it only once it is being waited for.)
  const choosing = a.waitForEvent('filechooser');
  await info.getByTestId('rename-input').focus();
  await a.keyboard.press('Shift+Tab');
  assert.equal(await a.evaluate(() => document.activeElement.dataset.testid), 'group-picture-change');
  await a.keyboard.press('Enter');
  const chooser = await choosing;
  await chooser.setFiles([{ name: 'trip.png', mimeType: 'image/png', buffer: landscape() }]);
  const inInfo = await loadedPicture(a.locator('#info-avatar'), 'the group picture in its info');
  const stored = await rest(server.url, 'GET', `/conversations/${groupId}`, { token: users.ann.token });
  assert.equal(inInfo.mediaId, stored.avatar_media_id);
  assert.equal(await change.getAttribute('aria-label'), 'Change the group picture');
  await a.keyboard.press('Escape');

  // Ben, who has the app open, sees it without a reload: the list and the system line.
  const inList = await loadedPicture(listItem(b, 'Weekend trip'), 'the group picture in Ben’s list');
  assert.equal(inList.mediaId, stored.avatar_media_id);
  assertSignedThumbnail(inList.src, stored.avatar_media_id);
  await until(async () => /Ann Archer changed the group picture/.test(await listItem(b, 'Weekend trip').getByTestId('conversation-preview').textContent()),
    { message: 'the preview' });
  await openConversationTitled(b, 'Weekend trip');
  await b.getByTestId('system-message').filter({ hasText: 'Ann Archer changed the group picture' }).waitFor();
  await loadedPicture(b.locator('#chat-avatar'), 'the group picture in Ben’s header');

  // A plain member sees the picture in the group's info, and no control to change it.
  await b.getByTestId('group-info-button').click();
  const benInfo = b.getByTestId('info-dialog');
  await benInfo.waitFor();
  await loadedPicture(b.locator('#info-avatar'), 'the group picture in Ben’s info');
  assert.equal(await benInfo.getByTestId('info-picture').isVisible(), false);
  assert.equal(await benInfo.getByTestId('group-picture-change').isVisible(), false);
  // Members' pictures are in the member list (Cat's, Ann's), initials for Ben himself.
  const annRow = benInfo.locator(`[data-testid="member-row"][data-user-id="${users.ann.user_id}"]`);
  assert.equal((await loadedPicture(annRow, 'Ann in the member list')).mediaId, users.ann.avatar);
  await loadedPicture(benInfo.locator(`[data-testid="member-row"][data-user-id="${users.cat.user_id}"]`), 'Cat in the member list');
  await b.keyboard.press('Escape');
});

test('screenshots: a chat list with pictures, on desktop and phone', async () => {
  const a = ann.page;
  const b = ben.page;
  // Sender avatars in the group carry pictures too.
  await sendText(a, 'The cabin is booked for Saturday 🏕️');
  const cat = await openApp(browser, server.url, { viewport: DESKTOP, name: 'cat' });
  await cat.page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
  await logIn(cat.page, names.cat);
  await openConversationTitled(cat.page, 'Weekend trip');
  await sendText(cat.page, 'I’ll bring the board games');
  await b.getByTestId('message-content').getByText('I’ll bring the board games', { exact: true }).waitFor();
  const rows = b.getByTestId('message').filter({ has: b.getByTestId('avatar-img') });
  await until(async () => (await rows.count()) >= 2, { message: 'sender pictures in the group' });
  await loadedPicture(rows.last(), 'Cat’s picture by her message');
  await cat.context.close();
  await screenshot(b, 'desktop-avatars');

  const phone = await openApp(browser, server.url, { viewport: PHONE, name: 'ben-phone' });
  await phone.page.evaluate(() => localStorage.setItem('parley.notify.dismissed', '1'));
  await logIn(phone.page, names.ben);
  for (const title of ['Weekend trip', 'Ann Archer', 'Cat Carter', 'Dan Dorsey']) {
    await loadedPicture(listItem(phone.page, title), `${title} on the phone`);
  }
  await screenshot(phone.page, 'phone-avatars');
  await phone.context.close();
});

test('Ann removes her picture: Ben sees her initials again after a reload', async () => {
  const page = ann.page;
  await page.getByTestId('settings-button').click();
  const dialog = page.getByTestId('settings-dialog');
  await dialog.waitFor();
  const remove = dialog.getByTestId('settings-picture-remove');
  await remove.waitFor();
  assert.equal(await remove.getAttribute('aria-label'), 'Remove the profile picture');
  await remove.click();
  await until(async () => (await rest(server.url, 'GET', '/users/me', { token: users.ann.token })).avatar_media_id === undefined,
    { message: 'removed on the server' });
  await until(async () => (await dialog.getByTestId('settings-picture-preview').getByTestId('avatar-img').count()) === 0,
    { message: 'initials in Settings' });
  assert.equal(await page.locator('#me-avatar').getByTestId('avatar-img').count(), 0);
  assert.equal(await page.locator('#me-avatar .avatar').textContent(), 'AA');
  assert.equal(await remove.isVisible(), false);
  await dialog.getByTestId('settings-close').click();

  await ben.page.reload();
  await ben.page.getByTestId('app-view').waitFor();
  const item = listItem(ben.page, 'Ann Archer');
  await item.waitFor();
  // Profiles are asked for again after the reload: once Ann's has come (and Cat's picture
  // shows), Ann's avatar has what it will have.
  await until(() => ben.page.evaluate((id) => performance.getEntriesByType('resource')
    .some((e) => new URL(e.name).pathname === `/api/v1/users/${id}` && e.responseEnd > 0), users.ann.user_id),
  { message: 'Ann’s profile fetched' });
  await loadedPicture(listItem(ben.page, 'Cat Carter'), 'Cat’s picture after the reload');
  await openConversationTitled(ben.page, 'Ann Archer');
  await until(async () => (await item.locator('.avatar').textContent()) === 'AA', { message: 'Ann’s initials' });
  await ben.page.waitForTimeout(500);
  assert.equal(await item.getByTestId('avatar-img').count(), 0, 'no picture in the list');
  assert.equal(await ben.page.locator('#chat-avatar').getByTestId('avatar-img').count(), 0, 'no picture in the header');
  // The group keeps its picture.
  await loadedPicture(listItem(ben.page, 'Weekend trip'), 'the group picture after the reload');
});

test('in the browser: one shared link per picture until it expires; initials when a picture fails', async () => {
  const { page, context } = await openApp(browser, server.url, { name: 'units' });
  const result = await page.evaluate(async () => {
    const { avatar, setPictureLinks } = await import('/dom.js');
    const { MediaClient } = await import('/media.js');
    // A fake API: counts the link requests, answers a link that expires `life` ms from now.
    let calls = 0;
    let life = 3600000;
    const api = {
      get: async (path) => {
        calls += 1;
        if (path.includes('m_gone')) throw Object.assign(new Error('gone'), { status: 404 });
        return { url: `/nothing-here.png?n=${calls}`, expires_at: new Date(Date.now() + life).toISOString() };
      },
    };
    const media = new MediaClient(api);
    const shared = await Promise.all(Array.from({ length: 50 }, () => media.link('m_1', true)));
    const afterFifty = calls;
    const cached = media.cachedLink('m_1', true);
    life = 30000; // inside the minute of margin: already stale when it arrives
    await media.link('m_2', true);
    await media.link('m_2', true);
    const staleAskedTwice = calls - afterFifty;
    const failures = await Promise.allSettled([media.link('m_gone', true), media.link('m_gone', true)]);
    await media.link('m_gone', true).catch(() => {});
    const goneCalls = calls - afterFifty - staleAskedTwice;

    // The avatars: a link that fails and a picture that does not load both leave the initials.
    setPictureLinks({ cached: (id) => media.cachedLink(id, true), link: (id) => media.link(id, true) });
    const host = document.body.appendChild(document.createElement('div'));
    const failedLink = host.appendChild(avatar('u_1', 'Ada Lovelace', 'small', { mediaId: 'm_gone' }));
    const brokenImage = host.appendChild(avatar('u_2', 'Grace Hopper', 'small', { mediaId: 'm_1' }));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (failedLink.dataset.picture !== 'failed' || brokenImage.dataset.picture !== 'failed')) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const none = avatar('u_3', 'Alan Turing', 'tiny');
    return {
      sameUrl: new Set(shared).size === 1,
      afterFifty,
      cached: cached === shared[0],
      staleAskedTwice,
      failures: failures.map((f) => f.status),
      goneCalls,
      failed: [failedLink, brokenImage].map((el) => ({
        state: el.dataset.picture, imgs: el.querySelectorAll('img').length, text: el.textContent, hidden: el.getAttribute('aria-hidden'),
      })),
      none: { imgs: none.querySelectorAll('img').length, state: none.dataset.picture ?? null, text: none.textContent },
    };
  });
  assert.equal(result.sameUrl, true);
  assert.equal(result.afterFifty, 1, 'fifty avatars of one picture: one request');
  assert.equal(result.cached, true, 'the link is at hand without waiting');
  assert.equal(result.staleAskedTwice, 2, 'a link about to expire is asked for again');
  assert.deepEqual(result.failures, ['rejected', 'rejected']);
  assert.equal(result.goneCalls, 1, 'a failed link is not asked for again at once');
  assert.deepEqual(result.failed, [
    { state: 'failed', imgs: 0, text: 'AL', hidden: 'true' },
    { state: 'failed', imgs: 0, text: 'GH', hidden: 'true' },
  ]);
  assert.deepEqual(result.none, { imgs: 0, state: null, text: 'AT' });
  await context.close();
});
