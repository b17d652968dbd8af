/**
 * The page's handle on the machine's Web Worker: starts it, waits for its capabilities,
 * boots it, and turns its messages into callbacks. A reset is a new worker: the old one
 * is terminated with its memory, which is exactly a power cycle. Saving and loading a
 * snapshot, and the shared folder's puts, listings and downloads, are requests with answers:
 * promises, settled by the worker's reply to each.
 */
import type { MachineStats } from '../../machine/stats.ts';
import type { MigrationInfo } from '../../vmm/actions.ts';
import type { BootRequest, Capabilities, PageMessage, RunState, ShareFile, ShareListing, WorkerMessage } from './protocol.ts';

/** A snapshot as the worker saved it. */
export interface SavedSnapshot {
  /** The file's parts in order; together they are the file. */
  parts: Uint8Array[];
  /** Time to encode it in the worker, in ms. */
  ms: number;
}

/** What a loaded snapshot's machine is. */
export interface RestoredMachine {
  /** Time to check and apply it in the worker, in ms. */
  ms: number;
  capabilities: Capabilities;
  diskAttached: boolean;
}

export interface MachineEvents {
  output(bytes: Uint8Array): void;
  stats(time: number, stats: MachineStats): void;
  state(state: RunState, reason?: string): void;
  started(capabilities: Capabilities, memory: WebAssembly.Memory | null, diskAttached: boolean): void;
  error(message: string): void;
  /** A migration's progress (a machine moving between the daemon and the tab). */
  migration?(info: MigrationInfo): void;
}

/** Where `virtus web` puts the bundled worker (host/node/commands/web-bundle.ts); the daemon's page names its own. */
const WORKER_URL = '/virtus/worker.js';

export class MachineWorker {
  private readonly worker: Worker;
  private nextId = 1;
  /** Requests waiting for the worker's answer, by id. */
  private readonly waiting = new Map<number, { resolve: (m: WorkerMessage) => void; reject: (e: Error) => void }>();
  /** Resolves with the worker's capabilities once its module has loaded. */
  readonly ready: Promise<Capabilities>;

  constructor(on: MachineEvents, url = WORKER_URL) {
    this.worker = new Worker(url, { type: 'module', name: 'virtus machine' });
    this.ready = new Promise((resolve, reject) => {
      this.worker.onerror = (e) => {
        e.preventDefault();
        const message = `the machine's worker failed: ${e.message || 'it could not be loaded'}`;
        reject(new Error(message));
        on.error(message);
      };
      this.worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
        const m = e.data;
        switch (m.type) {
          case 'hello':
            resolve(m.capabilities);
            break;
          case 'started':
            on.started(m.capabilities, m.memory, m.diskAttached);
            break;
          case 'output':
            on.output(m.bytes);
            break;
          case 'stats':
            on.stats(m.time, m.stats);
            break;
          case 'state':
            on.state(m.state, m.reason);
            break;
          case 'error':
            on.error(m.message);
            break;
          case 'migration':
            on.migration?.(m.info);
            break;
          case 'saved':
          case 'restored':
          case 'share-listed':
          case 'share-file':
          case 'share-exported':
          case 'refused': {
            const w = this.waiting.get(m.id);
            this.waiting.delete(m.id);
            if (m.type === 'refused') w?.reject(new Error(m.message));
            else w?.resolve(m);
            break;
          }
        }
      };
    });
  }

  private send(m: PageMessage): void {
    this.worker.postMessage(m);
  }

  /** Powers the machine on. The images are copied: the page keeps its own for a reset. */
  boot(req: Omit<BootRequest, 'type'>): void {
    this.send({ type: 'boot', ...req });
  }

  /** Instead of booting: receives the machine the daemon sends over the WebSocket at `url`, and runs it. */
  receive(url: string, cols: number, rows: number): void {
    this.send({ type: 'receive', url, cols, rows });
  }

  /** Migrates the machine to the daemon's WebSocket at `url`; progress comes as `migration`, the end as state `stopped`. */
  migrate(url: string): void {
    this.send({ type: 'migrate', url });
  }

  input(bytes: Uint8Array): void {
    this.send({ type: 'input', bytes });
  }

  resize(cols: number, rows: number): void {
    this.send({ type: 'resize', cols, rows });
  }

  pause(): void {
    this.send({ type: 'pause' });
  }

  resume(): void {
    this.send({ type: 'resume' });
  }

  /** Saves a snapshot; the machine runs on afterwards (or stays paused). */
  async save(): Promise<SavedSnapshot> {
    const m = await this.request((id) => ({ type: 'save', id }));
    if (m.type !== 'saved') throw new Error(`unexpected answer ${m.type}`);
    return { parts: m.parts, ms: m.ms };
  }

  /**
   * Replaces the machine with the snapshot's (the bytes are copied). A snapshot that cannot
   * be loaded rejects with the worker's one-line reason; the old machine then runs on.
   */
  async restore(name: string, bytes: Uint8Array): Promise<RestoredMachine> {
    const m = await this.request((id) => ({ type: 'restore', id, name, bytes }));
    if (m.type !== 'restored') throw new Error(`unexpected answer ${m.type}`);
    return { ms: m.ms, capabilities: m.capabilities, diskAttached: m.diskAttached };
  }

  /** Puts a file in the root of the tab's shared folder; resolves with the folder's listing. */
  async putShareFile(name: string, bytes: Uint8Array): Promise<ShareListing> {
    const m = await this.request((id) => ({ type: 'share-put', id, name, bytes }));
    if (m.type !== 'share-listed') throw new Error(`unexpected answer ${m.type}`);
    return m;
  }

  /** The shared folder's files. */
  async listShare(): Promise<ShareListing> {
    const m = await this.request((id) => ({ type: 'share-list', id }));
    if (m.type !== 'share-listed') throw new Error(`unexpected answer ${m.type}`);
    return m;
  }

  /** A copy of one file of the shared folder. */
  async getShareFile(path: string[]): Promise<Uint8Array> {
    const m = await this.request((id) => ({ type: 'share-get', id, path }));
    if (m.type !== 'share-file') throw new Error(`unexpected answer ${m.type}`);
    return m.bytes;
  }

  /** Every file of the shared folder, to boot the next worker with (a reset). */
  async exportShare(): Promise<ShareFile[]> {
    const m = await this.request((id) => ({ type: 'share-export', id }));
    if (m.type !== 'share-exported') throw new Error(`unexpected answer ${m.type}`);
    return m.files;
  }

  private request(make: (id: number) => PageMessage): Promise<WorkerMessage> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.send(make(id));
    });
  }

  /** Ends the worker and the machine in it at once, wherever the guest is. */
  terminate(): void {
    this.worker.terminate();
    for (const w of this.waiting.values()) w.reject(new Error('the machine was reset'));
    this.waiting.clear();
  }
}
