// Quotas as people read them: one bar per resource, what is used, what a request adds.

import { amount } from "./format.js";
import { resourceText, t } from "./i18n.js";
import { html } from "./lib.js";

// The resources people think of first; the rest follow in name order.
export const FIRST = [
  "cyclades.vm",
  "cyclades.total_cpu",
  "cyclades.total_ram",
  "cyclades.disk",
  "pithos.diskspace",
];

export function ordered(entries, resources) {
  const names = Object.keys(entries).filter((n) => resources[n] && resources[n].ui_visible);
  const rank = (n) => (FIRST.includes(n) ? FIRST.indexOf(n) : FIRST.length);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

// What the user may still take of one resource: the smaller of their own share and
// what the project as a whole has left.
export function remaining(entry) {
  if (!entry) return 0;
  return Math.max(0, Math.min(entry.limit - entry.usage, entry.project_limit - entry.project_usage));
}

function percent(part, whole) {
  if (whole <= 0) return part > 0 ? 100 : 0;
  return Math.min(100, Math.round((part / whole) * 100));
}

// One bar: used (and, on a create form, what the request would add) against the limit.
export function QuotaBar({ name, entry, resource, adds = 0 }) {
  const used = entry.usage;
  const limit = entry.limit;
  const over = adds > remaining(entry);
  const label = resourceText(name, resource);
  const text = adds
    ? t("quota.adds", { used: amount(resource, used), adds: amount(resource, adds), limit: amount(resource, limit) })
    : t("quota.used", { used: amount(resource, used), limit: amount(resource, limit) });
  return html`
    <div class="quota ${over ? "over" : ""}" data-resource=${name}>
      <div class="quota-label"><span>${label}</span><span class="quota-text">${text}</span></div>
      <div class="bar" role="meter" aria-label=${label} aria-valuemin="0"
           aria-valuemax=${limit} aria-valuenow=${used + adds} aria-valuetext=${text}>
        <span class="used" style=${{ width: `${percent(used, limit)}%` }}></span>
        ${adds ? html`<span class="adds" style=${{ width: `${Math.min(percent(adds, limit), 100 - percent(used, limit))}%` }}></span>` : null}
      </div>
    </div>`;
}

export function QuotaBars({ entries, resources, only, adds = {} }) {
  const names = ordered(entries, resources).filter((n) => !only || only.includes(n));
  return html`<div class="quotas">
    ${names.map((n) => html`<${QuotaBar} key=${n} name=${n} entry=${entries[n]} resource=${resources[n]} adds=${adds[n] || 0} />`)}
  </div>`;
}
