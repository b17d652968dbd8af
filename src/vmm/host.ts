/**
 * What a Vm needs from the host it runs on. The VMM layer is core code (no Node, no DOM): the
 * Node CLI, the daemon's workers and the browser's worker each implement this once, and every
 * file, folder, socket and clock the machine uses comes through it.
 */
import type { HostFs } from '../devices/virtio/9p/fs.ts';
import type { RunnerHost } from '../machine/runner.ts';
import type { OutgoingLink } from '../machine/migrate.ts';
import type { BlockBackend } from '../storage/backend.ts';
import type { NetBackend } from '../util/net-backend.ts';
import type { DiskSpec, NicSpec, ShareSpec } from './spec.ts';

/** A disk the host opened for a machine. */
export interface OpenedDisk {
  readonly backend: BlockBackend;
  /** Flushes and closes it (deleting a temporary overlay). */
  close(): void;
  /**
   * Lets go of the image's locks, the disk staying open and flushed: a live migration hands it
   * to its target, which takes the locks. `activate` takes them back (the migration failed).
   * Absent on hosts without image locks.
   */
  inactivate?(): void;
  activate?(): void;
  /**
   * Closes the disk's host files without writing anything more (after a migration: the target
   * owns the image now, and even a clean close would write to it).
   */
  abandon?(): void;
}

/** A folder the host shares with a machine. */
export interface OpenedShare {
  readonly fs: HostFs;
  close(): void;
}

/** A NIC's backend the host made (sockets, a NAT, a link). */
export interface OpenedNic {
  readonly backend: NetBackend;
  close(): void;
}

/** A migration link the host connected. */
export type MigrationLink = OutgoingLink & { close(): void };

export interface VmHost {
  /** Sleeping, yielding to the host's event loop, and waking the run loop early. */
  readonly runner: RunnerHost;
  /** Create guest memory shared (so harts can later run in workers); a browser page that is not cross-origin isolated cannot. */
  readonly sharedMemory?: boolean;
  /** The bytes of a boot file the spec names (kernel, initrd, firmware); `what` names it in errors. */
  readFile(ref: string, what: string): Uint8Array | Promise<Uint8Array>;
  /**
   * Optional: a reader of a boot file that the machine reads again whenever it needs the bytes
   * (boot, reboot, snapshot, migration) instead of keeping them; null when it must keep them.
   * The reader fails with a VirtusError when the file is no longer the one it first found.
   */
  bootFileReader?(ref: string, what: string): (() => Uint8Array) | null;
  /**
   * Optional: reads disk `d` once, read-only, without locks and without keeping it, so that
   * its openDisk later costs less (a migration target prepares while the RAM is still coming,
   * and opens for real inside the guest's downtime). Never fails: openDisk reports problems.
   */
  prepareDisk?(d: DiskSpec, index: number): void;
  /** Opens a disk the spec names; `index` counts disks from 0 (the first is /dev/vda). */
  openDisk(d: DiskSpec, index: number): OpenedDisk | Promise<OpenedDisk>;
  /** Opens a folder the spec shares (absent: this host has no folders to share). */
  openShare?(s: ShareSpec, index: number): OpenedShare;
  /**
   * Makes the backend of a NIC the spec names (absent: this host has no network); `mac` is
   * the address the device will have. Host resources (listeners, sockets) are ready when it
   * resolves; failures are one-line VirtusErrors.
   */
  openNic?(n: NicSpec, index: number, mac: string): OpenedNic | Promise<OpenedNic>;
  /** Connects a migration link to `uri` (absent: this host cannot migrate machines out). */
  connect?(uri: string): Promise<MigrationLink>;
  /** The terminal's size, for virtio-console. */
  consoleSize?(): { cols: number; rows: number };
  /** One line for the host's log (an I/O error, a driver that broke a device). */
  warn(line: string): void;
}
