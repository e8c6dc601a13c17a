// The machines: a list that follows the servers' states by polling, and their actions.

import { explain } from "./api.js";
import { GiB, MiB, bytes, when } from "./format.js";
import { Component, createRef, html } from "./lib.js";

const STATUS = {
  BUILD: "Building",
  ACTIVE: "Running",
  SHUTOFF: "Stopped",
  STOPPED: "Stopped",
  REBOOT: "Rebooting",
  HARD_REBOOT: "Rebooting",
  RESIZE: "Resizing",
  VERIFY_RESIZE: "Resized",
  ERROR: "Error",
  DELETED: "Destroyed",
};
const TASK = {
  stopping: "Stopping",
  "powering-off": "Stopping",
  starting: "Starting",
  "powering-on": "Starting",
  rebooting: "Rebooting",
  deleting: "Destroying",
};
const SETTLED = new Set(["ACTIVE", "SHUTOFF", "STOPPED", "ERROR", "DELETED"]);
const QUICK_POLL_MS = 1000; // while a machine is on its way somewhere
const SLOW_POLL_MS = 5000;
const HIDDEN_POLL_MS = 15000; // the tab is not shown

export function task(server) {
  return server["OS-EXT-STS:task_state"] || null;
}

// A machine's state in words ("Running", "Stopping"...).
export function label(server) {
  return TASK[task(server)] || STATUS[server.status] || server.status;
}

export function moving(server) {
  return !SETTLED.has(server.status) || task(server) !== null;
}

export function flavorText(flavor) {
  if (!flavor) return "";
  const cpus = `${flavor.vcpus} CPU${flavor.vcpus === 1 ? "" : "s"}`;
  return `${cpus} · ${bytes(flavor.ram * MiB)} RAM · ${bytes(flavor.disk * GiB)} disk`;
}

// IPv4 first: the one people type into ssh.
export function addresses(server) {
  return Object.values(server.addresses || {})
    .flat()
    .sort((a, b) => a.version - b.version)
    .map((a) => a.addr);
}

export const POLL = { QUICK_POLL_MS, SLOW_POLL_MS, HIDDEN_POLL_MS };

// The actions a machine's state allows now (none while one is under way).
export function allowed(server) {
  if (task(server) !== null) return [];
  const by = {
    ACTIVE: ["stop", "reboot", "resize", "destroy"],
    SHUTOFF: ["start", "resize", "destroy"],
    STOPPED: ["start", "resize", "destroy"],
    BUILD: ["destroy"],
    ERROR: ["destroy"],
  };
  return by[server.status] || [];
}

// Asks before what cannot be undone; Escape or "Keep it" closes it.
export class Confirm extends Component {
  dialog = createRef();

  componentDidMount() {
    this.dialog.current.showModal();
  }

  render({ server, onYes, onNo }) {
    return html`<dialog ref=${this.dialog} class="confirm" aria-labelledby="confirm-title"
        onCancel=${(e) => { e.preventDefault(); onNo(); }}>
      <h2 id="confirm-title">Destroy ${server.name}?</h2>
      <p>The machine and everything on its disk are deleted for good. This cannot be undone.</p>
      <div class="actions">
        <button type="button" onClick=${onNo} autofocus>Keep it</button>
        <button type="button" class="danger" onClick=${onYes}>Destroy ${server.name}</button>
      </div>
    </dialog>`;
  }
}

export class Machines extends Component {
  state = { servers: null, flavors: {}, images: {}, confirm: null, error: null, failure: null };

  componentDidMount() {
    this.poll();
    this.loadNames();
  }

  componentWillUnmount() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async loadNames() {
    const { api } = this.props;
    const [flavors, images] = await Promise.allSettled([
      api.get("compute", "/flavors/detail"),
      api.get("image", "/v2/images?limit=1000"),
    ]);
    const byId = (list) => Object.fromEntries((list || []).map((x) => [x.id, x]));
    this.setState({
      flavors: flavors.status === "fulfilled" ? byId(flavors.value.flavors) : {},
      images: images.status === "fulfilled" ? byId(images.value.images) : {},
    });
  }

