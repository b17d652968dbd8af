/**
 * The browser's services for a Vm (vmm/host.ts), inside the machine's Web Worker: boot files
 * and disk images are the files the page handed over (by name); a disk is a working copy in
 * OPFS, opened once and shared by the machines that follow each other in the tab (a snapshot
 * loaded in place of the running machine gets the same disk: OPFS lets one handle at a time
 * hold a file). A NIC is the user NAT in the worker, reaching out through the server's relay
 * (net.ts), or a stream link the server connects. A tab has no host folders; its one shared
 * folder is a tree in the worker's memory (MemFs, TAB_SHARE_LIMITS), the same tree for every
 * machine that follows another in the worker (a loaded snapshot's too): files dropped on the
 * page go there, and the page downloads what the guest writes there. Its migration links are
 * WebSockets to the daemon it moves to (ws-link.ts).
 */
import { MemFs, openMemShare, type MemFsLimits } from '../../devices/virtio/9p/mem-fs.ts';
import { openImage } from '../../storage/open.ts';
import type { BlockBackend } from '../../storage/backend.ts';
import type { HostFile, HostFileSystem } from '../../storage/host-file.ts';
import { VirtusError } from '../../util/errors.ts';
import type { MigrationLink, OpenedDisk, OpenedNic, OpenedShare, VmHost } from '../../vmm/host.ts';
import type { DiskSpec, NicSpec, ShareSpec } from '../../vmm/spec.ts';
import { createBrowserLink, createBrowserNic, WISP_RELAY } from './net.ts';
import { openWorkingDisk } from './opfs-file.ts';
import { BrowserRunnerHost } from './runner-host.ts';
import { outgoingWebSocket } from './ws-link.ts';

/**
 * A file system of one file: a browser has no paths, so a qcow2 image with a backing file
 * cannot be opened (one clear error names the backing file).
 */
function singleFile(file: HostFile): HostFileSystem {
  const no = (what: string) => new VirtusError('BROWSER_FS', `${file.name}: ${what} is not possible in a browser tab`);
  return {
    open(path) {
      if (path === file.name) return file;
      throw new VirtusError('BACKING_OPEN', `the browser has no file ${path} (drop a disk image without a backing file)`);
    },
    create: () => {
      throw no('creating files');
    },
    resolveBacking: (_image, backing) => backing,
    exists: (path) => path === file.name,
    remove: () => {
      throw no('removing files');
    },
  };
}

/**
 * What the guest (and the page) may keep in the tab's shared folder: it lives in the tab's
 * memory beside guest RAM, so it is bounded; a write beyond gets ENOSPC in the guest, a drop
 * beyond is refused on the page.
 */
export const TAB_SHARE_LIMITS: MemFsLimits = { maxBytes: 256 * 1024 * 1024, maxEntries: 16384 };

interface SharedDisk {
  backend: BlockBackend;
  persistent: boolean;
  users: number;
}

export class BrowserVmHost implements VmHost {
  readonly runner: BrowserRunnerHost;
  readonly sharedMemory: boolean;
  /** The files the page handed over, by name. */
  readonly files = new Map<string, Uint8Array>();
  /** The tab's shared folder (TAB_SHARE), kept while the worker lives. */
  readonly share = new MemFs(TAB_SHARE_LIMITS);
  /** Open working copies, by file name. */
  private readonly disks = new Map<string, SharedDisk>();
  /** The terminal's size, kept current by the page. */
  term = { cols: 80, rows: 24 };

  constructor(o: { runner: BrowserRunnerHost; sharedMemory: boolean; warn: (line: string) => void }) {
    this.runner = o.runner;
    this.sharedMemory = o.sharedMemory;
    this.warn = o.warn;
  }

  readonly warn: (line: string) => void;

  readFile(ref: string, what: string): Uint8Array {
    const f = this.files.get(ref);
    if (!f) throw new VirtusError('FILE_OPEN', `the page gave no ${what} ${ref}`);
    return f;
  }

  /** True when some disk keeps the guest's writes across visits (OPFS). */
  get persistentDisk(): boolean {
    return [...this.disks.values()].some((d) => d.persistent && d.users > 0);
  }

  async openDisk(d: DiskSpec): Promise<OpenedDisk> {
    let shared = this.disks.get(d.file);
    if (!shared) {
      const bytes = this.readFile(d.file, 'disk');
      // The working copy is keyed by the image's name and size: a different image starts afresh.
      const w = await openWorkingDisk(d.file, bytes, `${d.file}:${bytes.length}`);
      shared = { backend: openImage(singleFile(w.file), w.file.name, d.format ? { format: d.format } : {}), persistent: w.persistent, users: 0 };
      this.disks.set(d.file, shared);
    }
    shared.users++;
    const s = shared;
    let closed = false;
    return {
      backend: s.backend,
      close: () => {
        if (closed) return;
        closed = true;
        if (--s.users > 0) {
          s.backend.flush();
          return;
        }
        this.disks.delete(d.file);
        s.backend.close();
      },
    };
  }

  /** The tab's shared folder; a machine has at most one (the page and the server ask for no more). */
  openShare(_s: ShareSpec, index: number): OpenedShare {
    if (index > 0) throw new VirtusError('NO_SHARES', 'a browser tab has one shared folder');
    return openMemShare(this.share);
  }

  async openNic(n: NicSpec, index: number, mac: string): Promise<OpenedNic> {
    const b = n.backend;
    if (b.type !== 'user') {
      const link = await createBrowserLink(index, { wake: () => this.runner.wake(), warn: (l) => this.warn(l) });
      return { backend: link, close: () => link.close() };
    }
    const [addr, port] = (b.resolver || '127.0.0.1:53').split(':');
    const nat = await createBrowserNic({ mac, backend: b }, {
      relay: WISP_RELAY, resolver: { addr: addr!, port: Number(port ?? 53) }, wake: () => this.runner.wake(), warn: (l) => this.warn(l),
    });
    return { backend: nat, close: () => nat.close() };
  }

  /** A migration to a daemon: `uri` is its WebSocket (ws: or wss:, the from-tab endpoint). */
  connect(uri: string): Promise<MigrationLink> {
    if (!/^wss?:\/\//.test(uri)) return Promise.reject(new VirtusError('NO_MIGRATION', `a browser tab migrates only over a WebSocket (ws://...), not to ${uri}`));
    return outgoingWebSocket(uri);
  }

  consoleSize(): { cols: number; rows: number } {
    return this.term;
  }
}
