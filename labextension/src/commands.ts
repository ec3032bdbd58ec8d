/**
 * The panel's actions as JupyterLab commands (buttons in the panel and entries in the command palette run
 * the same code). Called with arguments (`{app, work}`) they act at once; from the palette, without
 * arguments, they ask which app or work to act on.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, MainAreaWidget, Notification, WidgetTracker } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { ICodeCellModel } from '@jupyterlab/cells';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { IFrame } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { lightningIcon } from './icon';
import { KernelLink } from './link';
import { IApp, IComponent, proxiedPageUrl, shortName, worksOf } from './model';

export namespace CommandIDs {
  export const stopApp = 'lightnb:stop-app';
  export const stopWork = 'lightnb:stop-work';
  export const openPage = 'lightnb:open-work-page';
  export const revealView = 'lightnb:reveal-app-view';
  export const refresh = 'lightnb:refresh';
  export const showPanel = 'lightnb:show-panel';
}

const CATEGORY = 'Lightning Apps';

interface ITarget {
  app: IApp;
  work?: IComponent;
}

export function registerCommands(
  app: JupyterFrontEnd,
  link: KernelLink,
  notebooks: INotebookTracker,
  panelId: string,
  palette: ICommandPalette | null
): void {
  const pages = new WidgetTracker<MainAreaWidget<IFrame>>({ namespace: 'lightnb-pages' });
  const apps = () => link.state.apps;
  const connected = () => link.status === 'connected';

  app.commands.addCommand(CommandIDs.stopApp, {
    label: 'Stop a Lightning App',
    caption: 'Stop the app: every work of it ends',
    icon: lightningIcon,
    isEnabled: () => connected() && apps().some(a => a.stage === 'running'),
    execute: async args => {
      const target = await pick(args, 'Stop which app?', apps().filter(a => a.stage === 'running'), null);
      if (target) {
        await report(link.send({ cmd: 'stop_app', app: target.app.id }), `stop ${target.app.name}`);
      }
    }
  });

  app.commands.addCommand(CommandIDs.stopWork, {
    label: 'Stop a Lightning Work',
    caption: 'Stop one work of an app',
    icon: lightningIcon,
    isEnabled: () => connected() && apps().some(a => worksOf(a).some(isActive)),
    execute: async args => {
      const target = await pick(args, 'Stop which work?', apps(), isActive);
      if (target?.work) {
        const work = target.work.name;
        await report(link.send({ cmd: 'stop_work', app: target.app.id, work }), `stop ${work}`);
      }
    }
  });

  app.commands.addCommand(CommandIDs.openPage, {
    label: 'Open the Page of a Lightning Work',
    caption: 'Show the page a work serves in a tab, through the notebook server',
    icon: lightningIcon,
    isEnabled: () => apps().some(a => worksOf(a).some(hasPage)),
    execute: async args => {
      const target = await pick(args, 'Open the page of which work?', apps(), hasPage, true);
      const url = target?.work ? proxiedPageUrl(target.work, PageConfig.getBaseUrl()) : null;
      if (!target?.work || !url) {
        if (target) {
          Notification.warning(`${target.work?.name ?? target.app.name} serves no page (it has no url yet)`);
        }
        return;
      }
      openPage(app, pages, url, `${shortName(target.work.name)} · ${target.app.name}`);
    }
  });

  app.commands.addCommand(CommandIDs.revealView, {
    label: 'Show a Lightning App in the Notebook',
    caption: "Scroll to the app's view in the notebook, or display it below the active cell",
    icon: lightningIcon,
    isEnabled: () => connected() && apps().length > 0 && link.session !== null,
    execute: async args => {
      const target = await pick(args, 'Show which app?', apps(), null);
      const panel = notebooks.find(p => p.sessionContext === link.session) ?? null;
      if (target && panel) {
        await revealView(app, panel, target.app);
      }
    }
  });

  app.commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh the Lightning Apps Panel',
    icon: lightningIcon,
    execute: () => link.refresh()
  });

  app.commands.addCommand(CommandIDs.showPanel, {
    label: 'Show the Lightning Apps Panel',
    icon: lightningIcon,
    execute: () => app.shell.activateById(panelId)
  });

  // Tell menus and the palette when a command's enabled state may have changed — not on every patch: the
  // palette redraws its items on each notification, and at 10 patches a second they could not be clicked.
  let enabled = '';
  link.changed.connect(() => {
    const now = [CommandIDs.stopApp, CommandIDs.stopWork, CommandIDs.openPage, CommandIDs.revealView]
      .map(id => (app.commands.isEnabled(id) ? '1' : '0'))
      .join('');
    if (now !== enabled) {
      enabled = now;
      app.commands.notifyCommandChanged();
    }
  });

  for (const command of Object.values(CommandIDs)) {
    palette?.addItem({ command, category: CATEGORY });
  }
}

/**
 * The app (and work) named by the command's arguments, or, without arguments, the one the user picks in a
 * dialog among `apps` (and their works that pass `workFilter`; null: pick an app).
 */
