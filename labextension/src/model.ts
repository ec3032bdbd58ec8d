/**
 * The side panel's model of the `lightnb` comm protocol (docs/comm-protocol.md): the state of every app
 * of a kernel, and a pure reducer that applies one kernel message to it.
 *
 * Nothing here touches JupyterLab or the DOM, so it is tested on its own (src/__tests__/model.spec.ts).
 * Kernel messages are untrusted input: a message this front end cannot use is reported as a warning and
 * leaves the state as it was, never an exception.
 */

/** The protocol version this front end speaks. */
export const PROTOCOL_VERSION = 1;

/** The comm target the kernel registers on `%load_ext lightnb`. */
export const COMM_TARGET = 'lightnb';

export type AppStage = 'not_started' | 'running' | 'stopped' | 'failed';
export type WorkStage = 'not_started' | 'pending' | 'running' | 'succeeded' | 'failed' | 'stopped';

export interface IComponent {
  name: string;
  parent: string | null;
  kind: 'flow' | 'work';
  class: string;
  stage: WorkStage | null;
  message: string | null;
  progress: number | null;
  url: string | null;
  port: number | null;
  logs: string[];
  /** The component's `metrics` (finite numbers by name) as last sent, or null. */
  metrics: { [name: string]: number } | null;
  /** The values each metric took, oldest first, one per patch that changed them (the last SPARK_POINTS). */
  history: { [name: string]: number[] };
}

/** Points a metric's sparkline keeps. */
export const SPARK_POINTS = 60;

export interface IApp {
  id: string;
  name: string;
  stage: AppStage;
  end_message: string | null;
  components: { [name: string]: IComponent };
}

export interface IState {
  /** The apps of the kernel, in the order the kernel first reported them. */
  apps: IApp[];
  /** `seq` of the last message applied; null before the first snapshot. */
  seq: number | null;
  /** True once a snapshot arrived, false again when a refresh was asked for and none came yet. */
  synced: boolean;
}

/** What the caller should do after a message, besides showing the new state. */
export type Effect =
  | { kind: 'warn'; message: string }
  | { kind: 'refresh' }
  | { kind: 'ack'; id: string; ok: boolean; error: string | null }
  | { kind: 'reveal'; app: string };

export interface IResult {
  state: IState;
  effects: Effect[];
}

export const EMPTY_STATE: IState = Object.freeze({ apps: [], seq: null, synced: false }) as IState;

/** The commands a front end sends (`{"type": "cmd", ...}`). */
export type Command =
  | { cmd: 'stop_app'; app: string }
  | { cmd: 'stop_work'; app: string; work: string }
  | { cmd: 'reveal_view'; app: string }
  | { cmd: 'refresh' };

/** The message opening the comm. */
export function helloMessage(): { [key: string]: unknown } {
  return { v: PROTOCOL_VERSION, type: 'hello', client: 'jupyterlab-sidepanel' };
}

/** A command message with its id. */
export function commandMessage(id: string, command: Command): { [key: string]: unknown } {
  return { v: PROTOCOL_VERSION, type: 'cmd', id, ...command };
}

/**
 * Apply one kernel → front end message to the state.
 *
 * Example:
 *   let { state } = reduce(EMPTY_STATE, { v: 1, type: 'snapshot', seq: 0, apps: [...] });
 *   ({ state } = reduce(state, { v: 1, type: 'patch', seq: 1, apps: [...], removed: [] }));
 */
export function reduce(state: IState, message: unknown): IResult {
  if (!isObject(message)) {
    return warn(state, `ignored a message that is not a JSON object: ${preview(message)}`);
  }
  const v = message.v;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    return warn(state, `ignored a message without a valid protocol version "v": ${preview(message)}`);
  }
  if (v > PROTOCOL_VERSION) {
    return warn(
      state,
      `ignored a "${String(message.type)}" message of protocol version ${v}; this panel speaks ` +
        `version ${PROTOCOL_VERSION} (update the lightnb JupyterLab extension)`
    );
  }
  switch (message.type) {
    case 'snapshot':
      return applySnapshot(state, message);
    case 'patch':
      return applyPatch(state, message);
    case 'ack':
      return applyAck(state, message);
    case 'reveal':
      return typeof message.app === 'string'
        ? { state, effects: [{ kind: 'reveal', app: message.app }] }
        : warn(state, `ignored a "reveal" message without an app id: ${preview(message)}`);
    default:
      return warn(state, `ignored a message of unknown type "${String(message.type)}"`);
  }
}

