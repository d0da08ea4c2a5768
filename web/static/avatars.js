// Choosing a picture: the profile picture (Settings) and a group's picture (group info,
// for its admins). The picture goes up like any attachment (MediaClient: POST /media,
// the signed PUT with progress, complete), then the owner's `save(mediaId)` sets it
// (PATCH /users/me or /conversations/{id}); `save(null)` removes it. Showing pictures is
// dom.js's `avatar` with a `mediaId`.

import { h } from './dom.js';
import { formatSize, MAX_UPLOAD_BYTES } from './media.js';

/** What the server takes as a picture; anything else is refused before uploading. */
const PICTURE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif'];
/** Tries to set a picture the server is still processing (409 `media_not_ready`). */
const NOT_READY_TRIES = 3;
const NOT_A_PICTURE = 'That file is not a picture. Choose a JPEG, PNG, WebP or GIF image.';

/** Words for an error of the upload or of setting the picture. */
export function pictureError(err, noun = 'picture') {
  if (!err) return `Could not change the ${noun}. Try again.`;
  if (err.code === 'not_a_picture' || err.status === 400) return NOT_A_PICTURE;
  if (err.code === 'media_too_large') return `That picture is too large: files are at most ${formatSize(MAX_UPLOAD_BYTES)}.`;
  if (err.code === 'media_not_ready' || err.status === 409) return 'The picture is not ready yet. Try again in a moment.';
  if (err.status === 403) return `Only the group’s admins can change its ${noun}.`;
  if (err.status === 404) return 'That picture is not available any more. Choose it again.';
  if (err.code === 'rate_limited') return 'Too many uploads just now. Try again in a minute.';
  if (err.code === 'network' || err.status === 0) return `Cannot reach the server: the ${noun} was not changed.`;
  return `Could not change the ${noun}. Try again.`;
}

/**
 * The buttons that change and remove a picture, with the upload's progress and its errors.
 * The element (`el`) is kept across redraws of the panel that holds it (so a focused button
 * stays focused, and an upload survives a redraw); `update({hasPicture, target})` tells it
 * the current state. `target` (e.g. the group's id) is taken when a file is chosen and
 * given back to `save(mediaId, target)`, so a change lands where it was started.
 *
 * `options`: {media (MediaClient), noun ('profile picture'), testid (prefix of the
 * elements' test ids), save(mediaId | null, target) → Promise, onSaved(result)}.
 */
export class PictureEditor {
  constructor({ media, noun, testid, save, onSaved = () => {} }) {
    this.media = media;
    this.noun = noun;
    this.save = save;
    this.onSaved = onSaved;
    this.busy = false;
    this.hasPicture = false;
    this.target = null;
    this.input = h('input', {
      type: 'file', accept: 'image/*', hidden: '', tabindex: '-1', 'aria-hidden': 'true', testid: `${testid}-input`,
      onchange: () => {
        const file = this.input.files && this.input.files[0];
        this.input.value = '';
        if (file) this.upload(file);
      },
    });
    this.choose = h('button', {
      type: 'button', class: 'btn small', testid: `${testid}-change`,
      onclick: () => this.input.click(),
    });
    this.remove = h('button', {
      type: 'button', class: 'btn small ghost danger-text', testid: `${testid}-remove`, text: 'Remove',
      'aria-label': `Remove the ${noun}`,
      onclick: () => this.apply(null, this.target),
    });
    this.progress = h('progress', { max: '100', value: '0', hidden: '', testid: `${testid}-progress`, 'aria-label': `Uploading the ${noun}` });
    this.error = h('p', { class: 'form-error picture-error', role: 'alert', hidden: '', testid: `${testid}-error` });
    this.el = h('div', { class: 'picture-editor', testid: `${testid}-editor` },
      h('div', { class: 'picture-buttons' }, this.choose, this.remove, this.input),
      this.progress,
      this.error);
    this.update({ hasPicture: false });
  }

  update({ hasPicture, target = this.target }) {
    this.hasPicture = !!hasPicture;
    this.target = target;
    this.render();
  }

  render() {
    this.choose.textContent = this.busy ? 'Uploading…' : this.hasPicture ? 'Change picture' : 'Choose a picture';
    this.choose.setAttribute('aria-label', this.hasPicture ? `Change the ${this.noun}` : `Choose a ${this.noun}`);
    this.choose.disabled = this.busy;
    this.remove.hidden = !this.hasPicture;
    this.remove.disabled = this.busy;
    this.progress.hidden = !this.busy;
    this.el.setAttribute('aria-busy', String(this.busy));
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  async upload(file) {
    if (this.busy) return;
    this.showError('');
    // The server decides too (400): this only spares the upload of a file it will refuse.
    if (file.type && !PICTURE_TYPES.includes(file.type)) {
      this.showError(file.type.startsWith('image/')
        ? 'Pictures can be JPEG, PNG, WebP or GIF images. Choose one of those.'
        : NOT_A_PICTURE);
      return;
    }
    if (!file.size) {
      this.showError('That file is empty.');
      return;
    }
    const target = this.target;
    this.busy = true;
    this.progress.value = 0;
    this.render();
    let media;
    try {
      media = await this.media.upload(file, {
        onProgress: (fraction) => { this.progress.value = Math.round(fraction * 100); },
      });
    } catch (err) {
      this.busy = false;
      this.render();
      this.showError(pictureError(err, this.noun));
      return;
    }
    this.busy = false;
    await this.apply(media.media_id, target);
  }

  /** Sets (or with null removes) the picture, then tells the owner. */
  async apply(mediaId, target) {
    this.busy = true;
    this.render();
    try {
      const result = await this.saveWhenReady(mediaId, target);
      this.busy = false;
      this.hasPicture = !!mediaId;
      this.render();
      this.showError('');
      this.onSaved(result, mediaId);
    } catch (err) {
      this.busy = false;
      this.render();
      if (err && err.status === 401) return;
      this.showError(pictureError(err, this.noun));
    }
  }

  /** `save`, again a few times while the server is still making the picture's thumbnail (409). */
  async saveWhenReady(mediaId, target) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.save(mediaId, target);
      } catch (err) {
        const notReady = err && (err.code === 'media_not_ready' || err.status === 409);
        if (!notReady || !mediaId || attempt >= NOT_READY_TRIES) throw err;
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
  }
}
