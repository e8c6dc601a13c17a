// Networks: the user's private networks and the public ones, each with its subnets,
// and the user's floating IPs. A private network is made with one IPv4 subnet (two
// calls: the network, then its subnet; a refused subnet takes its network back, so a
// failed create leaves nothing). Floating IPs come from the public networks that are
// pools (Neutron's router:external) and go onto a machine as a NIC of their own. Everything is
// the Network API at /network/v2.0, as the user's token sees it.

import { explain } from "./api.js";
import { t } from "./i18n.js";
import { Component, createRef, html } from "./lib.js";
import { QuotaBars } from "./quota.js";

const QUOTAS = ["cyclades.network.private", "cyclades.floating_ip"];

// An IPv4 CIDR as [first, last] addresses (numbers), or null for anything else.
function span(cidr) {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr || "");
  if (!match) return null;
  const octets = match.slice(1, 5).map(Number);
  const bits = Number(match[5]);
  if (octets.some((o) => o > 255) || bits > 32) return null;
  const address = octets.reduce((n, o) => n * 256 + o, 0);
  const size = 2 ** (32 - bits);
  const first = Math.floor(address / size) * size;
  return [first, first + size - 1];
}

// The first 192.168.x.0/24 that overlaps none of the subnets the user sees, so that
// the form's default is one the API takes (and that a second network does not shadow
// the first in a machine's routing table).
export function freeCidr(subnets) {
  const taken = subnets.map((s) => span(s.cidr)).filter(Boolean);
  for (let x = 1; x < 255; x += 1) {
    const [first, last] = span(`192.168.${x}.0/24`);
    if (!taken.some(([a, b]) => a <= last && first <= b)) return `192.168.${x}.0/24`;
  }
  return "10.0.0.0/24";
}

// A question before a change that cannot be taken back: Escape and the first button keep
// things as they are.
export class Ask extends Component {
  dialog = createRef();

  componentDidMount() {
    this.dialog.current.showModal();
  }

  render({ title, text, keep, yes, onYes, onNo, children, tone = "danger", ready = true }) {
    return html`<dialog ref=${this.dialog} class="confirm" aria-labelledby="ask-title"
        onCancel=${(e) => { e.preventDefault(); onNo(); }}>
      <h2 id="ask-title">${title}</h2>
      ${text ? html`<p>${text}</p>` : null}
      ${children}
      <div class="actions">
        <button type="button" onClick=${onNo} autofocus>${keep}</button>
        <button type="button" class=${tone} id="ask-yes" disabled=${!ready} onClick=${onYes}>${yes}</button>
      </div>
    </dialog>`;
  }
}

// Where a floating IP goes: one of the user's machines (its first port; a port on the
// floating IP's own network if it has one, which then holds the address as one more).
class Attach extends Component {
  dialog = createRef();
  state = { chosen: "" };

  componentDidMount() {
    this.dialog.current.showModal();
    const first = this.props.machines[0];
    if (first) this.setState({ chosen: first.id });
  }

  render({ ip, machines, onYes, onNo }, { chosen }) {
    return html`<dialog ref=${this.dialog} class="confirm" aria-labelledby="attach-title"
        onCancel=${(e) => { e.preventDefault(); onNo(); }}>
      <h2 id="attach-title">${t("net.attachTitle", { address: ip.floating_ip_address })}</h2>
      ${machines.length ? html`<div class="field">
          <label for="attach-machine">${t("net.machine")}</label>
          <select id="attach-machine" value=${chosen} onChange=${(e) => this.setState({ chosen: e.target.value })}>
            ${machines.map((m) => html`<option value=${m.id}>${m.name}</option>`)}</select>
          <p class="hint">${t("net.attachHint")}</p></div>`
        : html`<p class="empty">${t("net.noMachineToAttach")}</p>`}
      <div class="actions">
        <button type="button" onClick=${onNo} autofocus>${t("common.cancel")}</button>
        <button type="button" class="primary" id="attach-yes" disabled=${!chosen}
          onClick=${() => onYes(machines.find((m) => m.id === chosen))}>${t("net.attach")}</button>
      </div>
    </dialog>`;
  }
}

