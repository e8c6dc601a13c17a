// "Apply for a project": what a project is for, its dates, how many members, and what
// each member gets, in units people read (GiB, not bytes). An administrator decides.

import { explain } from "./api.js";
import { GiB } from "./format.js";
import { number, resourceText, t } from "./i18n.js";
import { Component, html } from "./lib.js";
import { FIRST } from "./quota.js";

const DAY_MS = 24 * 3600 * 1000;
const UNIT = { bytes: { name: "GiB", factor: GiB } };
const DEFAULT_MEMBERS = 10;

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

// What running machines may use follows what machines may have: a person asks for
// "CPUs" and "memory" once, not twice under two names.
const FOLLOWS = { "cyclades.cpu": "cyclades.total_cpu", "cyclades.ram": "cyclades.total_ram" };
// A machine takes all of these: a project that gives machines but not one of them
// gives machines nobody can create.
const MACHINE_NEEDS = ["cyclades.total_cpu", "cyclades.total_ram", "cyclades.disk"];

// The resources a project may grant, in the order the quota bars use.
export function grantable(resources) {
  const rank = (n) => (FIRST.includes(n) ? FIRST.indexOf(n) : FIRST.length);
  return Object.keys(resources)
    .filter((n) => resources[n].allow_in_projects && resources[n].ui_visible && !FOLLOWS[n])
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export function unitOf(resource) {
  return UNIT[resource.unit] || { name: "", factor: 1 };
}

export class ProjectForm extends Component {
  constructor(props) {
    super(props);
    const today = new Date();
    this.state = {
      name: "",
      description: "",
      start: isoDay(today),
      end: isoDay(new Date(today.getTime() + 182 * DAY_MS)),
      members: String(DEFAULT_MEMBERS),
      policy: "moderated",
      amounts: {}, // resource name -> what the person typed, per member, in its unit
      errors: {},
      failure: null,
      busy: false,
    };
  }

  // The checks the API makes too, here first so that each error shows by its field.
  check() {
    const { name, start, end, members, amounts } = this.state;
    const errors = {};
    if (!name.trim()) errors.name = t("form.nameNeeded");
    else if (/[:\x00-\x1f]/.test(name)) errors.name = t("form.noColon");
    if (!end) errors.end = t("form.endNeeded");
    else if (new Date(`${end}T23:59:59Z`) <= new Date()) errors.end = t("form.endFuture");
    else if (start && start > end) errors.end = t("form.endAfter");
    const count = Number(members);
    if (!Number.isInteger(count) || count < 1) errors.members = t("form.oneMember");
    for (const [resource, typed] of Object.entries(amounts)) {
      if (typed !== "" && !(Number(typed) >= 0)) errors[resource] = t("form.number");
    }
    const asked = Object.values(amounts).some((typed) => Number(typed) > 0);
    if (!asked) errors.resources = t("form.oneResource");
    if (Number(amounts["cyclades.vm"]) > 0) {
      const { resources } = this.props;
      const missing = MACHINE_NEEDS.filter((n) => resources[n] && !(Number(amounts[n]) > 0));
      if (missing.length) {
        const names = missing.map((n) => resourceText(n, resources[n])).join(", ");
        errors.resources = t("form.machinesNeed", { names });
      }
    }
    return errors;
  }

  body() {
    const { resources } = this.props;
    const { name, description, start, end, members, policy, amounts } = this.state;
    const count = Number(members);
    const granted = {};
    for (const [resource, typed] of Object.entries(amounts)) {
      const each = Math.round(Number(typed || 0) * unitOf(resources[resource]).factor);
      if (each > 0) granted[resource] = { member_capacity: each, project_capacity: each * count };
    }
    for (const [follower, leader] of Object.entries(FOLLOWS)) {
      if (granted[leader] && resources[follower]) granted[follower] = { ...granted[leader] };
    }
    return {
      name: name.trim(),
      description: description.trim(),
      start_date: `${start}T00:00:00Z`,
      end_date: `${end}T23:59:59Z`,
      max_members: count,
      join_policy: policy,
      resources: granted,
    };
  }

  async submit(event) {
    event.preventDefault();
    const errors = this.check();
    this.setState({ errors, failure: null });
    if (Object.keys(errors).length) return;
    this.setState({ busy: true });
    try {
      const body = this.body();
      await this.props.api.post("account", "/projects", body);
      this.props.onDone(body.name);
    } catch (error) {
      this.setState({ busy: false, failure: explain(error, this.props) });
    }
  }

  field(id, label, input, hint) {
    const error = this.state.errors[id];
    return html`<div class="field ${error ? "invalid" : ""}">
      <label for=${`project-${id}`}>${label}</label>
      ${input}
      ${hint ? html`<p class="hint" id=${`project-${id}-hint`}>${hint}</p>` : null}
      ${error ? html`<p class="field-error" id=${`project-${id}-error`}>${error}</p>` : null}
    </div>`;
  }

  input(id, key, props = {}) {
    const error = this.state.errors[id];
    return html`<input id=${`project-${id}`} value=${this.state[key]} aria-invalid=${error ? "true" : null}
      aria-describedby=${error ? `project-${id}-error` : null} ...${props}
      onInput=${(e) => this.setState({ [key]: e.target.value, errors: { ...this.state.errors, [id]: null } })} />`;
  }

  resourceRow(name) {
    const resource = this.props.resources[name];
    const unit = unitOf(resource);
    const typed = this.state.amounts[name] ?? "";
    const error = this.state.errors[name];
    const count = Number(this.state.members) || 0;
    const total = Number(typed) > 0 && count > 0 ? `${number(Number(typed) * count)} ${unit.name}`.trim() : "";
    return html`<tr key=${name} data-resource=${name}>
      <td><label for=${`grant-${name}`}>${resourceText(name, resource)}</label></td>
      <td><input id=${`grant-${name}`} type="number" min="0" step="any" inputmode="decimal" value=${typed}
          class="amount" aria-invalid=${error ? "true" : null}
          onInput=${(e) => this.setState({
            amounts: { ...this.state.amounts, [name]: e.target.value },
            errors: { ...this.state.errors, [name]: null, resources: null },
          })} />
        <span class="unit">${unit.name}</span>
        ${error ? html`<p class="field-error">${error}</p>` : null}</td>
      <td class="sub">${total ? t("form.total", { total }) : ""}</td>
    </tr>`;
  }

  render({ resources, onCancel }, { description, policy, busy, failure, errors }) {
    return html`<form class="project-form" onSubmit=${(e) => this.submit(e)} noValidate>
      <h2>${t("projects.apply")}</h2>
      <p class="sub">${t("form.intro")}</p>
      ${this.field("name", t("common.name"), this.input("name", "name", { maxlength: 255, autocomplete: "off" }),
        t("form.nameHint"))}
      <div class="field">
        <label for="project-description">${t("form.what")}</label>
        <textarea id="project-description" maxlength="1024" rows="3" value=${description}
          onInput=${(e) => this.setState({ description: e.target.value })}></textarea>
      </div>
      <div class="field-row">
        ${this.field("start", t("form.starts"), this.input("start", "start", { type: "date" }))}
        ${this.field("end", t("form.ends"), this.input("end", "end", { type: "date" }),
          t("form.endsHint"))}
        ${this.field("members", t("form.members"), this.input("members", "members", { type: "number", min: 1 }))}
      </div>
      <fieldset class="policy">
        <legend>${t("form.who")}</legend>
        <label class="check"><input type="radio" name="policy" value="moderated" checked=${policy === "moderated"}
          onChange=${() => this.setState({ policy: "moderated" })} /> ${t("form.moderated")}</label>
        <label class="check"><input type="radio" name="policy" value="auto" checked=${policy === "auto"}
          onChange=${() => this.setState({ policy: "auto" })} /> ${t("form.auto")}</label>
      </fieldset>
      <fieldset class="grants">
        <legend>${t("form.grants")}</legend>
        <p class="hint">${t("form.grantsHint")}</p>
        <table class="grant-table"><tbody>${grantable(resources).map((n) => this.resourceRow(n))}</tbody></table>
        ${errors.resources ? html`<p class="field-error" id="project-resources-error">${errors.resources}</p>` : null}
      </fieldset>
      ${failure ? html`<p class="error" role="alert" id="project-failure">${failure}</p>` : null}
      <div class="actions">
        <button type="button" onClick=${onCancel}>${t("common.cancel")}</button>
        <button type="submit" class="primary" id="project-submit" disabled=${busy}>
          ${t(busy ? "form.sending" : "form.send")}</button>
      </div>
    </form>`;
  }
}
