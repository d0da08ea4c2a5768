// Media: Ann sends a photo (Ben sees the BlurHash, then the thumbnail, and opens the
// lightbox), a file (a card with its name and size that downloads the same bytes) and a
// voice note recorded from Chromium's fake microphone; after a reload it is all still
// there. Screenshots on desktop and phone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openApp, logIn, uniqueName, registerApi, rest,
  openConversationTitled, screenshot, until, png, DESKTOP, PHONE,
} from './helpers.mjs';

let server;
let browser;
let ann;
let ben;
let benPhone;
const users = {};
const names = { ann: uniqueName('ann'), ben: uniqueName('ben') };

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  users.ann = await registerApi(server.url, names.ann, 'Ann Archer');
  users.ben = await registerApi(server.url, names.ben, 'Ben Baker');
  await rest(server.url, 'POST', '/conversations', {
    token: users.ann.token, body: { type: 'direct', participant_ids: [users.ben.user_id] },
  });
  ann = await openApp(browser, server.url, { viewport: DESKTOP, name: 'ann' });
  await ann.context.grantPermissions(['microphone']);
  await logIn(ann.page, names.ann);
  ben = await openApp(browser, server.url, { viewport: DESKTOP, name: 'ben' });
  await logIn(ben.page, names.ben);
  await openConversationTitled(ann.page, 'Ben Baker');
  await openConversationTitled(ben.page, 'Ann Archer');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function attach(page, files) {
  await page.getByTestId('attach-input').setInputFiles(files);
  await until(async () => {
    const states = await page.getByTestId('tray-item').evaluateAll((items) => items.map((i) => i.dataset.status));
    return states.length === files.length && states.every((s) => s === 'ready');
  }, { message: 'the uploads to finish', timeout: 60000 });
}

test('a photo arrives as a thumbnail over its BlurHash and opens in the lightbox', async () => {
  await attach(ann.page, [{ name: 'sunset.png', mimeType: 'image/png', buffer: png(900, 600) }]);
  await ann.page.getByTestId('composer-input').fill('Sunset from the pier');
  await ann.page.getByTestId('composer-input').press('Enter');
  assert.equal(await ann.page.getByTestId('tray-item').count(), 0, 'the tray empties on send');
  const photo = ben.page.getByTestId('attachment-photo').first();
  await photo.waitFor({ timeout: 15000 });
  assert.equal(await ben.page.getByTestId('attachment-blurhash').count() >= 1, true, 'painted from its BlurHash first');
  await until(() => ben.page.getByTestId('attachment-thumbnail').first()
    .evaluate((img) => img.complete && img.naturalWidth === 320), { message: 'the thumbnail to load' });
  const caption = ben.page.getByTestId('message-content').getByText('Sunset from the pier', { exact: true });
  await caption.waitFor();
  await screenshot(ben.page, 'desktop-photo');
  await photo.click();
  const full = ben.page.getByTestId('lightbox-image');
  await until(() => full.evaluate((img) => img.complete && img.naturalWidth === 900), { message: 'the full picture' });
  await screenshot(ben.page, 'desktop-lightbox');
  await ben.page.keyboard.press('Escape');
  assert.equal(await ben.page.getByTestId('lightbox').count(), 0);
  const list = ben.page.getByTestId('conversation-item').filter({ hasText: 'Ann Archer' });
  assert.match(await list.innerText(), /Sunset from the pier/);
});

test('a file arrives as a card that downloads the same bytes', async () => {
  const text = Buffer.from('Quarterly numbers\n'.repeat(400));
  await attach(ann.page, [{ name: 'report.txt', mimeType: 'text/plain', buffer: text }]);
  await ann.page.getByTestId('send-button').click();
  const card = ben.page.getByTestId('attachment-file').filter({ hasText: 'report.txt' });
  await card.waitFor({ timeout: 15000 });
  assert.match(await card.innerText(), /7\.0 KB/);
  const [download] = await Promise.all([
    ben.page.waitForEvent('download'),
    card.getByTestId('attachment-download').click(),
  ]);
  assert.equal(download.suggestedFilename(), 'report.txt');
  const saved = await download.path();
  const { readFileSync } = await import('node:fs');
  assert.deepEqual(readFileSync(saved), text);
  // Only a photo, no caption: the list says what it is.
  await attach(ann.page, [{ name: 'a.png', mimeType: 'image/png', buffer: png(40, 40) }, { name: 'b.png', mimeType: 'image/png', buffer: png(50, 30) }]);
  await ann.page.getByTestId('send-button').click();
  await until(async () => (await ben.page.getByTestId('attachment-grid').last().getByTestId('attachment-photo').count()) === 2,
    { message: 'two photos in one grid' });
  const list = ben.page.getByTestId('conversation-item').filter({ hasText: 'Ann Archer' });
  await until(async () => /2 photos/.test(await list.innerText()), { message: 'the list preview' });
});

