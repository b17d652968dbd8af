/**
 * VmmAction: the one command type every front end speaks. The CLI's keys and human monitor,
 * QMP, the browser worker and the daemon's HTTP API each translate their input into these and
 * hand them to Vm.handle(); results are typed per action, failures are VirtusErrors with a
 * stable code (VMM_STATE when the machine is in the wrong state for the action).
 */
import type { Capabilities, Capability, MigrationParameters } from '../machine/migrate-params.ts';
import type { MachineStats } from '../machine/stats.ts';
import type { MachineSpec } from './spec.ts';

/** The machine's life: created → running ⇄ paused → stopped, and the two ends of a migration. */
export type VmState = 'created' | 'running' | 'paused' | 'migrating-out' | 'incoming' | 'stopped';

/** Why a machine stopped. */
export type StopReason =
  /** The guest powered the machine off (syscon, SBI SRST). */
  | 'poweroff'
  /** A bare-metal program ended through HTIF. */
  | 'exit'
  /** The guest rebooted and the machine was told not to restart (or cannot). */
  | 'reboot'
  /** The instruction limit was reached. */
  | 'max-insns'
  /** The guest did something the monitor cannot go on from. */
  | 'fatal'
  /** The user ended it (quit, Ctrl-A X). */
  | 'quit'
  /** It went to another host. */
  | 'migrated'
  /** A failure of the host (a bug, or a resource that broke). */
  | 'error';

export interface StopInfo {
  reason: StopReason;
  /** The exit code a process running only this machine should end with. */
  code: number;
  message?: string;
}

export type VmmAction =
  /** Runs a created machine. */
  | { type: 'start' }
  | { type: 'pause' }
  | { type: 'resume' }
  /** Ends the machine now, as quitting QEMU does. */
  | { type: 'quit' }
  /** Restarts the machine from its boot images, as a hardware reset (QMP system_reset). */
  | { type: 'reset' }
  /** Asks the guest to power itself off (QMP system_powerdown): an event the guest may act on. */
  | { type: 'powerdown' }
  /** Takes a snapshot (the parts of a .snap file); the machine runs on. */
  | { type: 'savevm' }
  /** Makes every write to the disks durable on the host (their flush), between two slices; the machine runs on. */
  | { type: 'flush' }
  /** Starts a live migration to `uri` (the host's syntax, e.g. tcp:HOST:PORT); it goes on in the background. */
  | { type: 'migrate'; uri: string }
  /** Turns migration capabilities on or off (QEMU's names); refused while a migration runs. */
  | { type: 'migrate-set-capabilities'; capabilities: Array<{ capability: Capability; state: boolean }> }
  /** Changes migration parameters (QEMU's names and units); allowed while a migration runs, as QEMU's. */
  | { type: 'migrate-set-parameters'; parameters: Partial<MigrationParameters> }
  /** Stops a migration under way; the machine runs on here (refused once post-copy has begun). */
  | { type: 'migrate-cancel' }
  /** Switches a pre-copy migration with postcopy-ram to post-copy. */
  | { type: 'migrate-start-postcopy' }
  | { type: 'query-migrate-capabilities' }
  | { type: 'query-migrate-parameters' }
  | { type: 'query-status' }
  | { type: 'query-stats' }
  | { type: 'query-migrate' }
  | { type: 'query-spec' }
  /** The machine's generation ID (QMP query-vm-generation-id): it changes when the machine is copied. */
  | { type: 'query-vm-generation-id' }
  /** Keyboard input for the guest's console. */
  | { type: 'console-input'; bytes: Uint8Array }
  /** The terminal's size changed (virtio-console tells the guest). */
  | { type: 'console-resize'; cols: number; rows: number };

/** QEMU's MigrationStatus (`stop-and-copy` is its `device`). */
export type MigrationStatus = 'none' | 'setup' | 'active' | 'stop-and-copy' | 'postcopy-active' | 'completed' | 'failed' | 'cancelling' | 'cancelled';

/** A migration as `info migrate` and query-migrate show it, on either side. */
export interface MigrationInfo {
  status: MigrationStatus;
  /** Where to (the source) or from where (the target: `incoming`). */
  target?: string;
  /** Dirty-log syncs (QEMU's dirty-sync-count). */
  rounds?: number;
  /** Bytes sent, and in which phase. */
  bytes?: number;
  precopyBytes?: number;
  downtimeBytes?: number;
  postcopyBytes?: number;
  /** Pages still to send (the last dirty set). */
  dirtyPages?: number;
  /** Pages of RAM. */
  totalPages?: number;
  /** Pages the guest dirtied per second in the last round. */
  dirtyRate?: number;
  /** Bytes per second the link took in the last round. */
  bandwidth?: number;
  expectedDowntimeMs?: number;
  /** The guest's throttle now, and the highest it reached (percent). */
  throttle?: number;
  maxThrottle?: number;
  setupMs?: number;
  totalMs?: number;
  downtimeMs?: number;
  /** Pages sent whole, as zero counts, as XBZRLE deltas (and the deltas' bytes, misses, overflows). */
  normalPages?: number;
  zeroPages?: number;
  xbzrlePages?: number;
  xbzrleBytes?: number;
  xbzrleCacheMiss?: number;
  xbzrleOverflow?: number;
  /** Pages the target asked for during post-copy. */
  postcopyRequests?: number;
  /** A target: the address it received the machine on (QEMU's SocketAddress, as query-migrate's socket-address). */
  socketAddress?: Record<string, string | boolean>;
  error?: string;
}

export interface VmStatus {
  state: VmState;
  /** True while guest code runs (QMP's `running`). */
  running: boolean;
  /** Instructions retired since power-on. */
  instret: number;
  /** Why it stopped, once it has. */
  stop?: StopInfo;
}

export interface SavedVm {
  /** The snapshot file's parts, in order. */
  parts: Uint8Array[];
  bytes: number;
  /** Time to encode it, with the guest held. */
  ms: number;
}

type Empty = Record<string, never>;

/** The result of each action, by its type. */
export interface VmmResults {
  start: Empty;
  pause: Empty;
  resume: Empty;
  quit: Empty;
  reset: Empty;
  powerdown: Empty;
  savevm: SavedVm;
  flush: Empty;
  migrate: Empty;
  'migrate-set-capabilities': Empty;
  'migrate-set-parameters': Empty;
  'migrate-cancel': Empty;
  'migrate-start-postcopy': Empty;
  'query-migrate-capabilities': Capabilities;
  'query-migrate-parameters': MigrationParameters;
  'query-status': VmStatus;
  'query-stats': MachineStats;
  'query-migrate': MigrationInfo;
  'query-spec': MachineSpec;
  'query-vm-generation-id': { guid: string };
  'console-input': Empty;
  'console-resize': Empty;
}

export type VmmResult<A extends VmmAction> = VmmResults[A['type']];

/** What a Vm tells its listeners. */
export type VmEvent =
  | { type: 'state'; state: VmState }
  /** Console output from the guest (UART or virtio-console). */
  | { type: 'output'; bytes: Uint8Array }
  /** The machine restarted: the guest rebooted it, or a reset action did. */
  | { type: 'reset'; guest: boolean }
  /** A powerdown was requested (the guest decides what to do with it). */
  | { type: 'powerdown' }
  | { type: 'stop'; info: StopInfo }
  | { type: 'migration'; info: MigrationInfo }
  /** A host-side warning: a disk I/O error, a driver that broke a device. */
  | { type: 'warning'; message: string };
