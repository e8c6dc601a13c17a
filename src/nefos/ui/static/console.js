// A machine's console in the browser: noVNC connected through nefos's console proxy.
//
// The page asks the compute API for a `vnc-ws` console (`POST /servers/<id>/action`
// {"console": {"type": "vnc-ws"}}): a one-time ticket, a port of the proxy's own and a
// password, valid for one connection made before `expires`. noVNC speaks RFB to
// ws://<host>:<port>/ with that password; the proxy checks it and relays to the
// machine's VNC server. Closing the console spends the ticket: "Open again" asks for a
// new one. "Type this text" and paste send keysyms (keysyms.js).

import { explain } from "./api.js";
import { keystrokes, typeText } from "./keysyms.js";
import { Component, createRef, html } from "./lib.js";
import { label } from "./machines.js";

const RUNNING = "ACTIVE";
const STATE_TEXT = {
  loading: "Looking up the machine…",
  asking: "Asking for a console…",
  connecting: "Connecting…",
  connected: "Connected",
  closed: "Closed",
  failed: "No console",
};

export class Console extends Component {
  state = { phase: "loading", server: null, failure: null, text: "", enter: false, typing: null, note: null };
  screen = createRef();

  componentDidMount() {
    this.open();
  }

  componentWillUnmount() {
    this.gone = true;
    this.close();
  }

  close() {
    if (this.rfb) {
      const rfb = this.rfb;
      this.rfb = null;
      rfb.disconnect();
    }
  }

  fail(failure) {
    if (!this.gone) this.setState({ phase: "failed", failure, typing: null });
  }

  // Look the machine up, ask for a ticket, connect. Each step can fail with its cause.
  async open() {
    this.close();
    const { api, rest: id } = this.props;
    this.setState({ phase: "loading", failure: null, note: null });
    let server;
    try {
      ({ server } = await api.get("compute", `/servers/${encodeURIComponent(id)}`));
    } catch (error) {
      return this.fail(`This machine cannot be shown: ${explain(error, this.props)}`);
    }
    if (this.gone) return;
    this.setState({ server });
    if (server.status !== RUNNING) {
      return this.fail(
        `${server.name} is not running (it is ${label(server).toLowerCase()}), so it has no screen to show. ` +
          "Start it from the machines page, then open its console again.",
      );
    }
    if (location.protocol === "https:") {
      return this.fail(
        "This page came over HTTPS, and nefos's console proxy speaks WebSocket without TLS " +
          "(vnc-wss is not supported yet), which browsers refuse from an HTTPS page.",
      );
    }
    this.setState({ phase: "asking" });
    let ticket;
    try {
      ({ console: ticket } = await api.post("compute", `/servers/${server.id}/action`, {
        console: { type: "vnc-ws" },
      }));
    } catch (error) {
      return this.fail(`No console for ${server.name}: ${explain(error, this.props)}`);
    }
    if (this.gone) return;
    await this.connect(server, ticket);
  }

  async connect(server, ticket) {
    const { default: RFB } = await import("./vendor/novnc/core/rfb.js");
    if (this.gone) return;
    const host = ticket.host.includes(":") ? `[${ticket.host}]` : ticket.host;
    const url = `ws://${host}:${ticket.port}/`;
    this.setState({ phase: "connecting" });
    let refused = null;
    let rfb;
    try {
      rfb = new RFB(this.screen.current, url, {
        credentials: { password: ticket.password },
        wsProtocols: ["binary"],
      });
    } catch (error) {
      return this.fail(`The browser would not open ${url}: ${error.message}`);
    }
    this.rfb = rfb;
    rfb.scaleViewport = true; // the machine's screen fits the window, phone or desktop
    rfb.background = "#1b1f24";
    rfb.addEventListener("connect", () => this.rfb === rfb && this.setState({ phase: "connected" }));
    rfb.addEventListener("securityfailure", (event) => {
      refused = event.detail.reason || "the password was not accepted";
    });
    rfb.addEventListener("disconnect", (event) => {
      if (this.rfb !== rfb) return; // closed by us: leaving the page, or opening again
      this.rfb = null;
      if (this.state.phase === "connected") {
        this.setState({ phase: "closed", typing: null });
      } else if (refused) {
        this.fail(`The console proxy refused the connection: ${refused}.`);
      } else if (ticket.expires && Date.now() > Date.parse(ticket.expires)) {
        this.fail(
          `The console's ticket expired before the browser reached it (it was good until ` +
            `${new Date(ticket.expires).toLocaleTimeString()}, for one connection). Try again for a new one.`,
        );
      } else {
        this.fail(
          `The browser could not reach the console proxy at ${ticket.host}:${ticket.port}` +
            `${event.detail.clean ? "" : " (the connection failed)"}. Its address is set by the ` +
            "cloud's operator (compute.console_host); ask them if this goes on.",
        );
      }
    });
  }

