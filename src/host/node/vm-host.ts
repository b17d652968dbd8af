/**
 * The Node host's services for a Vm (vmm/host.ts): boot files from disk (or from memory, for
 * a machine image's layers), disks through the storage layer's drives on Node's files, shared
 * folders confined by NodeHostFs, migration links over TCP, the terminal's size, and the
 * event-loop side of the run loop.
 */
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openDrive } from '../../storage/drive.ts';
import type { HostFile, HostFileSystem, LockMode } from '../../storage/host-file.ts';
import { diskIdentity } from '../../storage/identity.ts';
import { openImage } from '../../storage/open.ts';
import { VirtusError } from '../../util/errors.ts';
import type { MigrationLink, OpenedDisk, OpenedNic, OpenedShare, VmHost } from '../../vmm/host.ts';
import type { DiskSpec, NicSpec, ShareSpec } from '../../vmm/spec.ts';
import { createNicBackend } from './net/index.ts';
import { readHostFile, rereadableFile } from './files.ts';
import { NodeHostFs } from './host-fs.ts';
import { nodeFileSystem } from './host-file.ts';
import { preloadImageLocks } from './image-lock.ts';
import { connectMigration } from './migration-link.ts';
import { NodeRunnerHost } from './runner-host.ts';

let overlays = 0;

export interface NodeVmHostOptions {
  /** Boot files held in memory (a machine image's kernel and initrd), by the name the spec uses. */
  files?: Map<string, Uint8Array>;
  /**
   * Boot files the machine reads again whenever it needs them rather than keeping them in
   * memory (the daemon's own copies of its images' files, which nothing else writes).
   */
  reread?: ReadonlySet<string>;
  /** Where warnings go (default: stderr). */
  warn?: (line: string) => void;
  /** The terminal's size for virtio-console (default: stdout's when it is a terminal). */
  consoleSize?: () => { cols: number; rows: number };
  /**
   * When set, disks are written (and flushed) only while it answers true: a cluster machine's
   * node past its lease's expiry (cluster/lease-gate.ts) refuses every write with LEASE_LOST.
   */
  mayWrite?: () => boolean;
}

export class NodeVmHost implements VmHost {
  readonly runner = new NodeRunnerHost();

  constructor(private readonly o: NodeVmHostOptions = {}) {}

  readFile(ref: string, what: string): Uint8Array {
    return this.o.files?.get(ref) ?? readHostFile(ref, what);
  }

  bootFileReader(ref: string, what: string): (() => Uint8Array) | null {
    return this.o.reread?.has(ref) ? rereadableFile(ref, what) : null;
  }

  /**
   * Reads disk `d` once as openDisk will (its chain's headers and tables, and the MiB its
   * identity covers), read-only and without locks, and closes it again; anything wrong is left
   * for openDisk to report. A migration target does it while the RAM is still coming: the open
   * at the switch-over, inside the guest's downtime, then runs code the thread has already run
   * on data the host has cached (in a fresh process, 7.9 ms cold against 2 ms warm for a qcow2
   * overlay on its base).
   */
  prepareDisk(d: DiskSpec): void {
    // A temporary overlay is made by the real open only; a named one that exists is what it opens.
    if (d.overlay === 'auto') return;
    try {
      preloadImageLocks();
      const named = d.overlay !== undefined && nodeFileSystem.exists(d.overlay);
      const backend = named
        ? openImage(nodeFileSystem, d.overlay!, { format: 'qcow2', readOnly: true, locking: 'off' })
        : openImage(nodeFileSystem, d.file, { readOnly: true, locking: 'off', ...(d.format ? { format: d.format } : {}) });
      try {
        diskIdentity(backend);
      } finally {
        backend.close();
      }
    } catch {
      // openDisk says what is wrong, at the switch-over.
    }
  }

  openDisk(d: DiskSpec): OpenedDisk {
    // The files of the disk's chain and the locks each took, to hand them over in a migration.
    const locked: Array<{ file: HostFile; mode: LockMode; lock: (mode: LockMode) => void }> = [];
    const files: HostFile[] = [];
    const fs: HostFileSystem = {
      ...nodeFileSystem,
      open: (path, o) => recorded(nodeFileSystem.open(path, o)),
      create: (path, o) => recorded(nodeFileSystem.create(path, o)),
    };
    const recorded = (file: HostFile): HostFile => {
      files.push(file);
      const mayWrite = this.o.mayWrite;
      if (mayWrite) {
        const refuse = (): void => {
          if (!mayWrite()) throw new VirtusError('LEASE_LOST', `${file.name}: this node's cluster lease has expired; another node may run the machine now, so its disks are not written here`);
        };
        for (const op of ['write', 'truncate', 'flush'] as const) {
          const f = (file[op] as (...a: unknown[]) => void).bind(file);
          (file as unknown as Record<string, (...a: unknown[]) => void>)[op] = (...a) => {
            refuse();
            f(...a);
          };
        }
      }
      const lock = file.lock?.bind(file);
      if (lock) {
        file.lock = (mode) => {
          lock(mode);
          locked.push({ file, mode, lock });
        };
      }
      // A file the drive closed again (the base it read while creating an overlay) has no lock to hand over.
      const close = file.close.bind(file);
      file.close = () => {
        close();
        for (let i = locked.length - 1; i >= 0; i--) if (locked[i]!.file === file) locked.splice(i, 1);
      };
      return file;
    };
    try {
      const drive = openDrive(
        fs,
        { file: d.file, readOnly: d.readonly, locking: d.locking ? 'on' : 'off', other: new Map(), ...(d.format ? { format: d.format } : {}), ...(d.overlay !== undefined ? { overlay: d.overlay } : {}) },
        { absolute: (p) => resolve(p), temporaryPath: () => join(tmpdir(), `virtus-overlay-${process.pid}-${overlays++}.qcow2`) },
      );
      return {
        backend: drive.backend,
        close: () => drive.close(),
        inactivate: () => locked.forEach((l) => l.file.unlock?.()),
        activate: () => locked.forEach((l) => l.lock(l.mode)),
        abandon: () => {
          for (const f of files.splice(0)) {
            try {
              f.close();
            } catch {
              // already closed by the drive
            }
          }
        },
      };
    } catch (e) {
      if (e instanceof VirtusError) throw new VirtusError(e.code, `--drive ${d.file}: ${e.message}`, { exitCode: 2, cause: e });
      throw e;
    }
  }

  openShare(s: ShareSpec): OpenedShare {
    const fs = new NodeHostFs(s.path, { readOnly: s.readonly });
    return { fs, close: () => fs.closeAll() };
  }

  async openNic(n: NicSpec, _index: number, mac: string): Promise<OpenedNic> {
    const { backend } = await createNicBackend({ mac, backend: n.backend }, { wake: () => this.runner.wake(), warn: (l) => this.warn(l) });
    return { backend, close: () => backend.close() };
  }

  connect(uri: string): Promise<MigrationLink> {
    return connectMigration(uri);
  }

  consoleSize(): { cols: number; rows: number } {
    if (this.o.consoleSize) return this.o.consoleSize();
    return process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : { cols: 80, rows: 24 };
  }

  warn(line: string): void {
    if (this.o.warn) this.o.warn(line);
    else process.stderr.write(line + '\n');
  }
}
