// For administrators: the accounts that signed up, confirmed their e-mail address and
// wait for approval. Activate or reject each; the person gets a mail either way.

import { explain } from "./api.js";
import { when } from "./format.js";
import { t } from "./i18n.js";
import { Component, html } from "./lib.js";

export class Moderation extends Component {
  state = { users: null, failure: null, notice: null, rejecting: null, reason: "", busy: null };

  componentDidMount() {
    this.load();
  }

  async load() {
    try {
      const { users } = await this.props.api.get("account", "/users/pending");
      this.setState({ users, failure: null });
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
  }

  async decide(user, action, body) {
    this.setState({ busy: user.id, failure: null });
    try {
      const done = await this.props.api.post("account", `/users/${user.id}/${action}`, body);
      const who = `${user.name} (${user.email})`;
      const what = t(action === "activate" ? "moderation.active" : "moderation.rejected", { who });
      const mail = t(done.mail_sent ? "moderation.mailSent" : "moderation.mailLater");
      this.setState({
        notice: `${what} ${mail}`,
        users: this.state.users.filter((u) => u.id !== user.id),
        rejecting: null,
        reason: "",
      });
    } catch (error) {
      this.setState({ failure: explain(error) });
    } finally {
      this.setState({ busy: null });
    }
  }

  row(user) {
    const { rejecting, reason, busy } = this.state;
    const label = `${user.name} (${user.email})`;
    if (rejecting === user.id) {
      return html`<tr key=${user.id}>
        <td colspan="3"><label for="reason"><strong>${t("moderation.rejectWho", { who: label })}</strong> ${t("moderation.reason")}</label>
          <input id="reason" class="reason" value=${reason} maxlength="1000"
            onInput=${(e) => this.setState({ reason: e.target.value })} /></td>
        <td class="row-actions">
          <button type="button" class="danger" disabled=${busy === user.id}
            onClick=${() => this.decide(user, "reject", { reason })}>${t("moderation.reject")}</button>
          <button type="button" onClick=${() => this.setState({ rejecting: null, reason: "" })}>${t("common.cancel")}</button>
        </td></tr>`;
    }
    return html`<tr key=${user.id}>
      <td><strong>${user.name}</strong></td>
      <td>${user.email}</td>
      <td class="when">${when(user.created)}</td>
      <td class="row-actions">
        <button type="button" class="primary" disabled=${busy === user.id} aria-label=${t("moderation.activateWho", { who: label })}
          onClick=${() => this.decide(user, "activate")}>${t("moderation.activate")}</button>
        <button type="button" aria-label=${t("moderation.rejectName", { who: label })}
          onClick=${() => this.setState({ rejecting: user.id, reason: "" })}>${t("moderation.rejectMore")}</button>
      </td></tr>`;
  }

  render({ api }, { users, failure, notice }) {
    if (!api.user || !api.user.admin) {
      return html`<h1>${t("nav.accountsToApprove")}</h1><p class="error" role="alert">${t("common.adminOnly")}</p>`;
    }
    return html`<div class="page-head"><h1>${t("nav.accountsToApprove")}</h1></div>
      <p class="sub">${t("moderation.intro")}</p>
      ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
      ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}
      ${users === null ? html`<p class="loading">${t("common.loading")}</p>`
        : !users.length ? html`<p class="empty">${t("moderation.nobody")}</p>`
        : html`<table class="machines moderation">
            <thead><tr><th>${t("common.name")}</th><th>${t("moderation.email")}</th><th>${t("moderation.signedUp")}</th><th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
            <tbody>${users.map((user) => this.row(user))}</tbody>
          </table>`}`;
  }
}
