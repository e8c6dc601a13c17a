// The web UI's entry: signs in with the web session, then draws one view per URL hash.

import { Account } from "./account.js";
import { Api, explain } from "./api.js";
import { Console } from "./console.js";
import { Dashboard } from "./dashboard.js";
import { Disks } from "./disks.js";
import { Files } from "./files.js";
import { LANGUAGES, lang, onLanguage, setLanguage, t } from "./i18n.js";
import { Images } from "./images.js";
import { Component, html, render } from "./lib.js";
import { Machine } from "./machine.js";
import { Machines } from "./machines.js";
import { Moderation } from "./moderation.js";
import { Networks } from "./networks.js";
import { NewMachine } from "./newmachine.js";
import { ProjectsAdmin } from "./projectadmin.js";
import { Projects } from "./projects.js";
import { Usage } from "./usage.js";

const root = document.querySelector('meta[name="nefos-root"]').content;
const csrf = document.querySelector('meta[name="nefos-csrf"]').content;

const VIEWS = {
  "/": { title: "nav.dashboard", view: Dashboard },
  "/machines": { title: "nav.machines", view: Machines },
  "/machines/new": { title: "title.newMachine", view: NewMachine, nested: true, section: "/machines" },
  "/images": { title: "nav.images", view: Images },
  "/networks": { title: "nav.networks", view: Networks },
  "/disks": { title: "nav.disks", view: Disks },
  "/account": { title: "account.title", view: Account },
  "/projects": { title: "nav.projects", view: Projects },
  "/usage": { title: "nav.usage", view: Usage },
  "/admin/users": { title: "nav.accountsToApprove", view: Moderation },
  "/admin/projects": { title: "nav.projectsToApprove", view: ProjectsAdmin },
  // these take the rest of the path: a container and folders
  "/files": { title: "nav.files", view: Files, nested: true },
  "/shared": { title: "title.shared", view: Files, nested: true, props: { shared: true } },
  // #/machines/<id>/console: the rest is the machine's id; another id is another page
  "/console": { title: "title.console", view: Console, section: "/machines", remount: true },
  // #/machines/<id>: one machine
  "/machine": { title: "title.machine", view: Machine, section: "/machines", remount: true },
};
const CONSOLE = /^\/machines\/([^/]+)\/console$/;
const MACHINE = /^\/machines\/([^/]+)$/;

// The view a hash names, and for a nested view the rest of the path after its own.
function route() {
  const path = location.hash.replace(/^#/, "") || "/";
  if (VIEWS[path]) return { path, rest: "" };
  const machine = CONSOLE.exec(path);
  if (machine) return { path: "/console", rest: decodeURIComponent(machine[1]) };
  const one = MACHINE.exec(path);
  if (one) return { path: "/machine", rest: decodeURIComponent(one[1]) };
  const nested = Object.keys(VIEWS).find((key) => VIEWS[key].nested && path.startsWith(`${key}/`));
  return nested ? { path: nested, rest: path.slice(nested.length) } : { path: "/", rest: "" };
}

class App extends Component {
  state = { ready: false, failure: null, ...route(), notice: null };
  api = new Api();

  async componentDidMount() {
    addEventListener("hashchange", () => this.setState(route()));
    onLanguage((code) => this.setState({ lang: code }));
    try {
      await this.api.signIn();
      const [resources, projects] = await Promise.all([
        this.api.get("account", "/resources"),
        this.api.get("account", "/projects"),
      ]);
      this.setState({
        ready: true,
        resources,
        projects: Object.fromEntries(projects.map((p) => [p.id, p])),
        projectsAt: Date.now(),
      });
    } catch (error) {
      this.setState({ failure: explain(error) });
    }
  }

  // Projects' names, again after a page joined, left or approved one.
  async reloadProjects() {
    try {
      const projects = await this.api.get("account", "/projects");
      this.setState({ projects: Object.fromEntries(projects.map((p) => [p.id, p])), projectsAt: Date.now() });
    } catch {
      // the names stay as they were; a quota shows under the project's id meanwhile
    }
  }

  created({ name, count, password }) {
    const made = count > 1 ? t("app.createdMany", { n: count, name }) : t("app.createdOne", { name });
    const secret = password ? html`<code class="secret" id="password">${password}</code>` : null;
    const notice = html`<strong>${made}</strong>
      ${password ? html` ${t(count > 1 ? "app.passwordMany" : "app.passwordOne", { password: secret })}` : null}`;
    this.setState({ notice });
    location.hash = "#/machines";
  }

  nav() {
    const { path } = this.state;
    const here = path === "/shared" ? "/files" : VIEWS[path].section || path;
    const link = (path, text) => html`<a href=${`#${path}`} aria-current=${here === path ? "page" : null}>${text}</a>`;
    return html`<header class="topbar">
      <a class="brand" href="#/">nefos</a>
      <nav aria-label=${t("nav.main")}>${link("/", t("nav.dashboard"))}${link("/machines", t("nav.machines"))}
        ${link("/files", t("nav.files"))}${link("/images", t("nav.images"))}${link("/networks", t("nav.networks"))}${link("/disks", t("nav.disks"))}${link("/projects", t("nav.projects"))}${link("/usage", t("nav.usage"))}
        ${this.api.user && this.api.user.admin
          ? html`${link("/admin/users", t("nav.accountsToApprove"))}${link("/admin/projects", t("nav.projectsToApprove"))}` : null}
        ${link("/account", t("nav.account"))}</nav>
      <label class="language"><span class="sr-only">${t("nav.language")}</span>
        <select id="language" value=${lang} onChange=${(e) => setLanguage(e.target.value)}>
          ${Object.entries(LANGUAGES).map(([code, name]) => html`<option value=${code} lang=${code}>${name}</option>`)}
        </select></label>
      <form method="post" action=${`${root}/logout`} class="logout">
        <span class="who">${this.api.user ? this.api.user.email : ""}</span>
        <input type="hidden" name="csrf" value=${csrf} />
        <button type="submit" class="link">${t("nav.logout")}</button>
      </form>
    </header>`;
  }

  render(_, { ready, failure, path, rest, notice, resources, projects, projectsAt }) {
    const { title, view: View, props = {}, remount } = VIEWS[path];
    document.title = `${t(title)} · nefos`;
    return html`${this.nav()}
      <main>
        ${failure ? html`<p class="error" role="alert">${failure}</p>`
          : !ready ? html`<p class="loading">${t("app.loading")}</p>`
          : html`<${View} key=${remount ? `${path}/${rest}` : path} api=${this.api} rest=${rest} ...${props} resources=${resources} projects=${projects} projectsAt=${projectsAt}
              notice=${notice} onDismiss=${() => this.setState({ notice: null })}
              onCreated=${(made) => this.created(made)} onProjectsChanged=${() => this.reloadProjects()} />`}
      </main>`;
  }
}

const mount = document.getElementById("app");
mount.replaceChildren();
render(html`<${App} />`, mount);
