/**
 * The panel's link to one notebook's kernel: the `lightnb` comm, opened when the kernel is ready, changes
 * or restarts (and after a page reload, since the panel starts again then), and the state it keeps.
 */

import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import {
  COMM_TARGET,
  Command,
  EMPTY_STATE,
  IState,
  commandMessage,
  helloMessage,
  reduce
} from './model';

/**
 * - `no-kernel`: no notebook, or its kernel is not running;
 * - `waiting`: the kernel is starting or restarting;
 * - `connecting`: the comm was opened, no snapshot yet (a busy kernel may answer late);
 * - `connected`: the state is live;
 * - `not-loaded`: the kernel has no `lightnb` comm target (`%load_ext lightnb` was not run).
 */
export type LinkStatus = 'no-kernel' | 'waiting' | 'connecting' | 'connected' | 'not-loaded';

/** How long a command waits for its ack before the user is told the kernel has not answered. */
const ACK_TIMEOUT_MS = 20000;

/** How long opening the comm waits for its kernel subshell before it opens on the main shell. */
const SUBSHELL_WAIT_MS = 5000;

interface IPending {
  resolve: () => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class KernelLink {
  constructor() {
    window.addEventListener('beforeunload', this._onUnload);
  }

  /** Emitted whenever `state` or `status` changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted when the kernel asks the front end to show the panel (`%lightnb view --panel`). */
  get revealRequested(): ISignal<this, string> {
    return this._revealRequested;
  }

  get state(): IState {
    return this._state;
  }

  get status(): LinkStatus {
    return this._status;
  }

  /** The notebook's session followed, if any. */
  get session(): ISessionContext | null {
    return this._session;
  }

  /** Follow another notebook's session (null: none). */
  setSession(session: ISessionContext | null): void {
    if (session === this._session) {
      return;
    }
    this._session?.kernelChanged.disconnect(this._onKernelChanged, this);
    this._session = session;
    session?.kernelChanged.connect(this._onKernelChanged, this);
    this._setKernel(session?.session?.kernel ?? null);
  }

  /** Open the comm again (or ask for a fresh snapshot when it is open). */
  refresh(): void {
    if (this._comm && !this._comm.isDisposed && this._status === 'connected') {
      this._sendRefresh();
    } else {
      this._open();
    }
  }

  /** Send a command; resolves when the kernel acknowledged it, rejects with the kernel's error. */
  send(command: Command): Promise<void> {
    const comm = this._comm;
    if (!comm || comm.isDisposed || this._status !== 'connected') {
      return Promise.reject(
        new Error(
          this._status === 'not-loaded'
            ? 'lightnb is not loaded in the notebook kernel: run `%load_ext lightnb` in it'
            : 'the panel is not connected to the notebook kernel yet'
        )
      );
    }
    const id = `c-${this._prefix}-${++this._counter}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(
          new Error(
            `the kernel has not answered after ${ACK_TIMEOUT_MS / 1000} s: a cell may be keeping it busy; ` +
              'the command runs when it is free'
          )
        );
      }, ACK_TIMEOUT_MS);
      this._pending.set(id, { resolve, reject, timer });
      try {
        comm.send(commandMessage(id, command) as any);
      } catch (error) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  dispose(): void {
    window.removeEventListener('beforeunload', this._onUnload);
    this.setSession(null);
    Signal.clearData(this);
  }

  private _onKernelChanged(_: ISessionContext, change: { newValue: Kernel.IKernelConnection | null }): void {
    this._setKernel(change.newValue);
  }

  private _setKernel(kernel: Kernel.IKernelConnection | null): void {
    if (kernel === this._kernel) {
      return;
    }
    this._closeComm();
    if (this._kernel) {
      this._kernel.statusChanged.disconnect(this._onStatus, this);
      this._kernel.iopubMessage.disconnect(this._onIOPub, this);
    }
    this._kernel = kernel;
    this._retryWhenIdle = false;
    if (!kernel) {
      this._update(EMPTY_STATE, 'no-kernel');
      return;
    }
    kernel.statusChanged.connect(this._onStatus, this);
    kernel.iopubMessage.connect(this._onIOPub, this);
    if (kernel.status === 'idle' || kernel.status === 'busy') {
      this._open();
    } else {
      this._update(EMPTY_STATE, 'waiting');
    }
  }

  private _onStatus(kernel: Kernel.IKernelConnection, status: Kernel.Status): void {
    if (kernel !== this._kernel) {
      return;
    }
    switch (status) {
      case 'restarting':
      case 'autorestarting':
      case 'starting':
        // A restart disposes the kernel's comms and ends its apps.
        this._comm = null;
        this._rejectPending('the kernel restarted');
        this._update(EMPTY_STATE, 'waiting');
        break;
      case 'dead':
        this._comm = null;
        this._rejectPending('the kernel died');
        this._update(EMPTY_STATE, 'no-kernel');
        break;
      case 'idle':
        if (this._status === 'waiting' || (this._status === 'not-loaded' && this._retryWhenIdle)) {
          this._retryWhenIdle = false;
          this._open();
        }
        break;
    }
  }

  /** A cell that mentions lightnb may have loaded it: try again once the kernel is idle. */
  private _onIOPub(kernel: Kernel.IKernelConnection, msg: KernelMessage.IIOPubMessage): void {
    if (this._status !== 'not-loaded' || msg.header.msg_type !== 'execute_input') {
      return;
    }
    const code = (msg.content as KernelMessage.IExecuteInputMsg['content']).code;
    if (typeof code === 'string' && code.includes('lightnb')) {
      this._retryWhenIdle = true;
    }
  }

  private _open(): void {
    const kernel = this._kernel;
    this._closeComm();
    if (!kernel || kernel.isDisposed) {
      this._update(EMPTY_STATE, 'no-kernel');
      return;
    }
    let comm: Kernel.IComm;
    try {
      comm = kernel.createComm(COMM_TARGET);
    } catch (error) {
      // A kernel connection that does not handle comms (not the notebook's own) cannot host the panel.
      console.warn('lightnb: cannot open a comm on this kernel:', error);
      this._update(EMPTY_STATE, 'not-loaded');
      return;
    }
    this._comm = comm;
    this._refreshPending = false;
    comm.onMsg = msg => this._onMessage(comm, msg.content.data);
    comm.onClose = () => {
      if (this._comm !== comm) {
        return;
      }
      // The kernel closes a comm whose target it does not know: lightnb is not loaded (or was unloaded).
      this._comm = null;
      this._rejectPending('the kernel closed the lightnb link');
      this._update(EMPTY_STATE, 'not-loaded');
    };
    this._update(EMPTY_STATE, 'connecting');
    void this._openOnSubshell(kernel, comm);
  }

  /**
   * Open `comm` once its kernel subshell is there. JupyterLab (4.4 and later, setting "Kernel Comms over
   * subshells") sends a comm's messages on a subshell of the kernel once it has created one; a comm opened
   * before that goes to the main shell, where it waits behind every queued cell — during a "Run All" the
   * panel would say "Connecting…" until the last cell ended. On a subshell (ipykernel 7) the kernel answers
   * at once, busy or not. A kernel without subshells gets the comm on the main shell, as before.
   */
  private async _openOnSubshell(kernel: Kernel.IKernelConnection, comm: Kernel.IComm): Promise<void> {
    const subshell = comm as Kernel.IComm & { subshellStarted?: Promise<void>; commsOverSubshells?: string };
    if (subshell.subshellStarted && subshell.commsOverSubshells !== 'disabled') {
      try {
        await kernel.info;
        if (kernel.supportsSubshells) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([
            subshell.subshellStarted,
            new Promise<void>(resolve => (timer = setTimeout(resolve, SUBSHELL_WAIT_MS)))
          ]);
          clearTimeout(timer);
        }
      } catch (error) {
        console.warn('lightnb: no kernel subshell for the comm, opening it on the main shell:', error);
      }
    }
    if (this._comm !== comm || comm.isDisposed) {
      return; // the panel moved on (another kernel, a restart) meanwhile
    }
    try {
      comm.open(helloMessage() as any);
    } catch (error) {
      console.warn('lightnb: opening the comm failed:', error);
      this._comm = null;
      this._update(EMPTY_STATE, 'not-loaded');
    }
  }

  private _onMessage(comm: Kernel.IComm, data: unknown): void {
    if (comm !== this._comm) {
      return;
    }
    let result;
    try {
      result = reduce(this._state, data);
    } catch (error) {
      // The reducer is total by design; should it ever throw, keep the panel as it was.
      console.warn('lightnb: could not apply a kernel message:', error, data);
      return;
    }
    for (const effect of result.effects) {
      switch (effect.kind) {
        case 'warn':
          console.warn(`lightnb: ${effect.message}`);
          break;
        case 'refresh':
          if (!this._refreshPending) {
            this._sendRefresh();
          }
          break;
        case 'ack':
          this._settle(effect.id, effect.ok, effect.error);
          break;
        case 'reveal':
          this._revealRequested.emit(effect.app);
          break;
      }
    }
    if (result.state.synced) {
      this._refreshPending = false;
    }
    const status = result.state.synced || result.state.seq !== null ? 'connected' : this._status;
    if (result.state !== this._state || status !== this._status) {
      this._update(result.state, status);
    }
  }

  private _sendRefresh(): void {
    const comm = this._comm;
    if (!comm || comm.isDisposed) {
      return;
    }
    this._refreshPending = true;
    try {
      comm.send(commandMessage(`c-${this._prefix}-${++this._counter}`, { cmd: 'refresh' }) as any);
    } catch (error) {
      console.warn('lightnb: asking for a snapshot failed:', error);
    }
  }

  private _settle(id: string, ok: boolean, error: string | null): void {
    const pending = this._pending.get(id);
    if (!pending) {
      return; // a refresh, or a command that already timed out
    }
    this._pending.delete(id);
    clearTimeout(pending.timer);
    if (ok) {
      pending.resolve();
    } else {
      pending.reject(new Error(error ?? 'the kernel refused the command'));
    }
  }

  private _rejectPending(reason: string): void {
    for (const [id, pending] of this._pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error(reason));
      this._pending.delete(id);
    }
  }

  private _closeComm(): void {
    const comm = this._comm;
    this._comm = null;
    this._rejectPending('the panel moved to another kernel');
    if (comm && !comm.isDisposed && this._kernel && !this._kernel.isDisposed) {
      try {
        comm.close();
      } catch {
        // The kernel is gone; nothing to tell it.
      }
    }
  }

  private _update(state: IState, status: LinkStatus): void {
    this._state = state;
    this._status = status;
    this._changed.emit();
  }

  /** Tell the kernel this page is going away, so that it stops sending to a comm nobody reads. */
  private _onUnload = (): void => {
    this._closeComm();
  };

  private _session: ISessionContext | null = null;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  private _state: IState = EMPTY_STATE;
  private _status: LinkStatus = 'no-kernel';
  private _retryWhenIdle = false;
  private _refreshPending = false;
  private _counter = 0;
  private _prefix = Math.random().toString(36).slice(2, 8);
  private _pending = new Map<string, IPending>();
  private _changed = new Signal<this, void>(this);
  private _revealRequested = new Signal<this, string>(this);
}
