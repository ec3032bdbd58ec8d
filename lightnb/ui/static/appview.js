// lightnb AppView: the live component tree of an app, its tabs (flows, pages in iframes) and buttons.
// The kernel writes every trait; this code only reads them and sends messages (model.send).

const STAGES = {
  not_started: ["○", "not started"],
  pending: ["◔", "pending"],
  running: ["●", "running"],
  succeeded: ["✔", "succeeded"],
  failed: ["✖", "failed"],
  stopped: ["■", "stopped"],
};

const ENDED = new Set(["succeeded", "failed", "stopped"]);

// A work's output with its ANSI colours and bold (tqdm, rich, Lightning's summaries) as HTML (ansi_up
// escapes the text's own HTML).
const ansi = new AnsiUp();
ansi.use_classes = false;
function ansiHtml(text) {
  return ansi.ansi_to_html(text);
}

function stageBadge(stage) {
  const [icon, label] = STAGES[stage] || ["?", String(stage)];
  return h("span", { class: `lnb-stage lnb-stage-${stage}`, title: label }, `${icon} ${label}`);
}

// One component tree (the whole app, or the part under one flow), updated in place.
class Tree {
  constructor(scope, send) {
    this.scope = scope; // a flow's name, or null for the whole app
    this.send = send;
    this.element = h("div", { class: "lnb-tree" });
    this.rows = new Map();
  }

  inScope(name) {
    return this.scope == null || name === this.scope || name.startsWith(this.scope + ".");
  }

  update(components, changed) {
    const names = Object.keys(components).filter((name) => this.inScope(name));
    const structural = names.length !== this.rows.size || names.some((name) => !this.rows.has(name));
    if (structural) {
      this.rebuild(components, names);
      return;
    }
    for (const name of changed || names) {
      if (this.rows.has(name) && components[name]) this.fill(this.rows.get(name), components[name]);
    }
  }

  rebuild(components, names) {
    const children = new Map();
    for (const name of names) {
      const parent = components[name].parent;
      const key = names.includes(parent) ? parent : null;
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(name);
    }
    this.element.replaceChildren();
    this.rows.clear();
    const visit = (name, depth) => {
      const row = this.makeRow(name, depth);
      this.fill(row, components[name]);
      this.rows.set(name, row);
      this.element.append(row.element);
      for (const child of children.get(name) || []) visit(child, depth + 1);
    };
    for (const top of children.get(null) || []) visit(top, 0);
  }

  makeRow(name, depth) {
    const row = {
      icon: h("span", { class: "lnb-icon" }),
      name: h("span", { class: "lnb-name" }, name),
      cls: h("span", { class: "lnb-class" }),
      stage: h("span", { class: "lnb-stage-slot" }),
      bar: h("progress", { class: "lnb-progress", max: "1" }),
      percent: h("span", { class: "lnb-percent" }),
      link: h("a", { class: "lnb-link", target: "_blank", rel: "noopener" }, "open ↗"),
      stop: h("button", { class: "lnb-btn lnb-btn-small", title: `stop ${name}` }, "stop"),
      logs: h("pre", { class: "lnb-logs" }),
      chart: h("div", { class: "lnb-chart" }),
      view: h("div", { class: "lnb-view" }),
      logsBox: h("details", { class: "lnb-logs-box" }),
      error: h("pre", { class: "lnb-error" }),
    };
    row.stop.addEventListener("click", () => this.send({ type: "stop_work", work: name }));
    row.logsBox.append(h("summary", {}, "output"), row.logs);
    const line = h("div", { class: "lnb-line" }, row.stage, row.name, row.cls, row.bar, row.percent,
      row.link, row.stop);
    row.element = h("div", { class: "lnb-row", style: `margin-left: ${depth * 1.2}em`, "data-name": name },
      line, row.error, row.view, row.chart, row.logsBox);
    return row;
  }

