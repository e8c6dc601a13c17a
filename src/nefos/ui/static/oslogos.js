// An image's operating system: its name, and a small logo to find it by at a glance.
//
// The OS comes from the image's properties as clients set them: Glance's `os_distro`
// (Plankton's `OS-Distro`), Synnefo's `OS` (any case: Plankton lowers header names,
// Glance v2 keeps what it was given), and the family (`OSFAMILY`, Glance's `os_type`)
// when no distribution is named. The logos are simple shapes and colours drawn here,
// not the vendors' artwork; each is an image with the OS's name as its text.

import { t } from "./i18n.js";
import { html } from "./lib.js";

// A property by any of its names, in any case.
function property(image, ...names) {
  const wanted = new Set(names);
  for (const [key, value] of Object.entries(image)) {
    if (wanted.has(key.toLowerCase()) && typeof value === "string" && value.trim()) return value.trim();
  }
  return "";
}

export function distroOf(image) {
  return property(image, "os_distro", "os");
}

// The drawings, on a 32×32 view. Red Hat's rebuilds share one (a pinwheel) in their
// own colours.
const PINWHEEL = (colour) => html`<circle cx="16" cy="16" r="16" fill=${colour} />
  <path d="M16 5 L20 12 L16 16 Z M27 16 L20 20 L16 16 Z M16 27 L12 20 L16 16 Z M5 16 L12 12 L16 16 Z" fill="#fff" />`;

const DRAWINGS = {
  debian: () => html`<circle cx="16" cy="16" r="16" fill="#fff" />
    <circle cx="16" cy="16" r="15" fill="none" stroke="#c70036" stroke-width="2" />
    <path d="M18.5 17.5 a3 3 0 1 0 -3.5 1.5 a6 6 0 1 1 6 -7 a8.5 8.5 0 1 0 -2 11" fill="none" stroke="#c70036"
      stroke-width="2.6" stroke-linecap="round" />`,
  ubuntu: () => html`<circle cx="16" cy="16" r="16" fill="#e95420" />
    <circle cx="16" cy="16" r="7.5" fill="none" stroke="#fff" stroke-width="2.6" />
    <circle cx="8" cy="16" r="2.8" fill="#fff" stroke="#e95420" stroke-width="1.2" />
    <circle cx="20" cy="9.1" r="2.8" fill="#fff" stroke="#e95420" stroke-width="1.2" />
    <circle cx="20" cy="22.9" r="2.8" fill="#fff" stroke="#e95420" stroke-width="1.2" />`,
  fedora: () => html`<circle cx="16" cy="16" r="16" fill="#294172" />
    <path d="M13 25 V13.5 a4 4 0 0 1 4 -4 h2 M10 16.5 h7" fill="none" stroke="#fff" stroke-width="3"
      stroke-linecap="round" />`,
  centos: () => PINWHEEL("#932279"),
  rocky: () => PINWHEEL("#0b7a55"),
  alma: () => PINWHEEL("#0f4266"),
  rhel: () => PINWHEEL("#c00"),
  windows: () => html`<rect width="32" height="32" rx="6" fill="#0067b8" />
    <path d="M7 7 h8.3 v8.3 H7 Z M16.7 7 H25 v8.3 h-8.3 Z M7 16.7 h8.3 V25 H7 Z M16.7 16.7 H25 V25 h-8.3 Z" fill="#fff" />`,
  freebsd: () => html`<circle cx="16" cy="16" r="16" fill="#fff" />
    <circle cx="16" cy="18" r="11" fill="#ab2b28" />
    <path d="M5 9 Q4 2 10 4 Q7 6 8 9 Z M27 9 Q28 2 22 4 Q25 6 24 9 Z" fill="#ab2b28" />`,
  arch: () => html`<circle cx="16" cy="16" r="16" fill="#fff" />
    <path d="M16 4 L27 27 Q21 22 16 22 Q11 22 5 27 Z" fill="#1793d1" />`,
  opensuse: () => html`<circle cx="16" cy="16" r="16" fill="#73ba25" />
    <circle cx="18" cy="14" r="6.5" fill="#fff" /><circle cx="19.5" cy="13" r="2.6" fill="#173f4f" />
    <path d="M6 21 q10 5 20 0" fill="none" stroke="#fff" stroke-width="2.2" stroke-linecap="round" />`,
  generic: () => html`<rect width="32" height="32" rx="6" fill="#5a6478" />
    <rect x="6" y="8" width="20" height="13" rx="1.5" fill="none" stroke="#fff" stroke-width="2.2" />
    <path d="M12 25.5 h8 M16 21 v4" stroke="#fff" stroke-width="2.2" stroke-linecap="round" />`,
};

// Which drawing, and the OS's proper name, by the first pattern that the distribution
// (else the family) matches.
const SYSTEMS = [
  ["debian", /debian/, "Debian"],
  ["ubuntu", /ubuntu/, "Ubuntu"],
  ["fedora", /fedora/, "Fedora"],
  ["centos", /centos/, "CentOS"],
  ["rocky", /rocky/, "Rocky Linux"],
  ["alma", /alma/, "AlmaLinux"],
  ["rhel", /^(rhel|red ?hat)/, "Red Hat Enterprise Linux"],
  ["windows", /^win|windows/, "Windows"],
  ["freebsd", /freebsd/, "FreeBSD"],
  ["arch", /^arch/, "Arch Linux"],
  ["opensuse", /suse|^sles/, "openSUSE"],
];

// {logo, label, named}: the drawing's key, the name a person (or a screen reader)
// reads, and whether the image names its OS at all.
export function systemOf(image) {
  const distro = distroOf(image);
  const family = property(image, "osfamily", "os_family", "os_type");
  for (const given of [distro, family]) {
    const found = SYSTEMS.find(([, pattern]) => pattern.test(given.toLowerCase()));
    if (found) return { logo: found[0], label: found[2], named: true };
  }
  const given = distro || (family && family.toLowerCase() !== "other" ? family : "");
  if (!given) return { logo: "generic", label: t("logo.unknown"), named: false };
  return { logo: "generic", label: given.charAt(0).toUpperCase() + given.slice(1), named: true };
}

// "Debian 12", "Rocky Linux 9": the OS as its makers write it, with the version; ""
// when the image does not say.
export function osName(image) {
  const { label, named } = systemOf(image);
  return named ? [label, property(image, "os_version")].filter(Boolean).join(" ") : "";
}

export function Logo({ image }) {
  const { logo, label } = systemOf(image);
  return html`<svg class="logo" data-logo=${logo} role="img" aria-label=${label} viewBox="0 0 32 32"
    xmlns="http://www.w3.org/2000/svg">${DRAWINGS[logo]()}</svg>`;
}
