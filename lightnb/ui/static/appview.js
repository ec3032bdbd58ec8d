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
      logsBox: h("details", { class: "lnb-logs-box" }),
      error: h("pre", { class: "lnb-error" }),
    };
    row.stop.addEventListener("click", () => this.send({ type: "stop_work", work: name }));
    row.logsBox.append(h("summary", {}, "output"), row.logs);
    const line = h("div", { class: "lnb-line" }, row.stage, row.name, row.cls, row.bar, row.percent,
      row.link, row.stop);
    row.element = h("div", { class: "lnb-row", style: `margin-left: ${depth * 1.2}em`, "data-name": name },
      line, row.error, row.chart, row.logsBox);
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
    const text = logs.join("\n");
    if (row.logs.dataset.text !== text) {
      row.logs.dataset.text = text;
      row.logs.innerHTML = ansiHtml(text);
    }
  }
}

// A live line chart of a component's `metrics` (uPlot): each new value the kernel sends (at most 10 a
// second, only when they changed) is one more point; the last MAX_POINTS are kept.
const MAX_POINTS = 2000;
const COLOURS = ["#1976d2", "#d32f2f", "#388e3c", "#f57c00", "#7b1fa2", "#0097a7", "#5d4037", "#c2185b"];

function plotMetrics(row, metrics) {
  const names = Object.keys(metrics);
  const key = JSON.stringify(metrics);
  if (row.metricsKey === key) return; // the same values again (a redraw, not a new point)
  row.metricsKey = key;
  if (!row.series || row.series.join("\u0000") !== names.join("\u0000")) {
    row.series = names;
    row.points = [[], ...names.map(() => [])];
    if (row.plot) row.plot.destroy();
    row.plot = null;
  }
  row.points[0].push(Date.now() / 1000);
  names.forEach((name, index) => row.points[index + 1].push(metrics[name]));
  if (row.points[0].length > MAX_POINTS) for (const column of row.points) column.shift();
  row.chart.dataset.points = String(row.points[0].length);
  if (!row.plot) {
    const width = Math.max(240, Math.min(720, (row.element.clientWidth || 600) - 20));
    row.plot = new uPlot({
      width, height: 180,
      series: [{}, ...names.map((name, index) => ({ label: name, stroke: COLOURS[index % COLOURS.length], width: 1.5 }))],
      scales: { x: { time: true } },
      legend: { live: true },
    }, row.points, row.chart);
  } else {
    row.plot.setData(row.points);
  }
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
