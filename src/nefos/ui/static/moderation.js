// For administrators: the accounts that signed up, confirmed their e-mail address and
// wait for approval. Activate or reject each; the person gets a mail either way.

import { explain } from "./api.js";
import { when } from "./format.js";
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
      const what = action === "activate" ? "is active" : "was rejected";
      const mail = done.mail_sent
        ? "We sent them a mail."
        : "The mail to them could not be sent yet; it is tried again.";
      this.setState({
        notice: `${user.name} (${user.email}) ${what}. ${mail}`,
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
        <td colspan="3"><label for="reason"><strong>Reject ${label}?</strong> Reason for them (optional)</label>
          <input id="reason" class="reason" value=${reason} maxlength="1000"
            onInput=${(e) => this.setState({ reason: e.target.value })} /></td>
        <td class="row-actions">
          <button type="button" class="danger" disabled=${busy === user.id}
            onClick=${() => this.decide(user, "reject", { reason })}>Reject</button>
          <button type="button" onClick=${() => this.setState({ rejecting: null, reason: "" })}>Cancel</button>
        </td></tr>`;
    }
    return html`<tr key=${user.id}>
      <td><strong>${user.name}</strong></td>
      <td>${user.email}</td>
      <td class="when">${when(user.created)}</td>
      <td class="row-actions">
        <button type="button" class="primary" disabled=${busy === user.id} aria-label=${`Activate ${label}`}
          onClick=${() => this.decide(user, "activate")}>Activate</button>
        <button type="button" aria-label=${`Reject ${label}`}
          onClick=${() => this.setState({ rejecting: user.id, reason: "" })}>Reject…</button>
      </td></tr>`;
  }

  render({ api }, { users, failure, notice }) {
    if (!api.user || !api.user.admin) {
      return html`<h1>Accounts to approve</h1><p class="error" role="alert">This page is for administrators.</p>`;
    }
    return html`<div class="page-head"><h1>Accounts to approve</h1></div>
      <p class="sub">People who signed up and confirmed their e-mail address. They cannot log in until you
        activate them.</p>
      ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
      ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}
      ${users === null ? html`<p class="loading">Loading…</p>`
        : !users.length ? html`<p class="empty">Nobody is waiting. New sign-ups appear here, and you get a mail.</p>`
        : html`<table class="machines moderation">
            <thead><tr><th>Name</th><th>E-mail</th><th>Signed up</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>${users.map((user) => this.row(user))}</tbody>
          </table>`}`;
  }
}
