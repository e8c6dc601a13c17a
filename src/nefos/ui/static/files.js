// Files: the user's containers and folders (Pithos), and what others share with them.
//
// `#/files/<container>/<folder>/...` browses one's own account; `#/shared/<account>/...`
// an account that shares something with the user. A folder's listing comes a page at
// a time (marker/limit) and only the rows in view are drawn, so 10,000 files scroll as
// smoothly as ten.

import { explain } from "./api.js";
import { DeleteDialog, NameDialog, TransferDialog, VersionsDialog } from "./filedialogs.js";
import { bytes, when } from "./format.js";
import { number, t } from "./i18n.js";
import { Component, createRef, html } from "./lib.js";
import { SharingDialog } from "./sharing.js";
import { DIRECTORY, PAGE, Store, basename } from "./store.js";
import { Uploads, subscribe, upload } from "./transfers.js";

const ROW = 44; // px, as .files td sets it
const OVERSCAN = 12;

function entries(page, folders, files) {
  for (const entry of page) {
    if (entry.subdir !== undefined) {
      const name = entry.subdir.replace(/\/$/, "");
      if (!folders.has(name)) folders.set(name, { kind: "folder", name });
    } else if (entry.content_type === DIRECTORY || entry.name.endsWith("/")) {
      const name = entry.name.replace(/\/$/, "");
      folders.set(name, { kind: "folder", name, modified: entry.last_modified });
    } else {
      files.push({
        kind: "file",
        name: entry.name,
        bytes: entry.bytes,
        type: entry.content_type,
        modified: entry.last_modified,
      });
    }
  }
}

function href(base, parts) {
  return `#${base}/${parts.map(encodeURIComponent).join("/")}`.replace(/\/$/, "");
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// The rows of a long listing, drawn only where the pane is scrolled to.
class Rows extends Component {
  pane = createRef();
  state = { top: 0, height: 800 };

  componentDidMount() {
    this.measure();
    this.resized = () => this.measure();
    addEventListener("resize", this.resized);
  }

  componentWillUnmount() {
    removeEventListener("resize", this.resized);
  }

  measure() {
    const pane = this.pane.current;
    if (pane) this.setState({ top: pane.scrollTop, height: pane.clientHeight });
  }

  scrolled() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.measure();
    });
  }

  render({ items, selected, link, onSelect, onOpen, empty }, { top, height }) {
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(items.length, Math.ceil((top + height) / ROW) + OVERSCAN);
    const row = (item) => {
      const name = basename(item.name);
      const folder = item.kind === "folder";
      return html`<tr key=${item.name} data-name=${item.name} data-kind=${item.kind}
          class=${selected === item.name ? "selected" : ""} aria-selected=${selected === item.name}
          onClick=${() => onSelect(item)}>
        <td class="file-name">
          <span class=${`icon icon-${folder ? "folder" : "file"}`} aria-hidden="true"></span>
          ${folder
            ? html`<a href=${link(item)} onClick=${(e) => e.stopPropagation()}>${name}</a>`
            : html`<button type="button" class="link name" onDblClick=${() => onOpen(item)}>${name}</button>`}
        </td>
        <td class="size">${folder ? t("files.folder") : bytes(item.bytes)}</td>
        <td class="when">${item.modified ? when(`${item.modified}Z`) : ""}</td>
      </tr>`;
    };
    return html`<div class="file-pane" ref=${this.pane} onScroll=${() => this.scrolled()} tabindex="-1">
      <table class="files" aria-rowcount=${items.length}>
        <thead><tr><th scope="col">${t("common.name")}</th><th scope="col" class="size">${t("common.size")}</th><th scope="col" class="when">${t("files.modified")}</th></tr></thead>
        <tbody>
          ${first > 0 ? html`<tr class="spacer" aria-hidden="true"><td colspan="3" style=${{ height: `${first * ROW}px` }}></td></tr>` : null}
          ${items.slice(first, last).map(row)}
          ${last < items.length ? html`<tr class="spacer" aria-hidden="true"><td colspan="3" style=${{ height: `${(items.length - last) * ROW}px` }}></td></tr>` : null}
        </tbody>
      </table>
      ${items.length ? null : html`<p class="empty-folder">${empty}</p>`}
    </div>`;
  }
}