  fill(row, component) {
    const isWork = component.kind === "work";
    row.stage.replaceChildren(isWork ? stageBadge(component.stage) : h("span", { class: "lnb-flow" }, "▾ flow"));
    row.cls.textContent = component.class;
    if (component.display_name) {  // given by the app (display_name): shown instead of the dotted name
      row.name.textContent = component.display_name;
      row.name.title = component.name;
    }
    const hasProgress = component.progress != null;
    row.bar.style.display = hasProgress ? "" : "none";
    row.percent.style.display = hasProgress ? "" : "none";
    if (hasProgress) {
      row.bar.value = component.progress;
      row.percent.textContent = `${Math.round(component.progress * 100)}%`;
    }
    row.link.style.display = component.url ? "" : "none";
    if (component.url) {
      row.link.href = frameUrl({ url: component.url, port: component.port, proxiable: true,
        path: component.url.split("/").slice(3).join("/") }, this.proxy) || component.url;
    }
    row.stop.style.display = isWork && (component.stage === "running" || component.stage === "pending") ? "" : "none";
    row.error.style.display = component.stage === "failed" && component.message ? "" : "none";
    row.error.textContent = component.stage === "failed" ? component.message || "" : "";
    const logs = component.logs || [];
    row.logsBox.style.display = logs.length ? "" : "none";
    row.chart.style.display = component.metrics ? "" : "none";
    if (component.metrics) plotMetrics(row, component.metrics);
    renderView(row, component.view);
    const text = logs.join("\n");
    if (row.logs.dataset.text !== text) {
      row.logs.dataset.text = text;
      row.logs.innerHTML = ansiHtml(text);
    }
  }
}

// A live uPlot line chart filled point by point, the last MAX_POINTS kept: a work's metrics, a load test's
// figures over time, a sweep's value per trial. `series`: [{label, scale?}] (a second scale gets its own axis,
// on the right); `element.dataset.points` says how many points it holds.
const MAX_POINTS = 2000;
const COLOURS = ["#1976d2", "#d32f2f", "#388e3c", "#f57c00", "#7b1fa2", "#0097a7", "#5d4037", "#c2185b"];

class LiveChart {
  constructor(element, { time = true, dots = false, height = 180, xLabel = null } = {}) {
    this.element = element;
    this.options = { time, dots, height, xLabel };
    this.key = null;
    this.plot = null;
    this.columns = [[]];
  }

