// A machine's console in the browser: noVNC connected through nefos's console proxy.
//
// The page asks the compute API for a `vnc-ws` console (`POST /servers/<id>/action`
// {"console": {"type": "vnc-ws"}}): a one-time ticket, a port of the proxy's own and a
// password, valid for one connection made before `expires`. noVNC speaks RFB to
// ws://<host>:<port>/ with that password; the proxy checks it and relays to the
// machine's VNC server. Closing the console spends the ticket: "Open again" asks for a
// new one. "Type this text" and paste send the keys that type the text under the
// machine's own keyboard layout, which the person chooses here (remembered per machine
// in this browser), or keysyms where the server takes no key codes (keysyms.js).

import { explain } from "./api.js";
import { clock, t } from "./i18n.js";
import { DEFAULT_LAYOUT, LAYOUTS } from "./keylayouts.js";
import { keystrokes, typeText } from "./keysyms.js";
import { Component, createRef, html } from "./lib.js";
import { label } from "./machines.js";

const RUNNING = "ACTIVE";
const LAYOUT_KEY = "nefos.console.layout."; // + the machine's id, in localStorage

function storedLayout(id) {
  try {
    const layout = localStorage.getItem(LAYOUT_KEY + id);
    return layout && LAYOUTS[layout] ? layout : DEFAULT_LAYOUT;
  } catch {
    return DEFAULT_LAYOUT; // storage refused (private mode): the default each time
  }
}

export class Console extends Component {
  state = {
    phase: "loading",
    server: null,
    failure: null,
    text: "",
    enter: false,
    typing: null,
    note: null,
    layout: storedLayout(this.props.rest),
  };
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
      return this.fail(t("console.cannotShow", { why: explain(error, this.props) }));
    }
    if (this.gone) return;
    this.setState({ server });
    if (server.status !== RUNNING) {
      return this.fail(t("console.notRunning", { name: server.name, state: label(server).toLowerCase() }));
    }
    if (location.protocol === "https:") {
      return this.fail(t("console.https"));
    }
    this.setState({ phase: "asking" });
    let ticket;
    try {
      ({ console: ticket } = await api.post("compute", `/servers/${server.id}/action`, {
        console: { type: "vnc-ws" },
      }));
    } catch (error) {
      return this.fail(t("console.none", { name: server.name, why: explain(error, this.props) }));
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
      return this.fail(t("console.wouldNotOpen", { url, why: error.message }));
    }
    this.rfb = rfb;
    rfb.scaleViewport = true; // the machine's screen fits the window, phone or desktop
    rfb.background = "#1b1f24";
    rfb.addEventListener("connect", () => this.rfb === rfb && this.setState({ phase: "connected" }));
    rfb.addEventListener("securityfailure", (event) => {
      refused = event.detail.reason || t("console.badPassword");
    });
    rfb.addEventListener("disconnect", (event) => {
      if (this.rfb !== rfb) return; // closed by us: leaving the page, or opening again
      this.rfb = null;
      if (this.state.phase === "connected") {
        this.setState({ phase: "closed", typing: null });
      } else if (refused) {
        this.fail(t("console.refused", { why: refused }));
      } else if (ticket.expires && Date.now() > Date.parse(ticket.expires)) {
        this.fail(t("console.expired", { time: clock(new Date(ticket.expires)) }));
      } else {
        this.fail(
          t("console.unreachable", {
            address: `${ticket.host}:${ticket.port}`,
            failed: event.detail.clean ? "" : t("console.connectionFailed"),
          }),
        );
      }
    });
  }

  async type(text) {
    const { strokes, unusual } = keystrokes(text, this.state.layout);
    if (!this.rfb || this.state.phase !== "connected" || !strokes.length) return;
    const rfb = this.rfb;
    const note = unusual.length
      ? t("console.noKey", { chars: unusual.join(" "), layout: t(`console.layout.${this.state.layout}`) })
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

  chooseLayout(layout) {
    this.setState({ layout });
    try {
      localStorage.setItem(LAYOUT_KEY + this.props.rest, layout);
    } catch {
      // storage refused: the choice holds for this page only
    }
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
        note: t("console.clipboardRefused", {
          why: error.name === "NotAllowedError" ? t("console.permission") : error.message,
        }),
      });
      return;
    }
    if (!text) {
      this.setState({ note: t("console.emptyClipboard") });
      return;
    }
    this.type(text);
  }

  status() {
    const { phase, typing } = this.state;
    const word = typing ? t("console.typing", { done: typing.done, total: typing.total }) : t(`console.${phase}`);
    return html`<span class=${`console-state console-${phase}`} data-state=${phase} role="status">${word}</span>`;
  }

  render(_, { phase, server, failure, text, enter, typing, note, layout }) {
    const name = server ? server.name : "";
    const live = phase === "connected";
    const again = phase === "closed" || phase === "failed";
    return html`<section class="page-head">
        <h1>${name ? t("console.of", { name: html`<span class="name">${name}</span>` }) : t("title.console")}</h1>
        <a class="button" href="#/machines">${t("console.back")}</a>
      </section>
      <div class="console-bar">
        ${this.status()}
        ${phase === "closed" ? html`<span id="console-closed">${t("console.ended")}</span>` : null}
        ${again ? html`<button type="button" class="primary" id="open-again" onClick=${() => this.open()}>
          ${t(phase === "closed" ? "console.openAgain" : "console.tryAgain")}</button>` : null}
        ${live ? html`<button type="button" onClick=${() => this.rfb && this.rfb.sendCtrlAltDel()}>${t("console.cad")}</button>` : null}
      </div>
      ${failure ? html`<p class="error" role="alert" id="console-failure">${failure}</p>` : null}
      <div class="console-screen" ref=${this.screen} hidden=${again}></div>
      <form class="type-text" onSubmit=${(e) => this.submit(e)} hidden=${again}>
        <label for="type-text">${t("console.typeThis")}</label>
        <textarea id="type-text" rows="2" spellcheck="false" autocomplete="off" autocapitalize="off"
          value=${text} onInput=${(e) => this.setState({ text: e.target.value })}></textarea>
        <div class="type-layout">
          <label for="console-layout">${t("console.layout")}</label>
          <select id="console-layout" value=${layout} onChange=${(e) => this.chooseLayout(e.target.value)}>
            ${Object.keys(LAYOUTS).map((name) => html`<option value=${name}>${t(`console.layout.${name}`)}</option>`)}
          </select>
          <p class="hint" id="console-layout-hint">${t("console.layoutHint")}</p>
        </div>
        <div class="type-actions">
          <label class="check"><input type="checkbox" checked=${enter}
            onChange=${(e) => this.setState({ enter: e.target.checked })} /> ${t("console.enter")}</label>
          <button type="submit" class="primary" id="type-it" disabled=${!live || !!typing || !text}>${t("console.typeIt")}</button>
          <button type="button" id="paste" disabled=${!live || !!typing} onClick=${() => this.paste()}>${t("console.paste")}</button>
        </div>
        <p class="hint">${t("console.hint")}</p>
        ${note ? html`<p class="notice" id="type-note">${note}</p>` : null}
      </form>`;
  }
}