  async poll() {
    clearTimeout(this.timer);
    try {
      const { servers } = await this.props.api.get("compute", "/servers/detail");
      if (this.stopped) return;
      this.setState({ servers, error: null });
    } catch (error) {
      if (this.stopped) return;
      this.setState({ error: explain(error, this.props) });
    }
    const servers = this.state.servers || [];
    const wait = document.hidden ? HIDDEN_POLL_MS : servers.some(moving) ? QUICK_POLL_MS : SLOW_POLL_MS;
    this.timer = setTimeout(() => this.poll(), wait);
  }

  async act(server, what) {
    const { api } = this.props;
    const path = `/servers/${server.id}`;
    this.setState({ confirm: null, failure: null });
    try {
      if (what === "destroy") await api.delete("compute", path);
      else await api.post("compute", `${path}/action`, ACTIONS[what].body);
    } catch (error) {
      this.setState({ failure: `${ACTIONS[what].title} ${server.name}: ${explain(error, this.props)}` });
    }
    this.poll();
  }

  // Resize asks more than a yes (which size), so it lives on the machine's own page.
  buttons(server) {
    return allowed(server).filter((what) => what !== "resize");
  }

  // IPv4 addresses in full; IPv6 ones are long, and the machine's page lists them.
  ips(server) {
    const all = Object.values(server.addresses || {}).flat();
    const v4 = all.filter((a) => a.version === 4).map((a) => a.addr);
    const v6 = all.length - v4.length;
    return html`${v4.map((ip) => html`<div key=${ip}><code>${ip}</code></div>`)}
      ${v6 ? html`<a class="sub" href=${`#/machines/${server.id}`}>${v4.length ? "and " : ""}${v6} IPv6</a>` : null}`;
  }

  row(server) {
    const { flavors, images } = this.state;
    const image = images[server.image && server.image.id];
    const ips = addresses(server);
    return html`<tr key=${server.id} data-server=${server.id} data-name=${server.name}>
      <td><a class="machine-name" href=${`#/machines/${server.id}`}><strong>${server.name}</strong></a>
        <div class="sub">${image ? image.name : ""}</div></td>
      <td><span class="status status-${label(server).toLowerCase()}" data-status=${server.status}>${label(server)}</span></td>
      <td class="size">${flavorText(flavors[server.flavor && server.flavor.id])}</td>
      <td class="ips">${ips.length ? this.ips(server) : html`<span class="sub">none</span>`}</td>
      <td class="when">${when(server.created)}</td>
      <td class="row-actions">
        ${server.status === "ACTIVE" && task(server) === null
          ? html`<a class="button" data-action="console" href=${`#/machines/${server.id}/console`}>Console</a>` : null}
        ${this.buttons(server).map((what) => html`
          <button type="button" class=${what === "destroy" ? "danger" : ""} data-action=${what}
            onClick=${() => (what === "destroy" ? this.setState({ confirm: server }) : this.act(server, what))}>
            ${ACTIONS[what].title}</button>`)}
      </td>
    </tr>`;
  }

  render({ notice, onDismiss }, { servers, error, failure, confirm }) {
    return html`<section class="page-head">
        <h1>Machines</h1>
        <a class="button primary" href="#/machines/new">New machine</a>
      </section>
      ${notice ? html`<div class="notice" role="status" id="notice">
        <div>${notice}</div><button type="button" class="link" onClick=${onDismiss}>Dismiss</button></div>` : null}
      ${failure ? html`<p class="error" role="alert" id="failure">${failure}</p>` : null}
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      ${servers === null ? html`<p class="loading">Loading…</p>`
        : servers.length === 0 ? html`<div class="empty"><p>You have no machines yet.</p>
            <a class="button primary big" href="#/machines/new">Create your first machine</a></div>`
        : html`<table class="machines">
            <thead><tr><th>Name</th><th>State</th><th>Size</th><th>Addresses</th><th>Created</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>${servers.map((s) => this.row(s))}</tbody>
          </table>`}
      ${confirm ? html`<${Confirm} server=${confirm} onYes=${() => this.act(confirm, "destroy")}
          onNo=${() => this.setState({ confirm: null })} />` : null}`;
  }
}

export const ACTIONS = {
  start: { title: "Start", body: { "os-start": null } },
  stop: { title: "Stop", body: { "os-stop": null } },
  reboot: { title: "Reboot", body: { reboot: { type: "SOFT" } } },
  resize: { title: "Resize…" },
  destroy: { title: "Destroy" },
};
