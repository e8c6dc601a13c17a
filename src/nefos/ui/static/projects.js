// Projects (Astakos's): the ones I am in, my applications and what became of them, the
// ones I can join, and people asking to join mine. Joining gives a project's quota;
// leaving gives it back.

import { explain } from "./api.js";
import { amount } from "./format.js";
import { day, resourceText, t } from "./i18n.js";
import { Component, html } from "./lib.js";
import { ProjectForm } from "./projectform.js";

const MEMBER = new Set(["accepted", "leave_requested", "suspended"]);
// membership, application and join policy states: their texts are texts.js's
// "membership.<state>", "application.<state>" and "join.<policy>"
function stateText(prefix, state) {
  try {
    return t(`${prefix}.${state}`);
  } catch {
    return state; // a state this page does not know yet
  }
}

export { day };

// What each member gets, in words: "Number of virtual machines 3 · Virtual machine memory 8 GiB".
export function grants(project, resources) {
  const entries = Object.entries(project.resources || {}).filter(([, c]) => c.member_capacity > 0);
  if (!entries.length) return html`<span class="sub">${t("projects.nothing")}</span>`;
  return html`<ul class="grants-list">${entries.map(([name, capacity]) => html`<li key=${name}>
    ${resourceText(name, resources[name])}: <strong>${amount(resources[name], capacity.member_capacity)}</strong></li>`)}</ul>`;
}

const FRESH_MS = 5000;

export class Projects extends Component {
  state = { projects: null, memberships: [], people: {}, applying: false, notice: null, failure: null, busy: null };

  componentDidMount() {
    // The app read the projects a moment ago (opening this page first): not again.
    const { projects, projectsAt } = this.props;
    const fresh = projects && projectsAt && Date.now() - projectsAt < FRESH_MS;
    this.load(fresh ? Object.values(projects) : null);
  }

  async load(known = null) {
    const { api } = this.props;
    try {
      const [projects, memberships] = await Promise.all([
        known || api.get("account", "/projects"),
        api.get("account", "/projects/memberships"),
      ]);
      const others = [...new Set(memberships.map((m) => m.user).filter((u) => u !== api.user.id))];
      const people = others.length
        ? (await api.post("account", "/user_catalogs", { uuids: others })).uuid_catalog
        : {};
      this.setState({ projects: projects.filter((p) => !p.system_project), memberships, people });
    } catch (error) {
      this.setState({ projects: [], failure: explain(error) });
    }
  }

  // One request, then the lists again (and the app's project names, for the dashboard).
  async act(key, request, notice) {
    this.setState({ busy: key, failure: null, notice: null });
    try {
      await request();
      this.setState({ notice });
      if (this.props.onProjectsChanged) this.props.onProjectsChanged();
    } catch (error) {
      this.setState({ failure: explain(error, this.props) });
    }
    await this.load();
    this.setState({ busy: null });
  }

  join(project) {
    const { api } = this.props;
    const words = project.join_policy === "auto"
      ? t("projects.joined", { name: project.name })
      : t("projects.asked", { name: project.name });
    return this.act(`join:${project.id}`, () => api.post("account", "/projects/memberships", { join: { project: project.id } }), words);
  }

  membership(m, action, words) {
    return this.act(`${action}:${m.id}`, () => this.props.api.post("account", `/projects/memberships/${m.id}/action`, { [action]: "" }), words);
  }

  application(project, action, words) {
    const app = project.last_application;
    return this.act(`${action}:${project.id}`, () => this.props.api.post("account", `/projects/${project.id}/action`, { [action]: { app_id: app.id } }), words);
  }

  button(key, text, onClick, extra = {}) {
    return html`<button type="button" class=${extra.kind || ""} disabled=${this.state.busy === key}
      aria-label=${extra.label || null} onClick=${onClick}>${text}</button>`;
  }

  mine(projects, mine, resources) {
    const me = this.props.api.user.id;
    const rows = projects.filter((p) => p.state === "active" && (MEMBER.has((mine[p.id] || {}).state) || p.owner === me));
    if (!rows.length) return html`<p class="empty">${t("projects.none")}</p>`;
    return html`<table class="machines projects" id="my-projects">
      <thead><tr><th>${t("common.project")}</th><th>${t("projects.each")}</th><th>${t("projects.until")}</th><th>${t("projects.you")}</th>
        <th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
      <tbody>${rows.map((p) => {
        const m = mine[p.id];
        const member = m && MEMBER.has(m.state);
        const you = member ? stateText("membership", m.state) : t("projects.ownerOnly");
        return html`<tr key=${p.id} data-project=${p.name}>
          <td><strong>${p.name}</strong><div class="sub">${p.description}</div></td>
          <td>${grants(p, resources)}</td>
          <td class="when">${day(p.end_date)}</td>
          <td class="state">${you}</td>
          <td class="row-actions">
            ${!member ? this.button(`join:${p.id}`, t("projects.join"), () => this.join(p), { kind: "primary", label: t("projects.joinName", { name: p.name }) }) : null}
            ${member && m.allowed_actions.includes("leave")
              ? this.button(`leave:${m.id}`, t("projects.leave"), () => this.membership(m, "leave", t("projects.left", { name: p.name })), { label: t("projects.leaveName", { name: p.name }) }) : null}
          </td></tr>`;
      })}</tbody></table>`;
  }

