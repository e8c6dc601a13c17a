// The page's language, and every text a person reads, through one table (texts.js).
//
// The language is the one chosen in the top bar (kept in localStorage, and in a cookie
// that the server-rendered login and account pages read), else the browser's. A text
// is `t(key, values)`: `{name}` in the table takes `values.name`; an entry with `one`
// and `other` forms picks one by `values.n` and the language's plural rules (Greek
// and English both have these two). A value may be markup (htm's vnodes): the text
// then comes back as a list of parts, for a child, never for an attribute.

import { TEXTS } from "./texts.js";

export const LANGUAGES = { en: "English", el: "Ελληνικά" };
const STORED = "nefos-lang";
const COOKIE = "nefos_lang";

function chosen() {
  try {
    const stored = localStorage.getItem(STORED);
    if (LANGUAGES[stored]) return stored;
  } catch {
    // storage refused (a private window's policy): the cookie or the browser decides
  }
  const cookie = document.cookie.split(/;\s*/).find((c) => c.startsWith(`${COOKIE}=`));
  if (cookie && LANGUAGES[cookie.slice(COOKIE.length + 1)]) return cookie.slice(COOKIE.length + 1);
  for (const wanted of navigator.languages || [navigator.language || "en"]) {
    const code = wanted.toLowerCase().split("-")[0];
    if (LANGUAGES[code]) return code;
  }
  return "en";
}

export let lang = chosen();
document.documentElement.lang = lang;

const listeners = new Set();

export function onLanguage(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function setLanguage(code) {
  if (!LANGUAGES[code]) return;
  lang = code;
  document.documentElement.lang = code;
  try {
    localStorage.setItem(STORED, code);
  } catch {
    // the cookie below still carries it
  }
  // a year, for the whole site: the server's pages (/ui/login, /ui/account) read it
  document.cookie = `${COOKIE}=${code}; path=/; max-age=31536000; SameSite=Lax`;
  for (const listener of listeners) listener(code);
}

export function number(n, options = {}) {
  return new Intl.NumberFormat(lang, options).format(n);
}

export function t(key, values = {}) {
  const entry = TEXTS[key];
  if (!entry) throw new Error(`No text ${key}`);
  let text = entry[lang] ?? entry.en;
  if (typeof text === "object") {
    text = text[new Intl.PluralRules(lang).select(Number(values.n))] ?? text.other;
  }
  const parts = text.split(/\{(\w+)\}/);
  let markup = false;
  for (let i = 1; i < parts.length; i += 2) {
    const value = values[parts[i]];
    if (value === undefined) throw new Error(`Text ${key} wants {${parts[i]}}`);
    if (typeof value === "number") parts[i] = number(value);
    else if (value !== null && typeof value === "object") markup = true;
    if (typeof value !== "number") parts[i] = value;
  }
  return markup ? parts.filter((p) => p !== "") : parts.join("");
}

// Whether the table has a text (for a family of keys, e.g. one per resource, that
// covers only the names it knows).
export function has(key) {
  return Object.hasOwn(TEXTS, key);
}

// A quota resource's name: the table's, else the API's description (a resource the
// table does not know, added by a newer nefos).
export function resourceText(name, resource) {
  const key = `resource.${name}`;
  if (lang !== "en" && TEXTS[key]) return t(key);
  return resource ? resource.description : name;
}

// A resource's name inside a sentence: its first letter small, the rest as it is
// ("Floating IPs" becomes "floating IPs", not "floating ips").
export function resourceInSentence(name, resource) {
  const text = resourceText(name, resource);
  return text.charAt(0).toLocaleLowerCase(lang) + text.slice(1);
}

export function dateTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
}

export function day(iso) {
  return iso ? new Date(iso).toLocaleDateString(lang, { dateStyle: "medium" }) : "";
}

export function clock(date) {
  return date.toLocaleTimeString(lang);
}
