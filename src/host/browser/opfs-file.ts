/**
 * HostFiles for a browser: a disk image in the origin private file system (OPFS), read and
 * written through a synchronous access handle, which exists only inside a Web Worker and
 * has exactly the shape storage/host-file.ts asks for (read/write at a position, truncate,
 * flush). Where OPFS is missing (an old browser, a private window) the disk lives in memory
 * and the guest's writes last as long as the tab.
 */
import { MemoryHostFile, type HostFile } from '../../storage/host-file.ts';
import { VirtusError } from '../../util/errors.ts';

/** The part of FileSystemSyncAccessHandle used here (TypeScript's DOM library lacks it). */
interface SyncAccessHandle {
  read(buf: Uint8Array, o: { at: number }): number;
  write(buf: Uint8Array, o: { at: number }): number;
  getSize(): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}

interface SyncFileHandle {
  createSyncAccessHandle(): Promise<SyncAccessHandle>;
}

/** A file in OPFS as a HostFile. */
export class OpfsHostFile implements HostFile {
  readonly readOnly = false;

  constructor(
    readonly name: string,
    private readonly handle: SyncAccessHandle,
  ) {}

  read(position: number, buf: Uint8Array): number {
    let done = 0;
    while (done < buf.length) {
      const n = this.handle.read(buf.subarray(done), { at: position + done });
      if (n <= 0) break;
      done += n;
    }
    return done;
  }

  write(position: number, buf: Uint8Array): void {
    let done = 0;
    while (done < buf.length) {
      const n = this.handle.write(buf.subarray(done), { at: position + done });
      if (n <= 0) throw new VirtusError('DISK_WRITE', `${this.name}: the browser's storage refused a write (quota full?)`);
      done += n;
    }
  }

  size(): number {
    return this.handle.getSize();
  }

  truncate(size: number): void {
    this.handle.truncate(size);
  }

  flush(): void {
    this.handle.flush();
  }

  close(): void {
    this.handle.close();
  }
}

/**
 * The guest's working copy of a disk image: in OPFS under `name` when the browser has it,
 * filled from `pristine` the first time (or whenever `pristineKey` changed, i.e. a new
 * default guest was built); otherwise in memory. The guest's writes persist in OPFS across
 * visits, as a root disk persists on the host under `virtus run`.
 */
export async function openWorkingDisk(name: string, pristine: Uint8Array, pristineKey: string): Promise<{ file: HostFile; persistent: boolean }> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (!storage?.getDirectory) return { file: new MemoryHostFile(name, pristine), persistent: false };
  try {
    const root = await storage.getDirectory();
    const dir = await root.getDirectoryHandle('virtus-disks', { create: true });
    const safe = name.replace(/[^A-Za-z0-9._-]/g, '_');
    const keyHandle = await dir.getFileHandle(`${safe}.key`, { create: true });
    const stored = await (await keyHandle.getFile()).text();
    const fh = (await dir.getFileHandle(safe, { create: true })) as unknown as SyncFileHandle;
    const handle = await fh.createSyncAccessHandle();
    const file = new OpfsHostFile(name, handle);
    if (stored !== pristineKey || file.size() !== pristine.length) {
      file.truncate(0);
      file.write(0, pristine);
      file.flush();
      const kh = (keyHandle as unknown as SyncFileHandle);
      const k = await kh.createSyncAccessHandle();
      const text = new TextEncoder().encode(pristineKey);
      k.truncate(0);
      k.write(text, { at: 0 });
      k.flush();
      k.close();
    }
    return { file, persistent: true };
  } catch {
    // OPFS exists but refused (quota, a second tab holding the handle): keep the tab working.
    return { file: new MemoryHostFile(name, pristine), persistent: false };
  }
}