class NewNetwork extends Component {
  state = { name: "", cidr: this.props.cidr, dhcp: true, errors: {}, failure: null, busy: false };
  nameField = createRef();

  componentDidMount() {
    this.nameField.current.focus();
  }

  async submit(event) {
    event.preventDefault();
    const { api, onDone } = this.props;
    const name = this.state.name.trim();
    const cidr = this.state.cidr.trim();
    const errors = {};
    if (!name) errors.name = t("net.giveName");
    if (!span(cidr)) errors.cidr = t("net.giveCidr");
    this.setState({ errors, failure: null });
    if (Object.keys(errors).length) return;
    this.setState({ busy: true });
    let network = null;
    try {
      ({ network } = await api.post("network", "/v2.0/networks", { network: { name } }));
      await api.post("network", "/v2.0/subnets", {
        subnet: { network_id: network.id, name, cidr, ip_version: 4, enable_dhcp: this.state.dhcp },
      });
      onDone(name);
    } catch (error) {
      if (network) await api.delete("network", `/v2.0/networks/${network.id}`).catch(() => null);
      this.setState({ busy: false, failure: t("net.createFailed", { name, why: explain(error, this.props) }) });
    }
  }

  field(id, key, label, hint, props = {}) {
    const error = this.state.errors[key];
    return html`<div class="field ${error ? "invalid" : ""}">
      <label for=${id}>${label}</label>
      <input id=${id} type="text" value=${this.state[key]} aria-invalid=${error ? "true" : null}
        aria-describedby=${error ? `${id}-error` : `${id}-hint`} ...${props}
        onInput=${(e) => this.setState({ [key]: e.target.value, errors: { ...this.state.errors, [key]: null } })} />
      <p class="hint" id=${`${id}-hint`}>${hint}</p>
      ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : null}
    </div>`;
  }

  render({ onCancel }, s) {
    return html`<form class="project-form network-form" onSubmit=${(e) => this.submit(e)} noValidate>
      <h2>${t("net.newTitle")}</h2>
      <p class="sub">${t("net.newIntro")}</p>
      <div class="field ${s.errors.name ? "invalid" : ""}">
        <label for="network-name">${t("common.name")}</label>
        <input id="network-name" type="text" ref=${this.nameField} value=${s.name} maxlength="255"
          aria-invalid=${s.errors.name ? "true" : null} aria-describedby=${s.errors.name ? "network-name-error" : null}
          onInput=${(e) => this.setState({ name: e.target.value, errors: { ...s.errors, name: null } })} />
        ${s.errors.name ? html`<p class="field-error" id="network-name-error">${s.errors.name}</p>` : null}
      </div>
      ${this.field("network-cidr", "cidr", t("net.cidr"), t("net.cidrHint"), { inputmode: "decimal", spellcheck: false })}
      <label class="check"><input type="checkbox" id="network-dhcp" checked=${s.dhcp}
        onChange=${(e) => this.setState({ dhcp: e.target.checked })} /> ${t("net.dhcpGive")}</label>
      ${s.failure ? html`<p class="error" role="alert" id="network-form-failure">${s.failure}</p>` : null}
      <div class="actions">
        <button type="button" onClick=${onCancel}>${t("common.cancel")}</button>
        <button type="submit" class="primary" id="network-submit" disabled=${s.busy}>
          ${t(s.busy ? "net.creating" : "net.create")}</button>
      </div>
    </form>`;
  }
}

export class Networks extends Component {
  state = { loaded: false, networks: [], subnets: [], ips: [], ports: [], servers: [], quotas: {},
    making: false, pool: "", dialog: null, notice: null, failure: null, busy: false };

  componentDidMount() {
    this.load();
  }

  componentWillUnmount() {
    this.stopped = true;
  }

