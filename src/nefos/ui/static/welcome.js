// The UI's pages for people who are not logged in: sign up (with the terms of use),
// "check your mail", the landing page of the verification link, "waiting for
// approval", "forgot your password" and the page that sets a new one. They call the
// account API (docs/identity.md) without a token; links from mail carry theirs after
// "#", so it never reaches a server log or a Referer.

import { ApiError } from "./api.js";
import { LANGUAGES, lang, onLanguage, setLanguage, t } from "./i18n.js";
import { Component, html, render } from "./lib.js";

const root = document.querySelector('meta[name="nefos-root"]').content;
const account = document.querySelector('meta[name="nefos-account"]').content;
const LOGIN = `${root}/login`;

async function call(method, path, body) {
  const response = await fetch(account + path, {
    method,
    headers: { Accept: "application/json", ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw await ApiError.from(response);
  return response.json();
}

// The field a refusal names (the fault's data.field), so the form shows it there.
function fieldOf(error) {
  return (error && error.fault && error.fault.data && error.fault.data.field) || null;
}

// One labelled input, with its hint and its error below it, tied together for screen readers.
function Field({ id, label, type = "text", value, onInput, error, hint, autocomplete }) {
  const described = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(" ");
  return html`<div class=${`field${error ? " invalid" : ""}`}>
    <label for=${id}>${label}</label>
    <input id=${id} name=${id} type=${type} value=${value} autocomplete=${autocomplete}
      aria-invalid=${error ? "true" : null} aria-describedby=${described || null}
      onInput=${(event) => onInput(event.target.value)} />
    ${hint ? html`<p class="hint" id=${`${id}-hint`}>${hint}</p>` : null}
    ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : null}
  </div>`;
}

function Card({ title, children }) {
  return html`<section class="welcome-card">
    <h1>${title}</h1>
    ${children}
  </section>`;
}

// A form's errors: by field, and one for the whole form when no field is at fault.
class FormView extends Component {
  state = { errors: {}, busy: false };

  // Runs `work`; a refusal that names a field is shown there, any other above the button.
  async attempt(checks, work) {
    const errors = Object.fromEntries(Object.entries(checks).filter(([, message]) => message));
    this.setState({ errors });
    if (Object.keys(errors).length) {
      const first = document.getElementById(Object.keys(errors)[0]);
      if (first) first.focus();
      return;
    }
    this.setState({ busy: true });
    try {
      await work();
    } catch (error) {
      const field = fieldOf(error);
      this.setState({ errors: { [field || "form"]: error.message } });
      const input = field && document.getElementById(field);
      if (input) input.focus();
    } finally {
      this.setState({ busy: false });
    }
  }

  formError() {
    const message = this.state.errors.form;
    return message ? html`<p class="error" role="alert">${message}</p>` : null;
  }
}

class SignUp extends FormView {
  state = { ...this.state, name: "", email: "", password: "", accepted: false };

  submit(event) {
    event.preventDefault();
    const { name, email, password, accepted } = this.state;
    const { info } = this.props;
    const shortest = info.password_min_length;
    this.attempt(
      {
        name: name.trim() ? null : t("welcome.typeName"),
        email: /^[^@\s]+@[^@\s]+$/.test(email.trim()) ? null
          : email.trim() ? t("welcome.notEmail")
          : t("welcome.typeEmail"),
        password: password.length >= shortest ? null
          : password ? t("welcome.shortPassword", { n: shortest, length: password.length })
          : t("welcome.choosePassword"),
        terms: !info.terms || accepted ? null : t("welcome.acceptTerms"),
      },
      async () => {
        const done = await call("POST", "/signup", {
          name,
          email: email.trim(),
          password,
          accept_terms: info.terms && accepted ? info.terms.version : null,
        });
        this.props.onSignedUp({ email: done.user.email, mailSent: done.mail_sent });
      },
    );
  }

  render({ info }, { name, email, password, accepted, errors, busy }) {
    if (!info.enabled) {
      return html`<${Card} title=${t("welcome.signup")}>
        <p>${t("welcome.closed")}</p>
        <p><a href=${LOGIN}>${t("welcome.login")}</a></p><//>`;
    }
    const set = (key) => (value) => this.setState({ [key]: value });
    return html`<${Card} title=${t("welcome.signup")}>
      <p>${t("welcome.with")}${info.moderated ? t("welcome.moderated") : ""}</p>
      <form class="welcome-form" novalidate onSubmit=${(e) => this.submit(e)}>
        <${Field} id="name" label=${t("welcome.yourName")} value=${name} onInput=${set("name")} error=${errors.name}
          autocomplete="name" />
        <${Field} id="email" label=${t("welcome.email")} type="email" value=${email} onInput=${set("email")}
          error=${errors.email} autocomplete="email" hint=${t("welcome.emailHint")} />
        <${Field} id="password" label=${t("welcome.password")} type="password" value=${password} onInput=${set("password")}
          error=${errors.password} autocomplete="new-password"
          hint=${t("welcome.passwordHint", { n: info.password_min_length })} />
        ${info.terms ? html`<div class=${`field terms${errors.terms ? " invalid" : ""}`}>
          <h2 id="terms-title">${t("welcome.terms")}</h2>
          <div class="terms-text" tabindex="0" role="document" aria-labelledby="terms-title">${info.terms.text}</div>
          <label class="check"><input type="checkbox" id="terms" checked=${accepted}
            aria-invalid=${errors.terms ? "true" : null} aria-describedby=${errors.terms ? "terms-error" : null}
            onChange=${(e) => this.setState({ accepted: e.target.checked })} />
            ${t("welcome.accept")}</label>
          ${errors.terms ? html`<p class="field-error" id="terms-error">${errors.terms}</p>` : null}
        </div>` : null}
        ${this.formError()}
        <button type="submit" class="primary big" disabled=${busy}>${t(busy ? "welcome.creating" : "welcome.create")}</button>
      </form>
      <p>${t("welcome.already")} <a href=${LOGIN}>${t("welcome.login")}</a></p>
    <//>`;
  }
}

// "Check your mail", with a way to get the mail again.
class Sent extends FormView {
  state = { ...this.state, again: false };

  render({ email, mailSent }, { again, errors, busy }) {
    const resend = () => this.attempt({}, async () => {
      await call("POST", "/signup/resend", { email });
      this.setState({ again: true });
    });
    return html`<${Card} title=${t("welcome.checkMail")}>
      ${mailSent === false
        ? html`<p class="notice">${t("welcome.notSent")}</p>`
        : html`<p>${t("welcome.sentTo", { email: html`<strong>${email || t("welcome.yourAddress")}</strong>` })}</p>`}
      <p>${t("welcome.noMail")}</p>
      ${this.formError()}
      ${again ? html`<p class="saved" role="status">${t("welcome.newLink")}</p>` : null}
      ${email ? html`<button type="button" disabled=${busy} onClick=${resend}>${t("welcome.sendAgain")}</button>`
        : html`<p><a href="#/resend">${t("welcome.sendAgain")}</a></p>`}
    <//>`;
  }
}

function Pending() {
  return html`<${Card} title=${t("welcome.almost")}>
    <p>${t("welcome.confirmed")}</p>
    <p>${t("welcome.waitAdmin")}</p>
  <//>`;
}

class Verify extends Component {
  state = { result: null, failure: null };

  async componentDidMount() {
    try {
      const { user } = await call("POST", "/signup/verify", { token: this.props.token });
      this.setState({ result: user });
    } catch (error) {
      this.setState({ failure: error.message });
    }
  }

  render(_, { result, failure }) {
    if (failure) {
      return html`<${Card} title=${t("welcome.couldNot")}>
        <p class="error" role="alert">${failure}</p>
        <p><a class="button" href="#/resend">${t("welcome.sendNewLink")}</a> ${t("welcome.or")} <a href=${LOGIN}>${t("welcome.loginLower")}</a></p><//>`;
    }
    if (!result) return html`<${Card} title=${t("welcome.confirming")}><p class="loading">${t("welcome.moment")}</p><//>`;
    if (result.state === "pending") return html`<${Pending} />`;
    return html`<${Card} title=${t("welcome.ready")}>
      <p>${t("welcome.canLogin")}</p>
      <p><a class="button primary" href=${LOGIN}>${t("welcome.login")}</a></p><//>`;
  }
}

// Asks for an address, then says the same thing whether it has an account or not.
class AskByMail extends FormView {
  state = { ...this.state, email: "", done: false };

  render({ title, intro, path, doneText, button }, { email, done, errors, busy }) {
    if (done) {
      return html`<${Card} title=${t("welcome.checkMail")}>
        <p role="status">${doneText(email.trim())}</p>
        <p><a href=${LOGIN}>${t("welcome.back")}</a></p><//>`;
    }
    const submit = (event) => {
      event.preventDefault();
      this.attempt({ email: email.trim() ? null : t("welcome.typeEmail") }, async () => {
        await call("POST", path, { email: email.trim() });
        this.setState({ done: true });
      });
    };
    return html`<${Card} title=${title}>
      <p>${intro}</p>
      <form class="welcome-form" novalidate onSubmit=${submit}>
        <${Field} id="email" label=${t("welcome.email")} type="email" value=${email} autocomplete="email"
          onInput=${(value) => this.setState({ email: value })} error=${errors.email} />
        ${this.formError()}
        <button type="submit" class="primary big" disabled=${busy}>${button}</button>
      </form>
      <p><a href=${LOGIN}>${t("welcome.back")}</a></p>
    <//>`;
  }
}

class Reset extends FormView {
  state = { ...this.state, password: "", repeat: "", done: false };

  render({ token, info }, { password, repeat, done, errors, busy }) {
    if (done) {
      return html`<${Card} title=${t("welcome.changed")}>
        <p role="status">${t("welcome.loggedOut")}</p>
        <p><a class="button primary" href=${LOGIN}>${t("welcome.login")}</a></p><//>`;
    }
    const submit = (event) => {
      event.preventDefault();
      this.attempt(
        {
          password: password ? null : t("welcome.choosePassword"),
          repeat: password === repeat ? null : t("welcome.notSame"),
        },
        async () => {
          await call("POST", "/password/reset/confirm", { token, password });
          this.setState({ done: true });
        },
      );
    };
    const failed = errors.form || errors.token;
    return html`<${Card} title=${t("welcome.chooseNew")}>
      <form class="welcome-form" novalidate onSubmit=${submit}>
        <${Field} id="password" label=${t("welcome.newPassword")} type="password" value=${password} autocomplete="new-password"
          onInput=${(value) => this.setState({ password: value })} error=${errors.password}
          hint=${t("welcome.passwordHint", { n: info.password_min_length })} />
        <${Field} id="repeat" label=${t("welcome.repeat")} type="password" value=${repeat}
          autocomplete="new-password" onInput=${(value) => this.setState({ repeat: value })} error=${errors.repeat} />
        ${failed ? html`<p class="error" role="alert">${failed} <a href="#/forgot">${t("welcome.askNewLink")}</a></p>` : null}
        <button type="submit" class="primary big" disabled=${busy}>${t("welcome.setPassword")}</button>
      </form>
    <//>`;
  }
}

const TITLES = {
  signup: "welcome.signup",
  sent: "welcome.title.sent",
  verify: "welcome.title.verify",
  pending: "welcome.title.pending",
  forgot: "welcome.title.forgot",
  resend: "welcome.title.resend",
  reset: "welcome.title.reset",
};

function route() {
  const [page = "signup", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { page: TITLES[page] ? page : "signup", arg: decodeURIComponent(rest.join("/")) };
}

function hours(value) {
  if (value < 1) return t("welcome.minutes", { n: Math.round(value * 60) });
  return t("welcome.hours", { n: value });
}

class Welcome extends Component {
  state = { ...route(), signedUp: {}, info: null, failure: null };

  async componentDidMount() {
    addEventListener("hashchange", () => this.setState(route()));
    onLanguage((code) => this.setState({ lang: code }));
    try {
      this.setState({ info: (await call("GET", "/signup")).signup });
    } catch (error) {
      this.setState({ failure: error.message });
    }
  }

  page({ page, arg, signedUp, info, failure }) {
    if (failure) return html`<${Card} title=${t(TITLES[page])}><p class="error" role="alert">${failure}</p><//>`;
    if (!info) return html`<p class="loading">${t("common.loading")}</p>`;
    switch (page) {
      case "sent": return html`<${Sent} ...${signedUp} />`;
      case "verify": return html`<${Verify} token=${arg} />`;
      case "pending": return html`<${Pending} />`;
      case "reset": return html`<${Reset} token=${arg} info=${info} />`;
      case "forgot":
        return html`<${AskByMail} title=${t("welcome.forgot")} path="/password/reset" button=${t("welcome.sendLink")}
          intro=${t("welcome.forgotIntro")}
          doneText=${(email) => t("welcome.forgotDone", { email, time: hours(info.reset_minutes / 60) })} />`;
      case "resend":
        return html`<${AskByMail} title=${t("welcome.title.resend")} path="/signup/resend" button=${t("welcome.sendNewLink")}
          intro=${t("welcome.resendIntro")}
          doneText=${(email) => t("welcome.resendDone", { email })} />`;
      default:
        return html`<${SignUp} info=${info} onSignedUp=${(made) => {
          this.setState({ signedUp: made });
          location.hash = "#/sent";
        }} />`;
    }
  }

  render(_, state) {
    document.title = `${t(TITLES[state.page])} · nefos`;
    return html`<header class="topbar"><a class="brand" href=${LOGIN}>nefos</a>
        <nav aria-label=${t("nav.main")}><a href=${LOGIN}>${t("welcome.login")}</a><a href="#/signup"
          aria-current=${state.page === "signup" ? "page" : null}>${t("welcome.signup")}</a></nav>
        <label class="language"><span class="sr-only">${t("nav.language")}</span>
          <select id="language" value=${lang} onChange=${(e) => setLanguage(e.target.value)}>
            ${Object.entries(LANGUAGES).map(([code, name]) => html`<option value=${code} lang=${code}>${name}</option>`)}
          </select></label></header>
      <main class="welcome" key=${`${state.page}/${state.arg}`}>${this.page(state)}</main>`;
  }
}

const mount = document.getElementById("app");
mount.replaceChildren();
render(html`<${Welcome} />`, mount);
