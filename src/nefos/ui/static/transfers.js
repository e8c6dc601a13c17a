// Uploads in progress, kept apart from the pages so that one goes on while the user
// browses elsewhere, and the panel that shows them with their progress bars.

import { uploadFile } from "./blocks.js";
import { bytes } from "./format.js";
import { t } from "./i18n.js";
import { Component, html } from "./lib.js";

let nextId = 1;
const uploads = [];
const listeners = new Set();

function changed(upload) {
  for (const listener of listeners) listener(upload);
}

export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

async function run(upload) {
  upload.state = "running";
  upload.error = null;
  changed(upload);
  try {
    const { sent, blocks } = await uploadFile(upload.store, upload.container, upload.name, upload.file, (p) => {
      Object.assign(upload, p);
      changed(upload);
    });
    Object.assign(upload, { state: "done", sent, blocks });
  } catch (error) {
    Object.assign(upload, { state: "failed", error: error.message || String(error) });
  }
  changed(upload);
}

// Uploads `files` into `container` under `prefix`, one after another.
export async function upload(store, container, prefix, files) {
  const started = [...files].map((file) => ({
    id: nextId++,
    store,
    container,
    name: prefix + file.name,
    file,
    phase: "waiting",
    done: 0,
    total: file.size,
    state: "waiting",
  }));
  uploads.unshift(...started);
  changed(null);
  for (const item of started) await run(item);
}

function describe(u) {
  if (u.state === "failed") return t("upload.stopped", { why: u.error });
  if (u.state === "done") {
    if (u.blocks > 1 && u.sent < u.blocks) return t("upload.partly", { sent: u.sent, n: u.blocks });
    return t("upload.done", { size: bytes(u.file.size) });
  }
  if (u.state === "waiting") return t("upload.waiting");
  if (u.phase === "retrying") return t("upload.retrying", { done: bytes(u.done), total: bytes(u.total), s: u.wait });
  if (u.phase === "hashing") return t("upload.hashing", { done: bytes(u.done), total: bytes(u.total) });
  return t("upload.sending", { done: bytes(u.done), total: bytes(u.total) });
}

export class Uploads extends Component {
  componentDidMount() {
    this.unsubscribe = subscribe(() => this.forceUpdate());
  }

  componentWillUnmount() {
    this.unsubscribe();
  }

  clear() {
    for (let i = uploads.length - 1; i >= 0; i -= 1) {
      if (uploads[i].state === "done") uploads.splice(i, 1);
    }
    this.forceUpdate();
  }

  render() {
    if (!uploads.length) return null;
    return html`<section class="uploads" aria-label=${t("upload.title")}>
      <div class="uploads-head"><h2>${t("upload.title")}</h2>
        <button type="button" class="link" onClick=${() => this.clear()}>${t("upload.clear")}</button></div>
      <ul>
        ${uploads.map((u) => html`<li key=${u.id} class=${`upload upload-${u.state}`} data-name=${u.name}
            data-state=${u.state} data-sent=${u.state === "done" ? u.sent : null}>
          <span class="upload-name">${u.container}/${u.name}</span>
          <progress max=${u.total || 1} value=${u.state === "done" ? u.total || 1 : u.done}
            aria-label=${t("upload.of", { name: u.name })}></progress>
          <span class="upload-text" role="status">${describe(u)}</span>
          ${u.state === "failed" ? html`<button type="button" onClick=${() => run(u)}>${t("upload.again")}</button>` : null}
        </li>`)}
      </ul>
    </section>`;
  }
}