  async load() {
    const { api } = this.props;
    try {
      const [networks, subnets, ips, ports, servers, quotas] = await Promise.all([
        api.get("network", "/v2.0/networks"),
        api.get("network", "/v2.0/subnets"),
        api.get("network", "/v2.0/floatingips"),
        api.get("network", "/v2.0/ports"),
        api.get("compute", "/servers/detail"),
        api.get("account", "/quotas").catch(() => ({})),
      ]);
      if (this.stopped) return;
      const byName = (a, b) => (a.name || "").localeCompare(b.name || "");
      const pools = networks.networks.filter((n) => n["router:external"]);
      this.setState({
        loaded: true,
        networks: networks.networks.sort(byName),
        subnets: subnets.subnets,
        ips: ips.floatingips.sort((a, b) => a.floating_ip_address.localeCompare(b.floating_ip_address, undefined, { numeric: true })),
        ports: ports.ports,
        servers: servers.servers.sort(byName),
        quotas,
        pool: pools.some((n) => n.id === this.state.pool) ? this.state.pool : pools[0] ? pools[0].id : "",
      });
    } catch (error) {
      if (!this.stopped) this.setState({ loaded: true, failure: explain(error, this.props) });
    }
  }

  // One change through the API, then the page again; a refusal is the API's reason,
  // said after what was being done.
  async change(doing, call, done) {
    this.setState({ dialog: null, failure: null, notice: null, busy: true });
    try {
      await call();
      this.setState({ notice: done });
    } catch (error) {
      this.setState({ failure: t("net.failed", { doing, why: explain(error, this.props) }) });
    }
    this.setState({ busy: false });
    await this.load();
  }

  deleteNetwork(network) {
    const { api } = this.props;
    return this.change(t("net.deleting", { name: network.name }),
      () => api.delete("network", `/v2.0/networks/${network.id}`), t("net.deleted", { name: network.name }));
  }

  allocate() {
    const { api } = this.props;
    const pool = this.state.networks.find((n) => n.id === this.state.pool);
    const name = pool ? pool.name : "";
    return this.change(t("net.allocating", { name }),
      () => api.post("network", "/v2.0/floatingips", { floatingip: pool ? { floating_network_id: pool.id } : {} }),
      t("net.allocated", { name }));
  }

  release(ip) {
    const { api } = this.props;
    const address = ip.floating_ip_address;
    return this.change(t("net.releasing", { address }),
      () => api.delete("network", `/v2.0/floatingips/${ip.id}`), t("net.released", { address }));
  }

  attach(ip, machine) {
    const { api } = this.props;
    const address = ip.floating_ip_address;
    const theirs = this.state.ports.filter((p) => p.device_id === String(machine.id));
    const port = theirs.find((p) => p.network_id === ip.floating_network_id) || theirs[0];
    return this.change(t("net.attaching", { address, name: machine.name }), async () => {
      if (!port) throw new Error(t("net.machineHasNoPort", { name: machine.name }));
      await api.request("PUT", api.at("network", `/v2.0/floatingips/${ip.id}`), { floatingip: { port_id: port.id } });
    }, t("net.attached", { address, name: machine.name }));
  }

  detach(ip) {
    const { api } = this.props;
    const address = ip.floating_ip_address;
    return this.change(t("net.detaching", { address }),
      () => api.request("PUT", api.at("network", `/v2.0/floatingips/${ip.id}`), { floatingip: { port_id: null } }),
      t("net.detached", { address }));
  }

  // The machine that holds a port, as a link to its page, or the port's id.
  holder(portId) {
    if (!portId) return html`<span class="sub">${t("net.notAttached")}</span>`;
    const port = this.state.ports.find((p) => p.id === portId);
    const server = port && this.state.servers.find((s) => String(s.id) === port.device_id);
    if (server) return html`<a href=${`#/machines/${server.id}`}>${server.name}</a>`;
    return html`<code>${portId}</code>`;
  }

