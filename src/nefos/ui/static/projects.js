// Projects (Astakos's): the ones I am in, my applications and what became of them, the
// ones I can join, and people asking to join mine. Joining gives a project's quota;
// leaving gives it back.

import { explain } from "./api.js";
import { amount } from "./format.js";
import { Component, html } from "./lib.js";
import { ProjectForm } from "./projectform.js";

const MEMBER = new Set(["accepted", "leave_requested", "suspended"]);
const MEMBERSHIP_TEXT = {
  accepted: "Member",
  leave_requested: "Leaving: waits for the owner",
  suspended: "Member (the project is suspended)",
  requested: "Waiting for the owner to accept you",
};
const APPLICATION_TEXT = {
  pending: "Waiting for an administrator",
  approved: "Approved",
  denied: "Refused",
  replaced: "Replaced by a newer application",
};
const JOIN_TEXT = { auto: "Anyone can join", moderated: "The owner accepts who joins", closed: "Closed to new members" };

export function day(iso) {
  return iso ? new Date(iso).toLocaleDateString(undefined, { dateStyle: "medium" }) : "";
}

// What each member gets, in words: "Number of virtual machines 3 · Virtual machine memory 8 GiB".
export function grants(project, resources) {
  const entries = Object.entries(project.resources || {}).filter(([, c]) => c.member_capacity > 0);
  if (!entries.length) return html`<span class="sub">nothing</span>`;
  return html`<ul class="grants-list">${entries.map(([name, capacity]) => html`<li key=${name}>
    ${(resources[name] || {}).description || name}: <strong>${amount(resources[name], capacity.member_capacity)}</strong></li>`)}</ul>`;
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
      ? `You joined ${project.name}. Its resources are in your quota now.`
      : `You asked to join ${project.name}. Its owner decides.`;
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
    if (!rows.length) return html`<p class="empty">You are in no project yet. Join one below, or apply for your own.</p>`;
    return html`<table class="machines projects" id="my-projects">
      <thead><tr><th>Project</th><th>Each member gets</th><th>Until</th><th>You</th><th><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${rows.map((p) => {
        const m = mine[p.id];
        const member = m && MEMBER.has(m.state);
        const you = member ? MEMBERSHIP_TEXT[m.state] : "Owner, not a member: join to use its resources";
        return html`<tr key=${p.id} data-project=${p.name}>
          <td><strong>${p.name}</strong><div class="sub">${p.description}</div></td>
          <td>${grants(p, resources)}</td>
          <td class="when">${day(p.end_date)}</td>
          <td class="state">${you}</td>
          <td class="row-actions">
            ${!member ? this.button(`join:${p.id}`, "Join", () => this.join(p), { kind: "primary", label: `Join ${p.name}` }) : null}
            ${member && m.allowed_actions.includes("leave")
              ? this.button(`leave:${m.id}`, "Leave", () => this.membership(m, "leave", `You left ${p.name}.`), { label: `Leave ${p.name}` }) : null}
          </td></tr>`;
      })}</tbody></table>`;
  }

  applications(projects) {
    const me = this.props.api.user.id;
    const rows = projects.filter((p) => p.owner === me && p.last_application && p.state !== "deleted");
    if (!rows.length) return null;
    return html`<section aria-labelledby="applications-title">
      <h2 id="applications-title">Your applications</h2>
      <table class="machines projects" id="my-applications">
        <thead><tr><th>Project</th><th>Sent</th><th>State</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${rows.map((p) => {
          const app = p.last_application;
          return html`<tr key=${p.id} data-project=${app.name}>
            <td><strong>${app.name}</strong></td>
            <td class="when">${day(app.issue_date)}</td>
            <td class="state" data-state=${app.state}>${APPLICATION_TEXT[app.state] || app.state}
              ${app.state === "denied" && app.response ? html`<div class="sub">Why: ${app.response}</div>` : null}</td>
            <td class="row-actions">
              ${app.state === "pending" ? this.button(`cancel:${p.id}`, "Withdraw", () => this.application(p, "cancel", `You withdrew ${app.name}.`)) : null}
              ${app.state === "denied" ? this.button(`dismiss:${p.id}`, "Dismiss", () => this.application(p, "dismiss", `${app.name} is off your list.`)) : null}
            </td></tr>`;
        })}</tbody></table></section>`;
  }

  joinable(projects, mine, resources) {
    const me = this.props.api.user.id;
    const rows = projects.filter((p) => p.state === "active" && p.owner !== me && !MEMBER.has((mine[p.id] || {}).state));
    return html`<section aria-labelledby="joinable-title">
      <h2 id="joinable-title">Projects you can join</h2>
      ${!rows.length ? html`<p class="sub">None right now.</p>` : html`
      <table class="machines projects" id="joinable">
        <thead><tr><th>Project</th><th>Each member gets</th><th>Until</th><th>Joining</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${rows.map((p) => {
          const m = mine[p.id];
          const waiting = m && m.state === "requested";
          return html`<tr key=${p.id} data-project=${p.name}>
            <td><strong>${p.name}</strong><div class="sub">${p.description}</div></td>
            <td>${grants(p, resources)}</td>
            <td class="when">${day(p.end_date)}</td>
            <td class="state">${waiting ? MEMBERSHIP_TEXT.requested : JOIN_TEXT[p.join_policy]}</td>
            <td class="row-actions">
              ${waiting ? this.button(`cancel:${m.id}`, "Cancel request", () => this.membership(m, "cancel", `You no longer ask to join ${p.name}.`))
                : p.join_policy === "closed" ? null
                : this.button(`join:${p.id}`, p.join_policy === "auto" ? "Join" : "Ask to join", () => this.join(p),
                  { kind: "primary", label: `${p.join_policy === "auto" ? "Join" : "Ask to join"} ${p.name}` })}
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
      <h2 id="requests-title">People asking to join your projects</h2>
      <table class="machines projects" id="join-requests">
        <thead><tr><th>Who</th><th>Project</th><th>Asked</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${asking.map((m) => {
          const who = people[m.user] || m.user;
          const name = owned[m.project].name;
          return html`<tr key=${m.id}>
            <td>${who}</td><td>${name}</td><td class="when">${day(m.requested)}</td>
            <td class="row-actions">
              ${this.button(`accept:${m.id}`, "Accept", () => this.membership(m, "accept", `${who} is a member of ${name}.`), { kind: "primary", label: `Accept ${who} in ${name}` })}
              ${this.button(`reject:${m.id}`, "Refuse", () => this.membership(m, "reject", `${who} was refused.`), { label: `Refuse ${who} in ${name}` })}
            </td></tr>`;
        })}</tbody></table></section>`;
  }

  render({ api, resources }, { projects, memberships, applying, notice, failure }) {
    const head = html`<section class="page-head">
      <h1>Projects</h1>
      ${applying ? null : html`<button type="button" class="primary" id="apply" onClick=${() => this.setState({ applying: true, notice: null })}>
        Apply for a project</button>`}
    </section>`;
    const messages = html`${notice ? html`<p class="notice" role="status" id="project-notice">${notice}</p>` : null}
      ${failure ? html`<p class="error" role="alert" id="project-error">${failure}</p>` : null}`;
    if (applying) {
      return html`${head}${messages}<${ProjectForm} api=${api} resources=${resources}
        onCancel=${() => this.setState({ applying: false })}
        onDone=${(name) => { this.setState({ applying: false, notice: `${name}: your application is sent. An administrator decides, and it shows below.` }); this.load(); }} />`;
    }
    if (projects === null) return html`${head}<p class="loading">Loading…</p>`;
    const mine = Object.fromEntries(memberships.filter((m) => m.user === api.user.id).map((m) => [m.project, m]));
    return html`${head}${messages}
      <section aria-labelledby="mine-title">
        <h2 id="mine-title">Your projects</h2>
        <p class="sub">Besides your personal quota, which is always yours.</p>
        ${this.mine(projects, mine, resources)}
      </section>
      ${this.applications(projects)}
      ${this.requests(projects, memberships)}
      ${this.joinable(projects, mine, resources)}`;
  }
}
