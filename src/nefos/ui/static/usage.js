// Usage: how much of each resource you used over time, per project, against its limit.
// One request (GET /account/v1.0/usage) brings every series of the chosen period.

import { explain, projectName } from "./api.js";
import { Chart } from "./chart.js";
import { bytes, GiB, MiB } from "./format.js";
import { has, lang, number, resourceText, t } from "./i18n.js";
import { Component, html } from "./lib.js";
import { ordered } from "./quota.js";

const HOUR = 3600;
const DAY = 24 * HOUR;
// Each period's label is the text `usage.<key>`.
const PERIODS = [
  { key: "hour", seconds: HOUR },
  { key: "day", seconds: DAY },
  { key: "week", seconds: 7 * DAY },
  { key: "month", seconds: 30 * DAY },
  { key: "year", seconds: 365 * DAY },
];

// Plain names: what each resource is to someone who has never run a server. texts.js
// has `usage.title.<resource>`, and for a count `usage.count.<resource>` (with its
// noun) and `usage.unit.<resource>` (the axis); a resource it does not know gets its
// quota name, and bare numbers.
function nameOf(resource, description) {
  const title = has(`usage.title.${resource}`) ? t(`usage.title.${resource}`) : resourceText(resource, description);
  const counted = has(`usage.count.${resource}`);
  return { title, counted, many: counted ? t(`usage.unit.${resource}`) : "" };
}

// How a number of this resource reads: sizes in binary units, counts with their noun.
function wording(name, description) {
  const isBytes = description && description.unit === "bytes";
  const plain = nameOf(name, description);
  if (isBytes) return { isBytes, text: (n) => bytes(n) };
  return { isBytes, text: (n) => (plain.counted ? t(`usage.count.${name}`, { n }) : number(n)) };
}

// The axis unit for sizes: the largest that keeps the biggest value at 1 or more.
function axisUnit(highest) {
  if (highest >= GiB) return { label: "GiB", size: GiB };
  if (highest >= MiB) return { label: "MiB", size: MiB };
  if (highest >= 1024) return { label: "KiB", size: 1024 };
  return { label: t("usage.unit.bytes"), size: 1 };
}

function clock(seconds, period) {
  const options = period.seconds <= DAY ? { timeStyle: "short" } : { dateStyle: "medium", timeStyle: "short" };
  return new Date(seconds * 1000).toLocaleString(lang, options);
}

