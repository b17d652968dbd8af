/**
 * The boot files (firmware, kernel, initrd) of the daemon's machines, read once and shared by
 * every machine thread that boots from them. Each machine keeps its boot images for the life of
 * its Vm (a guest reboot loads them again; snapshots and migrations carry them), which for the
 * default guest is 45 MiB a machine; ten machines from one image would hold ten copies. Here a
 * file becomes one SharedArrayBuffer that each worker views, so N machines hold one copy.
 *
 * A file is known by its path and identity (device, inode, size, modification time): a file
 * replaced or rewritten since it was read is read again, and machines that booted from the old
 * contents keep theirs. Anything but a regular file of at most MAX_FILE bytes is left to the
 * machine's thread. Nothing writes into the shared bytes: the machine copies them into guest
 * RAM, a snapshot or a stream. A file the cache cannot read is left to the worker, whose read
 * fails with the usual message.
 *
 * The daemon's own copies of files (its images' kernels and initrds, a migrated machine's
 * images, all in its state directory, which nothing else writes) are not kept at all: the
 * machine reads them from the file whenever it needs them (`reread`, vm-host.ts: a reboot, a
 * snapshot, a migration), and fails cleanly if one was changed meanwhile. Between those only
 * the host's page cache holds them, where QEMU keeps a copy in each process: for the default
 * guest, 45 MiB less for the first machine of an image.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import type { MachineSpec } from '../../../vmm/spec.ts';

/** Bytes of files the cache keeps for later machines once it holds more than this. */
const KEEP_BYTES = 256 << 20;
/** A larger file is left to the machine's thread: the daemon's thread does not stall reading it. */
const MAX_FILE = 256 << 20;

interface Entry {
  key: string;
  bytes: SharedArrayBuffer;
}

/** What a machine's thread gets of its boot files. */
export interface SpecFiles {
  /** The shared contents of the files that could be read, by the name the spec uses. */
  files: Record<string, SharedArrayBuffer>;
  /** The files it reads again when it needs them. */
  reread: string[];
}

/** Boot files shared between machine threads (see the file's comment). */
export class BootFiles {
  /** By path, most recently used last. */
  private readonly entries = new Map<string, Entry>();

  /** `reread` says which files the machines read again instead (the daemon's own). */
  constructor(private readonly reread: (path: string) => boolean = () => false) {}

  /** The boot files `spec` names: each shared, or named to be read again. */
  forSpec(spec: MachineSpec): SpecFiles {
    const b = spec.boot;
    const names = b.mode === 'firmware' ? [b.firmware, b.kernel, b.initrd] : [b.kernel, b.initrd];
    const out: SpecFiles = { files: {}, reread: [] };
    for (const name of names) {
      if (name === undefined) continue;
      if (this.reread(name)) {
        out.reread.push(name);
        continue;
      }
      const bytes = this.get(name);
      if (bytes) out.files[name] = bytes;
    }
    return out;
  }

  /** The file at `path` as shared bytes, or null when it cannot be read. */
  get(path: string): SharedArrayBuffer | null {
    let fd: number;
    try {
      // Not blocking: a FIFO named as a kernel must not stall the daemon's thread.
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      return null;
    }
    try {
      const s = fstatSync(fd, { bigint: true });
      if (!s.isFile() || s.size > MAX_FILE) return null;
      const key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
      const had = this.entries.get(path);
      this.entries.delete(path);
      if (had && had.key === key) {
        this.entries.set(path, had);
        return had.bytes;
      }
      const data = readFileSync(fd);
      const bytes = new SharedArrayBuffer(data.length);
      new Uint8Array(bytes).set(data);
      this.entries.set(path, { key, bytes });
      this.trim();
      return bytes;
    } catch {
      return null;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Forgets the least recently used files beyond KEEP_BYTES. A machine that holds a file keeps
   * it: its thread has its own reference to the shared memory.
   */
  private trim(): void {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes.byteLength;
    for (const [path, e] of this.entries) {
      if (total <= KEEP_BYTES || this.entries.size === 1) break;
      this.entries.delete(path);
      total -= e.bytes.byteLength;
    }
  }
}
