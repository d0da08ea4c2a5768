// Media in the browser: uploads with progress and cancel, signed links, the attachments
// of a message (photos in a grid painted from their BlurHash first, video and audio
// players, file cards), the lightbox, and voice notes recorded with MediaRecorder.
//
// The bytes never pass through the chat connection: an upload is `POST /media`, a PUT
// of the file to the URL the server signed, then `POST /media/{id}/complete`; a download
// asks `GET /media/{id}` (as JSON) for a short-lived URL and hands it to the element.

import { h } from './dom.js';

/** Largest upload the server takes by default (100 MiB). */
export const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;
/** Files past this go in parts (the server's `limits.MEDIA_PART_BYTES`). */
const PART_BYTES = 8 * 1024 * 1024;
/** Failed parts sent again before an upload gives up (each time after a longer pause). */
const PART_RETRIES = 5;
/** Attachments one message may carry. */
export const MAX_ATTACHMENTS = 10;
/** How long a link that could not be had is not asked for again. */
const LINK_RETRY_MS = 30000;

/** What kind of attachment a media object is, for how it is shown. */
export function mediaKind(media) {
  const type = media.content_type || '';
  if (media.thumbnail && type.startsWith('image/')) return 'photo';
  if (type.startsWith('video/')) return 'video';
  if (type.startsWith('audio/')) return 'audio';
  return 'file';
}

/** A short text for a message that is only attachments (chat list, notifications). */
export function attachmentsSummary(attachments) {
  if (!attachments || !attachments.length) return '';
  const kinds = attachments.map(mediaKind);
  const count = attachments.length;
  if (kinds.every((k) => k === 'photo')) return count > 1 ? `📷 ${count} photos` : '📷 Photo';
  if (kinds.every((k) => k === 'video')) return count > 1 ? `🎬 ${count} videos` : '🎬 Video';
  if (count === 1 && kinds[0] === 'audio') return `🎤 Voice message${attachments[0].duration_ms ? ` (${formatDuration(attachments[0].duration_ms)})` : ''}`;
  if (count === 1) return `📎 ${attachments[0].filename || 'File'}`;
  return `📎 ${count} attachments`;
}

export function formatDuration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Uploads and signed links, over the app's `Api`. */
export class MediaClient {
  constructor(api) {
    this.api = api;
    this.links = new Map(); // `${media_id}/${thumbnail}` -> {promise, url, until}
  }

  /**
   * Uploads a File or Blob and completes it: the media object, ready to attach.
   * `onProgress(fraction)` follows the bytes; `signal` aborts (rejects with `AbortError`).
   */
  async upload(file, { onProgress = () => {}, signal = null, durationMs = null, filename = null } = {}) {
    if (file.size > MAX_UPLOAD_BYTES) {
      throw Object.assign(new Error(`Files are at most ${formatSize(MAX_UPLOAD_BYTES)}.`), { code: 'media_too_large' });
    }
    const body = {
      content_type: file.type || 'application/octet-stream',
      size: file.size,
    };
    const name = filename || file.name;
    if (name) body.filename = name.slice(0, 200);
    if (durationMs) body.duration_ms = Math.round(durationMs);
    const upload = await this.api.post('/media', body);
    if (signal && signal.aborted) throw abortError();
    if (file.size > PART_BYTES) await this.sendParts(upload.media_id, file, onProgress, signal);
    else await putWithProgress(upload, file, onProgress, signal);
    if (signal && signal.aborted) throw abortError();
    return this.api.post(`/media/${encodeURIComponent(upload.media_id)}/complete`);
  }

  /**
   * Sends a large file in the server's parts (`GET /media/{id}/parts`), one at a time,
   * so a dropped connection costs one part, not the whole file: a part that fails is
   * sent again after a pause, with a freshly signed request (its URL may have expired),
   * and only the parts that have not arrived are ever sent.
   */
  async sendParts(mediaId, file, onProgress, signal) {
    const path = `/media/${encodeURIComponent(mediaId)}/parts`;
    let failures = 0;
    for (;;) {
      try {
        // Asked again after a failure: fresh URLs, and what arrived meanwhile.
        const { parts } = await this.api.get(path);
        const missing = parts.filter((part) => !part.received);
        if (!missing.length) return;
        let arrived = parts.filter((part) => part.received).reduce((sum, part) => sum + part.size, 0);
        for (const part of missing) {
          const bytes = file.slice(part.offset, part.offset + part.size);
          const request = { upload_method: part.upload_method, upload_url: part.upload_url, upload_headers: part.upload_headers };
          await putWithProgress(request, bytes, (f) => onProgress((arrived + f * part.size) / file.size), signal);
          arrived += part.size;
        }
      } catch (err) {
        // A refusal (the upload is gone, complete, not ours) will not change by retrying.
        const refused = err.status && err.status < 500 && err.status !== 429;
        if (err.name === 'AbortError' || refused || ++failures > PART_RETRIES) throw err;
        await pause(Math.min(500 * 2 ** failures, 8000), signal);
      }
    }
  }

