// The dashboard: what the user has, and how much of each quota is left, per project.

import { explain, projectName } from "./api.js";
import { bytes } from "./format.js";
import { t } from "./i18n.js";
import { Component, html } from "./lib.js";
import { QuotaBars } from "./quota.js";

function settled(result) {
  return result.status === "fulfilled" ? result.value : { failed: result.reason };
}

// A project other than the personal one shows what it gives, not a row of "0 of 0".
function granted(entries, project) {
  if (!project || project.system_project) return undefined;
  return Object.keys(entries).filter((name) => entries[name].limit > 0);
}

export class Dashboard extends Component {
  state = { loaded: false };

  async componentDidMount() {
    const { api, projects, onProjectsChanged } = this.props;
    // Two numbers, not the servers: the listing's count (a nefos extension, docs/ui.md)
    // with no page of servers, of every machine and of the running ones.
    const [quotas, machines, running, files, images] = await Promise.allSettled([
      api.get("account", "/quotas"),
      api.get("compute", "/servers?with_count=true&limit=0"),
      api.get("compute", "/servers?with_count=true&limit=0&status=ACTIVE"),
      api.get("object-store", "?format=json"),
      api.get("image", "/v2/images?limit=1000"),
    ]);
    this.setState({
      loaded: true,
      quotas: settled(quotas),
      machines: settled(machines),
      running: settled(running),
      files: settled(files),
      images: settled(images),
    });
    // a project joined elsewhere (another tab, kamaki) has a quota but no name here yet
    const unnamed = quotas.status === "fulfilled" && Object.keys(quotas.value).some((id) => !projects[id]);
    if (unnamed && onProjectsChanged) onProjectsChanged();
  }

  // A card links to its page where one exists; the others come with their pages.
  card(title, href, body, failed) {
    const inner = html`<h2>${title}</h2>
      ${failed ? html`<p class="error">${explain(failed)}</p>` : body}`;
    return href ? html`<a class="card" href=${href}>${inner}</a>` : html`<div class="card">${inner}</div>`;
  }

  render({ api, resources, projects }, { loaded, quotas, machines, running, files, images }) {
    const name = api.user.name || api.user.email;
    const hero = html`<section class="hero">
      <div>
        <h1>${t("dash.hello", { name })}</h1>
        <p>${t("dash.intro")}</p>
      </div>
      <a class="button primary big" href="#/machines/new" id="new-machine">${t("title.newMachine")}</a>
    </section>`;
    if (!loaded) return html`${hero}<p class="loading">${t("common.loading")}</p>`;
    const containers = Array.isArray(files) ? files : [];
    const used = containers.reduce((sum, c) => sum + (c.bytes || 0), 0);
    const mine = images.images ? images.images.filter((i) => i.owner === api.project).length : 0;
    const projectIds = quotas.failed ? [] : Object.keys(quotas);
    return html`${hero}
      <section class="cards" aria-label=${t("dash.whatYouHave")}>
        ${this.card(t("nav.machines"), "#/machines", html`
          <p class="big-number" id="machine-count">${machines.failed ? "?" : machines.count}</p>
          <p id="running-count">${running.failed ? "" : t("dash.running", { n: running.count })}</p>`,
          machines.failed || running.failed)}
        ${this.card(t("nav.files"), null, html`
          <p class="big-number">${containers.length}</p>
          <p>${t("dash.stored", { n: containers.length, size: bytes(used) })}</p>`, files.failed)}
        ${this.card(t("nav.images"), "#/images", html`
          <p class="big-number">${images.images ? images.images.length : "?"}</p>
          <p>${t("dash.images", { n: mine })}</p>`, images.failed)}
        ${this.card(t("nav.projects"), "#/projects", html`
          <p class="big-number">${projectIds.length}</p>
          <p>${t("dash.projects")}</p>`, quotas.failed)}
      </section>
      <section aria-labelledby="quota-title">
        <h2 id="quota-title">${t("dash.quotas")}</h2>
        ${quotas.failed ? html`<p class="error" role="alert">${explain(quotas.failed)}</p>` : null}
        ${projectIds.map((id) => html`
          <div class="project-quota" key=${id} data-project=${id}>
            <h3>${projectName(projects, id)}</h3>
            <${QuotaBars} entries=${quotas[id]} resources=${resources} only=${granted(quotas[id], projects[id])} />
          </div>`)}
      </section>`;
  }
}