export class Files extends Component {
  state = { store: null, containers: null, items: null, complete: false, selected: null, dialog: null, failure: null, notice: null, dropping: false };
  picker = createRef();
  loading = 0;

  async componentDidMount() {
    try {
      const store = await Store.open(this.props.api);
      this.setState({ store }, () => this.load());
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
    this.unsubscribe = subscribe((done) => {
      if (done && done.state === "done" && done.container === this.where().container) this.load();
    });
  }

  componentWillUnmount() {
    this.loading += 1;
    this.unsubscribe();
  }

  componentDidUpdate(previous) {
    if (previous.rest !== this.props.rest || previous.shared !== this.props.shared) this.load();
  }

  // Where the URL points: whose account, which container, which folder.
  where() {
    const parts = (this.props.rest || "").split("/").filter(Boolean).map(decodeURIComponent);
    const api = this.props.api;
    if (this.props.shared) {
      const [account, container, ...folders] = parts;
      return { base: "/shared", account, container, folders, mine: false, root: parts.slice(0, 1) };
    }
    const [container, ...folders] = parts;
    return { base: "/files", account: api.user.id, container, folders, mine: true, root: [] };
  }

  async load() {
    const store = this.state.store;
    if (!store) return;
    const turn = ++this.loading;
    const { account, container, folders } = this.where();
    const here = store.at(account);
    const place = `${account}/${this.props.rest}`;
    if (place !== this.place) {
      this.place = place; // somewhere else: start afresh; else keep showing until the new list
      this.setState({ items: null, complete: false, selected: null, failure: null });
    }
    try {
      if (this.props.shared && !account) {
        const accounts = await here.sharingAccounts();
        const names = accounts.length
          ? (await this.props.api.post("account", "/user_catalogs", { uuids: accounts.map((a) => a.name) })).uuid_catalog
          : {};
        if (turn !== this.loading) return;
        this.setState({ containers: null, complete: true, items: accounts.map((a) => ({ kind: "account", name: a.name, email: names[a.name] || a.name })) });
        return;
      }
      if (this.props.shared && this.ownerOf !== account) {
        this.ownerOf = account; // the owner's e-mail for the breadcrumb, once per account
        const { uuid_catalog: names } = await this.props.api.post("account", "/user_catalogs", { uuids: [account] });
        if (turn === this.loading) this.setState({ owner: names[account] || account });
      }
      if (!container) {
        const containers = await here.containers();
        if (turn !== this.loading) return;
        this.setState({ containers, items: containers.map((c) => ({ kind: "container", ...c })), complete: true });
        return;
      }
      if (this.where().mine && !this.state.containers) {
        here.containers().then((containers) => turn === this.loading && this.setState({ containers }));
      }
      const prefix = folders.length ? `${folders.join("/")}/` : "";
      const folderMap = new Map();
      const files = [];
      let marker = null;
      for (;;) {
        const page = await here.listPage(container, prefix, marker);
        if (turn !== this.loading) return;
        entries(page, folderMap, files);
        const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
        const done = page.length < PAGE;
        const items = [...[...folderMap.values()].sort(byName), ...files];
        const selected = items.some((i) => i.name === this.state.selected) ? this.state.selected : null;
        this.setState({ items, complete: done, selected, failure: null });
        if (done) break;
        const lastEntry = page[page.length - 1];
        marker = lastEntry.subdir !== undefined ? lastEntry.subdir : lastEntry.name;
      }
    } catch (error) {
      if (turn === this.loading) this.setState({ failure: explain(error), items: [] });
    }
  }

  store() {
    return this.state.store.at(this.where().account);
  }

  async download(item, version) {
    try {
      saveBlob(await this.store().download(this.where().container, item.name, version), basename(item.name));
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
  }

  uploadFiles(files) {
    const { container, folders } = this.where();
    if (!files.length || !container) return;
    upload(this.store(), container, folders.length ? `${folders.join("/")}/` : "", files);
  }

  dropped(event) {
    event.preventDefault();
    this.setState({ dropping: false });
    if (this.where().mine) this.uploadFiles(event.dataTransfer.files);
  }

  breadcrumb() {
    const { base, account, container, folders, root } = this.where();
    const crumbs = [html`<a href=${`#${base}`}>${t(this.props.shared ? "title.shared" : "files.myContainers")}</a>`];
    if (this.props.shared && account) {
      const owner = (this.ownerOf === account && this.state.owner) || account;
      crumbs.push(html`<a href=${href(base, [account])}>${owner}</a>`);
    }
    const trail = container ? [container, ...folders] : [];
    trail.forEach((part, i) => {
      const last = i === trail.length - 1;
      crumbs.push(last ? html`<span aria-current="page">${part}</span>` : html`<a href=${href(base, [...root, ...trail.slice(0, i + 1)])}>${part}</a>`);
    });
    return html`<nav aria-label=${t("files.path")} class="breadcrumb"><ol>${crumbs.map((c) => html`<li>${c}</li>`)}</ol></nav>`;
  }

  toolbar() {
    const { mine } = this.where();
    const item = (this.state.items || []).find((i) => i.name === this.state.selected && (i.kind === "file" || i.kind === "folder"));
    const file = item && item.kind === "file";
    const open = (dialog) => this.setState({ dialog, target: item });
    const disabled = !item;
    return html`<div class="toolbar" role="toolbar" aria-label=${t("files.toolbar")}>
      ${mine ? html`
        <button type="button" id="new-folder" onClick=${() => open("folder")}>${t("files.newFolder")}</button>
        <button type="button" id="upload" class="primary" onClick=${() => this.picker.current.click()}>${t("files.upload")}</button>
        <input type="file" multiple ref=${this.picker} class="sr-only" id="file-picker" tabindex="-1" aria-hidden="true"
          onChange=${(e) => { this.uploadFiles(e.target.files); e.target.value = ""; }} />` : null}
      <span class="toolbar-gap"></span>
      <span class="selection" aria-live="polite">${item ? basename(item.name) : t("files.select")}</span>
      <button type="button" id="download" disabled=${!file} onClick=${() => this.download(item)}>${t("common.download")}</button>
      ${mine ? html`
        <button type="button" id="rename" disabled=${disabled} onClick=${() => open("move")}>${t("files.rename")}</button>
        <button type="button" id="copy" disabled=${disabled} onClick=${() => open("copy")}>${t("files.copy")}</button>
        <button type="button" id="versions" disabled=${!file} onClick=${() => open("versions")}>${t("files.versions")}</button>
        <button type="button" id="share" disabled=${!file} onClick=${() => open("share")}>${t("files.share")}</button>
        <button type="button" id="delete" class="danger" disabled=${disabled} onClick=${() => open("delete")}>${t("files.delete")}</button>` : null}
    </div>`;
  }

  dialog() {
    const { dialog, target: item, containers } = this.state;
    if (!dialog) return null;
    const { container, folders } = this.where();
    const store = this.store();
    const close = () => this.setState({ dialog: null });
    const done = (notice) => () => this.setState({ dialog: null, notice }, () => this.load());
    switch (dialog) {
      case "container":
        return html`<${NameDialog} title=${t("files.newContainer")} label=${t("common.name")} submit=${t("files.createContainer")} onClose=${close}
          hint=${t("files.containerHint")} onDone=${done(t("files.containerCreated"))}
          onSubmit=${(name) => store.createContainer(name)} />`;
      case "folder":
        return html`<${NameDialog} title=${t("files.newFolder")} label=${t("common.name")} submit=${t("files.createFolder")} onClose=${close}
          onDone=${done(t("files.folderCreated"))} onSubmit=${(name) => store.createFolder(container, [...folders, name].join("/"))} />`;
      case "move":
      case "copy":
        return html`<${TransferDialog} item=${item} copy=${dialog === "copy"} store=${store} container=${container}
          containers=${containers || [{ name: container }]} onClose=${close}
          onDone=${done(t(dialog === "copy" ? "files.copied" : "files.moved"))} />`;
      case "delete":
        return html`<${DeleteDialog} item=${item} store=${store} container=${container} onClose=${close}
          onDone=${done(t("files.deleted", { name: basename(item.name) }))} />`;
      case "versions":
        return html`<${VersionsDialog} item=${item} store=${store} container=${container} onClose=${close}
          onChanged=${() => this.load()} onDownload=${(v) => this.download(item, v)} />`;
      case "share":
        return html`<${SharingDialog} item=${item} store=${store} container=${container} api=${this.props.api} onClose=${close} />`;
      default:
        return null;
    }
  }

  containerList(items) {
    const { base, root, mine } = this.where();
    return html`<table class="machines containers">
      <thead><tr><th>${t("common.container")}</th><th>${t("nav.files")}</th><th>${t("common.size")}</th><th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
      <tbody>${items.map((c) => html`<tr data-name=${c.name}>
        <td><span class="icon icon-container" aria-hidden="true"></span> <a href=${href(base, [...root, c.name])}><strong>${c.name}</strong></a></td>
        <td>${number(c.count)}</td><td>${bytes(c.bytes)}</td>
        <td class="row-actions">${mine ? html`<button type="button" class="danger" data-action="delete" disabled=${c.count > 0}
          title=${c.count > 0 ? t("files.onlyEmpty") : null}
          onClick=${async () => {
            try { await this.state.store.deleteContainer(c.name); this.load(); } catch (error) { this.setState({ failure: explain(error) }); }
          }}>${t("files.delete")}</button>` : null}</td>
      </tr>`)}</tbody></table>`;
  }

  accountList(items) {
    if (!items.length) return html`<p class="empty">${t("files.nobodyShares")}</p>`;
    return html`<ul class="accounts">${items.map((a) => html`<li data-account=${a.name}>
      <a href=${href("/shared", [a.name])}>${a.email}</a></li>`)}</ul>`;
  }

  render({ shared }, { items, complete, selected, failure, notice, dropping }) {
    const { container, account, base, root, mine } = this.where();
    const heading = t("nav.files");
    const folderItems = items && container;
    return html`<div class=${`files-page${dropping ? " dropping" : ""}`}
        onDragOver=${(e) => { if (mine && container) { e.preventDefault(); if (!dropping) this.setState({ dropping: true }); } }}
        onDragLeave=${(e) => { if (e.target === e.currentTarget) this.setState({ dropping: false }); }}
        onDrop=${(e) => this.dropped(e)}>
      <div class="page-head">
        <h1>${heading}</h1>
        <nav class="tabs" aria-label=${t("files.whose")}>
          <a href="#/files" aria-current=${shared ? null : "page"}>${t("files.mine")}</a>
          <a href="#/shared" aria-current=${shared ? "page" : null}>${t("title.shared")}</a>
        </nav>
        ${mine && !container ? html`<button type="button" id="new-container" class="primary" onClick=${() => this.setState({ dialog: "container" })}>${t("files.newContainer")}</button>` : null}
      </div>
      ${this.breadcrumb()}
      ${notice ? html`<p class="notice" role="status" id="notice">${notice}
        <button type="button" class="link" onClick=${() => this.setState({ notice: null })}>${t("common.dismiss")}</button></p>` : null}
      ${failure ? html`<p class="error" role="alert" id="failure">${failure}</p>` : null}
      ${container ? this.toolbar() : null}
      ${!items ? html`<p class="loading">${t("common.loading")}</p>`
        : folderItems ? html`<${Rows} key=${`${account}/${container}/${this.props.rest}`} items=${items} selected=${selected}
            link=${(item) => href(base, [...root, container, ...item.name.split("/")])}
            onSelect=${(item) => this.setState({ selected: item.name })}
            onOpen=${(item) => this.download(item)}
            empty=${t(mine ? "files.emptyFolder" : "files.nothingShared")} />
          <p class="count" id="count">${t("files.items", { n: items.length })}${complete ? "" : t("files.loadingMore")}${mine ? t("files.dropHint") : ""}</p>`
        : shared && !account ? this.accountList(items)
        : items.length ? this.containerList(items)
        : html`<p class="empty">${t(mine ? "files.noContainers" : "files.nothing")}</p>`}
      <${Uploads} />
      ${this.dialog()}
    </div>`;
  }
}
