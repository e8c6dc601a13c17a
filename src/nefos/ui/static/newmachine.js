// A new machine: an image, a size, how many, a name, and a key, every choice shown
// against the quota left. The defaults are filled in, so "Create" is the only click.

import { explain, projectName } from "./api.js";
import { GiB, MiB, amount } from "./format.js";
import { resourceInSentence, t } from "./i18n.js";
import { Component, html } from "./lib.js";
import { flavorText } from "./machines.js";
import { distroOf, Logo, osName } from "./oslogos.js";
import { QuotaBars, remaining } from "./quota.js";

const MAX_COUNT = 20;
const SHOWN = ["cyclades.vm", "cyclades.total_cpu", "cyclades.total_ram", "cyclades.disk"];

// What machines of a flavor take from the quota (as nefos.compute.charges counts it).
function needs(flavor, count) {
  if (!flavor) return {};
  const each = {
    "cyclades.vm": 1,
    "cyclades.total_cpu": flavor.vcpus,
    "cyclades.cpu": flavor.vcpus,
    "cyclades.total_ram": flavor.ram * MiB,
    "cyclades.ram": flavor.ram * MiB,
    "cyclades.disk": flavor.disk * GiB,
  };
  return Object.fromEntries(Object.entries(each).map(([k, v]) => [k, v * count]));
}

// The first resource that would run short, with the numbers, or null if it all fits.
function shortfall(entries, flavor, count) {
  for (const [name, wanted] of Object.entries(needs(flavor, count))) {
    if (entries[name] && wanted > remaining(entries[name])) {
      return { name, wanted, left: remaining(entries[name]) };
    }
  }
  return null;
}

function fits(entries, flavor) {
  let n = 0;
  while (n < MAX_COUNT && !shortfall(entries, flavor, n + 1)) n += 1;
  return n;
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 20) || "machine";
}

export class NewMachine extends Component {
  state = { loaded: false, busy: false, failure: null };