  /**
   * A signed URL of the media (or its thumbnail), cached while it stands. Callers asking
   * at the same time share one request (a chat list showing one picture fifty times asks
   * once); a failed request is remembered for a while, so redrawing does not retry it
   * on every frame.
   */
  link(mediaId, thumbnail = false) {
    const key = `${mediaId}/${thumbnail}`;
    const cached = this.links.get(key);
    if (cached && cached.until > Date.now()) return cached.promise;
    const entry = { promise: null, url: null, until: Infinity }; // Infinity: under way
    const path = `/media/${encodeURIComponent(mediaId)}${thumbnail ? '/thumbnail' : ''}`;
    entry.promise = this.api.get(path).then((answer) => {
      entry.url = new URL(answer.url, window.location.href).href;
      // A minute of margin, so an element never starts on a URL about to expire.
      entry.until = Date.parse(answer.expires_at) - 60000;
      return entry.url;
    }, (err) => {
      entry.until = Date.now() + LINK_RETRY_MS;
      throw err;
    });
    entry.promise.catch(() => {}); // callers handle it; nobody waiting is no error
    this.links.set(key, entry);
    return entry.promise;
  }

  /** The signed URL if one is at hand now (to draw a known picture without a frame of delay), else null. */
  cachedLink(mediaId, thumbnail = false) {
    const cached = this.links.get(`${mediaId}/${thumbnail}`);
    return cached && cached.url && cached.until > Date.now() ? cached.url : null;
  }
}

/** Waits `ms`, or rejects with `AbortError` as soon as `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortError());
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(timer); reject(abortError()); }, { once: true });
  });
}

function abortError() {
  return new DOMException('The upload was cancelled.', 'AbortError');
}

/** The PUT of the bytes, with progress (XHR: fetch has no upload progress). */
function putWithProgress(upload, file, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.upload_method, new URL(upload.upload_url, window.location.href).href);
    for (const [name, value] of Object.entries(upload.upload_headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else reject(new Error(`The upload failed (HTTP ${xhr.status}).`));
    };
    xhr.onerror = () => reject(new Error('The upload failed: cannot reach the server.'));
    xhr.onabort = () => reject(abortError());
    if (signal) signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

// ------------------------------------------------------------------------------ BlurHash

const BASE83 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';

function decode83(text) {
  let value = 0;
  for (const c of text) {
    const digit = BASE83.indexOf(c);
    if (digit < 0) throw new Error('not a BlurHash');
    value = value * 83 + digit;
  }
  return value;
}

function toLinear(channel) {
  const v = channel / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

function toSrgb(value) {
  const v = Math.min(1, Math.max(0, value));
  return Math.round(v <= 0.0031308 ? v * 12.92 * 255 : (1.055 * v ** (1 / 2.4) - 0.055) * 255);
}

/**
 * The RGBA pixels (`width` × `height`) a BlurHash stands for (blurha.sh's algorithm:
 * a few cosine components, base-83 coded); throws on a malformed hash.
 */
export function decodeBlurhash(hash, width, height) {
  const sizeFlag = decode83(hash[0]);
  const nx = (sizeFlag % 9) + 1;
  const ny = Math.floor(sizeFlag / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) throw new Error('not a BlurHash');
  const maxValue = (decode83(hash[1]) + 1) / 166;
  const colors = [];
  const dc = decode83(hash.slice(2, 6));
  colors.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
  const signed = (q) => {
    const v = (q - 9) / 9;
    return Math.sign(v) * v * v * maxValue;
  };
  for (let i = 1; i < nx * ny; i += 1) {
    const ac = decode83(hash.slice(4 + i * 2, 6 + i * 2));
    colors.push([signed(Math.floor(ac / 361)), signed(Math.floor(ac / 19) % 19), signed(ac % 19)]);
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      let r = 0; let g = 0; let b = 0;
      for (let j = 0; j < ny; j += 1) {
        for (let i = 0; i < nx; i += 1) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const color = colors[i + j * nx];
          r += color[0] * basis; g += color[1] * basis; b += color[2] * basis;
        }
      }
      const at = 4 * (x + y * width);
      pixels[at] = toSrgb(r); pixels[at + 1] = toSrgb(g); pixels[at + 2] = toSrgb(b); pixels[at + 3] = 255;
    }
  }
  return pixels;
}

