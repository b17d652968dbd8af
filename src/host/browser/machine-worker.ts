/**
 * The page's handle on the machine's Web Worker: starts it, waits for its capabilities,
 * boots it, and turns its messages into callbacks. A reset is a new worker: the old one
 * is terminated with its memory, which is exactly a power cycle.
 */
import type { MachineStats } from '../../machine/stats.ts';
import type { BootRequest, Capabilities, PageMessage, RunState, WorkerMessage } from './protocol.ts';

export interface MachineEvents {
  output(bytes: Uint8Array): void;
  stats(time: number, stats: MachineStats): void;
  state(state: RunState, reason?: string): void;
  started(capabilities: Capabilities, memory: WebAssembly.Memory | null, diskAttached: boolean): void;
  error(message: string): void;
}

/** Where the server puts the bundled worker (host/node/commands/web-bundle.ts). */
const WORKER_URL = '/virtus/worker.js';

export class MachineWorker {
  private readonly worker: Worker;
  /** Resolves with the worker's capabilities once its module has loaded. */
  readonly ready: Promise<Capabilities>;

  constructor(on: MachineEvents) {
    this.worker = new Worker(WORKER_URL, { type: 'module', name: 'virtus machine' });
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

  /** Ends the worker and the machine in it at once, wherever the guest is. */
  terminate(): void {
    this.worker.terminate();
  }
}
