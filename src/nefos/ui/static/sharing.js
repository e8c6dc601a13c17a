// Who may read or change a file, and its public link.
//
// The API names users by UUID and groups as `<owner>:<group>` (X-Object-Sharing); people
// type e-mail addresses and their own groups' names, which the account API's
// user_catalogs turns into UUIDs and back.

import { explain } from "./api.js";
import { Modal } from "./filedialogs.js";
import { t } from "./i18n.js";
import { Component, html } from "./lib.js";
import { basename } from "./store.js";

const EVERYONE = "*";

function split(text) {
  return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
}

export class SharingDialog extends Component {
  state = { loaded: false, read: "", write: "", publicUrl: null, groups: [], failure: null, saved: false, busy: false };

  async componentDidMount() {
    const { store, container, item, api } = this.props;
    try {
      const [current, groups] = await Promise.all([store.sharing(container, item.name), store.groups()]);
      const uuids = [...current.read, ...current.write].filter((s) => !s.includes(":") && s !== EVERYONE);
      let names = {};
      if (uuids.length) {
        names = (await api.post("account", "/user_catalogs", { uuids })).uuid_catalog;
      }
      const show = (subject) => {
        if (subject.startsWith(`${api.user.id}:`)) return subject.slice(api.user.id.length + 1);
        return names[subject] || subject;
      };
      this.setState({
        loaded: true,
        groups,
        read: current.read.map(show).join(", "),
        write: current.write.map(show).join(", "),
        publicUrl: current.publicUrl,
        published: Boolean(current.publicUrl),
      });
    } catch (error) {
      this.setState({ failure: explain(error), loaded: true });
    }
  }

  // E-mail addresses, the user's group names, UUIDs or * as the API's subjects.
  async subjects(entries) {
    const { api } = this.props;
    const emails = entries.filter((e) => e.includes("@"));
    let found = {};
    if (emails.length) {
      found = (await api.post("account", "/user_catalogs", { displaynames: emails })).displayname_catalog;
    }
    const lowered = Object.fromEntries(Object.entries(found).map(([k, v]) => [k.toLowerCase(), v]));
    return entries.map((entry) => {
      if (entry === EVERYONE || /^[0-9a-f-]{36}$/i.test(entry) || entry.includes(":")) return entry;
      if (entry.includes("@")) {
        const uuid = lowered[entry.toLowerCase()];
        if (!uuid) throw new Error(t("share.noUser", { email: entry }));
        return uuid;
      }
      if (this.state.groups.includes(entry.toLowerCase())) return `${api.user.id}:${entry.toLowerCase()}`;
      throw new Error(t("share.notKnown", { entry }));
    });
  }

  async save(event) {
    event.preventDefault();
    const { store, container, item } = this.props;
    this.setState({ busy: true, failure: null, saved: false });
    try {
      const read = await this.subjects(split(this.state.read));
      const write = await this.subjects(split(this.state.write));
      await store.share(container, item.name, { read, write });
      this.setState({ busy: false, saved: true });
    } catch (error) {
      this.setState({ busy: false, failure: explain(error) });
    }
  }

  async publish(on) {
    const { store, container, item } = this.props;
    this.setState({ failure: null, published: on });
    try {
      await store.publish(container, item.name, on);
      const { publicUrl } = await store.sharing(container, item.name);
      this.setState({ publicUrl, published: Boolean(publicUrl) });
    } catch (error) {
      this.setState({ failure: explain(error), published: !on });
    }
  }

  async copyLink() {
    try {
      await navigator.clipboard.writeText(this.state.publicUrl);
      this.setState({ copied: true });
    } catch {
      document.getElementById("public-url").select(); // the user copies it by hand
    }
  }

  render({ item, onClose }, { loaded, read, write, publicUrl, published, groups, failure, saved, busy, copied }) {
    return html`<${Modal} title=${t("share.title", { name: basename(item.name) })} onClose=${onClose} wide>
      ${!loaded ? html`<p class="loading">${t("common.loading")}</p>` : html`
      <form class="details" onSubmit=${(e) => this.save(e)}>
        <label for="share-read">${t("share.read")}</label>
        <input id="share-read" value=${read} placeholder=${t("share.placeholder")}
          onInput=${(e) => this.setState({ read: e.target.value, saved: false })} />
        <label for="share-write">${t("share.write")}</label>
        <input id="share-write" value=${write} placeholder=${t("share.placeholder")}
          onInput=${(e) => this.setState({ write: e.target.value, saved: false })} />
        <p class="hint">${groups.length ? t("share.groups", { groups: groups.join(", ") }) : ""}${t("share.everyone")}</p>
        <div class="actions">
          ${saved ? html`<span class="saved" role="status" id="sharing-saved">${t("share.saved")}</span>` : null}
          <button type="submit" class="primary" disabled=${busy}>${t("share.save")}</button>
        </div>
      </form>
      <h3>${t("share.public")}</h3>
      <label class="switch"><input type="checkbox" id="public" checked=${published}
        onChange=${(e) => this.publish(e.target.checked)} />
        ${t("share.publicText")}</label>
      ${publicUrl ? html`<div class="public-link">
        <input id="public-url" readonly value=${publicUrl} aria-label=${t("share.public")} />
        <button type="button" onClick=${() => this.copyLink()}>${t(copied ? "share.copied" : "share.copyLink")}</button>
      </div>` : null}`}
      ${failure ? html`<p class="error" role="alert" id="dialog-failure">${failure}</p>` : null}
      <div class="actions"><button type="button" onClick=${onClose}>${t("common.close")}</button></div>
    <//>`;
  }
}
