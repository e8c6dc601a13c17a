// The Files page's dialogs: a name for something new, move or copy, delete, versions
// and sharing. Each is a modal <dialog>; Escape or its cancel button closes it.

import { explain } from "./api.js";
import { when } from "./format.js";
import { t } from "./i18n.js";
import { Component, createRef, html } from "./lib.js";
import { basename } from "./store.js";

export class Modal extends Component {
  dialog = createRef();

  componentDidMount() {
    this.dialog.current.showModal();
  }

  render({ title, children, onClose, wide }) {
    return html`<dialog ref=${this.dialog} class=${wide ? "confirm wide" : "confirm"} aria-labelledby="dialog-title"
        onCancel=${(e) => { e.preventDefault(); onClose(); }}>
      <h2 id="dialog-title">${title}</h2>
      ${children}
    </dialog>`;
  }
}

// A form in a dialog that runs `action` and shows its failure in place.
class Form extends Component {
  state = { busy: false, failure: null };

  async submit(event) {
    event.preventDefault();
    this.setState({ busy: true, failure: null });
    try {
      await this.props.action();
      this.props.onDone();
    } catch (error) {
      this.setState({ busy: false, failure: explain(error) });
    }
  }

  render({ title, children, submit, danger, onClose, wide }, { busy, failure }) {
    return html`<${Modal} title=${title} onClose=${onClose} wide=${wide}>
      <form onSubmit=${(e) => this.submit(e)} class="details">
        ${children}
        ${failure ? html`<p class="error" role="alert" id="dialog-failure">${failure}</p>` : null}
        <div class="actions">
          <button type="button" onClick=${onClose}>${t("common.cancel")}</button>
          <button type="submit" class=${danger ? "danger" : "primary"} disabled=${busy}>${submit}</button>
        </div>
      </form>
    <//>`;
  }
}

export class NameDialog extends Component {
  state = { name: "" };

  render({ title, label, submit, hint, onSubmit, onClose, onDone }, { name }) {
    return html`<${Form} title=${title} submit=${submit} onClose=${onClose} onDone=${onDone}
        action=${() => {
          if (!name.trim() || name.includes("/")) throw new Error(t("dialog.noSlash"));
          return onSubmit(name.trim());
        }}>
      <label for="new-name">${label}</label>
      <input id="new-name" value=${name} autofocus required onInput=${(e) => this.setState({ name: e.target.value })} />
      ${hint ? html`<p class="hint">${hint}</p>` : null}
    <//>`;
  }
}

// Rename or move (MOVE), or copy (COPY): to any of the user's containers, under any name.
export class TransferDialog extends Component {
  constructor(props) {
    super(props);
    const { item, copy } = props;
    this.state = { container: props.container, name: copy ? copyName(item.name) : item.name };
  }

  render({ item, copy, containers, store, onClose, onDone }, { container, name }) {
    const folder = item.kind === "folder";
    return html`<${Form} title=${t(copy ? "dialog.copyTitle" : "dialog.moveTitle", { name: basename(item.name) })}
        submit=${t(copy ? "files.copy" : "dialog.move")} onClose=${onClose} onDone=${onDone}
        action=${() => {
          const target = name.trim().replace(/^\/+|\/+$/g, "");
          if (!target) throw new Error(t(folder ? "dialog.nameFolder" : "dialog.nameFile"));
          if (target === item.name && container === this.props.container) throw new Error(t("dialog.sameplace"));
          return store.transfer(copy ? "COPY" : "MOVE", this.props.container, item.name, container, target, {
            tree: item.kind === "folder",
          });
        }}>
      <label for="to-container">${t("common.container")}</label>
      <select id="to-container" value=${container} onChange=${(e) => this.setState({ container: e.target.value })}>
        ${containers.map((c) => html`<option value=${c.name}>${c.name}</option>`)}
      </select>
      <label for="to-name">${t("dialog.toName")}</label>
      <input id="to-name" value=${name} autofocus onInput=${(e) => this.setState({ name: e.target.value })} />
      <p class="hint">${t("dialog.foldersHint", { example: html`<code>reports/2024/${basename(item.name)}</code>` })}</p>
    <//>`;
  }
}

function copyName(name) {
  const dot = name.lastIndexOf(".");
  const slash = name.lastIndexOf("/");
  if (dot > slash + 1) return `${name.slice(0, dot)} ${t("dialog.copySuffix")}${name.slice(dot)}`;
  return `${name} ${t("dialog.copySuffix")}`;
}

export function DeleteDialog({ item, store, container, onClose, onDone }) {
  const folder = item.kind === "folder";
  return html`<${Form} title=${t("dialog.deleteTitle", { name: basename(item.name) })} submit=${t("dialog.deleteYes", { name: basename(item.name) })} danger
      onClose=${onClose} onDone=${onDone} action=${() => store.remove(container, item.name, { tree: folder })}>
    <p>${t(folder ? "dialog.deleteFolder" : "dialog.deleteFile")}</p>
  <//>`;
}

export class VersionsDialog extends Component {
  state = { versions: null, failure: null, restored: null };

  componentDidMount() {
    this.load();
  }

  async load() {
    const { store, container, item } = this.props;
    try {
      this.setState({ versions: (await store.versions(container, item.name)).reverse() });
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
  }

  async restore(version) {
    const { store, container, item, onChanged } = this.props;
    try {
      await store.restore(container, item.name, version.serial);
      this.setState({ restored: version });
      onChanged();
      await this.load();
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
  }

  // Rows count 1, 2, 3... from the oldest: Pithos's serials are global numbers that mean
  // nothing to a person, so they stay behind the buttons (download and restore) only.
  render({ item, onClose, onDownload }, { versions, failure, restored }) {
    return html`<${Modal} title=${t("dialog.versionsTitle", { name: basename(item.name) })} onClose=${onClose} wide>
      ${restored ? html`<p class="notice" role="status" id="restored">${t("dialog.restored", { when: when(restored.when.toISOString()) })}</p>` : null}
      ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}
      ${!versions ? html`<p class="loading">${t("common.loading")}</p>` : html`<table class="machines versions">
        <thead><tr><th>${t("dialog.version")}</th><th>${t("dialog.saved")}</th><th><span class="sr-only">${t("common.actions")}</span></th></tr></thead>
        <tbody>${versions.map((v, i) => html`<tr data-version=${v.serial}>
          <td class="ordinal">${versions.length - i}${i === 0 ? html` <span class="status status-running">${t("dialog.current")}</span>` : null}</td>
          <td class="when">${when(v.when.toISOString())}</td>
          <td class="row-actions">
            <button type="button" onClick=${() => onDownload(v.serial)}>${t("common.download")}</button>
            ${i > 0 ? html`<button type="button" data-action="restore" onClick=${() => this.restore(v)}>${t("dialog.restore")}</button>` : null}
          </td></tr>`)}</tbody></table>`}
      <div class="actions"><button type="button" onClick=${onClose}>${t("common.close")}</button></div>
    <//>`;
  }
}