  // The series drawn; a new set starts the chart afresh.
  setSeries(series) {
    const key = JSON.stringify(series);
    if (key === this.key) return;
    this.key = key;
    this.series = series;
    this.columns = [[], ...series.map(() => [])];
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  // One more point: x and one value per series.
  push(x, values) {
    this.columns[0].push(x);
    values.forEach((value, index) => this.columns[index + 1].push(value));
    if (this.columns[0].length > MAX_POINTS) for (const column of this.columns) column.shift();
    this.draw();
  }

  // Every point at once: xs and one column per series.
  replace(xs, columns) {
    this.columns = [xs, ...columns];
    this.draw();
  }

  draw() {
    this.element.dataset.points = String(this.columns[0].length);
    if (this.plot) {
      this.plot.setData(this.columns);
      return;
    }
    const { time, dots, height, xLabel } = this.options;
    const scales = [...new Set(this.series.map((serie) => serie.scale || "y"))];
    const width = Math.max(240, Math.min(720, (this.element.parentElement?.clientWidth || 600) - 20));
    this.plot = new uPlot({
      width, height,
      series: [{ label: xLabel || (time ? "time" : "x") }, ...this.series.map((serie, index) => ({
        label: serie.label, scale: serie.scale || "y", stroke: COLOURS[index % COLOURS.length], width: 1.5,
        points: { show: dots, size: 6 },
      }))],
      scales: { x: { time }, ...Object.fromEntries(scales.map((scale) => [scale, {}])) },
      axes: [time ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, ...scales.map((scale, index) => ({ scale, side: index === 0 ? 3 : 1, grid: { show: index === 0 },
        label: scale === "y" ? undefined : scale }))],
      legend: { live: true },
    }, this.columns, this.element);
  }
}

// A component's `metrics`: each new set of values the kernel sends (at most 10 a second, only when they
// changed) is one more point.
function plotMetrics(row, metrics) {
  const key = JSON.stringify(metrics);
  if (row.metricsKey === key) return; // the same values again (a redraw, not a new point)
  row.metricsKey = key;
  row.metricsChart ||= new LiveChart(row.chart);
  row.metricsChart.setSeries(Object.keys(metrics).map((label) => ({ label })));
  row.metricsChart.push(Date.now() / 1000, Object.values(metrics));
}

// -- the views a component's class asks for (its `_view`: a kind, and the state it is drawn from) ----------

function fmt(value, digits = 4) {
  if (value == null) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(digits);
  return String(value);
}

// A Sweep: its trials as a table (state, params, value; the best highlighted), and the value against the trial.
function sweepView(box, state) {
  if (!box.sweep) {
    const summary = h("div", { class: "lnb-view-summary" });
    const table = h("table", { class: "lnb-trials" });
    const chart = h("div", { class: "lnb-chart lnb-sweep-chart" });
    box.replaceChildren(summary, table, chart);
    box.sweep = { summary, table, chart: new LiveChart(chart, { time: false, dots: true, height: 160, xLabel: "trial" }) };
  }
  const { summary, table, chart } = box.sweep;
  const trials = state.trials || [];
  const finished = trials.filter((trial) => trial.state !== "running").length;
  const best = trials.find((trial) => trial.number === state.best_trial);
  summary.textContent = `${trials.length} of ${state.n_trials ?? "?"} trials started, ${finished} ended` +
    (best ? ` · best: trial ${best.number}, ${state.metric} ${fmt(best.value)} (${state.direction})` : "");
  const names = [...new Set(trials.flatMap((trial) => Object.keys(trial.params || {})))];
  const head = h("tr", {}, h("th", {}, "trial"), h("th", {}, "state"), ...names.map((name) => h("th", {}, name)),
    h("th", {}, state.metric || "value"));
  const rows = trials.map((trial) => h("tr", {
    class: `lnb-trial lnb-trial-${trial.state}${trial.number === state.best_trial ? " lnb-best" : ""}`,
    "data-trial": String(trial.number), "data-state": trial.state,
    title: trial.number === state.best_trial ? "the best trial so far" : "",
  }, h("td", {}, `${trial.number === state.best_trial ? "★ " : ""}${trial.number}`),
  h("td", { class: "lnb-trial-state" }, trial.state),
  ...names.map((name) => h("td", {}, fmt((trial.params || {})[name]))),
  h("td", { class: "lnb-trial-value" }, fmt(trial.value))));
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...rows));
  const scored = trials.filter((trial) => typeof trial.value === "number");
  chart.setSeries([{ label: state.metric || "value" }]);
  chart.replace(scored.map((trial) => trial.number), [scored.map((trial) => trial.value)]);
}

// A LoadTest: requests per second and latency percentiles, as figures and a chart over time (each new set
// of figures the kernel sends is one more point).
const LOAD_FIGURES = [["rps", "req/s"], ["p50_ms", "p50 ms"], ["p95_ms", "p95 ms"], ["p99_ms", "p99 ms"],
  ["requests", "requests"], ["failures", "failures"]];

function loadTestView(box, state) {
  if (!box.load) {
    const figures = h("div", { class: "lnb-figures" });
    const cells = {};
    for (const [key, label] of LOAD_FIGURES) {
      cells[key] = h("span", { class: "lnb-figure-value" });
      figures.append(h("span", { class: "lnb-figure", "data-figure": key }, h("span", { class: "lnb-figure-label" }, label), cells[key]));
    }
    const chart = h("div", { class: "lnb-chart lnb-load-chart" });
    box.replaceChildren(figures, chart);
    box.load = { cells, chart: new LiveChart(chart, { height: 160 }) };
    box.load.chart.setSeries([{ label: "p50 ms", scale: "ms" }, { label: "p95 ms", scale: "ms" },
      { label: "p99 ms", scale: "ms" }, { label: "req/s", scale: "req/s" }]);
  }
  for (const [key] of LOAD_FIGURES) {
    const value = state[key];
    box.load.cells[key].textContent = key === "rps" && value != null ? value.toFixed(1) : fmt(value, 3);
  }
  if (state.requests) box.load.chart.push(Date.now() / 1000, [state.p50_ms, state.p95_ms, state.p99_ms, state.rps]);
}

