/**
 * The "Lightning apps" side panel: the apps of the current notebook's kernel, their component trees, the
 * works' stages, progress and pages, with buttons that run the extension's commands.
 *
 * Drawn with Lumino's virtual DOM: patches arrive up to 10 times a second, and updating the existing
 * nodes in place (instead of rebuilding them) keeps a button under the pointer clickable and an opened
 * traceback open.
 */

import { LabIcon, launchIcon, notebookIcon, refreshIcon, stopIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { VirtualDOM, VirtualElement, VirtualNode, h, hpass } from '@lumino/virtualdom';
import { Widget } from '@lumino/widgets';

import { AnsiUp } from 'ansi_up';

import { CommandIDs } from './commands';
import { lightningIcon, stageIcons } from './icon';
import { KernelLink } from './link';
import { IApp, IComponent, ITreeNode, componentTree, latestOfEachName, proxiedPageUrl, shortName, sparklinePoints } from './model';

export class AppsPanel extends Widget {
  constructor(
    private readonly _link: KernelLink,
    private readonly _commands: CommandRegistry,
    private readonly _baseUrl: () => string,
    private readonly _notebookName: () => string | null
  ) {
    super();
    this.id = 'lightnb-apps-panel';
    this.addClass('jp-LightnbPanel');
    this.title.icon = lightningIcon;
    this.title.caption = 'Lightning apps';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Lightning apps');
    _link.changed.connect(this.render, this);
    this.render();
  }

  dispose(): void {
    this._link.changed.disconnect(this.render, this);
    super.dispose();
  }

  render(): void {
    this.node.dataset.status = this._link.status;
    VirtualDOM.render([this._header(), h.div({ className: 'jp-LightnbPanel-body' }, ...this._body())], this.node);
  }

  /** Scroll the panel to an app (once it is drawn). */
  scrollToApp(appId: string): void {
    requestAnimationFrame(() => {
      this.node.querySelector(`[data-app-id="${CSS.escape(appId)}"]`)?.scrollIntoView({ block: 'nearest' });
    });
  }

  private _body(): VirtualNode[] {
    switch (this._link.status) {
      case 'no-kernel':
        return [hint('Open a notebook with a running kernel to see its Lightning apps.')];
      case 'waiting':
        return [hint('Waiting for the kernel…')];
      case 'connecting':
        return [hint('Connecting to the kernel…')];
      case 'not-loaded':
        return [
          h.div(
            { className: 'jp-LightnbPanel-hint jp-LightnbPanel-notLoaded' },
            'lightnb is not loaded in this kernel. Run ',
            h.code('%load_ext lightnb'),
            ' in the notebook to see its apps here.'
          )
        ];
    }
    const apps = this._link.state.apps;
    if (apps.length === 0) {
      return [hint('No Lightning app in this kernel yet: start one with app.start() or %lightnb run.')];
    }
    return latestOfEachName(apps).map(({ app, earlier }) => this._app(app, earlier));
  }

  private _header(): VirtualElement {
    const name = this._notebookName();
    return h.div(
      { className: 'jp-LightnbPanel-header' },
      h.div(
        { className: 'jp-LightnbPanel-titleRow' },
        h.h2({ className: 'jp-LightnbPanel-title' }, 'Lightning apps'),
        this._button(refreshIcon, 'Refresh', CommandIDs.refresh, {}, 'refresh')
      ),
      h.div(
        { className: 'jp-LightnbPanel-notebook', title: name ?? '' },
        ...(name ? [icon(notebookIcon), h.span(name)] : [h.span('no notebook')])
      )
    );
  }

  private _app(app: IApp, earlier = 0): VirtualElement {
    const running = app.stage === 'running' || app.stage === 'not_started';
    return h.section(
      { key: app.id, className: 'jp-LightnbApp', dataset: { 'app-id': app.id, stage: app.stage } },
      h.div(
        { className: 'jp-LightnbApp-header' },
        stageIcon(app.stage),
        h.span({ className: 'jp-LightnbApp-name', title: `${app.name} (${app.id})` }, app.name),
        stageBadge(app.stage),
        h.span(
          { className: 'jp-LightnbActions' },
          this._button(notebookIcon, 'Show the app in the notebook', CommandIDs.revealView, { app: app.id }, 'reveal'),
          running ? this._button(stopIcon, 'Stop the app', CommandIDs.stopApp, { app: app.id }, 'stop-app') : null
        )
      ),
      earlier > 0
        ? h.div(
            { className: 'jp-LightnbApp-earlier' },
            `${earlier} earlier ended run${earlier > 1 ? 's' : ''} of ${app.name} not shown`
          )
        : null,
      app.end_message ? details('Why it ended', app.end_message, 'jp-LightnbApp-end') : null,
      h.ul({ className: 'jp-LightnbTree' }, ...componentTree(app).map(node => this._component(app, node)))
    );
  }

  private _component(app: IApp, node: ITreeNode): VirtualElement {
    const c = node.component;
    const args = { app: app.id, work: c.name };
    const isWork = c.kind === 'work' && c.stage !== null;
    const stoppable = isWork && (c.stage === 'pending' || c.stage === 'running') && app.stage === 'running';
    const page = proxiedPageUrl(c, this._baseUrl());
    const dataset: { [key: string]: string } = { name: c.name, kind: c.kind };
    if (c.stage) {
      dataset.stage = c.stage;
    }
    if (c.progress !== null) {
      dataset.progress = String(c.progress);
    }
    return h.li(
      { key: c.name, className: `jp-LightnbComponent jp-LightnbComponent-${c.kind}`, dataset },
      h.div(
        { className: 'jp-LightnbComponent-row' },
        isWork ? stageIcon(c.stage!) : icon(lightningIcon),
        h.span({ className: 'jp-LightnbComponent-name', title: `${c.name} (${c.class})` }, shortName(c.name)),
        isWork ? stageBadge(c.stage!) : null,
        h.span(
          { className: 'jp-LightnbActions' },
          page ? this._button(launchIcon, 'Open the page in a tab', CommandIDs.openPage, args, 'open-page') : null,
          stoppable ? this._button(stopIcon, 'Stop the work', CommandIDs.stopWork, args, 'stop-work') : null
        )
      ),
      c.progress !== null ? progressBar(c.progress) : null,
      sparklines(c),
      page
        ? h.a(
            {
              className: 'jp-LightnbComponent-url',
              href: page,
              title: `Open ${page} in a tab`,
              onclick: (event: MouseEvent) => {
                event.preventDefault();
                void this._commands.execute(CommandIDs.openPage, args);
              }
            },
            c.url ?? page
          )
        : null,
      c.message && c.stage === 'failed'
        ? details('Error', c.message, 'jp-LightnbComponent-message')
        : c.message
          ? h.div({ className: 'jp-LightnbComponent-note', title: c.message }, c.message)
          : c.logs.length > 0
            ? h.div(
                { className: 'jp-LightnbComponent-log', title: stripAnsi(c.logs.join('\n')) },
                stripAnsi(c.logs[c.logs.length - 1])
              )
            : null,
      node.children.length > 0
        ? h.ul({ className: 'jp-LightnbTree' }, ...node.children.map(child => this._component(app, child)))
        : null
    );
  }

  private _button(
    labIcon: LabIcon,
    title: string,
    command: string,
    args: ReadonlyPartialJSONObject,
    action: string
  ): VirtualElement {
    return h.button(
      {
        key: action,
        type: 'button',
        className: 'jp-LightnbButton jp-Button jp-mod-minimal',
        title,
        'aria-label': title,
        dataset: { action },
        onclick: () => void this._commands.execute(command, args)
      },
      icon(labIcon)
    );
  }
}

/** A work's output line without its ANSI colour codes (the panel shows plain text). */
export function stripAnsi(text: string): string {
  if (!text.includes('\x1b')) {
    return text;
  }
  // ansi_up turns the codes into (escaped, inert) HTML; its text content is the line as printed.
  const holder = document.createElement('div');
  holder.innerHTML = ansi.ansi_to_html(text);
  return holder.textContent ?? text;
}

const ansi = new AnsiUp();

function icon(labIcon: LabIcon, className = 'jp-LightnbIcon'): VirtualElement {
  return hpass('span', { className }, labIcon);
}

function stageIcon(stage: string): VirtualElement {
  return icon(stageIcons[stage] ?? stageIcons.not_started, `jp-LightnbIcon jp-LightnbStageIcon jp-LightnbStage-${stage}`);
}

function stageBadge(stage: string): VirtualElement {
  return h.span({ className: `jp-LightnbStage jp-LightnbStage-${stage}` }, stage.replace('_', ' '));
}

function progressBar(progress: number): VirtualElement {
  const percent = Math.round(progress * 100);
  return h.div(
    {
      className: 'jp-LightnbProgress',
      role: 'progressbar',
      'aria-valuemin': '0',
      'aria-valuemax': '100',
      'aria-valuenow': String(percent)
    },
    h.div({ className: 'jp-LightnbProgress-fill', style: { width: `${percent}%` } }),
    h.span({ className: 'jp-LightnbProgress-label' }, `${percent}%`)
  );
}

const SPARK_WIDTH = 120;
const SPARK_HEIGHT = 18;

/** One small line chart per metric a work streams (its last points), with the latest value. */
function sparklines(c: IComponent): VirtualElement | null {
  const names = Object.keys(c.history).filter(name => c.history[name].length > 0);
  if (names.length === 0) {
    return null;
  }
  return h.div(
    { className: 'jp-LightnbSparklines' },
    ...names.map(name => {
      const values = c.history[name];
      const last = values[values.length - 1];
      const svg =
        `<svg xmlns="http://www.w3.org/2000/svg" width="${SPARK_WIDTH}" height="${SPARK_HEIGHT + 2}" ` +
        `viewBox="-1 -1 ${SPARK_WIDTH + 2} ${SPARK_HEIGHT + 2}" preserveAspectRatio="none"><polyline fill="none" stroke="#1976d2" ` +
        `stroke-width="1.5" vector-effect="non-scaling-stroke" points="${sparklinePoints(values, SPARK_WIDTH, SPARK_HEIGHT)}"/></svg>`;
      return h.div(
        { key: name, className: 'jp-LightnbSparkline', dataset: { metric: name, points: String(values.length) } },
        h.span({ className: 'jp-LightnbSparkline-name', title: name }, name),
        h.img({
          className: 'jp-LightnbSparkline-chart',
          src: `data:image/svg+xml;utf8,${encodeURIComponent(svg)}`,
          alt: `${name}: the last ${values.length} values`
        }),
        h.span({ className: 'jp-LightnbSparkline-value' }, formatValue(last))
      );
    })
  );
}

function formatValue(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

function hint(text: string): VirtualElement {
  return h.div({ className: 'jp-LightnbPanel-hint' }, text);
}

function details(summary: string, text: string, className: string): VirtualElement {
  return h('details', { className }, h('summary', summary), h.pre(text));
}
