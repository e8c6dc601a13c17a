// The Files page's dialogs: a name for something new, move or copy, delete, versions
// and sharing. Each is a modal <dialog>; Escape or its cancel button closes it.

import { explain } from "./api.js";
import { when } from "./format.js";
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
          <button type="button" onClick=${onClose}>Cancel</button>
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
          if (!name.trim() || name.includes("/")) throw new Error("Give a name without “/”.");
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
    const what = item.kind === "folder" ? "folder" : "file";
    return html`<${Form} title=${`${copy ? "Copy" : "Rename or move"} ${basename(item.name)}`}
        submit=${copy ? "Copy" : "Move"} onClose=${onClose} onDone=${onDone}
        action=${() => {
          const target = name.trim().replace(/^\/+|\/+$/g, "");
          if (!target) throw new Error(`Give the ${what} a name.`);
          if (target === item.name && container === this.props.container) throw new Error("That is where it is now.");
          return store.transfer(copy ? "COPY" : "MOVE", this.props.container, item.name, container, target, {
            tree: item.kind === "folder",
          });
        }}>
      <label for="to-container">Container</label>
      <select id="to-container" value=${container} onChange=${(e) => this.setState({ container: e.target.value })}>
        ${containers.map((c) => html`<option value=${c.name}>${c.name}</option>`)}
      </select>
      <label for="to-name">Name, with its folders</label>
      <input id="to-name" value=${name} autofocus onInput=${(e) => this.setState({ name: e.target.value })} />
      <p class="hint">Folders are separated by “/”, e.g. <code>reports/2024/${basename(item.name)}</code>.</p>
    <//>`;
  }
}

function copyName(name) {
  const dot = name.lastIndexOf(".");
  const slash = name.lastIndexOf("/");
  if (dot > slash + 1) return `${name.slice(0, dot)} (copy)${name.slice(dot)}`;
  return `${name} (copy)`;
}

export function DeleteDialog({ item, store, container, onClose, onDone }) {
  const folder = item.kind === "folder";
  return html`<${Form} title=${`Delete ${basename(item.name)}?`} submit=${`Delete ${basename(item.name)}`} danger
      onClose=${onClose} onDone=${onDone} action=${() => store.remove(container, item.name, { tree: folder })}>
    <p>${folder ? "The folder and every file in it are deleted." : "The file and its earlier versions are deleted."}
      This cannot be undone.</p>
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
    return html`<${Modal} title=${`Versions of ${basename(item.name)}`} onClose=${onClose} wide>
      ${restored ? html`<p class="notice" role="status" id="restored">Restored the version of ${when(restored.when.toISOString())}: it is now the newest.</p>` : null}
      ${failure ? html`<p class="error" role="alert">${failure}</p>` : null}
      ${!versions ? html`<p class="loading">Loading…</p>` : html`<table class="machines versions">
        <thead><tr><th>Version</th><th>Saved</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${versions.map((v, i) => html`<tr data-version=${v.serial}>
          <td class="ordinal">${versions.length - i}${i === 0 ? html` <span class="status status-running">current</span>` : null}</td>
          <td class="when">${when(v.when.toISOString())}</td>
          <td class="row-actions">
            <button type="button" onClick=${() => onDownload(v.serial)}>Download</button>
            ${i > 0 ? html`<button type="button" data-action="restore" onClick=${() => this.restore(v)}>Restore</button>` : null}
          </td></tr>`)}</tbody></table>`}
      <div class="actions"><button type="button" onClick=${onClose}>Close</button></div>
    <//>`;
  }
}
