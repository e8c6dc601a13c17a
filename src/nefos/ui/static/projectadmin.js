// For administrators: project applications waiting for a decision. Approve, or deny
// with a reason that the applicant reads on their Projects page.

import { explain } from "./api.js";
import { Component, html } from "./lib.js";
import { day, grants } from "./projects.js";

const JOINING = { auto: "anyone joins", moderated: "the owner accepts members", closed: "closed" };

export class ProjectsAdmin extends Component {
  state = { pending: null, people: {}, failure: null, notice: null, denying: null, reason: "", busy: null };

  componentDidMount() {
    this.load();
  }

  async load() {
    const { api } = this.props;
    try {
      const projects = await api.get("account", "/projects");
      const pending = projects.filter((p) => p.last_application && p.last_application.state === "pending");
      const uuids = [...new Set(pending.map((p) => p.last_application.applicant))];
      const people = uuids.length ? (await api.post("account", "/user_catalogs", { uuids })).uuid_catalog : {};
      this.setState({ pending, people, failure: null });
    } catch (error) {
      this.setState({ pending: [], failure: explain(error) });
    }
  }

  async decide(project, action, reason = "") {
    const app = project.last_application;
    this.setState({ busy: project.id, failure: null });
    try {
      await this.props.api.post("account", `/projects/${project.id}/action`, { [action]: { app_id: app.id, reason } });
      const what = action === "approve" ? "is approved: its members get its resources now" : "was refused";
      this.setState({ notice: `${app.name} ${what}.`, denying: null, reason: "" });
      if (this.props.onProjectsChanged) this.props.onProjectsChanged();
    } catch (error) {
      this.setState({ failure: explain(error, this.props) });
    }
    await this.load();
    this.setState({ busy: null });
  }

  row(project) {
    const { resources } = this.props;
    const { people, denying, reason, busy } = this.state;
    const app = project.last_application;
    const who = people[app.applicant] || app.applicant;
    const decision = denying === project.id
      ? html`<label for="deny-reason">Why? The applicant reads this.</label>
          <input id="deny-reason" class="reason" value=${reason} maxlength="1000"
            onInput=${(e) => this.setState({ reason: e.target.value })} />
          <div class="row-actions">
            <button type="button" class="danger" disabled=${busy === project.id}
              onClick=${() => this.decide(project, "deny", reason)}>Refuse ${app.name}</button>
            <button type="button" onClick=${() => this.setState({ denying: null, reason: "" })}>Cancel</button>
          </div>`
      : html`<div class="row-actions">
          <button type="button" class="primary" disabled=${busy === project.id} aria-label=${`Approve ${app.name}`}
            onClick=${() => this.decide(project, "approve")}>Approve</button>
          <button type="button" aria-label=${`Refuse ${app.name}`}
            onClick=${() => this.setState({ denying: project.id, reason: "" })}>Refuse…</button>
        </div>`;
    return html`<tr key=${project.id} data-project=${app.name}>
      <td><strong>${app.name}</strong><div class="sub">${app.description}</div>
        <div class="sub">by ${who}, sent ${day(app.issue_date)}</div></td>
      <td>${grants(app, resources)}
        <div class="sub">up to ${app.max_members ?? "any number of"} members; ${JOINING[app.join_policy]}</div></td>
      <td class="when">${day(app.start_date) || "now"} to ${day(app.end_date)}</td>
      <td>${decision}</td>
    </tr>`;
  }

  render({ api }, { pending, failure, notice }) {
    if (!api.user || !api.user.admin) {
      return html`<h1>Projects to approve</h1><p class="error" role="alert">This page is for administrators.</p>`;
    }
    return html`<div class="page-head"><h1>Projects to approve</h1></div>
      <p class="sub">Applications for new projects and changes to projects. Members get a project's resources once
        you approve it.</p>
      ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
      ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}
      ${pending === null ? html`<p class="loading">Loading…</p>`
        : !pending.length ? html`<p class="empty">No application is waiting.</p>`
        : html`<table class="machines projects" id="applications">
            <thead><tr><th>Project</th><th>Each member gets</th><th>When</th><th>Decision</th></tr></thead>
            <tbody>${pending.map((p) => this.row(p))}</tbody>
          </table>`}`;
  }
}