async function pick(
  args: ReadonlyPartialJSONObject,
  title: string,
  apps: IApp[],
  workFilter: ((work: IComponent) => boolean) | null,
  anyAppStage = false
): Promise<ITarget | null> {
  if (typeof args.app === 'string') {
    const app = apps.find(a => a.id === args.app);
    if (!app) {
      Notification.warning(`lightnb: no app ${args.app} in this kernel (any more)`);
      return null;
    }
    if (typeof args.work !== 'string') {
      return { app };
    }
    const work = app.components[args.work];
    if (!work) {
      Notification.warning(`lightnb: app ${app.name} has no component ${args.work}`);
      return null;
    }
    return { app, work };
  }
  const choices = new Map<string, ITarget>();
  for (const app of apps) {
    if (!workFilter) {
      choices.set(`${app.name} (${app.id})`, { app });
      continue;
    }
    if (!anyAppStage && app.stage !== 'running') {
      continue;
    }
    for (const work of worksOf(app).filter(workFilter)) {
      choices.set(`${work.name} · ${app.name} (${app.id})`, { app, work });
    }
  }
  if (choices.size === 0) {
    Notification.info(`lightnb: nothing to choose from in the current notebook's kernel`);
    return null;
  }
  const result = await InputDialog.getItem({ title, items: [...choices.keys()] });
  return result.button.accept && result.value ? (choices.get(result.value) ?? null) : null;
}

/** Show `url` in a main-area tab (or bring the tab already showing it to the front). */
function openPage(
  app: JupyterFrontEnd,
  pages: WidgetTracker<MainAreaWidget<IFrame>>,
  url: string,
  title: string
): void {
  const open = pages.find(widget => widget.content.url === url);
  if (open) {
    app.shell.activateById(open.id);
    return;
  }
  // The page is served through the notebook server (same origin): it needs scripts and its own origin.
  const content = new IFrame({
    sandbox: ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-popups', 'allow-downloads', 'allow-modals'],
    referrerPolicy: 'same-origin'
  });
  content.url = url;
  const widget = new MainAreaWidget({ content });
  widget.id = `lightnb-page-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  widget.addClass('jp-LightnbPage');
  widget.title.label = title;
  widget.title.caption = url;
  widget.title.icon = lightningIcon;
  widget.title.closable = true;
  void pages.add(widget);
  app.shell.add(widget, 'main');
  app.shell.activateById(widget.id);
}

/**
 * Bring the app's view into sight: scroll to a cell already showing it, or display it in a new cell below
 * the active one (`%lightnb view <app id>`).
 *
 * The kernel cannot do this alone: what it displays while handling a comm message belongs to no cell, and
 * JupyterLab drops it. A cell shows the app's view when its output holds an element with
 * `data-lightnb-app-id` (the AppView's root), or when it is a `%lightnb view <app id>` cell with output.
 */
async function revealView(app: JupyterFrontEnd, panel: NotebookPanel, target: IApp): Promise<void> {
  app.shell.activateById(panel.id);
  const notebook = panel.content;
  const source = viewSource(target.id);
  const selector = `[data-lightnb-app-id="${CSS.escape(target.id)}"]`;
  let index = notebook.widgets.findIndex(cell => cell.node.querySelector(selector) !== null);
  if (index < 0) {
    index = notebook.widgets.findIndex(
      cell =>
        cell.model.type === 'code' &&
        cell.model.sharedModel.getSource().trim() === source &&
        (cell.model as ICodeCellModel).outputs.length > 0
    );
  }
  if (index >= 0) {
    notebook.activeCellIndex = index;
    await notebook.scrollToItem(index, 'center');
    return;
  }
  NotebookActions.insertBelow(notebook);
  NotebookActions.changeCellType(notebook, 'code');
  notebook.activeCell?.model.sharedModel.setSource(source);
  await NotebookActions.run(notebook, panel.sessionContext);
}

/** The code that displays an app's view in a cell. */
export function viewSource(appId: string): string {
  return `%lightnb view ${appId}`;
}

async function report(action: Promise<void>, what: string): Promise<void> {
  try {
    await action;
  } catch (error) {
    // Stays until dismissed: the user asked for something that did not happen.
    Notification.error(`lightnb: could not ${what}: ${error instanceof Error ? error.message : String(error)}`, {
      autoClose: false
    });
  }
}

function isActive(work: IComponent): boolean {
  return work.stage === 'pending' || work.stage === 'running';
}

function hasPage(work: IComponent): boolean {
  return Boolean(work.url || work.port);
}