function applySnapshot(state: IState, message: { [key: string]: unknown }): IResult {
  const effects: Effect[] = [];
  if (!Array.isArray(message.apps)) {
    return warn(EMPTY_STATE, 'ignored a snapshot without an "apps" list', [{ kind: 'refresh' }]);
  }
  const apps: IApp[] = [];
  for (const raw of message.apps) {
    const known = isObject(raw) ? state.apps.find(a => a.id === raw.id) : undefined;
    const app = parseApp(raw, undefined, effects, known);
    if (app && !apps.some(a => a.id === app.id)) {
      apps.push(app);
    }
  }
  return { state: { apps, seq: seqOf(message), synced: true }, effects };
}

function applyPatch(state: IState, message: { [key: string]: unknown }): IResult {
  const effects: Effect[] = [];
  if (!state.synced && state.seq === null) {
    // A patch is relative to a snapshot we never saw: ask for one rather than guess.
    return { state, effects: [{ kind: 'refresh' }] };
  }
  const seq = seqOf(message);
  let synced = state.synced;
  if (seq !== null && state.seq !== null && seq !== state.seq + 1) {
    if (seq <= state.seq) {
      return warn(state, `ignored an out-of-order patch (seq ${seq} after ${state.seq})`);
    }
    // Messages were lost: apply what we have (better than a frozen panel) and ask for a snapshot.
    if (state.synced) {
      effects.push({ kind: 'refresh' });
    }
    synced = false;
  }
  const apps = state.apps.slice();
  for (const raw of Array.isArray(message.apps) ? message.apps : []) {
    if (!isObject(raw) || typeof raw.id !== 'string') {
      effects.push({ kind: 'warn', message: `ignored an app without an id in a patch: ${preview(raw)}` });
      continue;
    }
    const index = apps.findIndex(a => a.id === raw.id);
    const app = parseApp(raw, index >= 0 ? apps[index] : undefined, effects);
    if (!app) {
      continue;
    }
    if (index >= 0) {
      apps[index] = app;
    } else {
      apps.push(app);
    }
  }
  const removed = Array.isArray(message.removed) ? message.removed : [];
  const kept = apps.filter(a => !removed.includes(a.id));
  return { state: { apps: kept, seq: seq ?? state.seq, synced }, effects };
}

function applyAck(state: IState, message: { [key: string]: unknown }): IResult {
  if (typeof message.id !== 'string') {
    return warn(state, `ignored an ack without a command id: ${preview(message)}`);
  }
  const ok = message.ok === true;
  const error = typeof message.error === 'string' ? message.error : ok ? null : 'the kernel refused the command';
  return { state, effects: [{ kind: 'ack', id: message.id, ok, error }] };
}

/**
 * An app from a snapshot (no `previous`) or a patch (merged onto `previous`: fields present replace,
 * a component mapped to null is removed, a component's fields merge onto the one known).
 */
function parseApp(raw: unknown, previous: IApp | undefined, effects: Effect[], known?: IApp): IApp | null {
  if (!isObject(raw) || typeof raw.id !== 'string' || raw.id === '') {
    effects.push({ kind: 'warn', message: `ignored an app without an id: ${preview(raw)}` });
    return null;
  }
  const components: { [name: string]: IComponent } = previous ? { ...previous.components } : {};
  if (isObject(raw.components)) {
    for (const [name, value] of Object.entries(raw.components)) {
      if (value === null) {
        delete components[name];
        continue;
      }
      const component = parseComponent(name, value, components[name], known?.components[name]);
      if (component) {
        components[name] = component;
      } else {
        effects.push({ kind: 'warn', message: `ignored component "${name}" of app ${raw.id}: ${preview(value)}` });
      }
    }
  }
  return {
    id: raw.id,
    name: str(raw.name) ?? previous?.name ?? raw.id,
    stage: (str(raw.stage) as AppStage | null) ?? previous?.stage ?? 'not_started',
    end_message: 'end_message' in raw ? str(raw.end_message) : (previous?.end_message ?? null),
    components
  };
}

