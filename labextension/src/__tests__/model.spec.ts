import {
  EMPTY_STATE,
  IState,
  PROTOCOL_VERSION,
  SPARK_POINTS,
  appendMetrics,
  sparklinePoints,
  commandMessage,
  componentTree,
  helloMessage,
  latestOfEachName,
  proxiedPageUrl,
  reduce,
  worksOf
} from '../model';

const flow = (name: string, parent: string | null = null) => ({
  name,
  parent,
  kind: 'flow',
  class: 'Root',
  stage: null,
  message: null,
  progress: null,
  url: null,
  port: null,
  logs: []
});

const work = (name: string, parent: string, extra: object = {}) => ({
  name,
  parent,
  kind: 'work',
  class: 'TrainWork',
  stage: 'running',
  message: null,
  progress: 0.25,
  url: 'http://127.0.0.1:40123/',
  port: 40123,
  logs: ['epoch 1'],
  ...extra
});

const snapshot = (seq = 0) => ({
  v: 1,
  type: 'snapshot',
  seq,
  apps: [
    {
      id: 'root-1a2b3c4d',
      name: 'Root',
      stage: 'running',
      end_message: null,
      components: { root: flow('root'), 'root.train': work('root.train', 'root') }
    }
  ]
});

function synced(): IState {
  return reduce(EMPTY_STATE, snapshot(12)).state;
}

describe('snapshot', () => {
  it('replaces the state with every app of the kernel, its components and stages', () => {
    const { state, effects } = reduce(EMPTY_STATE, snapshot(12));
    expect(effects).toEqual([]);
    expect(state.synced).toBe(true);
    expect(state.seq).toBe(12);
    expect(state.apps.map(a => [a.id, a.name, a.stage])).toEqual([['root-1a2b3c4d', 'Root', 'running']]);
    const train = state.apps[0].components['root.train'];
    expect(train).toMatchObject({ kind: 'work', stage: 'running', progress: 0.25, port: 40123 });
    expect(train.logs).toEqual(['epoch 1']);
  });

  it('drops the apps a later snapshot no longer lists', () => {
    const { state } = reduce(synced(), { v: 1, type: 'snapshot', seq: 0, apps: [] });
    expect(state.apps).toEqual([]);
    expect(state.seq).toBe(0);
  });

  it('keeps the valid apps of a snapshot holding a broken one, with a warning', () => {
    const message = snapshot();
    (message.apps as unknown[]).push({ name: 'no id' }, 'garbage');
    const { state, effects } = reduce(EMPTY_STATE, message);
    expect(state.apps).toHaveLength(1);
    expect(effects.filter(e => e.kind === 'warn')).toHaveLength(2);
  });

  it('tolerates missing optional fields and bad values', () => {
    const { state } = reduce(EMPTY_STATE, {
      v: 1,
      type: 'snapshot',
      seq: 1,
      apps: [{ id: 'a-1', components: { 'root.w': { kind: 'work', progress: 7, port: 'x', logs: 'no' } } }]
    });
    const app = state.apps[0];
    expect(app.name).toBe('a-1');
    expect(app.stage).toBe('not_started');
    expect(app.components['root.w']).toMatchObject({ parent: 'root', progress: null, port: null, logs: [] });
  });
});

