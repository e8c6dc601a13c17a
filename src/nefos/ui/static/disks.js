// Disks: the user's volumes and snapshots, from the Block Storage API (Cinder v3 at
// /volume/v3, "block-storage" in the catalog), followed by polling as the machines list
// is. A disk is made empty, from an image or from a snapshot, against the quota of
// virtual disk space left in the chosen project; it is renamed, grown (never shrunk),
// attached to one of the user's machines and detached (Nova's os-volume_attachments),
// snapshotted and deleted. A snapshot is an image too (docs/volumes.md), so it boots,
// and a new disk can start from it. The machine's page (machine.js) uses this file's
// disk table and dialogs for the disks of one machine.

import { explain, projectName } from "./api.js";
import { GiB, amount, bytes, when } from "./format.js";
import { resourceInSentence, t } from "./i18n.js";
import { Component, createRef, html } from "./lib.js";
import { POLL } from "./machines.js";
import { Ask } from "./networks.js";
import { QuotaBars, remaining } from "./quota.js";

const DISK = "cyclades.disk";
export const BOOT_DEVICE = "/dev/vda"; // a machine booted from a volume has it here
// Cinder's statuses that end by themselves; the page polls quickly while one is shown.
const SETTLED = new Set(["available", "in-use", "error", "error_deleting", "error_extending"]);
const STATUS_CLASS = { available: "status-stopped", "in-use": "status-running" };
// a machine a disk can be attached to: not being built, in error or gone
const ATTACHABLE = new Set(["ACTIVE", "SHUTOFF", "STOPPED"]);

// A disk's name for people: one made by a machine's create has none.
export function diskName(volume) {
  return volume.name || t("disk.unnamed", { id: String(volume.id).slice(0, 8) });
}

// A disk's or a snapshot's state in words; an unknown one as the API wrote it.
export function diskState(status, kind = "disk") {
  const key = `${kind}.status.${status}`;
  try {
    return t(key);
  } catch {
    return status;
  }
}

export function diskStateClass(status) {
  if (STATUS_CLASS[status]) return `status ${STATUS_CLASS[status]}`;
  if (String(status).startsWith("error")) return "status status-error";
  return SETTLED.has(status) ? "status" : "status status-building";
}

export function moving(item) {
  return !SETTLED.has(item.status);
}

// The whole GiB that holds `n` bytes (at least 1): sizes on the wire are GiB.
function gibFor(n) {
  return Math.max(1, Math.ceil((Number(n) || 0) / GiB));
}