  async componentDidMount() {
    const { api } = this.props;
    try {
      const [images, flavors, quotas, keys] = await Promise.all([
        api.get("image", "/v2/images?limit=1000"),
        api.get("compute", "/flavors/detail"),
        api.get("account", "/quotas"),
        api.get("compute", "/os-keypairs"),
      ]);
      const usable = images.images
        .filter((i) => i.status === "active")
        .sort((a, b) => a.name.localeCompare(b.name));
      const sizes = flavors.flavors
        .filter((f) => !f["OS-FLV-DISABLED:disabled"])
        .sort((a, b) => a.vcpus - b.vcpus || a.ram - b.ram || a.disk - b.disk);
      const project = quotas[api.project] ? api.project : Object.keys(quotas)[0];
      const entries = quotas[project] || {};
      // #/machines/new/<image id>: the Images page's "Start a machine" chose it
      const wanted = this.props.rest ? decodeURIComponent(this.props.rest.replace(/^\//, "")) : "";
      const image = usable.find((i) => i.id === wanted) || usable[0] || null;
      const flavor = sizes.find((f) => fits(entries, f) > 0) || sizes[0] || null;
      const used = entries["cyclades.vm"] ? entries["cyclades.vm"].usage : 0;
      this.setState({
        loaded: true,
        images: usable,
        flavors: sizes,
        quotas,
        keys: (keys.keypairs || []).map((k) => k.keypair.name),
        project,
        image,
        flavor,
        count: 1,
        key: "",
        name: image ? `${slug(distroOf(image) || image.name)}-${used + 1}` : "",
        named: false, // the user typed a name: choosing an image no longer renames it
      });
    } catch (error) {
      this.setState({ loaded: true, failure: explain(error, this.props) });
    }
  }

  pickImage(image) {
    const update = { image };
    if (!this.state.named) {
      const entries = this.state.quotas[this.state.project] || {};
      const used = entries["cyclades.vm"] ? entries["cyclades.vm"].usage : 0;
      update.name = `${slug(distroOf(image) || image.name)}-${used + 1}`;
    }
    this.setState(update);
  }

  async create(event) {
    event.preventDefault();
    const { api, onCreated } = this.props;
    const { image, flavor, count, name, key, project } = this.state;
    this.setState({ busy: true, failure: null });
    const server = {
      name: name.trim(),
      imageRef: image.id,
      flavorRef: flavor.id,
      min_count: count,
      max_count: count,
      project,
    };
    if (key) server.key_name = key;
    try {
      const made = await api.post("compute", "/servers", { server });
      onCreated({ name: server.name, count, password: made.server.adminPass });
    } catch (error) {
      this.setState({ busy: false, failure: explain(error, this.props) });
      if (error.fault && error.fault.data && error.fault.data.provision) {
        // The quota moved since the form loaded (another client, another tab): show it.
        this.setState({ quotas: await api.get("account", "/quotas") });
      }
    }
  }

  imageChoice(image) {
    const chosen = this.state.image && this.state.image.id === image.id;
    return html`<label class="choice ${chosen ? "chosen" : ""}" key=${image.id}>
      <input type="radio" name="image" value=${image.id} checked=${chosen} onChange=${() => this.pickImage(image)} />
      <${Logo} image=${image} />
      <span><strong>${image.name}</strong><span class="sub">${osName(image) || t("new.osNotGiven")}</span></span>
    </label>`;
  }

  flavorChoice(flavor, entries, resources) {
    const chosen = this.state.flavor && this.state.flavor.id === flavor.id;
    const short = shortfall(entries, flavor, 1);
    const what = short ? resourceInSentence(short.name, resources[short.name]) : "";
    const why = short ? t("new.overQuota", { what, left: amount(resources[short.name], short.left) }) : null;
    return html`<label class="choice ${chosen ? "chosen" : ""} ${short ? "disabled" : ""}" key=${flavor.id}>
      <input type="radio" name="flavor" value=${flavor.id} checked=${chosen} disabled=${!!short}
        onChange=${() => this.setState({ flavor, count: Math.max(1, Math.min(this.state.count, fits(entries, flavor))) })} />
      <span><strong>${flavorText(flavor)}</strong><span class="sub">${why || flavor.name}</span></span>
    </label>`;
  }

  render({ resources, projects }, s) {
    if (!s.loaded) return html`<h1>${t("title.newMachine")}</h1><p class="loading">${t("common.loading")}</p>`;
    if (!s.images) return html`<h1>${t("title.newMachine")}</h1><p class="error" role="alert">${s.failure}</p>`;
    if (!s.images.length) {
      return html`<h1>${t("title.newMachine")}</h1><p class="empty">${t("new.noImage", { command: html`<code>nefos image</code>` })}</p>`;
    }
    const entries = s.quotas[s.project] || {};
    const most = s.flavor ? fits(entries, s.flavor) : 0;
    const short = s.flavor ? shortfall(entries, s.flavor, s.count) : null;
    const blocked = short
      ? t(s.count === 1 ? "new.blockedOne" : "new.blockedMany", {
        what: resourceInSentence(short.name, resources[short.name]),
        n: s.count,
        needs: amount(resources[short.name], short.wanted),
        left: amount(resources[short.name], short.left),
      })
      : null;
    const projectIds = Object.keys(s.quotas);
    return html`<h1>${t("title.newMachine")}</h1>
      <form class="new-machine" onSubmit=${(e) => this.create(e)}>
        <div class="form-main">
          <fieldset><legend>${t("new.os")}</legend>
            <div class="choices">${s.images.map((i) => this.imageChoice(i))}</div></fieldset>
          <fieldset><legend>${t("new.size")}</legend>
            <div class="choices">${s.flavors.map((f) => this.flavorChoice(f, entries, resources))}</div></fieldset>
          <fieldset class="details"><legend>${t("new.details")}</legend>
            <label for="name">${t("common.name")}</label>
            <input id="name" required maxlength="255" value=${s.name}
              onInput=${(e) => this.setState({ name: e.target.value, named: true })} />
            <label for="count">${t("new.count")}</label>
            <input id="count" type="number" min="1" max=${Math.max(1, most)} value=${s.count}
              onInput=${(e) => this.setState({ count: Math.max(1, Number.parseInt(e.target.value, 10) || 1) })} />
            <p class="hint">${t("new.allows", { n: most })}</p>
            <label for="key">${t("new.key")}</label>
            <select id="key" value=${s.key} onChange=${(e) => this.setState({ key: e.target.value })}>
              <option value="">${t("new.noKey")}</option>
              ${s.keys.map((k) => html`<option value=${k}>${k}</option>`)}
            </select>
            ${projectIds.length > 1 ? html`
              <label for="project">${t("common.project")}</label>
              <select id="project" value=${s.project} onChange=${(e) => this.setState({ project: e.target.value })}>
                ${projectIds.map((id) => html`<option value=${id}>${projectName(projects, id)}</option>`)}
              </select>` : null}
          </fieldset>
        </div>
        <aside class="form-side" aria-labelledby="uses-title">
          <h2 id="uses-title">${t("new.quota")}</h2>
          <p class="sub">${t("new.quotaHint", { project: projectName(projects, s.project) })}</p>
          <${QuotaBars} entries=${entries} resources=${resources} only=${SHOWN} adds=${needs(s.flavor, s.count)} />
          ${s.failure ? html`<p class="error" role="alert" id="failure">${s.failure}</p>`
            : blocked ? html`<p class="error" id="blocked">${blocked}</p>` : null}
          <button type="submit" class="primary big" id="create" disabled=${s.busy || !!blocked || !s.flavor}>
            ${s.busy ? t("new.creating") : s.count > 1 ? t("new.createMany", { n: s.count }) : t("new.create")}</button>
        </aside>
      </form>`;
  }
}