const VIEWS = { sweep: sweepView, loadtest: loadTestView };

function renderView(row, view) {
  const draw = view ? VIEWS[view.kind] : null;
  row.view.style.display = draw ? "" : "none";
  if (!draw) return;
  const key = JSON.stringify(view.state);
  if (row.viewKey === key) return; // the same state again (a redraw, not a change)
  row.viewKey = key;
  row.view.dataset.kind = view.kind;
  draw(row.view, view.state);
}

function render({ model, el }) {
  const kernel = watchKernel(model, el, () => markGone());
  const send = (message) => kernel.send(message);
  let components = {};
  let seq = -1;
  let base = -1;

  const title = h("span", { class: "lnb-title" });
  const appStage = h("span", { class: "lnb-app-stage" });
  const stopButton = h("button", { class: "lnb-btn", onclick: () => send({ type: "stop_app" }) }, "■ Stop");
  const restartButton = h("button", { class: "lnb-btn", onclick: () => send({ type: "restart" }) }, "↻ Restart");
  const endMessage = h("pre", { class: "lnb-end" });
  const goneNotice = h("div", { class: "lnb-gone", style: "display: none" },
    "The kernel of this view restarted or stopped: this app is gone. Run the notebook's cells again to start it anew.");
  const tabBar = h("div", { class: "lnb-tabs" });
  const body = h("div", { class: "lnb-body" });
  const root = h("div", { class: "lnb-app" },
    h("div", { class: "lnb-header" }, title, appStage, h("span", { class: "lnb-spacer" }), stopButton, restartButton),
    goneNotice, endMessage, tabBar, body);
  el.append(root);

  const mainTree = new Tree(null, send);
  const panes = new Map(); // tab key -> {element, tree?, frame?}
  let active = "components";

  function flatTabs(tabs, prefix = "") {
    const result = [];
    for (const tab of tabs || []) {
      const key = `${prefix}${tab.name}`;
      result.push({ ...tab, key, label: prefix ? `${prefix}${tab.name}` : tab.name });
      if (tab.kind === "flow" && tab.tabs && tab.tabs.length) result.push(...flatTabs(tab.tabs, `${key} › `));
    }
    return result;
  }

  // Why a tab's page cannot be shown any more (its app or work ended, or the kernel went away), or null.
  function pageGone(tab) {
    if (kernel.gone) return "the kernel of this view is gone: this page is no longer served";
    const header = model.get("header") || {};
    const work = tab.component ? components[tab.component] : null;
    if (work && ENDED.has(work.stage)) return `${tab.component} ${work.stage}: its page is no longer served`;
    if (ENDED.has(header.stage)) return `the app ${header.stage}: ${tab.component || "this page"} is no longer served`;
    return null;
  }

  function pane(tab) {
    let entry = panes.get(tab.key);
    if (!entry) {
      entry = { element: h("div", { class: "lnb-pane" }) };
      panes.set(tab.key, entry);
    }
    if (tab.kind === "flow") {
      if (!entry.tree) {
        entry.tree = new Tree(tab.component, send);
        entry.element.replaceChildren(entry.tree.element);
      }
      entry.tree.proxy = model.get("proxy");
      entry.tree.update(components, null);
    } else if (tab.kind === "url") {
      const src = frameUrl(tab, model.get("proxy"));
      const ended = pageGone(tab);
      const key = ended ? `ended:${ended}` : src ? `src:${src}` : "waiting";
      if (entry.key !== key) {
        entry.key = key;
        if (ended) {
          entry.element.replaceChildren(h("div", { class: "lnb-wait lnb-page-stopped" }, `■ stopped — ${ended}`));
        } else if (!src) {
          entry.element.replaceChildren(h("div", { class: "lnb-wait" }, `waiting for ${tab.component} to serve its page…`));
        } else {
          // Sized to the notebook's view; the box's corner resizes it.
          entry.element.replaceChildren(
            h("div", { class: "lnb-frame-bar" }, h("a", { href: src, target: "_blank", rel: "noopener" }, `${src} ↗`)),
            h("div", { class: "lnb-frame-box" }, h("iframe", { class: "lnb-frame", src, title: tab.name })));
        }
      }
    } else {
      entry.element.replaceChildren(h("pre", { class: "lnb-error" }, tab.message || "bad tab"));
    }
    return entry;
  }

  function renderTabs() {
    const tabs = flatTabs(model.get("tabs"));
    tabBar.style.display = tabs.length ? "" : "none";
    if (!tabs.some((tab) => tab.key === active)) active = "components";
    const buttons = [h("button", { class: `lnb-tab ${active === "components" ? "lnb-active" : ""}`,
      onclick: () => { active = "components"; renderTabs(); } }, "Components")];
    for (const tab of tabs) {
      buttons.push(h("button", { class: `lnb-tab ${active === tab.key ? "lnb-active" : ""}`,
        onclick: () => { active = tab.key; renderTabs(); } }, tab.label));
    }
    tabBar.replaceChildren(...buttons);
    const current = tabs.find((tab) => tab.key === active);
    body.replaceChildren(current ? pane(current).element : mainTree.element);
  }

  function renderHeader() {
    const header = model.get("header") || {};
    title.textContent = (header.name ? `${header.name}` : "app") + (header.resumed ? " (resumed)" : "");
    title.title = header.resumed ? `${header.id || ""}: ${header.resumed}` : header.id || "";
    appStage.replaceChildren(stageBadge(header.stage || "not_started"));
    stopButton.style.display = header.stage === "running" ? "" : "none";
    restartButton.style.display = model.get("can_restart") ? "" : "none";
    if (kernel.gone) {
      appStage.replaceChildren(h("span", { class: "lnb-stage lnb-stage-gone", title: "the kernel went away" }, "⊘ gone"));
    }
    endMessage.style.display = header.end_message ? "" : "none";
    endMessage.textContent = header.end_message || "";
    endMessage.className = `lnb-end ${header.stage === "failed" ? "lnb-end-failed" : ""}`;
  }

  function sync() {
    let changed = null;
    if (model.get("base_seq") !== base) {
      base = model.get("base_seq");
      components = JSON.parse(JSON.stringify(model.get("components") || {}));
      seq = base;
    }
    const patch = model.get("patch") || { seq: 0, changes: {} };
    if (patch.seq === seq + 1) {
      changed = [];
      for (const [name, change] of Object.entries(patch.changes || {})) {
        if (change === null) delete components[name];
        else components[name] = { ...(components[name] || {}), ...change };
        changed.push(name);
      }
      seq = patch.seq;
    } else if (patch.seq > seq + 1) {
      send({ type: "refresh" }); // a patch was missed: ask for everything
    }
    mainTree.proxy = model.get("proxy");
    mainTree.update(components, changed);
    for (const [, entry] of panes) if (entry.tree) entry.tree.update(components, changed);
    renderHeader();
    const current = flatTabs(model.get("tabs")).find((tab) => tab.key === active);
    if (current && current.kind === "url") pane(current); // the page may have stopped being served
  }

  // The kernel went away: say so, turn every button that would talk to it off, and drop the pages.
  function markGone() {
    root.classList.add("lnb-app-gone");
    goneNotice.style.display = "";
    for (const button of root.querySelectorAll("button.lnb-btn")) {
      button.disabled = true;
      button.title = "the kernel of this view is gone";
    }
    renderHeader();
    renderTabs();
  }

  const onChange = () => sync();
  const onTabs = () => renderTabs();
  const synced = ["change:base_seq", "change:patch", "change:header", "change:can_restart", "change:proxy"];
  for (const event of synced) model.on(event, onChange);
  model.on("change:tabs", onTabs);
  sync();
  renderTabs();
  return () => {
    kernel.stop();
    for (const event of synced) model.off(event, onChange);
    model.off("change:tabs", onTabs);
  };
}

export default { render };
