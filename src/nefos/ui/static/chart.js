// One time-series chart (uPlot), loaded only by the pages that draw one.
//
// uPlot ships an ES module too, but unminified (145 KB); its minified build (51 KB) is a
// plain script that defines the global `uPlot`. The page's policy runs scripts from its
// own origin, so the script is added once, on the first chart, and every other page pays
// nothing for it.

import { lang, t } from "./i18n.js";
import { Component, createRef, html } from "./lib.js";

const SCRIPT = new URL("./vendor/uplot-1.6.32.iife.min.js", import.meta.url);
const STYLE = new URL("./vendor/uplot-1.6.32.min.css", import.meta.url);
let loading = null;

export function loadChartLibrary() {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const style = document.createElement("link");
      style.rel = "stylesheet";
      style.href = STYLE;
      document.head.append(style);
      const script = document.createElement("script");
      script.src = SCRIPT;
      script.onload = () => resolve(window.uPlot);
      script.onerror = () => {
        loading = null; // a later chart tries again
        reject(new Error(t("chart.failed")));
      };
      document.head.append(script);
    });
  }
  return loading;
}

// Colours of the page's palette (ui.css), each readable on white.
const COLOURS = { used: "#1d5fd1", peak: "#9a5b00", limit: "#b3261e", axis: "#5a6478", grid: "#e6e9f0" };

const HOUR = 3600;
const DAY = 24 * HOUR;

// The time axis in the page's language (uPlot's own labels are English): days when the
// ticks are a day or more apart, else times, with the day too when the chart spans
// several.
function timeTicks(plot, ticks, _axis, _space, step) {
  const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
  const options = step >= DAY ? { day: "numeric", month: "short" }
    : span > DAY ? { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }
      : { hour: "2-digit", minute: "2-digit" };
  const written = new Intl.DateTimeFormat(lang, options);
  return ticks.map((tick) => written.format(new Date(tick * 1000)));
}

// A line chart of `times` (seconds since the epoch) against `lines`, each
// {label, values, kind: "used" | "peak" | "limit"}; `format` writes an axis value,
// `whole` says the values are counts (no ticks between whole numbers).
export class Chart extends Component {
  box = createRef();

  async componentDidMount() {
    try {
      this.uPlot = await loadChartLibrary();
    } catch (error) {
      this.setState({ failed: error.message });
      return;
    }
    if (!this.box.current) return; // the page went away meanwhile
    this.draw();
    this.resizer = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize(this.size());
    });
    this.resizer.observe(this.box.current);
  }

  componentDidUpdate(previous) {
    if (this.uPlot && (previous.times !== this.props.times || previous.lines !== this.props.lines)) {
      this.draw();
    }
  }

  componentWillUnmount() {
    if (this.resizer) this.resizer.disconnect();
    if (this.plot) this.plot.destroy();
  }

  size() {
    const width = Math.max(200, this.box.current.clientWidth);
    return { width, height: width < 500 ? 180 : 220 };
  }

  draw() {
    const { times, lines, format, whole, unit } = this.props;
    if (this.plot) this.plot.destroy();
    const stepped = this.uPlot.paths.stepped({ align: -1 }); // a step's value holds up to its end
    const highest = Math.max(1, ...lines.flatMap((l) => l.values.filter((v) => v !== null)));
    const options = {
      ...this.size(),
      legend: { show: false }, // the page writes its own key, in words
      cursor: { show: true, drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: () => [0, highest * 1.1] } },
      axes: [
        { stroke: COLOURS.axis, grid: { stroke: COLOURS.grid }, space: 80, values: timeTicks }, // times need room
        {
          stroke: COLOURS.axis,
          grid: { stroke: COLOURS.grid },
          label: unit,
          size: 60,
          incrs: whole ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] : undefined,
          values: (_, ticks) => ticks.map(format),
        },
      ],
      series: [
        {},
        ...lines.map((line) => ({
          label: line.label,
          stroke: COLOURS[line.kind],
          width: line.kind === "used" ? 2 : 1.5,
          dash: line.kind === "limit" ? [8, 4] : line.kind === "peak" ? [3, 3] : undefined,
          fill: line.kind === "used" ? "rgba(29, 95, 209, 0.12)" : undefined,
          paths: line.kind === "limit" ? undefined : stepped,
          points: { show: false },
        })),
      ],
    };
    this.plot = new this.uPlot(options, [times, ...lines.map((l) => l.values)], this.box.current);
  }

  render({ summary }, { failed }) {
    return html`<div class="chart" ref=${this.box} role="img" aria-label=${summary}>
      ${failed ? html`<p class="error">${failed}</p>` : null}
    </div>`;
  }
}
