// Shared test helpers: start the real parley server, launch Debian's Chromium, and drive
// the web client as people would.

import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
// WEB_SCREENSHOT_DIR sends the screenshots elsewhere (to leave docs/ untouched).
export const screenshotDir = process.env.WEB_SCREENSHOT_DIR || path.join(repoRoot, 'docs', 'screenshots');

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  // Voice notes: a fake microphone (a tone), allowed without a prompt.
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

function findBinary() {
  if (process.env.PARLEY_BIN) return process.env.PARLEY_BIN;
  const candidates = [
    process.env.CARGO_TARGET_DIR && path.join(process.env.CARGO_TARGET_DIR, 'release', 'parley'),
    path.join(repoRoot, 'target', 'release', 'parley'),
    path.join(repoRoot, 'target', 'debug', 'parley'),
  ].filter(Boolean);
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) {
    throw new Error(`No parley binary: set PARLEY_BIN (looked in ${candidates.join(', ')})`);
  }
  return found;
}

/**
 * Start `parley serve` on a free port with a fresh data directory. Resolves to
 * {url, stop(), kill(), restart(), logs()}. `env` adds environment variables, e.g. lower
 * limits: {PARLEY_LIMITS__GROUP_MESSAGES_PER_MINUTE: '30'}. With PARLEY_URL set, uses that
 * running server instead (kill and restart are then unavailable, and `env` is ignored).
 */
export async function startServer({ env = {} } = {}) {
  if (process.env.PARLEY_URL) {
    return {
      url: process.env.PARLEY_URL.replace(/\/$/, ''),
      external: true,
      stop: async () => {},
      logs: () => '',
    };
  }
  const bin = findBinary();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-web-test-'));
  let output = '';
  let child = null;

  const spawnServer = (listen) => new Promise((resolve, reject) => {
    child = spawn(bin, ['serve', '--listen', listen, '--data-dir', dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', NO_COLOR: '1', ...env },
    });
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`parley did not report its address in 60 s:\n${output}`)), 60000);
    const onData = (chunk) => {
      output += chunk.toString();
      seen += chunk.toString();
      // eslint-disable-next-line no-control-regex
      const match = seen.replace(/\x1b\[[0-9;]*m/g, '').match(/http:\/\/127\.0\.0\.1:(\d+)/);
      if (match && match[1] !== '0') {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${match[1]}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`parley exited with ${code} before listening:\n${output}`));
    });
  });

  const killChild = async (signal) => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill(signal);
    await Promise.race([exited, sleep(5000)]);
    if (current.exitCode === null && current.signalCode === null) {
      current.kill('SIGKILL');
      await exited;
    }
  };

  const url = await spawnServer('127.0.0.1:0');
  await waitForHttp(url);
  const port = new URL(url).port;
  return {
    url,
    logs: () => output,
    /** kill -9: no graceful shutdown. */
    kill: () => killChild('SIGKILL'),
    /** Start again on the same port with the same data. */
    restart: async () => {
      await killChild('SIGKILL');
      let lastError;
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          await spawnServer(`127.0.0.1:${port}`);
          await waitForHttp(url);
          return;
        } catch (err) {
          lastError = err;
          await sleep(250); // the port may linger for a moment
        }
      }
      throw lastError;
    },
    stop: async () => {
      await killChild('SIGTERM');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function waitForHttp(url) {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/`);
      if (response.status < 500) return;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer`);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** A fresh browser context (its own storage: one "device") with a page open on the app. */
export async function openApp(browser, url, { viewport = DESKTOP, name = 'page' } = {}) {
  const context = await browser.newContext({ viewport, baseURL: url, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[${name}] page error:`, err.message));
  page.on('console', (msg) => {
    if (/Failed to load resource/.test(msg.text())) return; // expected 401/409 answers
    if (msg.type() === 'error' || msg.type() === 'warning') console.error(`[${name}] console.${msg.type()}:`, msg.text());
  });
  await page.goto('/');
  return { context, page };
}

let counter = 0;
export function uniqueName(prefix) {
  counter += 1;
  return `${prefix}${Date.now().toString(36).slice(-5)}${counter}`;
}

export const PASSWORD = 'correct horse battery';

/** Sign up through the UI and wait for the app to show. */
export async function signUp(page, username, displayName) {
  await page.getByTestId('auth-view').waitFor();
  await page.getByTestId('auth-tab-signup').click();
  await page.getByTestId('auth-username').fill(username);
  if (displayName) await page.getByTestId('auth-display-name').fill(displayName);
  await page.getByTestId('auth-password').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('app-view').waitFor();
  await waitOnline(page);
}

export async function logIn(page, username) {
  await page.getByTestId('auth-view').waitFor();
  await page.getByTestId('auth-tab-login').click();
  await page.getByTestId('auth-username').fill(username);
  await page.getByTestId('auth-password').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('app-view').waitFor();
  await waitOnline(page);
}

/** Wait until the WebSocket is authenticated (the banner reports "online"). */
export async function waitOnline(page, timeout = 15000) {
  await page.waitForFunction(
    () => document.querySelector('[data-testid="connection-banner"]')?.dataset.state === 'online',
    null,
    { timeout },
  );
}

/** Find a user by search and open the direct chat with them. */
export async function startDirectChat(page, username) {
  const search = page.getByTestId('search-input');
  await search.fill(username);
  const result = page.locator(`[data-testid="user-result"][data-username="${username}"]`);
  await result.waitFor();
  await result.click();
  await page.getByTestId('chat-title').waitFor();
}

export async function openConversationTitled(page, title) {
  const item = page.getByTestId('conversation-item').filter({
    has: page.getByTestId('conversation-title').getByText(title, { exact: true }),
  });
  await item.first().waitFor();
  await item.first().click();
  await page.waitForFunction((t) => document.querySelector('[data-testid="chat-title"]')?.textContent === t, title);
}

export async function sendText(page, text) {
  const input = page.getByTestId('composer-input');
  await input.fill(text);
  await input.press('Enter');
}

/** Messages in the open chat whose content is exactly `text`. */
export function messagesWithText(page, text) {
  return page.getByTestId('message').filter({
    has: page.getByTestId('message-content').getByText(text, { exact: true }),
  });
}

export async function waitForStatus(page, text, status, timeout = 15000) {
  await page.waitForFunction(
    ({ text: t, status: s }) => [...document.querySelectorAll('[data-testid="message"]')].some(
      (el) => el.querySelector('[data-testid="message-content"]')?.textContent === t && el.dataset.status === s,
    ),
    { text, status },
    { timeout },
  );
}

export async function screenshot(page, name) {
  fs.mkdirSync(screenshotDir, { recursive: true });
  await page.evaluate(() => document.activeElement && document.activeElement.blur && document.activeElement.blur());
  await sleep(250);
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`) });
}

/** Poll until fn() is truthy. */
export async function until(fn, { timeout = 10000, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(interval);
  }
  throw new Error(`Timed out waiting for ${message} (last: ${JSON.stringify(last)})`);
}

/** REST call from the test process (for seeding data quickly). */
export async function rest(url, method, path, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${url}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return data;
}

export async function registerApi(url, username, displayName) {
  return rest(url, 'POST', '/auth/register', { body: { username, password: PASSWORD, display_name: displayName } });
}

/**
 * A PNG whose pixels are `paint(x, y)` → [r, g, b] (`x`, `y` from 0 to 1; a colour
 * gradient by default), made here: no image library needed.
 */
export function png(width, height, paint = (x, y) => [Math.floor(x * 255), Math.floor(y * 255), 160]) {
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set(paint(x / width, y / height), 1 + x * 3);
    rows.push(row);
  }
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
