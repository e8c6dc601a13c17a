// The UI's pages for people who are not logged in: sign up (with the terms of use),
// "check your mail", the landing page of the verification link, "waiting for
// approval", "forgot your password" and the page that sets a new one. They call the
// account API (docs/identity.md) without a token; links from mail carry theirs after
// "#", so it never reaches a server log or a Referer.

import { ApiError } from "./api.js";
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
        name: name.trim() ? null : "Please type your name",
        email: /^[^@\s]+@[^@\s]+$/.test(email.trim()) ? null
          : email.trim() ? "This is not an e-mail address: it looks like name@example.org"
          : "Please type your e-mail address",
        password: password.length >= shortest ? null
          : password ? `A password needs at least ${shortest} characters; this has ${password.length}`
          : "Please choose a password",
        terms: !info.terms || accepted ? null : "Please read the terms of use and accept them",
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
      return html`<${Card} title="Create an account">
        <p>You cannot create an account here yourself. Ask the people who run this cloud.</p>
        <p><a href=${LOGIN}>Log in</a></p><//>`;
    }
    const set = (key) => (value) => this.setState({ [key]: value });
    return html`<${Card} title="Create an account">
      <p>With an account you can start virtual machines and keep your files on this cloud.
        ${info.moderated ? " An administrator approves each new account, so it may take a little while." : ""}</p>
      <form class="welcome-form" novalidate onSubmit=${(e) => this.submit(e)}>
        <${Field} id="name" label="Your name" value=${name} onInput=${set("name")} error=${errors.name}
          autocomplete="name" />
        <${Field} id="email" label="E-mail address" type="email" value=${email} onInput=${set("email")}
          error=${errors.email} autocomplete="email" hint="We send a link to this address to check that it is yours." />
        <${Field} id="password" label="Password" type="password" value=${password} onInput=${set("password")}
          error=${errors.password} autocomplete="new-password"
          hint=${`At least ${info.password_min_length} characters. A few words you will remember make a good one.`} />
        ${info.terms ? html`<div class=${`field terms${errors.terms ? " invalid" : ""}`}>
          <h2 id="terms-title">Terms of use</h2>
          <div class="terms-text" tabindex="0" role="document" aria-labelledby="terms-title">${info.terms.text}</div>
          <label class="check"><input type="checkbox" id="terms" checked=${accepted}
            aria-invalid=${errors.terms ? "true" : null} aria-describedby=${errors.terms ? "terms-error" : null}
            onChange=${(e) => this.setState({ accepted: e.target.checked })} />
            I have read the terms of use and I accept them</label>
          ${errors.terms ? html`<p class="field-error" id="terms-error">${errors.terms}</p>` : null}
        </div>` : null}
        ${this.formError()}
        <button type="submit" class="primary big" disabled=${busy}>${busy ? "Creating…" : "Create account"}</button>
      </form>
      <p>Already have an account? <a href=${LOGIN}>Log in</a></p>
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
    return html`<${Card} title="Check your mail">
      ${mailSent === false
        ? html`<p class="notice">Your account is made, but we could not send the mail yet. We keep trying;
            it should reach you within the hour. You can also ask for it again below.</p>`
        : html`<p>We sent a mail to <strong>${email || "your address"}</strong>.
            Open the link in it to confirm that the address is yours.</p>`}
      <p>No mail after a few minutes? Look in your spam folder, then:</p>
      ${this.formError()}
      ${again ? html`<p class="saved" role="status">We sent a new link. Only the newest link works.</p>` : null}
      ${email ? html`<button type="button" disabled=${busy} onClick=${resend}>Send the mail again</button>`
        : html`<p><a href="#/resend">Send the mail again</a></p>`}
    <//>`;
  }
}

function Pending() {
  return html`<${Card} title="Almost there">
    <p>Your e-mail address is confirmed. Thank you!</p>
    <p>An administrator now looks at your account. We will send you a mail as soon as it is ready;
      you cannot log in until then.</p>
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
      return html`<${Card} title="We could not confirm your address">
        <p class="error" role="alert">${failure}</p>
        <p><a class="button" href="#/resend">Send me a new link</a> or <a href=${LOGIN}>log in</a></p><//>`;
    }
    if (!result) return html`<${Card} title="Confirming your address"><p class="loading">One moment…</p><//>`;
    if (result.state === "pending") return html`<${Pending} />`;
    return html`<${Card} title="Your account is ready">
      <p>Your e-mail address is confirmed. You can log in now.</p>
      <p><a class="button primary" href=${LOGIN}>Log in</a></p><//>`;
  }
}

// Asks for an address, then says the same thing whether it has an account or not.
class AskByMail extends FormView {
  state = { ...this.state, email: "", done: false };