  subnetList(network) {
    const subnets = this.state.subnets.filter((s) => s.network_id === network.id)
      .sort((a, b) => a.ip_version - b.ip_version);
    if (!subnets.length) return html`<span class="sub">${t("net.noSubnet")}</span>`;
    return html`<ul class="subnets">${subnets.map((s) => html`<li key=${s.id}>
      <code>${s.cidr}</code>
      <span class="sub">${s.gateway_ip ? t("net.gateway", { ip: html`<code>${s.gateway_ip}</code>` }) : t("net.noGateway")}${" · "}${s.ip_version === 6 ? t("net.slaac") : t(s.enable_dhcp ? "net.dhcpOn" : "net.dhcpOff")}</span></li>`)}</ul>`;
  }

  table(id, networks, mine) {
    const inUse = (n) => this.state.ports.filter((p) => p.network_id === n.id).length;
    return html`<table class="machines networks" id=${id}>
      <thead><tr><th>${t("common.name")}</th><th>${t("net.subnets")}</th><th>${t("net.ports")}</th>
        ${mine ? html`<th><span class="sr-only">${t("common.actions")}</span></th>` : null}</tr></thead>
      <tbody>${networks.map((n) => html`<tr key=${n.id} data-network=${n.name}>
        <td><strong>${n.name || n.id}</strong>
          ${n["router:external"] ? html`<span class="sub">${t("net.pool")}</span>` : null}</td>
        <td>${this.subnetList(n)}</td>
        <td>${t("net.portCount", { n: inUse(n) })}</td>
        ${mine ? html`<td class="row-actions"><button type="button" class="danger" data-action="delete"
            disabled=${this.state.busy} aria-label=${t("net.deleteName", { name: n.name })}
            onClick=${() => this.setState({ dialog: { kind: "delete", network: n }, notice: null })}>${t("net.delete")}</button></td>` : null}
      </tr>`)}</tbody></table>`;
  }

  ipsTable() {
    const { ips, networks, busy } = this.state;
    const networkName = (id) => (networks.find((n) => n.id === id) || { name: id }).name;
    return html`<table class="machines floating" id="floating-ips">
      <thead><tr><th>${t("machine.address")}</th><th>${t("machine.network")}</th><th>${t("net.heldBy")}</th>
        <th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
      <tbody>${ips.map((ip) => html`<tr key=${ip.id} data-ip=${ip.floating_ip_address}>
        <td><code>${ip.floating_ip_address}</code></td>
        <td data-label=${t("machine.network")}>${networkName(ip.floating_network_id)}</td>
        <td class="held-by" data-label=${t("net.heldBy")}>${this.holder(ip.port_id)}</td>
        <td class="row-actions">${ip.port_id
          ? html`<button type="button" data-action="detach" disabled=${busy}
              aria-label=${t("net.detachAddress", { address: ip.floating_ip_address })}
              onClick=${() => this.setState({ dialog: { kind: "detach", ip }, notice: null })}>${t("net.detach")}</button>`
          : html`<button type="button" data-action="attach" disabled=${busy}
              aria-label=${t("net.attachAddress", { address: ip.floating_ip_address })}
              onClick=${() => this.setState({ dialog: { kind: "attach", ip }, notice: null })}>${t("net.attachTo")}</button>
            <button type="button" class="danger" data-action="release" disabled=${busy}
              aria-label=${t("net.releaseAddress", { address: ip.floating_ip_address })}
              onClick=${() => this.setState({ dialog: { kind: "release", ip }, notice: null })}>${t("net.release")}</button>`}
        </td></tr>`)}</tbody></table>`;
  }

