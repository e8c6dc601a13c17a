// One machine: its state, size, image and network interfaces, followed by polling, with
// its actions; resize picks a size against the quota and asks first, since a running
// machine is stopped and started again for it. A NIC is a port of the Network API whose
// device is the machine: "connect" makes one, "disconnect" deletes it; the firewall
// profile is Cyclades's (the Synnefo dialect's `attachments`). Its disks are the volumes
// attached to it (os-volume_attachments, with their names from the Block Storage API);
// a machine booted from a volume (its /dev/vda) can be snapshotted into an image
// (createImage), one on its own disk cannot (the API answers 501), and the page says so.

import { explain, projectName } from "./api.js";
import { GiB, MiB, amount, bytes, when } from "./format.js";
import { resourceInSentence, t } from "./i18n.js";
import { Component, createRef, html } from "./lib.js";
import { AskValue, BOOT_DEVICE, attachDialog, attachDisk, detachDialog, detachDisk, diskName, diskState, diskStateClass,
  moving as diskMoving, whereImagesAre } from "./disks.js";
import { ACTIONS, Confirm, POLL, allowed, flavorText, label, moving, statusClass, task } from "./machines.js";
import { Ask } from "./networks.js";
import { QuotaBars, remaining } from "./quota.js";

const WAIT_LIMIT_MS = 5 * 60 * 1000;
const RUNNING = new Set(["ACTIVE"]);
const FIREWALL = { ENABLED: "nic.firewall.ENABLED", PROTECTED: "nic.firewall.PROTECTED", DISABLED: "nic.firewall.DISABLED" };

// What changing from one flavor to another adds to (or frees from) the quota.
function delta(from, to, running) {
  const cpu = to.vcpus - from.vcpus;
  const ram = (to.ram - from.ram) * MiB;
  const change = { "cyclades.total_cpu": cpu, "cyclades.total_ram": ram };
  if (running) Object.assign(change, { "cyclades.cpu": cpu, "cyclades.ram": ram });
  return change;
}

// The first resource a resize would overrun, or null.
function overrun(entries, change) {
  for (const [name, wanted] of Object.entries(change)) {
    if (wanted > 0 && entries[name] && wanted > remaining(entries[name])) return { name, wanted, left: remaining(entries[name]) };
  }
  return null;
}

class Resize extends Component {
  dialog = createRef();
  state = { chosen: null };

  componentDidMount() {
    this.dialog.current.showModal();
  }

  render({ server, flavor, flavors, entries, resources, onYes, onNo }, { chosen }) {
    const running = RUNNING.has(server.status);
    const sizes = flavors.filter((f) => f.disk === flavor.disk && f.id !== flavor.id);
    const picked = sizes.find((f) => f.id === chosen) || null;
    const change = picked ? delta(flavor, picked, running) : {};
    const adds = Object.fromEntries(Object.entries(change).map(([k, v]) => [k, Math.max(0, v)]));
    return html`<dialog ref=${this.dialog} class="confirm wide" aria-labelledby="resize-title"
        onCancel=${(e) => { e.preventDefault(); onNo(); }}>
      <h2 id="resize-title">${t("machine.resizeTitle", { name: server.name })}</h2>
      <p>${t("machine.now", { size: html`<strong>${flavorText(flavor)}</strong>` })}</p>
      ${!sizes.length ? html`<p class="empty">${t("machine.noSize", { disk: amount({ unit: "bytes" }, flavor.disk * GiB) })}</p>`
        : html`<fieldset class="resize-sizes"><legend>${t("machine.newSize")}</legend>
          <div class="choices">${sizes.map((f) => {
            const short = overrun(entries, delta(flavor, f, running));
            const why = short ? t("machine.overQuota", { what: resourceInSentence(short.name, resources[short.name]), left: amount(resources[short.name], short.left) }) : f.name;
            return html`<label class="choice ${chosen === f.id ? "chosen" : ""} ${short ? "disabled" : ""}" key=${f.id}>
              <input type="radio" name="resize" value=${f.id} checked=${chosen === f.id} disabled=${!!short}
                onChange=${() => this.setState({ chosen: f.id })} />
              <span><strong>${flavorText(f)}</strong><span class="sub">${why}</span></span></label>`;
          })}</div></fieldset>
          <${QuotaBars} entries=${entries} resources=${resources} only=${["cyclades.total_cpu", "cyclades.total_ram"]} adds=${adds} />`}
      <p class="warning">${running
        ? html`<strong>${t("machine.runningWarning", { name: server.name })}</strong> ${t("machine.runningWarning2")}`
        : t("machine.stoppedWarning", { name: server.name })}</p>
      <div class="actions">
        <button type="button" onClick=${onNo} autofocus>${t("machine.keepSize")}</button>
        <button type="button" class="primary" id="resize-yes" disabled=${!picked} onClick=${() => onYes(picked)}>
          ${t(running ? "machine.resizeRunning" : "machine.resize")}</button>
      </div>
    </dialog>`;
  }
}


