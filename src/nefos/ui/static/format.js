// Numbers for people: sizes in binary units, counts with their noun.

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
  if (unit === 0) return `${value} ${value === 1 ? "byte" : "bytes"}`;
  const shown = value >= 100 || Number.isInteger(value) ? Math.round(value) : value.toFixed(1);
  return `${String(shown).replace(/\.0$/, "")} ${UNITS[unit]}`;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// A quantity of a quota resource (its description from /account/v1.0/resources).
export function amount(resource, n) {
  return resource && resource.unit === "bytes" ? bytes(n) : String(n);
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
