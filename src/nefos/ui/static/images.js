// Images: the operating systems machines start from. Mine, those shared with me, the
// public ones; and "Register one of my files", which makes a file in my containers an
// image (Plankton's register: the file is the image, nothing is copied).

import { explain } from "./api.js";
import { bytes } from "./format.js";
import { day, t } from "./i18n.js";
import { Component, html } from "./lib.js";
import { Logo, osName } from "./oslogos.js";
import { DIRECTORY, Store } from "./store.js";

const STATUS = {
  active: "image.status.active",
  queued: "image.status.queued",
  saving: "image.status.saving",
  deactivated: "image.status.deactivated",
  killed: "image.status.killed",
};
const FAMILIES = [
  ["linux", "Linux"],
  ["windows", "Windows"],
  ["freebsd", "FreeBSD"],
  ["other", "image.family.other"],
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
    if (!file) errors.file = t("image.chooseFile");
    if (!name.trim()) errors.name = t("image.giveName");
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
    if (s.containers === null) return html`<div class="project-form"><p class="loading">${t("image.loadingFiles")}</p></div>`;
    const fileError = s.errors.file;
    return html`<form class="project-form image-form" onSubmit=${(e) => this.submit(e)} noValidate>
      <h2>${t("image.registerTitle")}</h2>
      <p class="sub">${t("image.registerIntro", { tool: html`<code>snf-image-creator</code>` })}</p>
      ${!s.containers.length ? html`<p class="empty">${t("image.noFiles")} <a href="#/files">${t("image.uploadFirst")}</a>${t("image.first")}</p>` : html`
        <div class="field-row">
          <div class="field"><label for="image-container">${t("common.container")}</label>
            <select id="image-container" value=${s.container} onChange=${(e) => this.pickContainer(e.target.value)}>
              ${s.containers.map((c) => html`<option value=${c}>${c}</option>`)}</select></div>
          <div class="field ${fileError ? "invalid" : ""}"><label for="image-file">${t("image.file")}</label>
            <select id="image-file" value=${s.file} onChange=${(e) => this.pickFile(e.target.value)}>
              ${!s.files.length ? html`<option value="">${t("image.noFileHere")}</option>` : null}
              ${s.files.map((f) => html`<option value=${f.name}>${f.name} (${bytes(f.bytes)})</option>`)}</select>
            ${fileError ? html`<p class="field-error">${fileError}</p>` : null}</div>
        </div>
        ${this.text("image-name", "name", t("common.name"), t("image.nameHint"), { maxlength: 255 })}
        <div class="field-row">
          ${this.text("image-distro", "distro", t("machine.os"), t("image.osHint"), { maxlength: 64 })}
          ${this.text("image-version", "version", t("image.version"), t("image.versionHint"), { maxlength: 64 })}
          <div class="field"><label for="image-family">${t("image.family")}</label>
            <select id="image-family" value=${s.family} onChange=${(e) => this.setState({ family: e.target.value })}>
              ${FAMILIES.map(([value, text]) => html`<option value=${value}>${text.startsWith("image.") ? t(text) : text}</option>`)}</select></div>
        </div>
        ${this.text("image-description", "description", t("image.description"), null, { maxlength: 255 })}`}
      ${s.failure ? html`<p class="error" role="alert" id="image-failure">${s.failure}</p>` : null}
      <div class="actions">
        <button type="button" onClick=${onCancel}>${t("common.cancel")}</button>
        <button type="submit" class="primary" id="image-submit" disabled=${s.busy || !s.containers.length}>
          ${t(s.busy ? "image.registering" : "image.register")}</button>
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
      this.setState({ notice: t("image.accepted", { name: image.name }) });
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
        <strong>${image.name || t("image.noName")}</strong>
        <span class="sub">${osName(image) || t("new.osNotGiven")}${image.size ? ` · ${bytes(image.size)}` : ""}</span>
        <span class="sub">${waiting ? t("image.waiting") : ready ? t("image.added", { day: day(image.created_at) }) : STATUS[image.status] ? t(STATUS[image.status]) : image.status}</span>
      </div>
      ${waiting ? html`<button type="button" class="primary" aria-label=${t("image.acceptName", { name: image.name })}
          onClick=${() => this.accept(image)}>${t("image.accept")}</button>`
        : ready ? html`<a class="button" href=${`#/machines/new/${encodeURIComponent(image.id)}`}
          aria-label=${t("image.startFrom", { name: image.name })}>${t("image.start")}</a>` : null}
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
      <h1>${t("nav.images")}</h1>
      ${registering ? null : html`<button type="button" class="primary" id="register"
          onClick=${() => this.setState({ registering: true, notice: null })}>${t("image.registerMine")}</button>`}
    </section>
    ${notice ? html`<p class="notice" role="status" id="image-notice">${notice}</p>` : null}
    ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}`;
    if (registering) {
      return html`${head}<${Register} api=${api} onCancel=${() => this.setState({ registering: false })}
        onDone=${(name) => { this.setState({ registering: false, notice: t("image.registered", { name }) }); this.load(); }} />`;
    }
    if (images === null) return html`${head}<p class="loading">${t("common.loading")}</p>`;
    const mine = images.filter((i) => i.owner === api.project || i.owner === api.user.id);
    const publicOnes = images.filter((i) => !mine.includes(i) && i.visibility === "public");
    const shared = images.filter((i) => !mine.includes(i) && !publicOnes.includes(i));
    return html`${head}
      ${this.group("my-images", t("image.yours"), mine, t("image.yoursEmpty"))}
      ${this.group("shared-images", t("image.shared"), shared, t("image.sharedEmpty"), pending)}
      ${this.group("public-images", t("image.public"), publicOnes, t("image.publicEmpty"))}`;
  }
}
