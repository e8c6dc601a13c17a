// The account: who you are, how you log in, your API token (copy, renew) and the
// files that set up a command-line client with it (clouds.yaml, openrc, kamakirc).
//
// The token comes from the web session (GET /ui/session/account), not from an API
// call: only the person logged in may read it. Renewing it (POST
// /ui/session/api-token) stops the old one at once; the page itself runs on a session
// token of its own, so it goes on working.

import { explain } from "./api.js";
import { dateTime, t } from "./i18n.js";
import { Component, createRef, html } from "./lib.js";

const PROVIDERS = { local: "account.provider.local", shibboleth: "account.provider.shibboleth" };

export class Account extends Component {
  state = { account: null, failure: null, confirming: false, busy: false, copied: false, renewed: false };
  tokenField = createRef();

  async componentDidMount() {
    try {
      this.setState({ account: await this.props.api.session("GET", "account") });
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
  }

  async copy() {
    const { token } = this.state.account.api_token;
    try {
      await navigator.clipboard.writeText(token);
      this.setState({ copied: true });
    } catch {
      this.tokenField.current.select(); // the browser refused: the person copies it by hand
    }
  }

  async renew() {
    this.setState({ busy: true, failure: null, copied: false });
    try {
      const { api_token } = await this.props.api.session("POST", "api-token");
      this.setState({ account: { ...this.state.account, api_token }, renewed: true, confirming: false });
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
    this.setState({ busy: false });
  }

  token(api) {
    const { account, confirming, busy, copied, renewed } = this.state;
    const current = account.api_token;
    return html`<section aria-labelledby="token-title" class="account-section">
      <h2 id="token-title">${t("account.token")}</h2>
      <p class="sub">${t("account.tokenIntro", { header: html`<code>X-Auth-Token</code>` })}</p>
      ${current && current.token ? html`
        <div class="public-link token-row">
          <input id="api-token" readonly value=${current.token} ref=${this.tokenField} aria-label=${t("account.token")}
            spellcheck="false" />
          <button type="button" id="copy-token" onClick=${() => this.copy()}>${t(copied ? "share.copied" : "account.copy")}</button>
        </div>
        ${current.expires ? html`<p class="hint" id="token-expires">${t("account.expires", { when: dateTime(current.expires) })}</p>` : null}`
        : html`<p class="notice">${t("account.noToken")}</p>`}
      ${renewed ? html`<p class="saved" role="status" id="token-renewed">${t("account.renewed")}</p>` : null}
      ${confirming ? html`<div class="warning" role="group" aria-labelledby="renew-question">
          <p id="renew-question"><strong>${t("account.renewQuestion")}</strong> ${t("account.renewWarning")}</p>
          <div class="actions">
            <button type="button" onClick=${() => this.setState({ confirming: false })}>${t("account.keepToken")}</button>
            <button type="button" class="danger" id="renew-yes" disabled=${busy} onClick=${() => this.renew()}>${t("account.renewYes")}</button>
          </div></div>`
        : html`<p><button type="button" id="renew-token" onClick=${() => this.setState({ confirming: true, renewed: false })}>${t("account.renew")}</button></p>`}
    </section>
    <section aria-labelledby="config-title" class="account-section">
      <h2 id="config-title">${t("account.config")}</h2>
      <p class="sub">${t("account.configIntro")}</p>
      <ul class="downloads">
        <li><a class="button" id="download-clouds" href=${api.configUrl("clouds")} download="clouds.yaml">clouds.yaml</a>
          <span class="sub">${t("account.forOpenstack", { command: html`<code>openstack --os-cloud nefos</code>` })}</span></li>
        <li><a class="button" id="download-openrc" href=${api.configUrl("openrc")} download="openrc">openrc</a>
          <span class="sub">${t("account.forOpenrc", { command: html`<code>source openrc</code>` })}</span></li>
        <li><a class="button" id="download-kamakirc" href=${api.configUrl("kamakirc")} download="kamakirc">kamakirc</a>
          <span class="sub">${t("account.forKamaki", { path: html`<code>~/.kamakirc</code>` })}</span></li>
      </ul>
      <p class="hint">${t("account.keepSecret")}${" "}<a href=${api.accountPageUrl()}>${t("account.credentials")}</a></p>
    </section>`;
  }

  render({ api }, { account, failure }) {
    const head = html`<section class="page-head"><h1>${t("account.title")}</h1></section>`;
    if (!account) {
      return html`${head}${failure ? html`<p class="error" role="alert">${failure}</p>` : html`<p class="loading">${t("common.loading")}</p>`}`;
    }
    const { user, logins } = account;
    return html`${head}
      ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}
      <section aria-labelledby="profile-title" class="account-section">
        <h2 id="profile-title">${t("account.profile")}</h2>
        <dl class="facts" id="profile">
          <dt>${t("common.name")}</dt><dd>${user.name || "—"}</dd>
          <dt>${t("moderation.email")}</dt><dd>${user.email}</dd>
          <dt>${t("account.id")}</dt><dd><code id="uuid">${user.id}</code></dd>
          <dt>${t("account.role")}</dt><dd>${t(user.admin ? "account.admin" : "account.member")}</dd>
          <dt>${t("account.logins")}</dt><dd><ul class="logins" id="logins">${logins.map((l) => html`<li key=${`${l.provider}/${l.identifier}`}>
            ${PROVIDERS[l.provider] ? t(PROVIDERS[l.provider]) : l.provider} <span class="sub">(${l.identifier})</span></li>`)}</ul></dd>
        </dl>
      </section>
      ${this.token(api)}`;
  }
}