  async type(text) {
    const { strokes, unusual } = keystrokes(text);
    if (!this.rfb || this.state.phase !== "connected" || !strokes.length) return;
    const rfb = this.rfb;
    const note = unusual.length
      ? `Sent, but a machine with a US keymap has no key for ${unusual.join(" ")}: those may not arrive.`
      : null;
    this.setState({ typing: { done: 0, total: strokes.length }, note });
    const finished = await typeText(
      rfb,
      strokes,
      (done, total) => this.setState({ typing: { done, total } }),
      () => this.rfb !== rfb,
    );
    if (this.rfb === rfb && finished) this.setState({ typing: null });
  }

  submit(event) {
    event.preventDefault();
    const { text, enter } = this.state;
    this.type(enter ? `${text}\n` : text);
  }

  async paste() {
    let text;
    try {
      text = await navigator.clipboard.readText();
    } catch (error) {
      this.setState({
        note:
          "The browser did not let this page read the clipboard " +
          `(${error.name === "NotAllowedError" ? "permission refused" : error.message}). ` +
          "Paste into the box above instead, then press “Type it”.",
      });
      return;
    }
    if (!text) {
      this.setState({ note: "The clipboard holds no text." });
      return;
    }
    this.type(text);
  }

  status() {
    const { phase, typing } = this.state;
    const word = typing ? `Typing ${typing.done} of ${typing.total}…` : STATE_TEXT[phase];
    return html`<span class=${`console-state console-${phase}`} data-state=${phase} role="status">${word}</span>`;
  }

  render(_, { phase, server, failure, text, enter, typing, note }) {
    const name = server ? server.name : "";
    const live = phase === "connected";
    const again = phase === "closed" || phase === "failed";
    return html`<section class="page-head">
        <h1>Console${name ? html` of <span class="name">${name}</span>` : null}</h1>
        <a class="button" href="#/machines">Back to machines</a>
      </section>
      <div class="console-bar">
        ${this.status()}
        ${phase === "closed" ? html`<span id="console-closed">The connection to the machine's screen ended
          (another console may have taken it over, or the cloud restarted).</span>` : null}
        ${again ? html`<button type="button" class="primary" id="open-again" onClick=${() => this.open()}>
          ${phase === "closed" ? "Open again" : "Try again"}</button>` : null}
        ${live ? html`<button type="button" onClick=${() => this.rfb && this.rfb.sendCtrlAltDel()}>Send Ctrl+Alt+Del</button>` : null}
      </div>
      ${failure ? html`<p class="error" role="alert" id="console-failure">${failure}</p>` : null}
      <div class="console-screen" ref=${this.screen} hidden=${again}></div>
      <form class="type-text" onSubmit=${(e) => this.submit(e)} hidden=${again}>
        <label for="type-text">Type this text</label>
        <textarea id="type-text" rows="2" spellcheck="false" autocomplete="off" autocapitalize="off"
          value=${text} onInput=${(e) => this.setState({ text: e.target.value })}></textarea>
        <div class="type-actions">
          <label class="check"><input type="checkbox" checked=${enter}
            onChange=${(e) => this.setState({ enter: e.target.checked })} /> then press Enter</label>
          <button type="submit" class="primary" id="type-it" disabled=${!live || !!typing || !text}>Type it</button>
          <button type="button" id="paste" disabled=${!live || !!typing} onClick=${() => this.paste()}>Paste from clipboard</button>
        </div>
        <p class="hint">Sent key by key as the characters themselves, so they arrive as written here
          whatever your keyboard's layout. A new line presses Enter.</p>
        ${note ? html`<p class="notice" id="type-note">${note}</p>` : null}
      </form>`;
  }
}