// The size in GiB of the machine's boot disk when it is a volume (at /dev/vda), else 0.
function bootVolumeSize(disks) {
  const boot = (disks || []).find((d) => d.attachment.device === "/dev/vda");
  return boot ? boot.volume.size : 0;
}

export class Machine extends Component {
  state = { server: null, flavors: [], images: {}, quotas: {}, dialog: null, progress: null, notice: null, failure: null, missing: false,
    nics: null, networks: [], joining: "", disks: null, volumes: [] };

  componentDidMount() {
    this.poll();
    this.loadNames();
  }

  // The NICs (Cyclades's attachments) and the networks they are on; again whenever the
  // server's addresses change, which is when a NIC comes or goes.
  async loadNics() {
    const { api } = this.props;
    try {
      const synnefo = await api.synnefoEndpoint("compute");
      const [{ server }, { networks }] = await Promise.all([
        api.request("GET", `${synnefo}/servers/${encodeURIComponent(this.props.rest)}`),
        api.get("network", "/v2.0/networks"),
      ]);
      if (!this.stopped) this.setState({ nics: server.attachments || [], networks });
    } catch (error) {
      if (!this.stopped && error.status !== 404) this.setState({ failure: explain(error, this.props) });
    }
  }

  // The disks attached to the machine, each with its volume (name, size, state); again
  // when the server's list of volumes changes, and while one is attaching or detaching.
  async loadDisks() {
    const { api } = this.props;
    try {
      const [{ volumeAttachments }, { volumes }] = await Promise.all([
        api.get("compute", `/servers/${encodeURIComponent(this.props.rest)}/os-volume_attachments`),
        api.get("block-storage", "/volumes/detail"),
      ]);
      if (this.stopped) return;
      const disks = volumeAttachments.map((attachment) => ({
        attachment,
        volume: volumes.find((v) => v.id === attachment.volumeId) || { id: attachment.volumeId, name: "", size: 0, status: "" },
      })).sort((a, b) => a.attachment.device.localeCompare(b.attachment.device));
      this.setState({ disks, volumes });
    } catch (error) {
      if (!this.stopped && error.status !== 404) this.setState({ failure: explain(error, this.props) });
    }
  }

  componentWillUnmount() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async loadNames() {
    const { api } = this.props;
    const [flavors, images, quotas] = await Promise.allSettled([
      api.get("compute", "/flavors/detail"),
      api.get("image", "/v2/images?limit=1000"),
      api.get("account", "/quotas"),
    ]);
    this.setState({
      flavors: flavors.status === "fulfilled" ? flavors.value.flavors.filter((f) => !f["OS-FLV-DISABLED:disabled"]) : [],
      images: images.status === "fulfilled" ? Object.fromEntries(images.value.images.map((i) => [i.id, i])) : {},
      quotas: quotas.status === "fulfilled" ? quotas.value : {},
    });
  }

  async fetch() {
    const { server } = await this.props.api.get("compute", `/servers/${encodeURIComponent(this.props.rest)}`);
    if (this.stopped) return server;
    this.setState({ server });
    const addresses = JSON.stringify(server.addresses || {});
    if (addresses !== this.addresses) {
      this.addresses = addresses;
      this.loadNics();
    }
    const volumes = JSON.stringify(server["os-extended-volumes:volumes_attached"] || []);
    const disksMoving = (this.state.disks || []).some((d) => diskMoving(d.volume));
    if (volumes !== this.volumesSeen || disksMoving) {
      this.volumesSeen = volumes;
      this.loadDisks();
    }
    return server;
  }