describe('patch', () => {
  it('merges changed fields of a component and keeps the others', () => {
    const { state, effects } = reduce(synced(), {
      v: 1,
      type: 'patch',
      seq: 13,
      apps: [{ id: 'root-1a2b3c4d', components: { 'root.train': { progress: 0.5, logs: ['epoch 2'] } } }],
      removed: []
    });
    expect(effects).toEqual([]);
    expect(state.seq).toBe(13);
    const train = state.apps[0].components['root.train'];
    expect(train.progress).toBe(0.5);
    expect(train.logs).toEqual(['epoch 2']);
    expect(train.stage).toBe('running');
    expect(train.url).toBe('http://127.0.0.1:40123/');
  });

  it('changes app stages, adds and removes components and apps', () => {
    let { state } = reduce(synced(), {
      v: 1,
      type: 'patch',
      seq: 13,
      apps: [
        {
          id: 'root-1a2b3c4d',
          stage: 'stopped',
          end_message: 'stopped from the panel',
          components: { 'root.train': null, 'root.serve': work('root.serve', 'root', { stage: 'pending' }) }
        },
        { id: 'other-00000000', name: 'Other', stage: 'running', end_message: null, components: {} }
      ],
      removed: []
    });
    const root = state.apps[0];
    expect(root.stage).toBe('stopped');
    expect(root.end_message).toBe('stopped from the panel');
    expect(Object.keys(root.components).sort()).toEqual(['root', 'root.serve']);
    expect(state.apps.map(a => a.id)).toEqual(['root-1a2b3c4d', 'other-00000000']);

    ({ state } = reduce(state, { v: 1, type: 'patch', seq: 14, apps: [], removed: ['root-1a2b3c4d'] }));
    expect(state.apps.map(a => a.id)).toEqual(['other-00000000']);
  });

  it('does not change the previous state object (the panel may still be drawing it)', () => {
    const before = synced();
    const copy = JSON.parse(JSON.stringify(before));
    reduce(before, { v: 1, type: 'patch', seq: 13, apps: [{ id: 'root-1a2b3c4d', stage: 'failed' }], removed: [] });
    expect(before).toEqual(copy);
  });

  it('asks for a snapshot when a message was lost, still showing the newest data', () => {
    const { state, effects } = reduce(synced(), {
      v: 1,
      type: 'patch',
      seq: 15,
      apps: [{ id: 'root-1a2b3c4d', components: { 'root.train': { progress: 0.9 } } }],
      removed: []
    });
    expect(effects).toEqual([{ kind: 'refresh' }]);
    expect(state.synced).toBe(false);
    expect(state.apps[0].components['root.train'].progress).toBe(0.9);
    // The next patch in sequence does not ask again; the snapshot answering the refresh syncs it.
    const next = reduce(state, { v: 1, type: 'patch', seq: 16, apps: [], removed: [] });
    expect(next.effects).toEqual([]);
    expect(reduce(next.state, snapshot(40)).state.synced).toBe(true);
  });

  it('ignores a patch older than the state', () => {
    const before = synced();
    const { state, effects } = reduce(before, { v: 1, type: 'patch', seq: 12, apps: [{ id: 'x' }], removed: [] });
    expect(state).toBe(before);
    expect(effects[0].kind).toBe('warn');
  });

  it('asks for a snapshot instead of applying a patch before any snapshot', () => {
    const { state, effects } = reduce(EMPTY_STATE, { v: 1, type: 'patch', seq: 3, apps: [], removed: [] });
    expect(state).toBe(EMPTY_STATE);
    expect(effects).toEqual([{ kind: 'refresh' }]);
  });
});

describe('defensive handling', () => {
  it.each([
    ['an unknown type', { v: 1, type: 'telemetry', data: 1 }, /unknown type "telemetry"/],
    ['a newer protocol version', { ...snapshot(), v: PROTOCOL_VERSION + 1 }, /protocol version 2.*speaks version 1/],
    ['no version', { type: 'snapshot', apps: [] }, /protocol version/],
    ['a string', 'hello', /not a JSON object/],
    ['null', null, /not a JSON object/],
    ['an array', [1, 2], /not a JSON object/]
  ])('ignores %s with a warning and keeps the state', (_, message, warning) => {
    const before = synced();
    const { state, effects } = reduce(before, message);
    expect(state).toBe(before);
    expect(effects).toHaveLength(1);
    expect(effects[0]).toMatchObject({ kind: 'warn' });
    expect((effects[0] as { message: string }).message).toMatch(warning);
  });

  it('accepts an older protocol version', () => {
    expect(reduce(EMPTY_STATE, { ...snapshot(), v: 1 }).state.apps).toHaveLength(1);
  });

  it('survives a message with a circular value', () => {
    const message: { [key: string]: unknown } = { v: 1, type: 'snapshot', seq: 0 };
    message.apps = [message];
    expect(() => reduce(EMPTY_STATE, message)).not.toThrow();
  });
});

