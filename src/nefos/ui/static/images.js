// Images: the operating systems machines start from. Mine, those shared with me, the
// public ones; and "Register one of my files", which makes a file in my containers an
// image (Plankton's register: the file is the image, nothing is copied).

import { explain } from "./api.js";
import { bytes } from "./format.js";
import { Component, html } from "./lib.js";
import { Logo, osName } from "./newmachine.js";
import { day } from "./projects.js";
import { DIRECTORY, Store } from "./store.js";

const STATUS = { active: "Ready", queued: "No data yet", saving: "Saving", deactivated: "Deactivated", killed: "Failed" };
const FAMILIES = [
  ["linux", "Linux"],
  ["windows", "Windows"],
  ["freebsd", "FreeBSD"],
  ["other", "Other"],
];

function header(value) {
  return encodeURIComponent(value); // Plankton's headers may be percent-encoded, as kamaki sends them
}

class Register extends Component {
  state = { containers: null, container: "", files: [], file: "", name: "", distro: "", version: "", family: "linux",
    description: "", errors: {}, failure: null, busy: false };

  async componentDidMount() {
    try {
      this.store = await Store.open(this.props.api);
      const containers = (await this.store.containers()).map((c) => c.name);
      this.setState({ containers });
      if (containers.length) await this.pickContainer(containers[0]);
    } catch (error) {
      this.setState({ containers: [], failure: explain(error) });
    }
  }

  async pickContainer(container) {
    this.setState({ container, files: [], file: "" });
    const listed = await this.store.json(this.store.url(container, "", "format=json&limit=1000"));
    const files = listed.filter((o) => o.name && o.content_type !== DIRECTORY && !o.name.endsWith("/"));
    this.setState({ files });
    if (files.length) this.pickFile(files[0].name);
  }

  pickFile(file) {
    const named = this.state.name && this.state.name !== this.suggested;
    this.suggested = file.slice(file.lastIndexOf("/") + 1).replace(/\.(img|raw|diskdump|qcow2|iso)$/i, "");
    this.setState({ file, name: named ? this.state.name : this.suggested, errors: { ...this.state.errors, file: null } });
  }

  async submit(event) {
    event.preventDefault();
    const { api, onDone } = this.props;
    const { container, file, name, distro, version, family, description } = this.state;
    const errors = {};
    if (!file) errors.file = "Choose a file.";
    if (!name.trim()) errors.name = "Give the image a name.";
    this.setState({ errors, failure: null });
    if (Object.keys(errors).length) return;
    this.setState({ busy: true });
    const headers = {
      "X-Image-Meta-Name": header(name.trim()),
      "X-Image-Meta-Location": header(`pithos://${api.user.id}/${container}/${file}`),
      "X-Image-Meta-Disk-Format": "diskdump",
      "X-Image-Meta-Container-Format": "bare",
      "X-Image-Meta-Property-OSFamily": family,
    };
    if (distro.trim()) {
      headers["X-Image-Meta-Property-OS"] = header(distro.trim().toLowerCase());
      headers["X-Image-Meta-Property-OS-Distro"] = header(distro.trim().toLowerCase());
    }
    if (version.trim()) headers["X-Image-Meta-Property-OS-Version"] = header(version.trim());
    if (description.trim()) headers["X-Image-Meta-Property-Description"] = header(description.trim());
    try {
      await api.send("POST", api.at("image", "/v1/images/"), { headers });
      onDone(name.trim());
    } catch (error) {
      this.setState({ busy: false, failure: explain(error) });
    }
  }

  text(id, key, label, hint, props = {}) {
    const error = this.state.errors[key];
    return html`<div class="field ${error ? "invalid" : ""}">
      <label for=${id}>${label}</label>
      <input id=${id} type="text" value=${this.state[key]} aria-invalid=${error ? "true" : null} ...${props}
        onInput=${(e) => this.setState({ [key]: e.target.value, errors: { ...this.state.errors, [key]: null } })} />
      ${hint ? html`<p class="hint">${hint}</p>` : null}
      ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : null}
    </div>`;
  }

