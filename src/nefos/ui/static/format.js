// Numbers for people: sizes in binary units, in the page's language.

import { dateTime, number, t } from "./i18n.js";

const UNITS = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function bytes(n) {
  let value = Number(n) || 0;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return t("format.bytes", { n: value });
  const digits = value >= 100 || Number.isInteger(value) ? 0 : 1;
  return `${number(value, { maximumFractionDigits: digits })} ${UNITS[unit]}`;
}

// A quantity of a quota resource (its description from /account/v1.0/resources).
export function amount(resource, n) {
  return resource && resource.unit === "bytes" ? bytes(n) : number(n);
}

export function when(iso) {
  return dateTime(iso);
}