/** A small canvas painted with the BlurHash (stretched by CSS), or null. */
function blurhashCanvas(hash) {
  if (!hash) return null;
  try {
    const canvas = h('canvas', { class: 'media-blur', testid: 'attachment-blurhash', 'aria-hidden': 'true' });
    canvas.width = 32;
    canvas.height = 32;
    const context = canvas.getContext('2d');
    const image = context.createImageData(32, 32);
    image.data.set(decodeBlurhash(hash, 32, 32));
    context.putImageData(image, 0, 0);
    return canvas;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------- attachments

const FILE_ICON = 'M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8Zm0 2.5L17.5 8H14ZM8 12h8v1.6H8Zm0 3.4h8V17H8Z';
const MIC_ICON = 'M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3Zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9Z';

/** An inline icon (no emoji font needed). */
function svgIcon(d, className) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', className);
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d);
  svg.appendChild(path);
  return svg;
}

/**
 * The attachments of a message: photos as a grid (one photo keeps its shape), then
 * videos, voice notes and files. `media` is a MediaClient; `onOpen(list, index)` opens a
 * photo in the lightbox. A pending message's attachments may carry `localUrl` (the file
 * being sent) until the server's links take over.
 */
export function attachmentsEl(attachments, { media, onOpen }) {
  const photos = attachments.filter((a) => mediaKind(a) === 'photo');
  const others = attachments.filter((a) => mediaKind(a) !== 'photo');
  const parts = [];
  if (photos.length) {
    const grid = h('div', {
      class: `media-grid count-${Math.min(photos.length, 4)}`, testid: 'attachment-grid',
    });
    photos.forEach((photo, index) => {
      const single = photos.length === 1;
      const tile = h('button', {
        type: 'button', class: 'media-tile', testid: 'attachment-photo',
        'aria-label': `Photo ${index + 1} of ${photos.length}${photo.filename ? `: ${photo.filename}` : ''}. Open`,
        dataset: { mediaId: photo.media_id },
        onclick: () => onOpen(photos, index),
      });
      if (single && photo.width && photo.height) {
        tile.style.aspectRatio = `${photo.width} / ${photo.height}`;
      }
      const blur = blurhashCanvas(photo.blurhash);
      if (blur) tile.appendChild(blur);
      const img = h('img', { class: 'media-thumb', alt: '', testid: 'attachment-thumbnail', loading: 'lazy' });
      img.addEventListener('load', () => tile.classList.add('loaded'));
      tile.appendChild(img);
      if (photos.length > 4 && index === 3) {
        tile.appendChild(h('span', { class: 'media-more', text: `+${photos.length - 4}` }));
      }
      if (index < 4) grid.appendChild(tile);
      if (photo.localUrl) img.src = photo.localUrl;
      else media.link(photo.media_id, true).then((url) => { img.src = url; }).catch(() => tile.classList.add('broken'));
    });
    parts.push(grid);
  }
  for (const item of others) parts.push(otherEl(item, media));
  return h('div', { class: 'attachments', testid: 'attachments' }, ...parts);
}

function otherEl(item, media) {
  const kind = mediaKind(item);
  if (kind === 'video') {
    const video = h('video', { class: 'media-video', testid: 'attachment-video', controls: '', preload: 'metadata' });
    if (item.width && item.height) video.style.aspectRatio = `${item.width} / ${item.height}`;
    media.link(item.media_id).then((url) => { video.src = url; }).catch(() => {});
    return video;
  }
  if (kind === 'audio') {
    const audio = h('audio', { class: 'media-audio', controls: '', preload: 'metadata', 'aria-label': 'Voice message' });
    media.link(item.media_id).then((url) => { audio.src = url; }).catch(() => {});
    return h('div', { class: 'media-voice', testid: 'attachment-audio' },
      svgIcon(MIC_ICON, 'media-voice-icon'),
      audio,
      item.duration_ms ? h('span', { class: 'media-duration', testid: 'attachment-duration', text: formatDuration(item.duration_ms) }) : null);
  }
  const name = item.filename || 'File';
  const download = h('button', {
    type: 'button', class: 'media-download', testid: 'attachment-download', 'aria-label': `Download ${name}`, text: 'Download',
    onclick: async () => {
      try {
        const url = await media.link(item.media_id);
        const a = h('a', { href: url, download: name, rel: 'noopener' });
        document.body.appendChild(a);
        a.click();
        a.remove();
      } catch {
        download.textContent = 'Not available';
      }
    },
  });
  return h('div', { class: 'media-file', testid: 'attachment-file' },
    svgIcon(FILE_ICON, 'media-file-icon'),
    h('span', { class: 'media-file-text' },
      h('span', { class: 'media-file-name', dir: 'auto', testid: 'attachment-filename', text: name }),
      h('span', { class: 'media-file-size', text: `${formatSize(item.size)} · ${item.content_type}` })),
    download);
}

