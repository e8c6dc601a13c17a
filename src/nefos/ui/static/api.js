// The UI's only way to the server: nefos's public APIs with the signed-in user's token.
//
// The token comes from the web session (POST /ui/session/token with the session's CSRF
// token in a header) and lives in this module's memory only: never in storage, never in
// a URL. Endpoints come from the Keystone catalog, as any client finds them; the page
// calls them by path on its own origin (its policy allows no other).

import { amount } from "./format.js";
import { resourceInSentence, t } from "./i18n.js";

const root = document.querySelector('meta[name="nefos-root"]').content;
const csrf = document.querySelector('meta[name="nefos-csrf"]').content;

export class ApiError extends Error {
  constructor(status, message, fault) {
    super(message);
    this.status = status;
    this.fault = fault; // the API's fault object ({code, message, data...}) if any
  }

  static async from(response) {
    const text = await response.text();
    let fault = null;
    try {
      const body = JSON.parse(text);
      // Nova {"overLimit": {...}}, Keystone {"error": {...}}, others {"message": ...}
      fault = Object.values(body).find((v) => v && typeof v === "object" && "message" in v);
      fault = fault || (typeof body.message === "string" ? body : null);
    } catch {
      fault = null;
    }
    const message = (fault && fault.message) || text.trim() || response.statusText;
    return new ApiError(response.status, message, fault);
  }
}

export function toLogin() {
  const here = location.pathname + location.hash;
  location.assign(`${root}/login?next=${encodeURIComponent(here)}`);
}

export class Api {
  constructor() {
    this.token = null;
    this.user = null;
    this.project = null;
    this.endpoints = {};
  }

  async signIn() {
    const response = await fetch(`${root}/session/token`, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    if (response.status === 401 || response.status === 403) {
      toLogin();
      throw new ApiError(response.status, t("api.sessionEnded"));
    }
    if (!response.ok) throw await ApiError.from(response);
    const session = await response.json();
    this.token = session.token;
    this.user = session.user;
    this.project = session.project;
    if (!Object.keys(this.endpoints).length) await this.loadCatalog();
  }

  async loadCatalog() {
    const { catalog } = await this.request("GET", "/identity/v3/auth/catalog");
    for (const service of catalog) {
      const endpoint = service.endpoints.find((e) => e.interface === "public");
      if (endpoint) this.endpoints[service.type] = new URL(endpoint.url).pathname.replace(/\/$/, "");
    }
  }

  // A path under a service's endpoint, e.g. api.at("compute", "/servers/detail").
  at(service, path) {
    const base = this.endpoints[service];
    if (base === undefined) throw new ApiError(0, t("api.noService", { service }));
    return base + path;
  }

  async request(method, path, body, again = true) {
    const headers = { "X-Auth-Token": this.token, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && again) {
      await this.signIn(); // the token ended before the session: get the session's next
      return this.request(method, path, body, false);
    }
    if (!response.ok) throw await ApiError.from(response);
    const type = response.headers.get("content-type") || "";
    if (response.status === 204 || !type.includes("json")) return null;
    return response.json();
  }

  // A request with its own headers and body (bytes, a Blob, a string), for APIs that
  // are not JSON in and out (the object store). Answers the Response; a failure throws.
  async send(method, path, { headers = {}, body, accept = [] } = {}, again = true) {
    const response = await fetch(path, {
      method,
      headers: { "X-Auth-Token": this.token, ...headers },
      body,
    });
    if (response.status === 401 && again) {
      await this.signIn();
      return this.send(method, path, { headers, body, accept }, false);
    }
    if (!response.ok && !accept.includes(response.status)) throw await ApiError.from(response);
    return response;
  }

  // The Synnefo-dialect endpoints (Keystone v2.0's catalog, as kamaki reads it): the
  // object store there lists Pithos's fields (hashes, versions) that the Files page uses.
  async synnefoEndpoint(type) {
    if (!this.synnefo) {
      const { access } = await this.request("POST", this.at("identity", "").replace(/\/v3$/, "/v2.0/tokens"), {
        auth: { token: { id: this.token } },
      });
      this.synnefo = {};
      for (const service of access.serviceCatalog) {
        const endpoint = service.endpoints[0];
        if (endpoint) this.synnefo[service.type] = new URL(endpoint.publicURL).pathname.replace(/\/$/, "");
      }
    }
    const base = this.synnefo[type];
    if (base === undefined) throw new ApiError(0, t("api.noService", { service: type }));
    return base;
  }

  // The web session's own calls (/ui/session/...): the account page's API token,
  // which only the person logged in may read, never an API token's holder.
  async session(method, path) {
    const response = await fetch(`${root}/session/${path}`, {
      method,
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
      credentials: "same-origin",
    });
    if (response.status === 401) {
      toLogin();
      throw new ApiError(401, t("api.sessionEnded"));
    }
    if (!response.ok) throw await ApiError.from(response);
    return response.json();
  }

  // A client configuration to download (clouds.yaml, openrc, kamakirc), by the session.
  configUrl(format) {
    return `${root}/account/config/${format}`;
  }

  // The server-rendered account page, which also makes application credentials.
  accountPageUrl() {
    return `${root}/account`;
  }

  get(service, path) {
    return this.request("GET", this.at(service, path));
  }

  post(service, path, body) {
    return this.request("POST", this.at(service, path), body);
  }

  delete(service, path) {
    return this.request("DELETE", this.at(service, path));
  }
}

// A project's name for people: a user's system project is their personal one.
export function projectName(projects, id) {
  const project = projects && projects[id];
  if (!project) return id;
  return project.system_project ? t("api.personal") : project.name;
}

// What went wrong, as the API said it; for a quota refusal, which resource ran short,
// how much was asked, how much is left and in which project.
export function explain(error, context = {}) {
  const data = error && error.fault && error.fault.data;
  if (data && data.provision && data.limit !== undefined) {
    const name = data.provision.resource;
    const resource = (context.resources || {})[name];
    const what = resourceInSentence(name, resource);
    const left = Math.max(0, data.limit - data.usage);
    // a user's share of a project is held from the project (source); the project's
    // own limit is held by the project itself (no source)
    const holding = data.provision.source || data.provision.holder;
    const project = projectName(context.projects, String(holding).replace(/^project:/, ""));
    return t("api.quota", {
      what,
      project,
      needs: amount(resource, data.provision.quantity),
      used: amount(resource, data.usage),
      limit: amount(resource, data.limit),
      left: amount(resource, left),
    });
  }
  return (error && error.message) || String(error);
}