  render({ title, intro, path, doneText, button }, { email, done, errors, busy }) {
    if (done) {
      return html`<${Card} title="Check your mail">
        <p role="status">${doneText(email.trim())}</p>
        <p><a href=${LOGIN}>Back to the login</a></p><//>`;
    }
    const submit = (event) => {
      event.preventDefault();
      this.attempt({ email: email.trim() ? null : "Please type your e-mail address" }, async () => {
        await call("POST", path, { email: email.trim() });
        this.setState({ done: true });
      });
    };
    return html`<${Card} title=${title}>
      <p>${intro}</p>
      <form class="welcome-form" novalidate onSubmit=${submit}>
        <${Field} id="email" label="E-mail address" type="email" value=${email} autocomplete="email"
          onInput=${(value) => this.setState({ email: value })} error=${errors.email} />
        ${this.formError()}
        <button type="submit" class="primary big" disabled=${busy}>${button}</button>
      </form>
      <p><a href=${LOGIN}>Back to the login</a></p>
    <//>`;
  }
}

class Reset extends FormView {
  state = { ...this.state, password: "", repeat: "", done: false };

  render({ token, info }, { password, repeat, done, errors, busy }) {
    if (done) {
      return html`<${Card} title="Your password is changed">
        <p role="status">You were logged out everywhere, and your API token was replaced.
          Log in with your new password.</p>
        <p><a class="button primary" href=${LOGIN}>Log in</a></p><//>`;
    }
    const submit = (event) => {
      event.preventDefault();
      this.attempt(
        {
          password: password ? null : "Please choose a password",
          repeat: password === repeat ? null : "The two passwords are not the same",
        },
        async () => {
          await call("POST", "/password/reset/confirm", { token, password });
          this.setState({ done: true });
        },
      );
    };
    const failed = errors.form || errors.token;
    return html`<${Card} title="Choose a new password">
      <form class="welcome-form" novalidate onSubmit=${submit}>
        <${Field} id="password" label="New password" type="password" value=${password} autocomplete="new-password"
          onInput=${(value) => this.setState({ password: value })} error=${errors.password}
          hint=${`At least ${info.password_min_length} characters. A few words you will remember make a good one.`} />
        <${Field} id="repeat" label="The same password again" type="password" value=${repeat}
          autocomplete="new-password" onInput=${(value) => this.setState({ repeat: value })} error=${errors.repeat} />
        ${failed ? html`<p class="error" role="alert">${failed} <a href="#/forgot">Ask for a new link</a></p>` : null}
        <button type="submit" class="primary big" disabled=${busy}>Set new password</button>
      </form>
    <//>`;
  }
}

const TITLES = {
  signup: "Create an account",
  sent: "Check your mail",
  verify: "Confirm your address",
  pending: "Waiting for approval",
  forgot: "Forgot your password",
  resend: "Get a new link",
  reset: "New password",
};

function route() {
  const [page = "signup", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { page: TITLES[page] ? page : "signup", arg: decodeURIComponent(rest.join("/")) };
}

function hours(value) {
  if (value < 1) return `${Math.round(value * 60)} minutes`;
  return value === 1 ? "one hour" : `${value} hours`;
}

class Welcome extends Component {
  state = { ...route(), signedUp: {}, info: null, failure: null };

  async componentDidMount() {
    addEventListener("hashchange", () => this.setState(route()));
    try {
      this.setState({ info: (await call("GET", "/signup")).signup });
    } catch (error) {
      this.setState({ failure: error.message });
    }
  }

  page({ page, arg, signedUp, info, failure }) {
    if (failure) return html`<${Card} title=${TITLES[page]}><p class="error" role="alert">${failure}</p><//>`;
    if (!info) return html`<p class="loading">Loading…</p>`;
    switch (page) {
      case "sent": return html`<${Sent} ...${signedUp} />`;
      case "verify": return html`<${Verify} token=${arg} />`;
      case "pending": return html`<${Pending} />`;
      case "reset": return html`<${Reset} token=${arg} info=${info} />`;
      case "forgot":
        return html`<${AskByMail} title="Forgot your password?" path="/password/reset" button="Send me a link"
          intro="Type the e-mail address of your account. We will send you a link to choose a new password."
          doneText=${(email) => `If ${email} belongs to an account here, we sent a link to it. ` +
            `The link works for ${hours(info.reset_minutes / 60)}.`} />`;
      case "resend":
        return html`<${AskByMail} title="Get a new link" path="/signup/resend" button="Send me a new link"
          intro="Type the e-mail address you signed up with. We will send a new link to confirm it."
          doneText=${(email) => `If ${email} signed up and is not confirmed yet, we sent a new link to it.`} />`;
      default:
        return html`<${SignUp} info=${info} onSignedUp=${(made) => {
          this.setState({ signedUp: made });
          location.hash = "#/sent";
        }} />`;
    }
  }

  render(_, state) {
    document.title = `${TITLES[state.page]} · nefos`;
    return html`<header class="topbar"><a class="brand" href=${LOGIN}>nefos</a>
        <nav aria-label="Main"><a href=${LOGIN}>Log in</a><a href="#/signup"
          aria-current=${state.page === "signup" ? "page" : null}>Create an account</a></nav></header>
      <main class="welcome" key=${`${state.page}/${state.arg}`}>${this.page(state)}</main>`;
  }
}

const mount = document.getElementById("app");
mount.replaceChildren();
render(html`<${Welcome} />`, mount);