describe('other messages', () => {
  it('turns an ack into an effect for the waiting command', () => {
    expect(reduce(synced(), { v: 1, type: 'ack', id: 'c-1', ok: true, error: null }).effects).toEqual([
      { kind: 'ack', id: 'c-1', ok: true, error: null }
    ]);
    expect(reduce(synced(), { v: 1, type: 'ack', id: 'c-2', ok: false, error: 'unknown command "x"' }).effects).toEqual([
      { kind: 'ack', id: 'c-2', ok: false, error: 'unknown command "x"' }
    ]);
  });

  it('turns a reveal into an effect', () => {
    expect(reduce(synced(), { v: 1, type: 'reveal', app: 'root-1a2b3c4d' }).effects).toEqual([
      { kind: 'reveal', app: 'root-1a2b3c4d' }
    ]);
  });

  it('builds the messages the front end sends', () => {
    expect(helloMessage()).toEqual({ v: 1, type: 'hello', client: 'jupyterlab-sidepanel' });
    expect(commandMessage('c-18', { cmd: 'stop_work', app: 'root-1a2b3c4d', work: 'root.train' })).toEqual({
      v: 1,
      type: 'cmd',
      id: 'c-18',
      cmd: 'stop_work',
      app: 'root-1a2b3c4d',
      work: 'root.train'
    });
  });
});

describe('component tree', () => {
  it('nests components under their parents in the order listed', () => {
    const { state } = reduce(EMPTY_STATE, {
      v: 1,
      type: 'snapshot',
      seq: 0,
      apps: [
        {
          id: 'a',
          name: 'A',
          stage: 'running',
          components: {
            root: flow('root'),
            'root.serve': flow('root.serve', 'root'),
            'root.serve.gradio': work('root.serve.gradio', 'root.serve'),
            'root.train': work('root.train', 'root')
          }
        }
      ]
    });
    const tree = componentTree(state.apps[0]);
    expect(tree.map(n => n.component.name)).toEqual(['root']);
    expect(tree[0].children.map(n => n.component.name)).toEqual(['root.serve', 'root.train']);
    expect(tree[0].children[0].children.map(n => n.component.name)).toEqual(['root.serve.gradio']);
    expect(worksOf(state.apps[0]).map(w => w.name)).toEqual(['root.serve.gradio', 'root.train']);
  });
});

describe('page URLs', () => {
  it('goes through the notebook server proxy for pages served on this machine', () => {
    expect(proxiedPageUrl({ url: 'http://127.0.0.1:40123/', port: 40123 }, 'http://localhost:8888/')).toBe(
      'http://localhost:8888/proxy/40123/'
    );
    expect(proxiedPageUrl({ url: 'http://localhost:6006/#scalars', port: 6006 }, '/user/ada/')).toBe(
      '/user/ada/proxy/6006/#scalars'
    );
    expect(proxiedPageUrl({ url: 'http://0.0.0.0:7860/app?x=1', port: null }, '/')).toBe('/proxy/7860/app?x=1');
    expect(proxiedPageUrl({ url: null, port: 8080 }, '/base')).toBe('/base/proxy/8080/');
  });

  it('opens other pages as they are, and nothing without a page', () => {
    expect(proxiedPageUrl({ url: 'https://example.org/dash', port: 443 }, '/')).toBe('https://example.org/dash');
    expect(proxiedPageUrl({ url: 'https://127.0.0.1:8443/', port: 8443 }, '/')).toBe('https://127.0.0.1:8443/');
    expect(proxiedPageUrl({ url: null, port: null }, '/')).toBeNull();
  });
});

