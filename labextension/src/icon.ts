/** The panel's icons: a lightning bolt for the sidebar tab, and one glyph per stage (coloured by CSS). */

import { LabIcon } from '@jupyterlab/ui-components';

function icon(name: string, body: string): LabIcon {
  return new LabIcon({
    name: `lightnb:${name}`,
    svgstr: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16" width="16" height="16">${body}</svg>`
  });
}

export const lightningIcon = icon(
  'lightning',
  '<path class="jp-icon3" fill="#616161" d="M9 1 3 9.2h4L6.2 15 13 6.6H9z"/>'
);

/** Stage glyphs: drawn in `currentColor`, so that the stage's CSS class picks the colour. */
export const stageIcons: { [stage: string]: LabIcon } = {
  not_started: icon('stage-not-started', '<circle cx="8" cy="8" r="5" fill="none" stroke="currentColor" stroke-width="1.6"/>'),
  pending: icon(
    'stage-pending',
    '<circle cx="8" cy="8" r="5.5" fill="none" stroke="currentColor" stroke-width="1.6" stroke-dasharray="2.2 2"/>'
  ),
  running: icon(
    'stage-running',
    '<circle cx="8" cy="8" r="6" fill="none" stroke="currentColor" stroke-opacity="0.3" stroke-width="1.6"/>' +
      '<path d="M8 2a6 6 0 0 1 6 6" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round"/>' +
      '<path d="M6.5 5.5v5l4-2.5z" fill="currentColor"/>'
  ),
  succeeded: icon(
    'stage-succeeded',
    '<circle cx="8" cy="8" r="6.5" fill="currentColor"/>' +
      '<path d="m5 8.2 2 2 4-4.4" fill="none" stroke="#fff" stroke-width="1.7" stroke-linecap="round" stroke-linejoin="round"/>'
  ),
  failed: icon(
    'stage-failed',
    '<circle cx="8" cy="8" r="6.5" fill="currentColor"/>' +
      '<path d="m5.7 5.7 4.6 4.6m0-4.6-4.6 4.6" stroke="#fff" stroke-width="1.7" stroke-linecap="round"/>'
  ),
  stopped: icon(
    'stage-stopped',
    '<circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="1.6"/>' +
      '<rect x="5.5" y="5.5" width="5" height="5" rx="0.8" fill="currentColor"/>'
  )
};