// ------------------------------------------------------------------------------- lightbox

/** Shows `photos[index]` full size over the app; arrows step, Escape closes. */
export function openLightbox(photos, index, media) {
  closeLightbox();
  const opener = document.activeElement;
  let at = index;
  const img = h('img', { class: 'lightbox-img', testid: 'lightbox-image', alt: '' });
  const caption = h('div', { class: 'lightbox-caption', testid: 'lightbox-caption' });
  const show = () => {
    const photo = photos[at];
    img.removeAttribute('src');
    img.alt = photo.filename || `Photo ${at + 1} of ${photos.length}`;
    caption.textContent = `${photos.length > 1 ? `${at + 1} / ${photos.length} · ` : ''}${photo.width}×${photo.height}${photo.filename ? ` · ${photo.filename}` : ''}`;
    if (photo.localUrl) img.src = photo.localUrl;
    else media.link(photo.media_id).then((url) => { if (photos[at] === photo) img.src = url; }).catch(() => {});
  };
  const step = (delta) => {
    at = (at + delta + photos.length) % photos.length;
    show();
  };
  const close = h('button', { type: 'button', class: 'lightbox-close icon-btn', 'aria-label': 'Close', testid: 'lightbox-close', text: '✕' });
  const box = h('div', {
    class: 'lightbox', id: 'lightbox', testid: 'lightbox', role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Photo', tabindex: '-1',
  }, close, img, caption,
  photos.length > 1 ? h('button', { type: 'button', class: 'lightbox-prev icon-btn', 'aria-label': 'Previous photo', text: '‹', onclick: (e) => { e.stopPropagation(); step(-1); } }) : null,
  photos.length > 1 ? h('button', { type: 'button', class: 'lightbox-next icon-btn', 'aria-label': 'Next photo', text: '›', onclick: (e) => { e.stopPropagation(); step(1); } }) : null);
  const dismiss = () => {
    box.remove();
    document.removeEventListener('keydown', onKey, true);
    if (opener && opener.focus) opener.focus();
  };
  const onKey = (event) => {
    if (event.key === 'Escape') { event.preventDefault(); event.stopPropagation(); dismiss(); }
    if (event.key === 'ArrowLeft' && photos.length > 1) step(-1);
    if (event.key === 'ArrowRight' && photos.length > 1) step(1);
  };
  close.addEventListener('click', dismiss);
  box.addEventListener('click', (event) => { if (event.target === box) dismiss(); });
  document.addEventListener('keydown', onKey, true);
  document.body.appendChild(box);
  show();
  close.focus();
  return dismiss;
}

export function closeLightbox() {
  const open = document.getElementById('lightbox');
  if (open) open.remove();
}

// ----------------------------------------------------------------------------- voice notes

/** Records one voice note from the microphone (`start`, then `stop` or `cancel`). */
export class VoiceRecorder {
  constructor() {
    this.recorder = null;
    this.chunks = [];
    this.startedAt = 0;
    this.stream = null;
  }

  static supported() {
    return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const type = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm'].find((t) => MediaRecorder.isTypeSupported(t));
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : {});
    this.chunks = [];
    this.recorder.ondataavailable = (event) => { if (event.data.size) this.chunks.push(event.data); };
    this.recorder.start(250);
    this.startedAt = Date.now();
  }

  elapsed() {
    return this.startedAt ? Date.now() - this.startedAt : 0;
  }

  /** The recording as `{blob, durationMs}`. */
  stop() {
    return new Promise((resolve) => {
      const durationMs = this.elapsed();
      this.recorder.onstop = () => {
        const type = (this.recorder.mimeType || 'audio/webm').split(';')[0];
        this._release();
        resolve({ blob: new Blob(this.chunks, { type }), durationMs });
      };
      this.recorder.stop();
    });
  }

  cancel() {
    if (this.recorder && this.recorder.state !== 'inactive') {
      this.recorder.onstop = () => {};
      this.recorder.stop();
    }
    this._release();
  }

  _release() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.startedAt = 0;
  }
}
