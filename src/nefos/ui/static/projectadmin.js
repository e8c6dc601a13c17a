// For administrators: project applications waiting for a decision. Approve, or deny
// with a reason that the applicant reads on their Projects page.

import { explain } from "./api.js";
import { t } from "./i18n.js";
import { Component, html } from "./lib.js";
import { day, grants } from "./projects.js";

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
      const notice = t(action === "approve" ? "admin.approved" : "admin.refused", { name: app.name });
      this.setState({ notice, denying: null, reason: "" });
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
    const joining = ["auto", "moderated", "closed"].includes(app.join_policy) ? t(`joining.${app.join_policy}`) : app.join_policy;
    const decision = denying === project.id
      ? html`<label for="deny-reason">${t("admin.why")}</label>
          <input id="deny-reason" class="reason" value=${reason} maxlength="1000"
            onInput=${(e) => this.setState({ reason: e.target.value })} />
          <div class="row-actions">
            <button type="button" class="danger" disabled=${busy === project.id}
              onClick=${() => this.decide(project, "deny", reason)}>${t("admin.refuseName", { name: app.name })}</button>
            <button type="button" onClick=${() => this.setState({ denying: null, reason: "" })}>${t("common.cancel")}</button>
          </div>`
      : html`<div class="row-actions">
          <button type="button" class="primary" disabled=${busy === project.id} aria-label=${t("admin.approveName", { name: app.name })}
            onClick=${() => this.decide(project, "approve")}>${t("admin.approve")}</button>
          <button type="button" aria-label=${t("admin.refuseName", { name: app.name })}
            onClick=${() => this.setState({ denying: project.id, reason: "" })}>${t("admin.refuse")}</button>
        </div>`;
    return html`<tr key=${project.id} data-project=${app.name}>
      <td><strong>${app.name}</strong><div class="sub">${app.description}</div>
        <div class="sub">${t("admin.by", { who, day: day(app.issue_date) })}</div></td>
      <td>${grants(app, resources)}
        <div class="sub">${app.max_members == null ? t("admin.anyNumber", { joining }) : t("admin.upTo", { n: app.max_members, joining })}</div></td>
      <td class="when">${t("admin.fromTo", { start: day(app.start_date) || t("admin.now"), end: day(app.end_date) })}</td>
      <td>${decision}</td>
    </tr>`;
  }

  render({ api }, { pending, failure, notice }) {
    if (!api.user || !api.user.admin) {
      return html`<h1>${t("nav.projectsToApprove")}</h1><p class="error" role="alert">${t("common.adminOnly")}</p>`;
    }
    return html`<div class="page-head"><h1>${t("nav.projectsToApprove")}</h1></div>
      <p class="sub">${t("admin.intro")}</p>
      ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
      ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}
      ${pending === null ? html`<p class="loading">${t("common.loading")}</p>`
        : !pending.length ? html`<p class="empty">${t("admin.noneWaiting")}</p>`
        : html`<table class="machines projects" id="applications">
            <thead><tr><th>${t("common.project")}</th><th>${t("projects.each")}</th><th>${t("admin.when")}</th><th>${t("admin.decision")}</th></tr></thead>
            <tbody>${pending.map((p) => this.row(p))}</tbody>
          </table>`}`;
  }
}
