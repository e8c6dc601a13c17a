// The machines: a list that follows the servers' states by polling, and their actions.

import { explain } from "./api.js";
import { GiB, MiB, bytes, when } from "./format.js";
import { t } from "./i18n.js";
import { Component, createRef, html } from "./lib.js";
import { TEXTS } from "./texts.js";

// keys of texts.js; a state's CSS class is its English word ("status-running")
const STATUS = {
  BUILD: "status.BUILD",
  ACTIVE: "status.ACTIVE",
  SHUTOFF: "status.SHUTOFF",
  STOPPED: "status.SHUTOFF",
  REBOOT: "status.REBOOT",
  HARD_REBOOT: "status.REBOOT",
  RESIZE: "status.RESIZE",
  VERIFY_RESIZE: "status.VERIFY_RESIZE",
  ERROR: "status.ERROR",
  DELETED: "status.DELETED",
};
const TASK = {
  stopping: "task.stopping",
  "powering-off": "task.stopping",
  starting: "task.starting",
  "powering-on": "task.starting",
  rebooting: "status.REBOOT",
  deleting: "task.deleting",
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
  const key = TASK[task(server)] || STATUS[server.status];
  return key ? t(key) : server.status;
}

// The state's class, the same in every language.
export function statusClass(server) {
  const key = TASK[task(server)] || STATUS[server.status];
  return `status status-${(key ? TEXTS[key].en : server.status).toLowerCase()}`;
}

export function moving(server) {
  return !SETTLED.has(server.status) || task(server) !== null;
}

// A size as people read it; `bootGiB`, a machine's boot disk when it is a volume (its
// own size, which the flavor's disk does not say).
export function flavorText(flavor, bootGiB = 0) {
  if (!flavor) return "";
  const cpus = t("flavor.cpus", { n: flavor.vcpus });
  const disk = bytes((bootGiB || flavor.disk) * GiB);
  return t("flavor.text", { cpus, ram: bytes(flavor.ram * MiB), disk });
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
      <h2 id="confirm-title">${t("destroy.title", { name: server.name })}</h2>
      <p>${t("destroy.text")}</p>
      <div class="actions">
        <button type="button" onClick=${onNo} autofocus>${t("destroy.keep")}</button>
        <button type="button" class="danger" onClick=${onYes}>${t("destroy.yes", { name: server.name })}</button>
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
      this.setState({ failure: t("common.failed", { action: t(ACTIONS[what].title), name: server.name, why: explain(error, this.props) }) });
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
      ${v6 ? html`<a class="sub" href=${`#/machines/${server.id}`}>${t(v4.length ? "machines.andIpv6" : "machines.ipv6", { n: v6 })}</a>` : null}`;
  }

  row(server) {
    const { flavors, images } = this.state;
    const image = images[server.image && server.image.id];
    const ips = addresses(server);
    return html`<tr key=${server.id} data-server=${server.id} data-name=${server.name}>
      <td><a class="machine-name" href=${`#/machines/${server.id}`}><strong>${server.name}</strong></a>
        <div class="sub">${image ? image.name : ""}</div></td>
      <td><span class=${statusClass(server)} data-status=${server.status}>${label(server)}</span></td>
      <td class="size">${flavorText(flavors[server.flavor && server.flavor.id])}</td>
      <td class="ips">${ips.length ? this.ips(server) : html`<span class="sub">${t("machines.none")}</span>`}</td>
      <td class="when">${when(server.created)}</td>
      <td class="row-actions">
        ${server.status === "ACTIVE" && task(server) === null
          ? html`<a class="button" data-action="console" href=${`#/machines/${server.id}/console`}>${t("action.console")}</a>` : null}
        ${this.buttons(server).map((what) => html`
          <button type="button" class=${what === "destroy" ? "danger" : ""} data-action=${what}
            onClick=${() => (what === "destroy" ? this.setState({ confirm: server }) : this.act(server, what))}>
            ${t(ACTIONS[what].title)}</button>`)}
      </td>
    </tr>`;
  }

  render({ notice, onDismiss }, { servers, error, failure, confirm }) {
    return html`<section class="page-head">
        <h1>${t("nav.machines")}</h1>
        <a class="button primary" href="#/machines/new">${t("title.newMachine")}</a>
      </section>
      ${notice ? html`<div class="notice" role="status" id="notice">
        <div>${notice}</div><button type="button" class="link" onClick=${onDismiss}>${t("common.dismiss")}</button></div>` : null}
      ${failure ? html`<p class="error" role="alert" id="failure">${failure}</p>` : null}
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      ${servers === null ? html`<p class="loading">${t("common.loading")}</p>`
        : servers.length === 0 ? html`<div class="empty"><p>${t("machines.empty")}</p>
            <a class="button primary big" href="#/machines/new">${t("machines.first")}</a></div>`
        : html`<table class="machines">
            <thead><tr><th>${t("common.name")}</th><th>${t("machines.state")}</th><th>${t("common.size")}</th>
              <th>${t("machines.addresses")}</th><th>${t("common.created")}</th><th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
            <tbody>${servers.map((s) => this.row(s))}</tbody>
          </table>`}
      ${confirm ? html`<${Confirm} server=${confirm} onYes=${() => this.act(confirm, "destroy")}
          onNo=${() => this.setState({ confirm: null })} />` : null}`;
  }
}

export const ACTIONS = {
  start: { title: "action.start", body: { "os-start": null } },
  stop: { title: "action.stop", body: { "os-stop": null } },
  reboot: { title: "action.reboot", body: { reboot: { type: "SOFT" } } },
  resize: { title: "action.resize" },
  destroy: { title: "action.destroy" },
};