function parseComponent(
  name: string,
  raw: unknown,
  previous: IComponent | undefined,
  known?: IComponent
): IComponent | null {
  if (!isObject(raw)) {
    return null;
  }
  const pick = <K extends keyof IComponent>(key: K, parse: (x: unknown) => IComponent[K], fallback: IComponent[K]) =>
    key in raw ? parse(raw[key]) : previous ? previous[key] : fallback;
  const lastDot = name.lastIndexOf('.');
  const metrics = pick('metrics', parseMetrics, null);
  const before = previous?.history ?? known?.history ?? {};
  // A patch carries `metrics` only when they changed: each one that does is one more point. A snapshot of an
  // app already shown (a refresh) carries them too: the same values as before are no new point.
  const same = !previous && known !== undefined && JSON.stringify(known.metrics) === JSON.stringify(metrics);
  const history = 'metrics' in raw && !same ? appendMetrics(before, metrics, SPARK_POINTS) : before;
  return {
    name,
    parent: pick('parent', str, lastDot > 0 ? name.slice(0, lastDot) : null),
    kind: pick('kind', x => (x === 'flow' ? 'flow' : 'work'), 'work'),
    class: pick('class', x => str(x) ?? '', ''),
    stage: pick('stage', x => str(x) as WorkStage | null, null),
    message: pick('message', str, null),
    progress: pick('progress', x => (typeof x === 'number' && x >= 0 && x <= 1 ? x : null), null),
    url: pick('url', x => str(x) || null, null),
    port: pick('port', x => (typeof x === 'number' && Number.isInteger(x) && x > 0 && x < 65536 ? x : null), null),
    logs: pick('logs', x => (Array.isArray(x) ? x.map(line => String(line)) : []), []),
    metrics,
    history
  };
}

function parseMetrics(x: unknown): { [name: string]: number } | null {
  if (!isObject(x)) {
    return null;
  }
  const numbers = Object.entries(x).filter(([, value]) => typeof value === 'number' && Number.isFinite(value));
  return numbers.length ? (Object.fromEntries(numbers) as { [name: string]: number }) : null;
}

/**
 * `history` with one more point per metric of `metrics` (a new object; the last `max` points kept). A
 * metric that is no longer sent keeps its points.
 *
 * Example: appendMetrics({loss: [3, 2]}, {loss: 1}, 60) → {loss: [3, 2, 1]}
 */
export function appendMetrics(
  history: { [name: string]: number[] },
  metrics: { [name: string]: number } | null,
  max: number
): { [name: string]: number[] } {
  if (!metrics) {
    return history;
  }
  const next = { ...history };
  for (const [name, value] of Object.entries(metrics)) {
    next[name] = [...(history[name] ?? []), value].slice(-max);
  }
  return next;
}

/**
 * The `points` of an SVG polyline drawing `values` in a `width` × `height` box: the first value at the left,
 * the last at the right, the lowest at the bottom and the highest at the top (all equal: a line across the
 * middle). Coordinates are rounded to 0.1.
 *
 * Example: sparklinePoints([0, 1], 10, 4) === '0,4 10,0'
 */
export function sparklinePoints(values: number[], width: number, height: number): string {
  if (values.length === 0) {
    return '';
  }
  const low = Math.min(...values);
  const high = Math.max(...values);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const round = (x: number) => Math.round(x * 10) / 10;
  return values
    .map((value, index) => {
      const y = high === low ? height / 2 : height - ((value - low) / (high - low)) * height;
      return `${round(index * step)},${round(y)}`;
    })
    .join(' ');
}

/** A component and its children, in the order the kernel listed them. */
export interface ITreeNode {
  component: IComponent;
  children: ITreeNode[];
}