  async poll() {
    clearTimeout(this.timer);
    try {
      await this.fetch();
    } catch (error) {
      if (this.stopped) return;
      if (error.status === 404) return this.setState({ missing: true });
      this.setState({ failure: explain(error, this.props) });
    }
    if (this.stopped) return;
    const s = this.state;
    const { server } = s;
    const changing = (server && moving(server)) || (s.disks || []).some((d) => diskMoving(d.volume));
    const wait = document.hidden ? POLL.HIDDEN_POLL_MS : changing ? POLL.QUICK_POLL_MS : POLL.SLOW_POLL_MS;
    this.timer = setTimeout(() => this.poll(), wait);
  }

  // Polls until the machine is where `done` says, as the list does, or says it is not.
  async until(done, what) {
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const server = await this.fetch();
      if (server.status === "ERROR") throw new Error(t("machine.errorWhile", { name: server.name, what: t(`machine.while.${what}`) }));
      if (done(server) && task(server) === null) return server;
      if (Date.now() > deadline) throw new Error(t("machine.stillWhile", { name: server.name, what: t(`machine.while.${what}`) }));
      await new Promise((resolve) => setTimeout(resolve, POLL.QUICK_POLL_MS));
    }
  }

  async act(what, body) {
    const { api } = this.props;
    const { server } = this.state;
    this.setState({ dialog: null, failure: null, notice: null });
    try {
      if (what === "destroy") {
        await api.delete("compute", `/servers/${server.id}`);
        location.hash = "#/machines";
        return;
      }
      await api.post("compute", `/servers/${server.id}/action`, body || ACTIONS[what].body);
    } catch (error) {
      this.setState({ failure: t("common.failed", { action: t(ACTIONS[what].title), name: server.name, why: explain(error, this.props) }) });
    }
    this.poll();
  }

  async resize(flavor) {
    const { api } = this.props;
    const { server } = this.state;
    const path = `/servers/${server.id}/action`;
    const wasRunning = RUNNING.has(server.status);
    this.setState({ dialog: null, failure: null, notice: null });
    clearTimeout(this.timer);
    try {
      if (wasRunning) {
        this.setState({ progress: t("machine.stopping", { name: server.name }) });
        await api.post("compute", path, ACTIONS.stop.body);
        await this.until((s) => s.status === "SHUTOFF" || s.status === "STOPPED", "stopping");
      }
      this.setState({ progress: t("machine.resizing", { name: server.name, size: flavorText(flavor) }) });
      await api.post("compute", path, { resize: { flavorRef: flavor.id } });
      await this.until((s) => s.flavor && s.flavor.id === flavor.id, "resizing");
      if (wasRunning) {
        this.setState({ progress: t("machine.startingAgain", { name: server.name }) });
        await api.post("compute", path, ACTIONS.start.body);
        await this.until((s) => s.status === "ACTIVE", "starting");
      }
      this.setState({ notice: t("machine.nowHas", { name: server.name, size: flavorText(flavor) }) });
    } catch (error) {
      this.setState({ failure: t("common.failed", { action: t("machine.resize"), name: server.name, why: explain(error, this.props) }) });
    }
    this.setState({ progress: null, quotas: await api.get("account", "/quotas").catch(() => this.state.quotas) });
    this.poll();
  }

  // A new NIC: a port on the network with the machine as its device (the API plugs it
  // in, on a running machine too).
  async connect(network) {
    const { api } = this.props;
    const { server } = this.state;
    this.setState({ dialog: null, failure: null, notice: null });
    try {
      await api.post("network", "/v2.0/ports", { port: { network_id: network.id, device_id: String(server.id), device_owner: "compute:nova" } });
      this.setState({ notice: t("nic.connected", { name: server.name, network: network.name }) });
    } catch (error) {
      this.setState({ failure: t("nic.connectFailed", { name: server.name, network: network.name, why: explain(error, this.props) }) });
    }
    this.loadNics();
    this.poll();
  }

  async disconnect(nic, network) {
    const { api } = this.props;
    const { server } = this.state;
    this.setState({ dialog: null, failure: null, notice: null });
    try {
      await api.delete("network", `/v2.0/ports/${nic.id}`);
      this.setState({ notice: t("nic.disconnected", { name: server.name, network }) });
    } catch (error) {
      this.setState({ failure: t("nic.disconnectFailed", { name: server.name, network, why: explain(error, this.props) }) });
    }
    this.loadNics();
    this.poll();
  }

  // A disk change (attach, detach) through the API, then the disks again.
  async diskChange(call, done, failed) {
    this.setState({ dialog: null, failure: null, notice: null });
    try {
      await call();
      this.setState({ notice: done });
    } catch (error) {
      this.setState({ failure: failed(explain(error, this.props)) });
    }
    await this.loadDisks();
    this.poll();
  }

  attachVolume(server, volume) {
    const name = diskName(volume);
    return this.diskChange(() => attachDisk(this.props.api, server, volume), t("disk.attached", { name, machine: server.name }),
      (why) => t("disk.failed", { doing: t("disk.attaching", { name, machine: server.name }), why }));
  }

  detachVolume(volume) {
    const { server } = this.state;
    const name = diskName(volume);
    return this.diskChange(() => detachDisk(this.props.api, server.id, volume), t("disk.detached", { name, machine: server.name }),
      (why) => t("disk.failed", { doing: t("disk.detaching", { name, machine: server.name }), why }));
  }

  // createImage: a snapshot of the boot disk, which is an image the user can start
  // machines from.
  snapshotMachine(name) {
    const { api } = this.props;
    const { server } = this.state;
    return this.diskChange(() => api.post("compute", `/servers/${server.id}/action`, { createImage: { name } }),
      html`<span>${t("disk.imageMade", { name, machine: server.name })} ${whereImagesAre()}</span>`,
      (why) => t("disk.failed", { doing: t("disk.imaging", { machine: server.name }), why }));
  }

  diskTable() {
    return html`<table class="machines disks" id="machine-disks">
      <thead><tr><th>${t("common.name")}</th><th>${t("common.size")}</th><th>${t("disk.device")}</th><th>${t("machines.state")}</th>
        <th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
      <tbody>${this.state.disks.map(({ attachment, volume }) => html`<tr key=${volume.id} data-disk=${volume.name}>
        <td><a href="#/disks"><strong>${diskName(volume)}</strong></a></td>
        <td data-label=${t("common.size")}>${bytes(volume.size * GiB)}</td>
        <td data-label=${t("disk.device")}><code>${attachment.device}</code>${attachment.device === BOOT_DEVICE
          ? html` <span class="sub inline">${t("disk.bootDisk")}</span>` : null}</td>
        <td>${volume.status ? html`<span class=${diskStateClass(volume.status)} data-status=${volume.status}>${diskState(volume.status)}</span>` : null}</td>
        <td class="row-actions">${attachment.device !== BOOT_DEVICE && volume.status === "in-use" ? html`<button type="button"
            data-action="detach" aria-label=${t("disk.detachName", { name: diskName(volume) })}
            onClick=${() => this.setState({ dialog: { kind: "detach-disk", volume } })}>${t("disk.detach")}</button>` : null}</td>
      </tr>`)}</tbody></table>`;
  }

  diskDialog(server) {
    const { dialog } = this.state;
    const close = () => this.setState({ dialog: null });
    if (dialog === "attach-disk") {
      return attachDialog({ server, volumes: this.state.volumes, onYes: (s, v) => this.attachVolume(s, v), onNo: close });
    }
    if (dialog && dialog.kind === "detach-disk") {
      return detachDialog({ volume: dialog.volume, serverName: server.name, onYes: () => this.detachVolume(dialog.volume), onNo: close });
    }
    if (dialog === "snapshot") {
      return html`<${AskValue} id="image-name" title=${t("disk.imageTitle", { machine: server.name })}
        text=${t("disk.imageText", { machine: server.name })} label=${t("disk.imageName")} value=${`${server.name}-image`}
        yes=${t("disk.makeImage")} onNo=${close}
        check=${(v) => (!v.trim() ? t("disk.giveName") : v.includes("/") ? t("disk.noSlash") : null)}
        onYes=${(v) => this.snapshotMachine(v.trim())} />`;
    }
    return null;
  }

  // One row per NIC: its network, addresses (the server's, by the NIC's MAC) and profile.
  nicTable(server) {
    const { nics, networks } = this.state;
    const listed = Object.entries(server.addresses || {}).flatMap(([network, list]) => list.map((a) => ({ network, ...a })));
    const rows = (nics || []).map((nic) => {
      const mine = listed.filter((a) => a["OS-EXT-IPS-MAC:mac_addr"] === nic.mac_address);
      const network = networks.find((n) => n.id === nic.network_id);
      const name = network ? network.name : mine.length ? mine[0].network : nic.network_id;
      const floating = mine.some((a) => a["OS-EXT-IPS:type"] === "floating");
      const removable = !network || !network.shared || floating;
      return { nic, name, mine, removable };
    });
    const shown = (version) => (row) => {
      const found = row.mine.filter((a) => a.version === version);
      if (!found.length) return html`<span class="sub">${t("nic.none")}</span>`;
      return found.map((a) => html`<span class="address" key=${a.addr}><code>${a.addr}</code>${a["OS-EXT-IPS:type"] === "floating"
        ? html` <span class="sub inline">${t("nic.floating")}</span>` : null}</span>`);
    };
    return html`<table class="machines nics" id="nics">
      <thead><tr><th>${t("machine.network")}</th><th class="as-is">IPv4</th><th class="as-is">IPv6</th><th>${t("machine.mac")}</th>
        <th>${t("nic.firewall")}</th><th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
      <tbody>${rows.map((row) => html`<tr key=${row.nic.id} data-network=${row.name}>
        <td><strong>${row.name}</strong></td>
        <td class="ips" data-label="IPv4">${shown(4)(row)}</td>
        <td class="ips" data-label="IPv6">${shown(6)(row)}</td>
        <td data-label=${t("machine.mac")}><code>${row.nic.mac_address}</code></td>
        <td data-label=${t("nic.firewall")}>${FIREWALL[row.nic.firewallProfile] ? t(FIREWALL[row.nic.firewallProfile]) : row.nic.firewallProfile}</td>
        <td class="row-actions">${row.removable ? html`<button type="button" class="danger" data-action="disconnect"
            aria-label=${t("nic.disconnectFrom", { network: row.name })}
            onClick=${() => this.setState({ dialog: { kind: "disconnect", nic: row.nic, network: row.name, addresses: row.mine.map((a) => a.addr) } })}>
            ${t("nic.disconnect")}</button>` : null}</td>
      </tr>`)}</tbody></table>`;
  }

  nicDialog(server) {
    const { dialog, networks, joining } = this.state;
    const close = () => this.setState({ dialog: null });
    if (dialog && dialog.kind === "disconnect") {
      const text = dialog.addresses.length ? t("nic.disconnectText", { addresses: dialog.addresses.join(", ") }) : t("nic.disconnectTextNone");
      return html`<${Ask} title=${t("nic.disconnectTitle", { name: server.name, network: dialog.network })} text=${text}
        keep=${t("nic.keep")} yes=${t("nic.disconnectFrom", { network: dialog.network })}
        onYes=${() => this.disconnect(dialog.nic, dialog.network)} onNo=${close} />`;
    }
    if (dialog !== "connect") return null;
    const choices = networks.filter((n) => !n.shared);
    const chosen = choices.find((n) => n.id === joining) || choices[0];
    return html`<${Ask} title=${t("nic.connectTitle", { name: server.name })} tone="primary" ready=${!!chosen}
        keep=${t("common.cancel")} yes=${t("nic.connect")} onYes=${() => this.connect(chosen)} onNo=${close}>
      ${choices.length ? html`<div class="field"><label for="connect-network">${t("machine.network")}</label>
          <select id="connect-network" value=${chosen.id} onChange=${(e) => this.setState({ joining: e.target.value })}>
            ${choices.map((n) => html`<option value=${n.id}>${n.name}</option>`)}</select>
          <p class="hint">${t("nic.connectHint")}</p></div>`
        : html`<p class="empty">${t("nic.noPrivate")} <a href="#/networks">${t("nic.makeOne")}</a></p>`}
    </${Ask}>`;
  }

  render({ resources, projects }, s) {
    const back = html`<p class="back"><a href="#/machines">${t("machine.all")}</a></p>`;
    if (s.missing) return html`${back}<h1>${t("machine.missing")}</h1><p class="empty">${t("machine.missingText")}</p>`;
    if (!s.server) return html`${back}${s.failure ? html`<p class="error" role="alert">${s.failure}</p>` : html`<p class="loading">${t("common.loading")}</p>`}`;
    const server = s.server;
    const flavor = s.flavors.find((f) => f.id === (server.flavor && server.flavor.id));
    const image = s.images[server.image && server.image.id];
    const entries = s.quotas[server.tenant_id] || {};
    const busy = s.progress !== null;
    const bootsFromDisk = (s.disks || []).some((d) => d.attachment.device === BOOT_DEVICE);
    // the address to reach it by: a floating one, else one on a public network, IPv4 first
    const shared = new Set(s.networks.filter((n) => n.shared).map((n) => n.name));
    const rank = (a) => (a["OS-EXT-IPS:type"] === "floating" ? 0 : shared.has(a.network) ? 1 : 2) * 10 + a.version;
    const reach = Object.entries(server.addresses || {}).flatMap(([network, list]) => list.map((a) => ({ network, ...a })))
      .sort((a, b) => rank(a) - rank(b))[0];
    return html`${back}
      <section class="page-head">
        <h1>${server.name}</h1>
        <span class=${statusClass(server)} data-status=${server.status} id="machine-status">${label(server)}</span>
      </section>
      ${s.progress ? html`<p class="notice" role="status" id="progress">${s.progress}</p>` : null}
      ${s.notice ? html`<p class="notice" role="status" id="machine-notice">${s.notice}</p>` : null}
      ${s.failure ? html`<p class="error" role="alert" id="failure">${s.failure}</p>` : null}
      <div class="toolbar machine-actions">
        ${server.status === "ACTIVE" && task(server) === null && !busy
          ? html`<a class="button" data-action="console" href=${`#/machines/${server.id}/console`}>${t("action.console")}</a>` : null}
        ${busy ? null : allowed(server).map((what) => html`<button type="button" key=${what} data-action=${what}
            class=${what === "destroy" ? "danger" : ""}
            onClick=${() => (what === "destroy" || what === "resize" ? this.setState({ dialog: what }) : this.act(what))}>
            ${t(ACTIONS[what].title)}</button>`)}
        ${!busy && bootsFromDisk && ["ACTIVE", "SHUTOFF", "STOPPED"].includes(server.status) && task(server) === null
          ? html`<button type="button" data-action="snapshot" id="snapshot-machine"
              onClick=${() => this.setState({ dialog: "snapshot" })}>${t("disk.imageOpen")}</button>` : null}
      </div>
      <dl class="facts">
        <dt>${t("common.size")}</dt><dd id="machine-size">${flavorText(flavor, bootVolumeSize(s.disks)) || (server.flavor && server.flavor.id)}</dd>
        <dt>${t("machine.os")}</dt><dd>${image ? image.name : t("machine.imageGone")}</dd>
        <dt>${t("common.project")}</dt><dd>${projectName(projects, server.tenant_id)}</dd>
        <dt>${t("common.created")}</dt><dd>${when(server.created)}</dd>
      </dl>
      <section class="page-head nics-head">
        <h2>${t("nic.title")}</h2>
        ${busy ? null : html`<button type="button" id="connect" onClick=${() => this.setState({ dialog: "connect", joining: "" })}>${t("nic.connectOpen")}</button>`}
      </section>
      ${s.nics === null ? html`<p class="loading">${t("common.loading")}</p>`
        : s.nics.length ? this.nicTable(server) : html`<p class="sub">${t("machine.noNetwork")}</p>`}
      ${reach ? html`<p class="hint">${t("machine.ssh", { command: html`<code>ssh root@${reach.addr}</code>` })}</p>` : null}
      <section class="page-head nics-head">
        <h2>${t("disk.machineTitle")}</h2>
        ${busy ? null : html`<button type="button" id="attach-disk-open" onClick=${() => this.setState({ dialog: "attach-disk" })}>
          ${t("disk.attachDiskOpen")}</button>`}
      </section>
      ${s.disks === null ? html`<p class="loading">${t("common.loading")}</p>`
        : s.disks.length ? this.diskTable() : html`<p class="sub" id="no-machine-disks">${t("disk.machineNone")}</p>`}
      ${s.disks !== null && !bootsFromDisk ? html`<p class="sub disk-note" id="no-snapshot">${t("disk.ownDisk", { machine: server.name })}</p>` : null}
      ${this.nicDialog(server)}
      ${this.diskDialog(server)}
      ${s.dialog === "destroy" ? html`<${Confirm} server=${server} onYes=${() => this.act("destroy")}
          onNo=${() => this.setState({ dialog: null })} />` : null}
      ${s.dialog === "resize" && flavor ? html`<${Resize} server=${server} flavor=${flavor} flavors=${s.flavors}
          entries=${entries} resources=${resources} onYes=${(f) => this.resize(f)}
          onNo=${() => this.setState({ dialog: null })} />` : null}`;
  }
}