// Cinder writes its times in UTC without saying so.
function cinderTime(text) {
  return text ? when(/[Zz]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`) : "";
}

function projectOf(volume) {
  return volume["os-vol-tenant-attr:tenant_id"] || volume.tenant_id;
}

// A field with its label, hint and error, as the other forms write them.
function field({ id, label, hint, error, children }) {
  return html`<div class="field ${error ? "invalid" : ""}">
    <label for=${id}>${label}</label>
    ${children}
    ${hint ? html`<p class="hint" id=${`${id}-hint`}>${hint}</p>` : null}
    ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : null}
  </div>`;
}

function described(id, error, hint) {
  return error ? `${id}-error` : hint ? `${id}-hint` : null;
}

// A dialog that asks for one value (a name, a size) before a change; Escape cancels.
export class AskValue extends Component {
  dialog = createRef();
  input = createRef();
  state = { value: String(this.props.value ?? ""), error: null };

  componentDidMount() {
    this.dialog.current.showModal();
    this.input.current.focus();
    this.input.current.select();
  }

  submit(event) {
    event.preventDefault();
    const error = this.props.check(this.state.value);
    this.setState({ error });
    if (!error) this.props.onYes(this.state.value);
  }

  render({ id, title, text, label, hint, yes, type = "text", min, onNo, extra }, { value, error }) {
    return html`<dialog ref=${this.dialog} class="confirm" aria-labelledby=${`${id}-title`}
        onCancel=${(e) => { e.preventDefault(); onNo(); }}>
      <form onSubmit=${(e) => this.submit(e)} noValidate>
        <h2 id=${`${id}-title`}>${title}</h2>
        ${text ? html`<p>${text}</p>` : null}
        ${field({ id, label, hint, error, children: html`<input id=${id} ref=${this.input} type=${type} min=${min}
          value=${value} aria-invalid=${error ? "true" : null} aria-describedby=${described(id, error, hint)}
          onInput=${(e) => this.setState({ value: e.target.value, error: null })} />` })}
        ${extra ? extra(value) : null}
        <div class="actions">
          <button type="button" onClick=${onNo}>${t("common.cancel")}</button>
          <button type="submit" class="primary" id=${`${id}-yes`}>${yes}</button>
        </div>
      </form>
    </dialog>`;
  }
}

// Says why something cannot be done now, with one button to close it.
class Refusal extends Component {
  dialog = createRef();

  componentDidMount() {
    this.dialog.current.showModal();
  }

  render({ title, text, onNo }) {
    return html`<dialog ref=${this.dialog} class="confirm" aria-labelledby="refusal-title"
        onCancel=${(e) => { e.preventDefault(); onNo(); }}>
      <h2 id="refusal-title">${title}</h2>
      <p id="refusal-text">${text}</p>
      <div class="actions"><button type="button" onClick=${onNo} autofocus>${t("common.close")}</button></div>
    </dialog>`;
  }
}

// One choice among some (a machine, a disk) before attaching.
class Choose extends Component {
  dialog = createRef();
  state = { chosen: this.props.choices[0] ? this.props.choices[0].id : "" };

  componentDidMount() {
    this.dialog.current.showModal();
  }

  render({ id, title, label, hint, empty, yes, choices, onYes, onNo }, { chosen }) {
    return html`<dialog ref=${this.dialog} class="confirm" aria-labelledby=${`${id}-title`}
        onCancel=${(e) => { e.preventDefault(); onNo(); }}>
      <h2 id=${`${id}-title`}>${title}</h2>
      ${choices.length ? html`<div class="field"><label for=${id}>${label}</label>
          <select id=${id} value=${chosen} onChange=${(e) => this.setState({ chosen: e.target.value })}>
            ${choices.map((c) => html`<option value=${c.id}>${c.name}</option>`)}</select>
          <p class="hint">${hint}</p></div>`
        : html`<p class="empty">${empty}</p>`}
      <div class="actions">
        <button type="button" onClick=${onNo} autofocus>${t("common.cancel")}</button>
        <button type="button" class="primary" id=${`${id}-yes`} disabled=${!chosen}
          onClick=${() => onYes(choices.find((c) => c.id === chosen))}>${yes}</button>
      </div>
    </dialog>`;
  }
}

export function attachDisk(api, server, volume) {
  return api.post("compute", `/servers/${server.id}/os-volume_attachments`, { volumeAttachment: { volumeId: volume.id } });
}

export function detachDisk(api, serverId, volume) {
  return api.delete("compute", `/servers/${serverId}/os-volume_attachments/${volume.id}`);
}

// The dialogs both pages share: attach a disk to a machine (or a machine's disk), detach.
export function attachDialog({ volume, server, volumes, servers, onYes, onNo }) {
  if (volume) {
    const choices = servers.filter((s) => ATTACHABLE.has(s.status)).map((s) => ({ id: String(s.id), name: s.name }));
    return html`<${Choose} id="attach-machine" title=${t("disk.attachTitle", { name: volume.name })}
      label=${t("disk.machine")} hint=${t("disk.attachHint")} empty=${t("disk.noMachine")} yes=${t("disk.attach")}
      choices=${choices} onYes=${(c) => onYes(servers.find((s) => String(s.id) === c.id), volume)} onNo=${onNo} />`;
  }
  const free = volumes.filter((v) => v.status === "available");
  const choices = free.map((v) => ({ id: v.id, name: `${diskName(v)} (${bytes(v.size * GiB)})` }));
  return html`<${Choose} id="attach-disk" title=${t("disk.attachToTitle", { name: server.name })}
    label=${t("disk.disk")} hint=${t("disk.attachHint")} empty=${t("disk.noFreeDisk")} yes=${t("disk.attach")}
    choices=${choices} onYes=${(c) => onYes(server, free.find((v) => v.id === c.id))} onNo=${onNo} />`;
}

export function detachDialog({ volume, serverName, onYes, onNo }) {
  const name = diskName(volume);
  return html`<${Ask} title=${t("disk.detachTitle", { name, machine: serverName })} text=${t("disk.detachText")}
    keep=${t("disk.keepAttached")} yes=${t("disk.detachFrom", { machine: serverName })} onYes=${onYes} onNo=${onNo} />`;
}

// Where the image from a snapshot appears, with links, for the notices.
export function whereImagesAre() {
  return t("disk.imageWhere", {
    images: html`<a href="#/images">${t("nav.images")}</a>`,
    disks: html`<a href="#/disks">${t("nav.disks")}</a>`,
  });
}

// A new disk: empty, from an image or from a snapshot, with its size against the quota
// of virtual disk space left in the project it goes to.
class NewDisk extends Component {
  nameField = createRef();

  constructor(props) {
    super(props);
    const { quotas, project, snapshot, volumes } = props;
    const chosenProject = quotas[project] ? project : Object.keys(quotas)[0] || project;
    const left = Math.floor(remaining((quotas[chosenProject] || {})[DISK]) / GiB);
    this.state = {
      name: `disk-${volumes.length + 1}`,
      source: snapshot ? "snapshot" : "blank",
      image: props.images[0] ? props.images[0].id : "",
      snapshot: snapshot ? snapshot.id : props.snapshots[0] ? props.snapshots[0].id : "",
      size: String(snapshot ? snapshot.size : Math.max(1, Math.min(10, left))),
      sized: !!snapshot, // the user typed a size: choosing a source no longer changes it
      project: chosenProject,
      errors: {},
      failure: null,
      busy: false,
    };
  }

  componentDidMount() {
    this.nameField.current.focus();
  }

  // The smallest size the source allows, in GiB.
  least() {
    const { source, image, snapshot } = this.state;
    if (source === "image") {
      const found = this.props.images.find((i) => i.id === image);
      return found ? gibFor(found.size) : 1;
    }
    if (source === "snapshot") {
      const found = this.props.snapshots.find((s) => s.id === snapshot);
      return found ? found.size : 1;
    }
    return 1;
  }

  // A new source: its size unless the user typed one that still fits it.
  pick(update) {
    this.setState(update, () => {
      const least = this.least();
      const size = Number(this.state.size);
      if (this.state.source !== "blank" && (!this.state.sized || !(size >= least))) this.setState({ size: String(least) });
      else if (!(size >= least)) this.setState({ size: String(least) });
    });
  }

  async submit(event) {
    event.preventDefault();
    const { api, onDone } = this.props;
    const s = this.state;
    const name = s.name.trim();
    const size = Number(s.size);
    const errors = {};
    if (!name) errors.name = t("disk.giveName");
    if (!Number.isInteger(size) || size < this.least()) errors.size = t("disk.giveSize", { n: this.least() });
    if (s.source === "image" && !s.image) errors.source = t("disk.noImage");
    if (s.source === "snapshot" && !s.snapshot) errors.source = t("disk.noSnapshot");
    this.setState({ errors, failure: null });
    if (Object.keys(errors).length) return;
    const volume = { name, size, project: s.project };
    if (s.source === "image") volume.imageRef = s.image;
    if (s.source === "snapshot") volume.snapshot_id = s.snapshot;
    this.setState({ busy: true });
    try {
      await api.post("block-storage", "/volumes", { volume });
      onDone(name);
    } catch (error) {
      this.setState({ busy: false, failure: t("disk.createFailed", { name, why: explain(error, this.props) }) });
      if (error.fault && error.fault.data && error.fault.data.provision) this.props.onQuotaMoved();
    }
  }

  render({ images, snapshots, quotas, resources, projects, onCancel }, s) {
    const entries = quotas[s.project] || {};
    const size = Number(s.size);
    const adds = Number.isInteger(size) && size > 0 ? size * GiB : 0;
    const left = remaining(entries[DISK]);
    const blocked = entries[DISK] && adds > left
      ? t("disk.blocked", {
        what: resourceInSentence(DISK, resources[DISK]),
        needs: amount(resources[DISK], adds),
        left: amount(resources[DISK], left),
        project: projectName(projects, s.project),
      })
      : null;
    const sourceChoice = (value, label, disabled = false) => html`<label class="choice ${s.source === value ? "chosen" : ""} ${disabled ? "disabled" : ""}">
      <input type="radio" name="disk-source" value=${value} checked=${s.source === value} disabled=${disabled}
        onChange=${() => this.pick({ source: value })} /><span><strong>${label}</strong></span></label>`;
    const projectIds = Object.keys(quotas);
    return html`<form class="new-machine disk-form" onSubmit=${(e) => this.submit(e)} noValidate>
      <div class="form-main">
        <h2>${t("disk.newTitle")}</h2>
        <fieldset><legend>${t("disk.source")}</legend>
          <div class="choices">
            ${sourceChoice("blank", t("disk.blank"))}
            ${sourceChoice("image", t("disk.fromImage"), !images.length)}
            ${sourceChoice("snapshot", t("disk.fromSnapshot"), !snapshots.length)}
          </div>
          ${s.source === "image" ? field({ id: "disk-image", label: t("disk.image"), hint: t("disk.imageHint"), error: s.errors.source,
            children: html`<select id="disk-image" value=${s.image} onChange=${(e) => this.pick({ image: e.target.value })}>
              ${images.map((i) => html`<option value=${i.id}>${i.name} (${bytes(i.size)})</option>`)}</select>` }) : null}
          ${s.source === "snapshot" ? field({ id: "disk-snapshot", label: t("disk.snapshot"), hint: t("disk.snapshotHint"), error: s.errors.source,
            children: html`<select id="disk-snapshot" value=${s.snapshot} onChange=${(e) => this.pick({ snapshot: e.target.value })}>
              ${snapshots.map((n) => html`<option value=${n.id}>${n.name} (${bytes(n.size * GiB)})</option>`)}</select>` }) : null}
        </fieldset>
        <fieldset class="details"><legend>${t("disk.details")}</legend>
          ${field({ id: "disk-name", label: t("common.name"), error: s.errors.name, children: html`<input id="disk-name" type="text"
            ref=${this.nameField} value=${s.name} maxlength="255" aria-invalid=${s.errors.name ? "true" : null}
            aria-describedby=${described("disk-name", s.errors.name)}
            onInput=${(e) => this.setState({ name: e.target.value, errors: { ...s.errors, name: null } })} />` })}
          ${field({ id: "disk-size", label: t("disk.sizeGib"), hint: t("disk.sizeHint", { n: this.least() }), error: s.errors.size,
            children: html`<input id="disk-size" type="number" min=${this.least()} step="1" value=${s.size}
              aria-invalid=${s.errors.size ? "true" : null} aria-describedby=${described("disk-size", s.errors.size, true)}
              onInput=${(e) => this.setState({ size: e.target.value, sized: true, errors: { ...s.errors, size: null } })} />` })}
          ${projectIds.length > 1 ? field({ id: "disk-project", label: t("common.project"), children: html`<select id="disk-project"
              value=${s.project} onChange=${(e) => this.setState({ project: e.target.value })}>
              ${projectIds.map((id) => html`<option value=${id}>${projectName(projects, id)}</option>`)}</select>` }) : null}
        </fieldset>
      </div>
      <aside class="form-side" aria-labelledby="disk-uses-title">
        <h2 id="disk-uses-title">${t("new.quota")}</h2>
        <p class="sub">${t("new.quotaHint", { project: projectName(projects, s.project) })}</p>
        <${QuotaBars} entries=${entries} resources=${resources} only=${[DISK]} adds=${{ [DISK]: adds }} />
        ${s.failure ? html`<p class="error" role="alert" id="disk-form-failure">${s.failure}</p>`
          : blocked ? html`<p class="error" id="disk-blocked">${blocked}</p>` : null}
        <div class="actions">
          <button type="button" onClick=${onCancel}>${t("common.cancel")}</button>
          <button type="submit" class="primary" id="disk-submit" disabled=${s.busy || !!blocked}>
            ${t(s.busy ? "disk.creating" : "disk.create")}</button>
        </div>
      </aside>
    </form>`;
  }
}

export class Disks extends Component {
  state = { volumes: null, snapshots: [], servers: [], images: [], quotas: {}, making: null, dialog: null,
    notice: null, failure: null, error: null, busy: false };

  componentDidMount() {
    this.poll();
    this.loadOnce();
  }

  componentWillUnmount() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  // What the form needs and changes seldom: the images one can start a disk from (a
  // snapshot is listed as a snapshot, not twice) and the quotas.
  async loadOnce() {
    const { api } = this.props;
    const [images, quotas] = await Promise.allSettled([
      api.get("image", "/v2/images?limit=1000"),
      api.get("account", "/quotas"),
    ]);
    if (this.stopped) return;
    this.setState({
      images: images.status === "fulfilled"
        ? images.value.images.filter((i) => i.status === "active" && !i.volume_id).sort((a, b) => a.name.localeCompare(b.name)) : [],
      quotas: quotas.status === "fulfilled" ? quotas.value : {},
    });
  }

  async poll() {
    clearTimeout(this.timer);
    const { api } = this.props;
    try {
      const [volumes, snapshots, servers] = await Promise.all([
        api.get("block-storage", "/volumes/detail"),
        api.get("block-storage", "/snapshots/detail"),
        api.get("compute", "/servers/detail"),
      ]);
      if (this.stopped) return;
      const byName = (a, b) => (a.name || "").localeCompare(b.name || "") || a.id.localeCompare(b.id);
      this.setState({
        volumes: volumes.volumes.sort(byName),
        snapshots: snapshots.snapshots.sort(byName),
        servers: servers.servers.sort(byName),
        error: null,
      });
    } catch (error) {
      if (this.stopped) return;
      this.setState({ error: explain(error, this.props) });
    }
    const busy = (this.state.volumes || []).some(moving) || this.state.snapshots.some(moving);
    const wait = document.hidden ? POLL.HIDDEN_POLL_MS : busy ? POLL.QUICK_POLL_MS : POLL.SLOW_POLL_MS;
    this.timer = setTimeout(() => this.poll(), wait);
  }

  // One change through the API, then the lists again; a refusal is the API's reason,
  // said after what was being done (a quota's in numbers).
  async change(doing, call, done) {
    this.setState({ dialog: null, failure: null, notice: null, busy: true });
    try {
      await call();
      this.setState({ notice: done });
    } catch (error) {
      this.setState({ failure: t("disk.failed", { doing, why: explain(error, this.props) }) });
      if (error.fault && error.fault.data && error.fault.data.provision) this.loadOnce();
    }
    this.setState({ busy: false });
    await this.poll();
  }

  server(id) {
    return this.state.servers.find((s) => String(s.id) === String(id));
  }

  rename(volume, name) {
    const { api } = this.props;
    const old = diskName(volume);
    return this.change(t("disk.renaming", { name: old }),
      () => api.request("PUT", api.at("block-storage", `/volumes/${volume.id}`), { volume: { name } }),
      t("disk.renamed", { old, name }));
  }

  extend(volume, size) {
    const { api } = this.props;
    const name = diskName(volume);
    const to = bytes(size * GiB);
    return this.change(t("disk.extending", { name, size: to }), async () => {
      await api.post("block-storage", `/volumes/${volume.id}/action`, { "os-extend": { new_size: size } });
      this.loadOnce();
    }, t("disk.extended", { name, size: to }));
  }

  remove(volume) {
    const { api } = this.props;
    const name = diskName(volume);
    return this.change(t("disk.deleting", { name }), async () => {
      await api.delete("block-storage", `/volumes/${volume.id}`);
      this.loadOnce();
    }, t("disk.deleted", { name }));
  }

  attach(server, volume) {
    const name = diskName(volume);
    return this.change(t("disk.attaching", { name, machine: server.name }),
      () => attachDisk(this.props.api, server, volume), t("disk.attached", { name, machine: server.name }));
  }

  detach(volume, attachment) {
    const name = diskName(volume);
    const machine = this.machineName(attachment.server_id);
    return this.change(t("disk.detaching", { name, machine }),
      () => detachDisk(this.props.api, attachment.server_id, volume), t("disk.detached", { name, machine }));
  }

  snapshot(volume, name) {
    const { api } = this.props;
    const disk = diskName(volume);
    // a disk in use is snapshotted as it stands (Cinder's force): what the machine has
    // written out so far
    const body = { snapshot: { volume_id: volume.id, name, force: volume.status === "in-use" } };
    return this.change(t("disk.snapshotting", { name: disk }), () => api.post("block-storage", "/snapshots", body),
      html`${t("disk.snapshotted", { name, disk })} ${whereImagesAre()}`);
  }

  removeSnapshot(snapshot) {
    const { api } = this.props;
    return this.change(t("disk.deletingSnapshot", { name: snapshot.name }),
      () => api.delete("block-storage", `/snapshots/${snapshot.id}`), t("disk.deletedSnapshot", { name: snapshot.name }));
  }

  machineName(serverId) {
    const server = this.server(serverId);
    return server ? server.name : String(serverId);
  }

  attachedTo(volume) {
    const attachment = (volume.attachments || [])[0];
    if (!attachment) return html`<span class="sub">${t("disk.notAttached")}</span>`;
    const server = this.server(attachment.server_id);
    const name = server ? html`<a href=${`#/machines/${server.id}`}>${server.name}</a>` : html`<code>${attachment.server_id}</code>`;
    return html`${name} <span class="sub inline">${attachment.device === BOOT_DEVICE ? t("disk.bootsIt") : html`<code>${attachment.device}</code>`}</span>`;
  }

  open(kind, item) {
    this.setState({ dialog: { kind, item }, notice: null });
  }

  rowActions(volume) {
    const { busy } = this.state;
    const name = diskName(volume);
    const attachment = (volume.attachments || [])[0];
    const button = (kind, text, label, tone = "") => html`<button type="button" class=${tone} data-action=${kind}
      disabled=${busy} aria-label=${label} onClick=${() => this.open(kind, volume)}>${text}</button>`;
    if (volume.status === "available") {
      return html`${button("attach", t("disk.attachOpen"), t("disk.attachName", { name }))}
        ${button("snapshot", t("disk.snapshotOpen"), t("disk.snapshotOf", { name }))}
        ${button("rename", t("disk.renameOpen"), t("disk.renameName", { name }))}
        ${button("extend", t("disk.extendOpen"), t("disk.extendName", { name }))}
        ${button("delete", t("disk.delete"), t("disk.deleteName", { name }), "danger")}`;
    }
    if (volume.status === "in-use") {
      return html`${attachment && attachment.device !== BOOT_DEVICE
          ? button("detach", t("disk.detach"), t("disk.detachName", { name })) : null}
        ${button("snapshot", t("disk.snapshotOpen"), t("disk.snapshotOf", { name }))}
        ${button("rename", t("disk.renameOpen"), t("disk.renameName", { name }))}
        ${button("delete", t("disk.delete"), t("disk.deleteName", { name }), "danger")}`;
    }
    if (String(volume.status).startsWith("error")) return button("delete", t("disk.delete"), t("disk.deleteName", { name }), "danger");
    return null;
  }

  volumesTable() {
    return html`<table class="machines disks" id="disks">
      <thead><tr><th>${t("common.name")}</th><th>${t("common.size")}</th><th>${t("machines.state")}</th>
        <th>${t("disk.attachedTo")}</th><th>${t("disk.bootable")}</th><th>${t("common.created")}</th>
        <th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
      <tbody>${this.state.volumes.map((v) => html`<tr key=${v.id} data-disk=${v.name} data-id=${v.id}>
        <td><strong>${diskName(v)}</strong><span class="sub">${t("disk.typeIs", { type: v.volume_type })}</span>
          ${v.description ? html`<span class="sub">${v.description}</span>` : null}</td>
        <td class="size" data-label=${t("common.size")}>${bytes(v.size * GiB)}</td>
        <td><span class=${diskStateClass(v.status)} data-status=${v.status}>${diskState(v.status)}</span></td>
        <td class="attached-to" data-label=${t("disk.attachedTo")}>${this.attachedTo(v)}</td>
        <td data-label=${t("disk.bootable")}>${t(v.bootable === "true" ? "disk.yes" : "disk.no")}</td>
        <td class="when" data-label=${t("common.created")}>${cinderTime(v.created_at)}</td>
        <td class="row-actions">${this.rowActions(v)}</td>
      </tr>`)}</tbody></table>`;
  }

  snapshotsTable() {
    const { snapshots, volumes, busy } = this.state;
    const from = (id) => {
      const volume = (volumes || []).find((v) => v.id === id);
      return volume ? diskName(volume) : html`<span class="sub">${t("disk.goneDisk")}</span>`;
    };
    return html`<table class="machines disk-snapshots" id="snapshots">
      <thead><tr><th>${t("common.name")}</th><th>${t("common.size")}</th><th>${t("machines.state")}</th>
        <th>${t("disk.ofDisk")}</th><th>${t("common.created")}</th><th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
      <tbody>${snapshots.map((n) => html`<tr key=${n.id} data-snapshot=${n.name}>
        <td><strong>${n.name}</strong></td>
        <td class="size" data-label=${t("common.size")}>${bytes(n.size * GiB)}</td>
        <td><span class=${diskStateClass(n.status)} data-status=${n.status}>${diskState(n.status, "snapshot")}</span></td>
        <td data-label=${t("disk.ofDisk")}>${from(n.volume_id)}</td>
        <td class="when" data-label=${t("common.created")}>${cinderTime(n.created_at)}</td>
        <td class="row-actions">${n.status === "available" ? html`<button type="button" data-action="new-disk" disabled=${busy}
            aria-label=${t("disk.fromThisName", { name: n.name })}
            onClick=${() => this.setState({ making: { snapshot: n }, notice: null, failure: null })}>${t("disk.fromThis")}</button>
          <a class="button" data-action="start" href=${`#/machines/new/${n.id}`} aria-label=${t("disk.startName", { name: n.name })}>${t("disk.start")}</a>` : null}
          ${n.status === "available" || String(n.status).startsWith("error") ? html`<button type="button" class="danger"
            data-action="delete" disabled=${busy} aria-label=${t("disk.deleteSnapshotName", { name: n.name })}
            onClick=${() => this.open("delete-snapshot", n)}>${t("disk.delete")}</button>` : null}</td>
      </tr>`)}</tbody></table>`;
  }

  dialog() {
    const { dialog, volumes, servers, snapshots, quotas } = this.state;
    if (!dialog) return null;
    const close = () => this.setState({ dialog: null });
    const item = dialog.item;
    const name = diskName(item);
    if (dialog.kind === "delete-snapshot") {
      return html`<${Ask} title=${t("disk.deleteSnapshotTitle", { name })} text=${t("disk.deleteSnapshotText")}
        keep=${t("disk.keep")} yes=${t("disk.deleteSnapshotName", { name })}
        onYes=${() => this.removeSnapshot(item)} onNo=${close} />`;
    }
    if (dialog.kind === "delete") {
      const attachment = (item.attachments || [])[0];
      if (attachment) {
        const machine = this.machineName(attachment.server_id);
        const text = attachment.device === BOOT_DEVICE
          ? t("disk.deleteBootRefused", { name, machine }) : t("disk.deleteAttachedRefused", { name, machine });
        return html`<${Refusal} title=${t("disk.cannotDelete", { name })} text=${text} onNo=${close} />`;
      }
      return html`<${Ask} title=${t("disk.deleteTitle", { name })} text=${t("disk.deleteText")}
        keep=${t("disk.keep")} yes=${t("disk.deleteName", { name })} onYes=${() => this.remove(item)} onNo=${close} />`;
    }
    if (dialog.kind === "attach") {
      return attachDialog({ volume: item, volumes, servers, onYes: (server, volume) => this.attach(server, volume), onNo: close });
    }
    if (dialog.kind === "detach") {
      const attachment = item.attachments[0];
      return detachDialog({ volume: item, serverName: this.machineName(attachment.server_id),
        onYes: () => this.detach(item, attachment), onNo: close });
    }
    if (dialog.kind === "rename") {
      return html`<${AskValue} id="rename-disk" title=${t("disk.renameTitle", { name })} label=${t("common.name")}
        value=${item.name} yes=${t("disk.rename")} onNo=${close}
        check=${(v) => (v.trim() ? null : t("disk.giveName"))} onYes=${(v) => this.rename(item, v.trim())} />`;
    }
    if (dialog.kind === "extend") {
      const entries = quotas[projectOf(item)] || {};
      const { resources, projects } = this.props;
      const grows = (v) => Math.max(0, (Number(v) - item.size) * GiB);
      const check = (v) => {
        const size = Number(v);
        if (!Number.isInteger(size) || size <= item.size) return t("disk.growOnly", { n: item.size + 1 });
        if (entries[DISK] && grows(v) > remaining(entries[DISK])) {
          return t("disk.blocked", {
            what: resourceInSentence(DISK, resources[DISK]),
            needs: amount(resources[DISK], grows(v)),
            left: amount(resources[DISK], remaining(entries[DISK])),
            project: projectName(projects, projectOf(item)),
          });
        }
        return null;
      };
      return html`<${AskValue} id="extend-disk" title=${t("disk.extendTitle", { name })} type="number" min=${item.size + 1}
        text=${t("disk.extendText", { size: bytes(item.size * GiB) })} label=${t("disk.sizeGib")}
        hint=${t("disk.growHint")} value=${item.size + 1} yes=${t("disk.extend")} onNo=${close} check=${check}
        extra=${(v) => html`<${QuotaBars} entries=${entries} resources=${resources} only=${[DISK]} adds=${{ [DISK]: grows(v) }} />`}
        onYes=${(v) => this.extend(item, Number(v))} />`;
    }
    const taken = new Set(snapshots.map((n) => n.name));
    let suggested = `${name}-snapshot-1`;
    for (let n = 2; taken.has(suggested); n += 1) suggested = `${name}-snapshot-${n}`;
    return html`<${AskValue} id="snapshot-disk" title=${t("disk.snapshotTitle", { name })}
      text=${item.status === "in-use" ? t("disk.snapshotInUse") : t("disk.snapshotText")}
      label=${t("disk.snapshotLabel")} hint=${t("disk.snapshotNameHint")} value=${suggested} yes=${t("disk.takeSnapshot")}
      onNo=${close} check=${(v) => (!v.trim() ? t("disk.giveName") : v.includes("/") ? t("disk.noSlash") : null)}
      onYes=${(v) => this.snapshot(item, v.trim())} />`;
  }

  render({ api, resources, projects }, s) {
    const head = html`<section class="page-head">
        <h1>${t("nav.disks")}</h1>
        ${s.making ? null : html`<button type="button" class="primary" id="new-disk"
          onClick=${() => this.setState({ making: {}, notice: null, failure: null })}>${t("disk.new")}</button>`}
      </section>
      ${s.notice ? html`<p class="notice" role="status" id="disk-notice"><span>${s.notice}</span></p>` : null}
      ${s.failure ? html`<p class="error" role="alert" id="disk-failure">${s.failure}</p>` : null}
      ${s.error ? html`<p class="error" role="alert">${s.error}</p>` : null}`;
    if (s.volumes === null) return html`${head}<p class="loading">${t("common.loading")}</p>`;
    if (s.making) {
      return html`${head}<${NewDisk} api=${api} resources=${resources} projects=${projects} project=${api.project}
        quotas=${s.quotas} images=${s.images} volumes=${s.volumes}
        snapshots=${s.snapshots.filter((n) => n.status === "available")} snapshot=${s.making.snapshot}
        onQuotaMoved=${() => this.loadOnce()} onCancel=${() => this.setState({ making: null })}
        onDone=${(name) => { this.setState({ making: null, notice: t("disk.created", { name }) }); this.poll(); this.loadOnce(); }} />`;
    }
    const entries = s.quotas[api.project] || {};
    return html`${head}
      <p class="sub">${t("disk.intro")}</p>
      ${Object.keys(entries).length ? html`<div class="project-quota network-quota">
          <${QuotaBars} entries=${entries} resources=${resources} only=${[DISK, "pithos.diskspace"]} /></div>` : null}
      <section aria-labelledby="disks-title">
        <h2 id="disks-title">${t("disk.yours")}</h2>
        ${s.volumes.length ? this.volumesTable() : html`<p class="empty" id="no-disks">${t("disk.none")}</p>`}
      </section>
      <section aria-labelledby="snapshots-title">
        <h2 id="snapshots-title">${t("disk.snapshots")}</h2>
        <p class="sub">${t("disk.snapshotsIntro")}</p>
        ${s.snapshots.length ? this.snapshotsTable() : html`<p class="sub" id="no-snapshots">${t("disk.noSnapshots")}</p>`}
      </section>
      ${this.dialog()}`;
  }
}