/** The app's component tree: roots are the components whose parent is not a component of the app. */
export function componentTree(app: IApp): ITreeNode[] {
  const nodes = new Map<string, ITreeNode>();
  for (const component of Object.values(app.components)) {
    nodes.set(component.name, { component, children: [] });
  }
  const roots: ITreeNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.component.parent === null ? undefined : nodes.get(node.component.parent);
    if (parent && parent !== node) {
      parent.children.push(node);
    } else {
      roots.push(node);
    }
  }
  return roots;
}

/** The works of an app, in tree order. */
export function worksOf(app: IApp): IComponent[] {
  const works: IComponent[] = [];
  const walk = (nodes: ITreeNode[]) => {
    for (const node of nodes) {
      if (node.component.kind === 'work') {
        works.push(node.component);
      }
      walk(node.children);
    }
  };
  walk(componentTree(app));
  return works;
}

/** The last part of a dotted component name (`root.serve.gradio` → `gradio`). */
export function shortName(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '0.0.0.0', '::1', '[::1]']);

/**
 * Where the browser opens a component's page: a page served over HTTP on this machine goes through
 * jupyter-server-proxy (`{baseUrl}proxy/{port}/{path}`, with the trailing slash pages like TensorBoard
 * need), so it works on JupyterHub and Binder too; any other URL is opened as it is.
 * Returns null when the component serves no page.
 *
 * Example: proxiedPageUrl({url: 'http://127.0.0.1:8080/status', port: 8080}, '/user/me/')
 *          === '/user/me/proxy/8080/status'
 */
export function proxiedPageUrl(component: Pick<IComponent, 'url' | 'port'>, baseUrl: string): string | null {
  const base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
  let parsed: URL | null = null;
  if (component.url) {
    try {
      parsed = new URL(component.url);
    } catch {
      parsed = null;
    }
  }
  if (parsed && (parsed.protocol !== 'http:' || !LOOPBACK_HOSTS.has(parsed.hostname))) {
    // The proxy speaks plain HTTP to this machine; anything else is opened as it is.
    return parsed.href;
  }
  const port = component.port ?? (parsed?.port ? Number(parsed.port) : null);
  if (port === null) {
    return parsed ? parsed.href : null;
  }
  const rest = parsed ? (parsed.pathname + parsed.search + parsed.hash).replace(/^\//, '') : '';
  return `${base}proxy/${port}/${rest}`;
}

function seqOf(message: { [key: string]: unknown }): number | null {
  return typeof message.seq === 'number' && Number.isInteger(message.seq) ? message.seq : null;
}

function warn(state: IState, message: string, more: Effect[] = []): IResult {
  return { state, effects: [{ kind: 'warn', message }, ...more] };
}

function isObject(x: unknown): x is { [key: string]: unknown } {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function str(x: unknown): string | null {
  return typeof x === 'string' ? x : null;
}

function preview(x: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(x) ?? String(x);
  } catch {
    text = String(x);
  }
  return text.length > 120 ? text.slice(0, 117) + '...' : text;
}

/**
 * The apps to list: every app that has not ended, and of the ended ones with the same name only the latest
 * (re-running a cell starts a new app of the same name; the ones before it pile up otherwise), with how many
 * earlier ended runs of that name are not shown. The kernel's order (oldest first) is kept.
 */
export function latestOfEachName(apps: IApp[]): { app: IApp; earlier: number }[] {
  const ended = (app: IApp) => app.stage === 'stopped' || app.stage === 'failed';
  const last = new Map<string, number>();
  apps.forEach((app, index) => last.set(app.name, index));
  const hidden = new Map<string, number>();
  const shown = apps.filter((app, index) => {
    const keep = !ended(app) || last.get(app.name) === index;
    if (!keep) {
      hidden.set(app.name, (hidden.get(app.name) ?? 0) + 1);
    }
    return keep;
  });
  return shown.map(app => ({ app, earlier: last.get(app.name) === apps.indexOf(app) ? hidden.get(app.name) ?? 0 : 0 }));
}