function last(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

function highestOf(values) {
  return values.reduce((top, v) => (v !== null && v > top ? v : top), 0);
}

// The steps where something changed (and the last one), for the table: a period of
// 200 steps where nothing moved is one row, not 200.
function changes(times, usage, peak) {
  const rows = [];
  for (let i = 0; i < times.length; i++) {
    const moved = i === 0 || usage[i] !== usage[i - 1] || peak[i] !== usage[i];
    if (moved || i === times.length - 1) rows.push(i);
  }
  return rows;
}

function ResourceChart({ series, times, description, period, projectTitle }) {
  const plain = nameOf(series.resource, description);
  const words = wording(series.resource, description);
  const { usage, peak, limit } = series;
  const now = last(usage);
  const most = highestOf(peak);
  const shortLived = peak.some((p, i) => p !== null && p !== usage[i]);
  const unit = words.isBytes ? axisUnit(Math.max(most, limit)) : null;
  // Sizes are drawn in the axis unit, so that its ticks fall on round numbers of it.
  const scale = (values) => (unit ? values.map((v) => (v === null ? null : v / unit.size)) : values);
  const format = (v) => number(v, { maximumFractionDigits: 2 });
  const lines = [{ label: t("usage.inUse"), kind: "used", values: scale(usage) }];
  if (shortLived) lines.push({ label: t("usage.mostAtOnce"), kind: "peak", values: scale(peak) });
  lines.push({ label: t("usage.limit"), kind: "limit", values: scale(times.map(() => limit)) });
  const summary = t("usage.summary", {
    title: plain.title,
    project: projectTitle,
    period: t(`usage.${period.key}`).toLocaleLowerCase(lang),
    now: now === null ? t("usage.noRecord") : t("usage.nowIs", { amount: words.text(now) }),
    most: words.text(most),
    limit: words.text(limit),
  });
  const rows = changes(times, usage, peak);
  const data = JSON.stringify({ times, usage, peak, limit });
  return html`<figure class="usage-chart" data-resource=${series.resource} data-usage=${data}>
    <figcaption>
      <h3>${plain.title}</h3>
      <p class="usage-now">${now === null ? t("usage.noRecordNow", { limit: words.text(limit) })
        : t("usage.now", { amount: words.text(now), limit: words.text(limit) })}${
        most > (now || 0) ? ` ${t("usage.most", { amount: words.text(most) })}` : ""}</p>
    </figcaption>
    <${Chart} times=${times} lines=${lines} format=${format} whole=${!words.isBytes}
      unit=${unit ? unit.label : plain.many} summary=${summary} />
    <ul class="chart-key" aria-hidden="true">
      ${lines.map((l) => html`<li key=${l.kind}><span class=${`swatch swatch-${l.kind}`}></span>${l.label}</li>`)}
    </ul>
    <details>
      <summary>${t("usage.showTable")}</summary>
      <table class="usage-table">
        <caption>${t("usage.caption", { title: plain.title, project: projectTitle, step: period.step })}</caption>
        <thead><tr><th scope="col">${t("usage.time")}</th><th scope="col">${t("usage.inUse")}</th>
          <th scope="col">${t("usage.mostAtOnce")}</th></tr></thead>
        <tbody>
          ${rows.map((i) => html`<tr key=${times[i]}>
            <td>${clock(times[i], period)}</td>
            <td>${usage[i] === null ? t("usage.noRecord") : words.text(usage[i])}</td>
            <td>${peak[i] === null ? t("usage.noRecord") : words.text(peak[i])}</td>
          </tr>`)}
        </tbody>
      </table>
    </details>
  </figure>`;
}

// A step in words, for the table's caption.
function stepWords(seconds) {
  if (seconds % DAY === 0) return t("usage.step.day", { n: seconds / DAY });
  if (seconds % HOUR === 0) return t("usage.step.hour", { n: seconds / HOUR });
  if (seconds % 60 === 0) return t("usage.step.minute", { n: seconds / 60 });
  return t("usage.step.second", { n: seconds });
}

export class Usage extends Component {
  state = { period: "day", loading: true, history: null, failed: null };

  componentDidMount() {
    this.load(this.state.period);
  }

  async load(key) {
    const period = PERIODS.find((p) => p.key === key);
    this.setState({ period: key, loading: true });
    const since = new Date(Date.now() - period.seconds * 1000).toISOString();
    try {
      const history = await this.props.api.get("account", `/usage?since=${encodeURIComponent(since)}`);
      if (this.state.period === key) this.setState({ history, loading: false, failed: null });
    } catch (error) {
      if (this.state.period === key) this.setState({ loading: false, failed: error });
    }
  }

  // Per project, the series worth a chart: every visible resource of the personal
  // project; of another project, what it gives (a limit) or what was used.
  grouped() {
    const { resources, projects } = this.props;
    const byProject = {};
    for (const series of this.state.history.series) {
      const project = projects[series.project];
      const given = series.limit > 0 || highestOf(series.peak) > 0;
      if (project && !project.system_project && !given) continue;
      (byProject[series.project] ||= {})[series.resource] = series;
    }
    const rank = (id) => (projects[id] && projects[id].system_project ? 0 : 1);
    const ids = Object.keys(byProject).sort(
      (a, b) => rank(a) - rank(b) || projectName(projects, a).localeCompare(projectName(projects, b)),
    );
    return ids.map((id) => ({ id, series: ordered(byProject[id], resources).map((r) => byProject[id][r]) }));
  }

  render({ resources, projects }, { period: key, loading, history, failed }) {
    const period = { ...PERIODS.find((p) => p.key === key), step: history ? stepWords(history.step) : "" };
    return html`<section class="usage">
      <h1>${t("nav.usage")}</h1>
      <p class="intro">${t("usage.intro")}</p>
      <div class="periods" role="group" aria-label=${t("usage.period")}>
        ${PERIODS.map((p) => html`<button type="button" key=${p.key} aria-pressed=${p.key === key ? "true" : "false"}
          class=${p.key === key ? "primary" : ""} onClick=${() => this.load(p.key)}>${t(`usage.${p.key}`)}</button>`)}
        <button type="button" class="link" onClick=${() => this.load(key)}>${t("usage.refresh")}</button>
      </div>
      ${failed ? html`<p class="error" role="alert">${explain(failed)}</p>` : null}
      ${loading && !history ? html`<p class="loading">${t("common.loading")}</p>` : null}
      ${history ? html`<div aria-busy=${loading ? "true" : "false"}>
        ${this.grouped().map(({ id, series }) => html`<section class="project-usage" key=${id} data-project=${id}
            aria-labelledby=${`usage-${id}`}>
          <h2 id=${`usage-${id}`}>${projectName(projects, id)}</h2>
          <div class="usage-charts">
            ${series.map((s) => html`<${ResourceChart} key=${s.resource} series=${s} times=${history.times}
              description=${resources[s.resource]} period=${period} projectTitle=${projectName(projects, id)} />`)}
          </div>
        </section>`)}
        ${history.series.length === 0 ? html`<p>${t("usage.nothing")}</p>` : null}
      </div>` : null}
    </section>`;
  }
}