test('a cancelled upload is not sent', async () => {
  await ann.page.getByTestId('attach-input').setInputFiles([{ name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(8 * 1024 * 1024, 7) }]);
  await ann.page.getByTestId('tray-item').waitFor();
  await ann.page.getByTestId('tray-remove').click();
  assert.equal(await ann.page.getByTestId('tray-item').count(), 0);
  await ann.page.getByTestId('composer-input').fill('no file after all');
  await ann.page.getByTestId('composer-input').press('Enter');
  await ben.page.getByTestId('message-content').getByText('no file after all', { exact: true }).waitFor();
  assert.equal(await ben.page.getByTestId('attachment-file').filter({ hasText: 'big.bin' }).count(), 0);
});

test('a large file goes in parts, and a part that fails is sent again alone', async () => {
  // 17 MiB and a bit: three parts of the server's 8 MiB, the last one short.
  const size = 17 * 1024 * 1024 + 4321;
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 12)) & 0xff;
  const puts = new Map();
  let failed = false;
  await ann.page.route('**/media-blobs/p/**', async (route) => {
    const part = new URL(route.request().url()).pathname.split('/').pop();
    puts.set(part, (puts.get(part) || 0) + 1);
    // The second part's first try loses its connection.
    if (part === '2' && !failed) {
      failed = true;
      return route.abort('connectionreset');
    }
    return route.continue();
  });
  try {
    await attach(ann.page, [{ name: 'archive.bin', mimeType: 'application/octet-stream', buffer: bytes }]);
  } finally {
    await ann.page.unroute('**/media-blobs/p/**');
  }
  assert.deepEqual(Object.fromEntries(puts), { 1: 1, 2: 2, 3: 1 }, 'each part once, the failed one twice');
  await ann.page.getByTestId('send-button').click();
  const card = ben.page.getByTestId('attachment-file').filter({ hasText: 'archive.bin' });
  await card.waitFor({ timeout: 15000 });
  const history = await rest(server.url, 'GET', `/conversations/${await conversationWithBen()}/messages?limit=5`, { token: users.ben.token });
  const sent = history.messages.flatMap((m) => m.attachments || []).find((a) => a.filename === 'archive.bin');
  assert.equal(sent.size, size);
  const link = await rest(server.url, 'GET', `/media/${sent.media_id}`, { token: users.ben.token });
  const downloaded = Buffer.from(await (await fetch(new URL(link.url, server.url))).arrayBuffer());
  assert.ok(downloaded.equals(bytes), 'the joined parts are the file');
});

/** The direct chat of Ann and Ben, as Ben lists it. */
async function conversationWithBen() {
  const list = await rest(server.url, 'GET', '/conversations', { token: users.ben.token });
  return list.conversations.find((c) => c.type === 'direct').conversation_id;
}

test('a voice note is recorded, sent and played', async () => {
  await ann.page.getByTestId('voice-button').click();
  await ann.page.getByTestId('voice-status').waitFor();
  await until(async () => (await ann.page.getByTestId('voice-time').innerText()) >= '0:02', { message: 'two seconds of recording' });
  await ann.page.getByTestId('voice-button').click();
  const voice = ben.page.getByTestId('attachment-audio').last();
  await voice.waitFor({ timeout: 20000 });
  const duration = await voice.getByTestId('attachment-duration').innerText();
  assert.match(duration, /^0:0[2-4]$/);
  await until(() => voice.locator('audio').evaluate((audio) => audio.readyState >= 1 || audio.error === null && !!audio.src),
    { message: 'the player to load the recording' });
  await screenshot(ben.page, 'desktop-media-chat');
});

test('after a reload, and on a phone, the media are still there', async () => {
  benPhone = await openApp(browser, server.url, { viewport: PHONE, name: 'ben-phone' });
  await logIn(benPhone.page, names.ben);
  await openConversationTitled(benPhone.page, 'Ann Archer');
  await benPhone.page.getByTestId('attachment-photo').first().waitFor({ timeout: 15000 });
  await benPhone.page.getByTestId('attachment-file').first().waitFor();
  await benPhone.page.getByTestId('attachment-audio').first().waitFor();
  await until(() => benPhone.page.getByTestId('attachment-thumbnail').first()
    .evaluate((img) => img.complete && img.naturalWidth > 0), { message: 'the thumbnail on the phone' });
  await screenshot(benPhone.page, 'phone-media');
  await benPhone.page.getByTestId('attachment-photo').first().click();
  await until(() => benPhone.page.getByTestId('lightbox-image').evaluate((img) => img.complete && img.naturalWidth > 0),
    { message: 'the lightbox on the phone' });
  await screenshot(benPhone.page, 'phone-lightbox');
});
