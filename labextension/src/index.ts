/**
 * lightnb's JupyterLab extension: a "Lightning apps" panel in the left sidebar showing the live apps of
 * the current notebook's kernel, and commands to stop apps and works, open the pages works serve, and
 * show an app's view in the notebook.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { registerCommands } from './commands';
import { KernelLink } from './link';
import { AppsPanel } from './panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'lightnb:panel',
  description: 'The live Lightning apps of the current notebook, in the left sidebar.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const link = new KernelLink();
    const notebookName = () => link.session?.name || null;
    const panel = new AppsPanel(link, app.commands, () => PageConfig.getBaseUrl(), notebookName);
    app.shell.add(panel, 'left', { rank: 210 });
    restorer?.add(panel, panel.id);
    registerCommands(app, link, notebooks, panel.id, palette);
    // `%lightnb view --panel` in the kernel: bring the panel, and the app in it, into sight.
    link.revealRequested.connect((_, appId) => {
      app.shell.activateById(panel.id);
      panel.scrollToApp(appId);
    });

    // Follow the notebook the user works in (the tracker keeps the last one focused while another kind
    // of tab, such as a work's page, is in front).
    const follow = (current: NotebookPanel | null) => link.setSession(current?.sessionContext ?? null);
    notebooks.currentChanged.connect((_, current) => follow(current));
    follow(notebooks.currentWidget);
    // After a page reload the notebooks are restored before their sessions exist: the link waits for the
    // session's kernelChanged, but the tracker may only learn of the current notebook once restored.
    void notebooks.restored.then(() => follow(notebooks.currentWidget));
  }
};

export default plugin;