  dialog() {
    const { dialog, servers } = this.state;
    if (!dialog) return null;
    const close = () => this.setState({ dialog: null });
    if (dialog.kind === "delete") {
      const name = dialog.network.name;
      return html`<${Ask} title=${t("net.deleteTitle", { name })} text=${t("net.deleteText")}
        keep=${t("net.keep")} yes=${t("net.deleteName", { name })}
        onYes=${() => this.deleteNetwork(dialog.network)} onNo=${close} />`;
    }
    const address = dialog.ip.floating_ip_address;
    if (dialog.kind === "release") {
      return html`<${Ask} title=${t("net.releaseTitle", { address })} text=${t("net.releaseText")}
        keep=${t("net.keepIp")} yes=${t("net.releaseAddress", { address })}
        onYes=${() => this.release(dialog.ip)} onNo=${close} />`;
    }
    if (dialog.kind === "detach") {
      return html`<${Ask} title=${t("net.detachTitle", { address })} text=${t("net.detachText")}
        keep=${t("net.keepAttached")} yes=${t("net.detachAddress", { address })}
        onYes=${() => this.detach(dialog.ip)} onNo=${close} />`;
    }
    const live = servers.filter((s) => s.status !== "DELETED" && this.state.ports.some((p) => p.device_id === String(s.id)));
    return html`<${Attach} ip=${dialog.ip} machines=${live} onYes=${(m) => this.attach(dialog.ip, m)} onNo=${close} />`;
  }

  render({ api, resources }, s) {
    const head = html`<section class="page-head">
        <h1>${t("nav.networks")}</h1>
        ${s.making ? null : html`<button type="button" class="primary" id="new-network"
          onClick=${() => this.setState({ making: true, notice: null, failure: null })}>${t("net.new")}</button>`}
      </section>
      ${s.notice ? html`<p class="notice" role="status" id="network-notice">${s.notice}</p>` : null}
      ${s.failure ? html`<p class="error" role="alert" id="network-failure">${s.failure}</p>` : null}`;
    if (!s.loaded) return html`${head}<p class="loading">${t("common.loading")}</p>`;
    if (s.making) {
      return html`${head}<${NewNetwork} api=${api} cidr=${freeCidr(s.subnets)} resources=${resources} projects=${this.props.projects}
        onCancel=${() => this.setState({ making: false })}
        onDone=${(name) => { this.setState({ making: false, notice: t("net.created", { name }) }); this.load(); }} />`;
    }
    const publicOnes = s.networks.filter((n) => n.shared);
    const mine = s.networks.filter((n) => !n.shared);
    const pools = publicOnes.filter((n) => n["router:external"]);
    const entries = s.quotas[api.project] || {};
    return html`${head}
      ${Object.keys(entries).length ? html`<div class="project-quota network-quota">
          <${QuotaBars} entries=${entries} resources=${resources} only=${QUOTAS} /></div>` : null}
      <section aria-labelledby="private-title">
        <h2 id="private-title">${t("net.private")}</h2>
        ${mine.length ? this.table("private-networks", mine, true) : html`<p class="sub">${t("net.privateEmpty")}</p>`}
      </section>
      <section aria-labelledby="public-title">
        <h2 id="public-title">${t("net.public")}</h2>
        ${publicOnes.length ? this.table("public-networks", publicOnes, false) : html`<p class="sub">${t("net.publicEmpty")}</p>`}
      </section>
      <section aria-labelledby="floating-title">
        <h2 id="floating-title">${t("net.floating")}</h2>
        <p class="sub">${t("net.floatingIntro")}</p>
        ${s.ips.length ? this.ipsTable() : html`<p class="sub">${t("net.floatingEmpty")}</p>`}
        ${pools.length ? html`<div class="allocate">
            ${pools.length > 1 ? html`<label for="allocate-pool">${t("net.from")}</label>
              <select id="allocate-pool" value=${s.pool} onChange=${(e) => this.setState({ pool: e.target.value })}>
                ${pools.map((n) => html`<option value=${n.id}>${n.name}</option>`)}</select>` : null}
            <button type="button" id="allocate" disabled=${s.busy} onClick=${() => this.allocate()}>
              ${pools.length > 1 ? t("net.allocate") : t("net.allocateFrom", { name: pools[0].name })}</button></div>`
          : html`<p class="sub">${t("net.noPool")}</p>`}
      </section>
      ${this.dialog()}`;
  }
}