  applications(projects) {
    const me = this.props.api.user.id;
    const rows = projects.filter((p) => p.owner === me && p.last_application && p.state !== "deleted");
    if (!rows.length) return null;
    return html`<section aria-labelledby="applications-title">
      <h2 id="applications-title">${t("projects.applications")}</h2>
      <table class="machines projects" id="my-applications">
        <thead><tr><th>${t("common.project")}</th><th>${t("projects.sent")}</th><th>${t("machines.state")}</th><th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
        <tbody>${rows.map((p) => {
          const app = p.last_application;
          return html`<tr key=${p.id} data-project=${app.name}>
            <td><strong>${app.name}</strong></td>
            <td class="when">${day(app.issue_date)}</td>
            <td class="state" data-state=${app.state}>${stateText("application", app.state)}
              ${app.state === "denied" && app.response ? html`<div class="sub">${t("projects.why", { reason: app.response })}</div>` : null}</td>
            <td class="row-actions">
              ${app.state === "pending" ? this.button(`cancel:${p.id}`, t("projects.withdraw"), () => this.application(p, "cancel", t("projects.withdrew", { name: app.name }))) : null}
              ${app.state === "denied" ? this.button(`dismiss:${p.id}`, t("common.dismiss"), () => this.application(p, "dismiss", t("projects.dismissed", { name: app.name }))) : null}
            </td></tr>`;
        })}</tbody></table></section>`;
  }

  joinable(projects, mine, resources) {
    const me = this.props.api.user.id;
    const rows = projects.filter((p) => p.state === "active" && p.owner !== me && !MEMBER.has((mine[p.id] || {}).state));
    return html`<section aria-labelledby="joinable-title">
      <h2 id="joinable-title">${t("projects.joinable")}</h2>
      ${!rows.length ? html`<p class="sub">${t("projects.noneNow")}</p>` : html`
      <table class="machines projects" id="joinable">
        <thead><tr><th>${t("common.project")}</th><th>${t("projects.each")}</th><th>${t("projects.until")}</th><th>${t("projects.joining")}</th>
          <th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
        <tbody>${rows.map((p) => {
          const m = mine[p.id];
          const waiting = m && m.state === "requested";
          return html`<tr key=${p.id} data-project=${p.name}>
            <td><strong>${p.name}</strong><div class="sub">${p.description}</div></td>
            <td>${grants(p, resources)}</td>
            <td class="when">${day(p.end_date)}</td>
            <td class="state">${waiting ? t("membership.requested") : stateText("join", p.join_policy)}</td>
            <td class="row-actions">
              ${waiting ? this.button(`cancel:${m.id}`, t("projects.cancelRequest"), () => this.membership(m, "cancel", t("projects.noLongerAsk", { name: p.name })))
                : p.join_policy === "closed" ? null
                : this.button(`join:${p.id}`, t(p.join_policy === "auto" ? "projects.join" : "projects.ask"), () => this.join(p),
                  { kind: "primary", label: t(p.join_policy === "auto" ? "projects.joinName" : "projects.askName", { name: p.name }) })}
            </td></tr>`;
        })}</tbody></table>`}
    </section>`;
  }

  requests(projects, memberships) {
    const me = this.props.api.user.id;
    const owned = Object.fromEntries(projects.filter((p) => p.owner === me).map((p) => [p.id, p]));
    const asking = memberships.filter((m) => owned[m.project] && m.user !== me && m.state === "requested");
    if (!asking.length) return null;
    const { people } = this.state;
    return html`<section aria-labelledby="requests-title">
      <h2 id="requests-title">${t("projects.requests")}</h2>
      <table class="machines projects" id="join-requests">
        <thead><tr><th>${t("projects.who")}</th><th>${t("common.project")}</th><th>${t("projects.askedOn")}</th><th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
        <tbody>${asking.map((m) => {
          const who = people[m.user] || m.user;
          const name = owned[m.project].name;
          return html`<tr key=${m.id}>
            <td>${who}</td><td>${name}</td><td class="when">${day(m.requested)}</td>
            <td class="row-actions">
              ${this.button(`accept:${m.id}`, t("projects.accept"), () => this.membership(m, "accept", t("projects.isMember", { who, name })), { kind: "primary", label: t("projects.acceptName", { who, name }) })}
              ${this.button(`reject:${m.id}`, t("projects.refuse"), () => this.membership(m, "reject", t("projects.refused", { who })), { label: t("projects.refuseName", { who, name }) })}
            </td></tr>`;
        })}</tbody></table></section>`;
  }

  render({ api, resources }, { projects, memberships, applying, notice, failure }) {
    const head = html`<section class="page-head">
      <h1>${t("nav.projects")}</h1>
      ${applying ? null : html`<button type="button" class="primary" id="apply" onClick=${() => this.setState({ applying: true, notice: null })}>
        ${t("projects.apply")}</button>`}
    </section>`;
    const messages = html`${notice ? html`<p class="notice" role="status" id="project-notice">${notice}</p>` : null}
      ${failure ? html`<p class="error" role="alert" id="project-error">${failure}</p>` : null}`;
    if (applying) {
      return html`${head}${messages}<${ProjectForm} api=${api} resources=${resources}
        onCancel=${() => this.setState({ applying: false })}
        onDone=${(name) => { this.setState({ applying: false, notice: t("projects.applied", { name }) }); this.load(); }} />`;
    }
    if (projects === null) return html`${head}<p class="loading">${t("common.loading")}</p>`;
    const mine = Object.fromEntries(memberships.filter((m) => m.user === api.user.id).map((m) => [m.project, m]));
    return html`${head}${messages}
      <section aria-labelledby="mine-title">
        <h2 id="mine-title">${t("projects.yours")}</h2>
        <p class="sub">${t("projects.besides")}</p>
        ${this.mine(projects, mine, resources)}
      </section>
      ${this.applications(projects)}
      ${this.requests(projects, memberships)}
      ${this.joinable(projects, mine, resources)}`;
  }
}
