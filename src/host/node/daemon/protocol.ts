/**
 * The messages between the daemon's thread and a machine's worker thread. A worker runs one
 * Vm (vmm/vm.ts): it builds it from its WorkerInit, forwards every VmEvent, and carries out
 * the VmmActions the daemon sends, answering each by its request id. Everything crosses
 * postMessage (structured clone), so only plain data travels: errors become { code, message }.
 *
 *   daemon                         worker
 *     ── new Worker(workerData: WorkerInit) ──▶  builds the Vm (createVm/restoreVm/receiveVm)
 *     ◀── listening (incoming only) ───────────
 *     ◀── ready {state, spec} | failed {error}
 *     ── action {id, action} / savevm {id, path} ──▶
 *     ◀── result {id, ok, value | error} ──────
 *     ◀── event {VmEvent} (output coalesced) ──
 *     ◀── stopped {info}: the Vm has stopped and closed its disks; the daemon ends the thread
 */
import type { StopInfo, VmEvent, VmmAction, VmState } from '../../../vmm/actions.ts';
import type { Resources } from '../../../vmm/shape.ts';
import type { MachineSpec } from '../../../vmm/spec.ts';

/** How a worker's machine comes to be. */
export type WorkerInit = (
  /** Boot the machine a spec describes (it waits in `created`; `start` runs it). */
  | {
      kind: 'create';
      spec: MachineSpec;
      name: string;
      start: boolean;
      /** Boot files the daemon read, by the name the spec uses, shared with its other machines (boot-files.ts). */
      files?: Record<string, SharedArrayBuffer>;
      /** Boot files the machine reads again whenever it needs them (the daemon's own copies). */
      reread?: string[];
    }
  /** Restore a snapshot file with these host resources (it waits in `paused`). */
  | { kind: 'restore'; snapshot: string; resources: Resources; name: string; start: boolean }
  /**
   * Listen on `listen` (tcp:HOST:PORT, port 0 for any, or unix:PATH) for a machine migrated from
   * another host; with `once`, the first stream that fails ends the thread (a tab's, tab-move.ts).
   */
  | { kind: 'incoming'; listen: string; resources: Resources; name: string; dir: string; once?: boolean }
) & {
  /** A cluster's machine: its node's lease deadline (cluster/lease-gate.ts), read before each slice. */
  lease?: SharedArrayBuffer;
};

/** A failure as plain data: a VirtusError's stable code and message. */
export interface WireError {
  code: string;
  message: string;
}

/** From the daemon to a worker. */
export type ToWorker =
  | { t: 'action'; id: number; action: VmmAction }
  /** Takes a snapshot and writes it to `path` (the worker writes it: RAM never crosses threads). */
  | { t: 'savevm'; id: number; path: string };

/** From a worker to the daemon. */
export type FromWorker =
  | { t: 'listening'; uri: string }
  | { t: 'ready'; state: VmState; spec: MachineSpec }
  | { t: 'failed'; error: WireError }
  | { t: 'result'; id: number; ok: true; value: unknown }
  | { t: 'result'; id: number; ok: false; error: WireError }
  | { t: 'event'; event: VmEvent }
  | { t: 'stopped'; info: StopInfo };
