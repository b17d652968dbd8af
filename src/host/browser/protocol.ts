/**
 * The messages between the page and the machine's Web Worker. The page owns the terminal,
 * the guest files and the buttons; the worker owns the machine. Everything crosses as plain
 * structured-clone data, so the same protocol works with shared and with ordinary memory.
 *
 *   page → worker: boot or receive (once), input, resize, pause, resume, save, restore, migrate;
 *                  share-put, share-list, share-get, share-export (the tab's shared folder)
 *   worker → page: started, output, stats, state, error, migration; saved, restored,
 *                  share-listed, share-file, share-exported or refused (the answer to a request,
 *                  by its id)
 */
import type { MachineStats } from '../../machine/stats.ts';
import type { MigrationInfo } from '../../vmm/actions.ts';
import type { MachineSpec } from '../../vmm/spec.ts';

/** A guest file handed to the worker. */
export interface GuestImage {
  /** File name, for messages (and ELF symbol loading). */
  name: string;
  bytes: Uint8Array;
}

/** What the worker needs to power the machine on. */
export interface BootRequest {
  type: 'boot';
  /** The machine; its files (kernel, initrd, disks) name entries of `files`. */
  spec: MachineSpec;
  files: GuestImage[];
  /** The terminal's size at boot, for a console device that can report it. */
  cols: number;
  rows: number;
  /** The files of the tab's shared folder, carried over from the machine before a reset. */
  shareFiles: ShareFile[];
}

/** A regular file of the tab's shared folder (TAB_SHARE). */
export interface ShareFile {
  /** Names from the folder's root. */
  path: string[];
  bytes: Uint8Array;
}

/** A regular file of the tab's shared folder, as the Files panel lists it. */
export interface ShareEntry {
  path: string[];
  size: number;
  /** Last modified, ms since the epoch. */
  mtimeMs: number;
}

/** The shared folder's files and how full it is. */
export interface ShareListing {
  files: ShareEntry[];
  bytesUsed: number;
  maxBytes: number;
}

/** Instead of booting: receive a running machine from the daemon over the WebSocket at `url` (its to-tab endpoint). */
export interface ReceiveRequest {
  type: 'receive';
  url: string;
  cols: number;
  rows: number;
}

export type PageMessage =
  | BootRequest
  | ReceiveRequest
  /** Migrates the machine to the daemon's WebSocket at `url` (its from-tab endpoint); progress comes as `migration`. */
  | { type: 'migrate'; url: string }
  | { type: 'input'; bytes: Uint8Array }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'pause' }
  | { type: 'resume' }
  /** Saves a snapshot: answered with `saved` or `refused`. */
  | { type: 'save'; id: number }
  /** Replaces the machine with the one in snapshot `bytes`: answered with `restored` or `refused`. */
  | { type: 'restore'; id: number; name: string; bytes: Uint8Array }
  /** Puts a file in the shared folder's root (replacing one of that name): answered with `share-listed` or `refused`. */
  | { type: 'share-put'; id: number; name: string; bytes: Uint8Array }
  /** Answered with `share-listed`. */
  | { type: 'share-list'; id: number }
  /** A copy of one file: answered with `share-file` or `refused`. */
  | { type: 'share-get'; id: number; path: string[] }
  /** Every file, to carry over to the next worker (a reset): answered with `share-exported`. */
  | { type: 'share-export'; id: number };

/** The run state the buttons reflect. */
export type RunState = 'booting' | 'running' | 'paused' | 'stopped';

/** What the machine can do, so the page enables only what works. */
export interface Capabilities {
  /** Guest RAM is a shared WebAssembly.Memory (the page is cross-origin isolated). */
  sharedMemory: boolean;
  /** The guest's console device tells it the terminal's size (virtio-console). */
  consoleResize: boolean;
  /** The board has a disk device to attach a disk image to. */
  disk: boolean;
  /** The disk keeps the guest's writes across visits (in OPFS). */
  persistentDisk: boolean;
  /** Snapshots can be saved and loaded. */
  snapshots: boolean;
  /** The machine has the tab's shared folder (files dropped on the page go there). */
  share: boolean;
  /** Why harts cannot run in Web Workers of their own here (null: they do, with several harts). */
  noHartThreads: string | null;
}

/** One sample of the monitor's counters, as `--stats` prints them. */
export interface StatsSample {
  /** Milliseconds on the worker's clock (performance.now()) when the counters were read. */
  time: number;
  stats: MachineStats;
}

export type WorkerMessage =
  /** The worker is up: what it can do (sent before boot, so the page knows whether to fetch a disk). */
  | { type: 'hello'; capabilities: Capabilities }
  /** The machine is built and booted; `memory` is the guest memory when it is shared. */
  | { type: 'started'; capabilities: Capabilities; memory: WebAssembly.Memory | null; diskAttached: boolean }
  /** Console output, batched between returns to the worker's event loop. */
  | { type: 'output'; bytes: Uint8Array }
  | ({ type: 'stats' } & StatsSample)
  | { type: 'state'; state: RunState; reason?: string }
  /** A migration's progress: the machine's own (moving out) or the daemon's (moving in). */
  | { type: 'migration'; info: MigrationInfo }
  /** A host-side failure, one line. */
  | { type: 'error'; message: string }
  /** A snapshot file, as its parts in order (docs/snapshots.md); `ms` is the time to encode it. */
  | { type: 'saved'; id: number; parts: Uint8Array[]; ms: number }
  /** The snapshot's machine runs in place of the old one. */
  | { type: 'restored'; id: number; ms: number; capabilities: Capabilities; memory: WebAssembly.Memory | null; diskAttached: boolean }
  | ({ type: 'share-listed'; id: number } & ShareListing)
  | { type: 'share-file'; id: number; bytes: Uint8Array }
  | { type: 'share-exported'; id: number; files: ShareFile[] }
  /** A request failed, one line; the machine that was there runs on (or stays paused). */
  | { type: 'refused'; id: number; message: string };
