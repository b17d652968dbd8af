/**
 * What a virtio device is to the transport: an ID, feature bits, a configuration space and
 * queue handlers (virtio 1.2 §2). The transport (mmio.ts) owns status, feature negotiation,
 * the virtqueues and interrupts; a device never sees a register of the transport. Devices
 * live in their own folders (blk/, console/, rng/, 9p/) and reach guest memory only through
 * the chains their queues hand them (queue.ts, chain.ts).
 */
import type { GuestMemory } from '../memory.ts';
import type { Virtqueue } from './queue.ts';

/** virtio 1.2 §2.1: device status bits. */
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 64;
export const STATUS_FAILED = 128;

/** virtio 1.2 §6: device-independent feature bits. */
export const F_INDIRECT_DESC = 1n << 28n;
export const F_EVENT_IDX = 1n << 29n;
export const F_VERSION_1 = 1n << 32n;

/** virtio 1.2 §5: device IDs. */
export const DEVICE_ID = { none: 0, blk: 2, console: 3, rng: 4, p9: 9 } as const;

/**
 * What a device may do between two slice boundaries (a *turn*): move this many bytes between
 * guest RAM and its backend or the host, walking descriptors included (queue.ts charges each).
 * A request larger than what is left waits for the next turn, where the device carries on;
 * so one guest request, however large, never makes the monitor stall or allocate in
 * proportion to it.
 */
export const TURN_BYTES = 8 << 20;
/** The most a device moves in one call into a backend or one piece of host output. */
export const PIECE_BYTES = 1 << 20;

/** Counters a device keeps for `--stats`: name → count (requests, bytes, errors). */
export type VirtioCounters = Record<string, number>;

/**
 * What the transport gives a device: guest memory, its queues, the negotiated features, and
 * the ways to signal the driver.
 */
export interface VirtioContext {
  readonly ram: GuestMemory;
  /** Queue `index` (as the device declared it in `queueMax`). */
  queue(index: number): Virtqueue;
  /** Features the driver accepted (valid once FEATURES_OK is set). */
  features(): bigint;
  /** True once the driver set DRIVER_OK and the device is not broken: queues may be used. */
  live(): boolean;
  /**
   * The configuration space changed: bumps ConfigGeneration and sends a configuration
   * change notification once the driver is live (virtio 1.2 §2.5, §4.2.2).
   */
  configChanged(): void;
  /**
   * The driver broke the protocol: sets DEVICE_NEEDS_RESET and notifies the driver
   * (virtio 1.2 §2.1.2). The device stops using its queues until the driver resets it.
   */
  fail(reason: string): void;
  /**
   * The device cannot go on as the driver set it up (what the guest sees of it changed under a
   * restore, e.g. a clone's new MAC address): sets DEVICE_NEEDS_RESET and notifies the driver
   * as fail() does, but it is no driver error. The driver's reset reads the device afresh.
   */
  needsReset(reason: string): void;
  /** Sends the used buffer notifications that queue updates call for (EVENT_IDX aware). */
  flush(): void;
  /**
   * Bytes of work left in this turn (see TURN_BYTES); at 0 or below the device stops and is
   * notified again on every ready queue at the next slice boundary, where it carries on.
   */
  credit(): number;
  /** Charges `bytes` of work to this turn. */
  spend(bytes: number): void;
}

/**
 * A device backed by host storage (a disk): what snapshots and migrations need of it, so they
 * find disks by what they can do, not by their class.
 */
export interface StorageCapability {
  /** The host's name for the storage (its file), for messages. */
  readonly name: string;
  /** Size in bytes of what the guest sees. */
  readonly size: number;
  /** Makes every write completed so far durable (before the disk changes hands). */
  flush(): void;
  /** A hash of the size and first MiB (storage/identity.ts), to check a restore has the same disk. */
  identity(): string;
  /** Whether an identity recorded earlier (this version's or an older one's) is this disk's. */
  hasIdentity(recorded: string): boolean;
}

/** A virtio device as the transport drives it (virtio 1.2 §2: status, features, config, queues). */
export interface VirtioDevice {
  /** virtio 1.2 §5 device ID. */
  readonly deviceId: number;
  /** Name for statistics and messages, e.g. `virtio-blk0`. */
  readonly name: string;
  /** Device-type feature bits offered (the transport adds VERSION_1, INDIRECT_DESC, EVENT_IDX). */
  readonly features: bigint;
  /** The largest size each queue may have; the length is the number of queues. */
  readonly queueMax: readonly number[];
  /** Bytes of configuration space (reads beyond it return 0). */
  readonly configSize: number;
  /** Called once when the device is plugged into a transport. */
  attach(ctx: VirtioContext): void;
  /** Reads `width` bytes of configuration space at `offset` (little-endian). */
  readConfig(offset: number, width: 1 | 2 | 4): number;
  /** Writes configuration space (most fields are read-only: ignore those). */
  writeConfig(offset: number, width: 1 | 2 | 4, value: number): void;
  /**
   * The driver made buffers available on `queue` (or the device became live, or a turn
   * began after one ran out of credit: check all, and carry on with a request in progress).
   */
  notify(queue: number): void;
  /** Device reset by the driver (status 0) or by the machine: drop all device state tied to the driver. */
  reset(): void;
  /** Work at slice boundaries (host input reaching the guest), optional. */
  poll?(): void;
  /** Counters for `--stats`. */
  counters(): VirtioCounters;
  /** Present when the device holds host storage (virtio-blk). */
  readonly storage?: StorageCapability;
  /** Device state as plain data (see devices/state.ts); optional for stateless devices. */
  save?(): unknown;
  restore?(state: unknown): void;
  /** Called once the transport's own state is restored too (a device may then ask for a reset). */
  restored?(): void;
}
