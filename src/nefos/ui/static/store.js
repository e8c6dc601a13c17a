// The object store as the Files page uses it: Pithos's API (Swift's with Pithos's
// extensions) on the Synnefo-dialect endpoint, with the signed-in user's token.
//
// An account is a user's UUID; names are paths whose "/" makes folders. A folder is a
// prefix, and may also have a directory object (Content-Type application/directory)
// of its own name, as Pithos's clients make them.

export const DIRECTORY = "application/directory";
export const PAGE = 1000; // listing entries per request

// A name as a URL path: each "/"-separated part percent-encoded.
export function encodePath(name) {
  return name.split("/").map(encodeURIComponent).join("/");
}

export function basename(name) {
  const trimmed = name.replace(/\/$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

export class Store {
  constructor(api, base, account) {
    this.api = api;
    this.base = base; // e.g. /pithos/object-store/v1
    this.account = account;
  }

  static async open(api, account = api.user.id) {
    return new Store(api, await api.synnefoEndpoint("object-store"), account);
  }

  at(account = this.account) {
    return new Store(this.api, this.base, account);
  }

  url(container, name, query = "") {
    let path = `${this.base}/${encodeURIComponent(this.account)}`;
    if (container !== undefined) path += `/${encodeURIComponent(container)}`;
    if (name) path += `/${encodePath(name)}`;
    return query ? `${path}?${query}` : path;
  }

  send(method, path, options) {
    return this.api.send(method, path, options);
  }

  async json(path) {
    const response = await this.send("GET", path, { headers: { Accept: "application/json" } });
    return response.status === 204 ? [] : response.json();
  }

  containers() {
    return this.json(this.url(undefined, "", "format=json"));
  }

  // The accounts that share something with the caller.
  async sharingAccounts() {
    return this.json(`${this.base}?format=json`);
  }

  async container(container) {
    const response = await this.send("HEAD", this.url(container));
    const header = (name) => response.headers.get(name);
    return {
      blockSize: Number(header("x-container-block-size")) || 4 * 1024 * 1024,
      blockHash: (header("x-container-block-hash") || "sha256").toLowerCase(),
      count: Number(header("x-container-object-count")) || 0,
      bytes: Number(header("x-container-bytes-used")) || 0,
      versioning: header("x-container-policy-versioning"),
    };
  }

  createContainer(container) {
    return this.send("PUT", this.url(container), { headers: { "Content-Length": "0" } });
  }

  deleteContainer(container) {
    return this.send("DELETE", this.url(container));
  }

  // One page of a folder's listing: objects and subfolders directly under `prefix`.
  listPage(container, prefix, marker) {
    const query = new URLSearchParams({ format: "json", delimiter: "/", limit: String(PAGE) });
    if (prefix) query.set("prefix", prefix);
    if (marker) query.set("marker", marker);
    return this.json(this.url(container, "", query.toString()));
  }

  createFolder(container, name) {
    return this.send("PUT", this.url(container, name), {
      headers: { "Content-Type": DIRECTORY },
      body: "",
    });
  }

  put(container, name, file) {
    return this.send("PUT", this.url(container, name), {
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
  }

  async head(container, name) {
    return (await this.send("HEAD", this.url(container, name))).headers;
  }

  async download(container, name, version) {
    const query = version === undefined ? "" : `version=${encodeURIComponent(version)}`;
    return (await this.send("GET", this.url(container, name, query))).blob();
  }

  // COPY or MOVE; a folder (`tree`) goes with everything below it.
  transfer(method, container, name, toContainer, toName, { tree = false, version } = {}) {
    const headers = { Destination: `/${encodeURIComponent(toContainer)}/${encodePath(toName)}` };
    if (version !== undefined) headers["X-Source-Version"] = String(version);
    return this.send(method, this.url(container, name, tree ? "delimiter=/" : ""), { headers });
  }

  remove(container, name, { tree = false } = {}) {
    return this.send("DELETE", this.url(container, name, tree ? "delimiter=/" : ""), {
      accept: tree ? [404] : [], // a folder may be only a prefix, with no object of its own
    });
  }

  async versions(container, name) {
    const { versions } = await this.json(this.url(container, name, "version=list&format=json"));
    return versions.map(([serial, epoch]) => ({ serial, when: new Date(Number(epoch) * 1000) }));
  }

  restore(container, name, version) {
    return this.transfer("COPY", container, name, container, name, { version });
  }

  // Sharing lists as the API keeps them (user UUIDs, `owner:group`, `*`), and the
  // public link if there is one.
  async sharing(container, name) {
    const headers = await this.head(container, name);
    const lists = { read: [], write: [] };
    for (const part of (headers.get("x-object-sharing") || "").split(";")) {
      const [key, items] = part.split("=");
      if (items && key.trim() in lists) lists[key.trim()] = items.split(",").map((s) => s.trim()).filter(Boolean);
    }
    return { ...lists, publicUrl: headers.get("x-object-public") };
  }

  share(container, name, { read, write }) {
    const parts = [];
    if (read.length) parts.push(`read=${read.join(",")}`);
    if (write.length) parts.push(`write=${write.join(",")}`);
    return this.send("POST", this.url(container, name, "update"), {
      headers: { "X-Object-Sharing": parts.join("; ") },
    });
  }

  publish(container, name, on) {
    return this.send("POST", this.url(container, name, "update"), {
      headers: { "X-Object-Public": on ? "true" : "false" },
    });
  }

  // The caller's groups (X-Account-Group-<name>: members), for sharing with a group.
  async groups() {
    const response = await this.send("HEAD", this.url());
    const found = [];
    for (const [key] of response.headers) {
      if (key.startsWith("x-account-group-")) found.push(key.slice("x-account-group-".length));
    }
    return found;
  }
}