describe('latestOfEachName', () => {
  const app = (id: string, name: string, stage: string) => ({ id, name, stage, end_message: null, components: {} }) as any;

  it('keeps running apps and only the latest ended run of a name, counting the hidden ones', () => {
    const apps = [
      app('a1', 'A', 'stopped'),
      app('b1', 'B', 'running'),
      app('a2', 'A', 'failed'),
      app('b2', 'B', 'stopped'),
      app('a3', 'A', 'stopped'),
      app('c1', 'C', 'stopped')
    ];
    const shown = latestOfEachName(apps).map(({ app, earlier }) => `${app.id}:${earlier}`);
    expect(shown).toEqual(['b1:0', 'b2:0', 'a3:2', 'c1:0']);
  });

  it('never hides an app that is still running', () => {
    const apps = [app('a1', 'A', 'running'), app('a2', 'A', 'running'), app('a3', 'A', 'stopped')];
    expect(latestOfEachName(apps).map(({ app }) => app.id)).toEqual(['a1', 'a2', 'a3']);
  });
});

describe('metrics sparklines', () => {
  const withMetrics = (seq: number, metrics: object | null) => ({
    v: 1,
    type: 'patch',
    seq,
    apps: [{ id: 'root-1a2b3c4d', components: { 'root.train': { metrics } } }],
    removed: []
  });

  it('adds a point per patch that carries new metrics, and none for other patches', () => {
    let state = synced();
    state = reduce(state, withMetrics(13, { loss: 3, acc: 0.1 })).state;
    state = reduce(state, withMetrics(14, { loss: 2, acc: 0.5 })).state;
    state = reduce(state, {
      v: 1, type: 'patch', seq: 15, apps: [{ id: 'root-1a2b3c4d', components: { 'root.train': { progress: 0.5 } } }], removed: []
    }).state;
    const train = state.apps[0].components['root.train'];
    expect(train.history).toEqual({ loss: [3, 2], acc: [0.1, 0.5] });
    expect(train.metrics).toEqual({ loss: 2, acc: 0.5 });
  });

  it('keeps the last SPARK_POINTS points, and the points across a snapshot of the same app', () => {
    let state = synced();
    for (let i = 0; i < SPARK_POINTS + 5; i++) {
      state = reduce(state, withMetrics(13 + i, { loss: i, bad: 'x' })).state;
    }
    let history = state.apps[0].components['root.train'].history;
    expect(history.loss.length).toBe(SPARK_POINTS);
    expect(history.loss[history.loss.length - 1]).toBe(SPARK_POINTS + 4);
    expect(history.bad).toBeUndefined();
    state = reduce(state, snapshot(200)).state;
    history = state.apps[0].components['root.train'].history;
    expect(history.loss.length).toBe(SPARK_POINTS);
  });

  it('adds no point for a snapshot (a refresh) repeating the values already shown', () => {
    let state = synced();
    state = reduce(state, withMetrics(13, { loss: 3 })).state;
    const again = snapshot(14);
    (again.apps[0].components['root.train'] as { metrics?: object }).metrics = { loss: 3 };
    state = reduce(state, again).state;
    expect(state.apps[0].components['root.train'].history).toEqual({ loss: [3] });
    const later = snapshot(15);
    (later.apps[0].components['root.train'] as { metrics?: object }).metrics = { loss: 2 };
    state = reduce(state, later).state;
    expect(state.apps[0].components['root.train'].history).toEqual({ loss: [3, 2] });
  });

  it('draws values as polyline points, lowest at the bottom', () => {
    expect(sparklinePoints([0, 1], 10, 4)).toBe('0,4 10,0');
    expect(sparklinePoints([2, 2, 2], 10, 4)).toBe('0,2 5,2 10,2');
    expect(sparklinePoints([], 10, 4)).toBe('');
    expect(appendMetrics({ loss: [3, 2] }, { loss: 1 }, 2)).toEqual({ loss: [2, 1] });
  });
});