  render({ onCancel }, s) {
    if (s.containers === null) return html`<div class="project-form"><p class="loading">Loading your files…</p></div>`;
    const fileError = s.errors.file;
    return html`<form class="project-form image-form" onSubmit=${(e) => this.submit(e)} noValidate>
      <h2>Register one of your files as an image</h2>
      <p class="sub">A disk image you uploaded to Files (a raw disk, e.g. made with <code>snf-image-creator</code>)
        becomes an operating system to start machines from. Nothing is copied: the image is the file.</p>
      ${!s.containers.length ? html`<p class="empty">You have no files yet. <a href="#/files">Upload one in Files</a> first.</p>` : html`
        <div class="field-row">
          <div class="field"><label for="image-container">Container</label>
            <select id="image-container" value=${s.container} onChange=${(e) => this.pickContainer(e.target.value)}>
              ${s.containers.map((c) => html`<option value=${c}>${c}</option>`)}</select></div>
          <div class="field ${fileError ? "invalid" : ""}"><label for="image-file">File</label>
            <select id="image-file" value=${s.file} onChange=${(e) => this.pickFile(e.target.value)}>
              ${!s.files.length ? html`<option value="">no file in this container</option>` : null}
              ${s.files.map((f) => html`<option value=${f.name}>${f.name} (${bytes(f.bytes)})</option>`)}</select>
            ${fileError ? html`<p class="field-error">${fileError}</p>` : null}</div>
        </div>
        ${this.text("image-name", "name", "Name", "What people pick in “New machine”.", { maxlength: 255 })}
        <div class="field-row">
          ${this.text("image-distro", "distro", "Operating system", "e.g. debian, ubuntu, fedora", { maxlength: 64 })}
          ${this.text("image-version", "version", "Version", "e.g. 12", { maxlength: 64 })}
          <div class="field"><label for="image-family">Family</label>
            <select id="image-family" value=${s.family} onChange=${(e) => this.setState({ family: e.target.value })}>
              ${FAMILIES.map(([value, text]) => html`<option value=${value}>${text}</option>`)}</select></div>
        </div>
        ${this.text("image-description", "description", "Description (optional)", null, { maxlength: 255 })}`}
      ${s.failure ? html`<p class="error" role="alert" id="image-failure">${s.failure}</p>` : null}
      <div class="actions">
        <button type="button" onClick=${onCancel}>Cancel</button>
        <button type="submit" class="primary" id="image-submit" disabled=${s.busy || !s.containers.length}>
          ${s.busy ? "Registering…" : "Register the image"}</button>
      </div>
    </form>`;
  }
}

export class Images extends Component {
  state = { images: null, pending: [], failure: null, notice: null, registering: false };

  componentDidMount() {
    this.load();
  }

  // Glance lists an image shared with me once I accept it; those still pending come
  // from a listing of their own, offered with "Accept".
  async load() {
    const { api } = this.props;
    try {
      const [listed, waiting] = await Promise.all([
        api.get("image", "/v2/images?limit=1000"),
        api.get("image", "/v2/images?limit=1000&visibility=shared&member_status=pending"),
      ]);
      const byName = (a, b) => (a.name || "").localeCompare(b.name || "");
      const pending = waiting.images.filter((i) => i.owner !== api.project).sort(byName);
      this.setState({ images: listed.images.sort(byName), pending });
    } catch (error) {
      this.setState({ images: [], pending: [], failure: explain(error) });
    }
  }

  async accept(image) {
    const { api } = this.props;
    try {
      await api.request("PUT", api.at("image", `/v2/images/${image.id}/members/${api.project}`), { status: "accepted" });
      this.setState({ notice: `${image.name} is in your list: you can start machines from it.` });
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
    await this.load();
  }

  card(image, waiting = false) {
    const ready = image.status === "active";
    return html`<li class="image-card" key=${image.id} data-image=${image.name}>
      <${Logo} image=${image} />
      <div class="image-text">
        <strong>${image.name || "(no name)"}</strong>
        <span class="sub">${osName(image) || "operating system not given"}${image.size ? ` · ${bytes(image.size)}` : ""}</span>
        <span class="sub">${waiting ? "Shared with you: accept it to use it" : ready ? `Added ${day(image.created_at)}` : STATUS[image.status] || image.status}</span>
      </div>
      ${waiting ? html`<button type="button" class="primary" aria-label=${`Accept ${image.name}`}
          onClick=${() => this.accept(image)}>Accept</button>`
        : ready ? html`<a class="button" href=${`#/machines/new/${encodeURIComponent(image.id)}`}
          aria-label=${`Start a machine from ${image.name}`}>Start a machine</a>` : null}
    </li>`;
  }

  group(id, title, images, empty, waiting = []) {
    return html`<section aria-labelledby=${`${id}-title`}>
      <h2 id=${`${id}-title`}>${title}</h2>
      ${images.length || waiting.length ? html`<ul class="image-cards" id=${id}>
          ${waiting.map((i) => this.card(i, true))}${images.map((i) => this.card(i))}</ul>`
        : html`<p class="sub">${empty}</p>`}
    </section>`;
  }

  render({ api }, { images, pending, failure, notice, registering }) {
    const head = html`<section class="page-head">
      <h1>Images</h1>
      ${registering ? null : html`<button type="button" class="primary" id="register"
          onClick=${() => this.setState({ registering: true, notice: null })}>Register one of my files</button>`}
    </section>
    ${notice ? html`<p class="notice" role="status" id="image-notice">${notice}</p>` : null}
    ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}`;
    if (registering) {
      return html`${head}<${Register} api=${api} onCancel=${() => this.setState({ registering: false })}
        onDone=${(name) => { this.setState({ registering: false, notice: `${name} is registered: you can start machines from it.` }); this.load(); }} />`;
    }
    if (images === null) return html`${head}<p class="loading">Loading…</p>`;
    const mine = images.filter((i) => i.owner === api.project || i.owner === api.user.id);
    const publicOnes = images.filter((i) => !mine.includes(i) && i.visibility === "public");
    const shared = images.filter((i) => !mine.includes(i) && !publicOnes.includes(i));
    return html`${head}
      ${this.group("my-images", "Your images", mine, "None yet. Register a disk image you uploaded to Files.")}
      ${this.group("shared-images", "Shared with you", shared, "Nobody shares an image with you.", pending)}
      ${this.group("public-images", "Public", publicOnes, "There is no public image yet.")}`;
  }
}
