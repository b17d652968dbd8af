/**
 * The paravirtual devices of a machine in the browser, as `virtus run` plugs them in Node
 * (host/node/virtio-devices.ts): the disk as a virtio-blk over the guest's working copy in
 * OPFS, the console as virtio-console when asked (hvc0, which follows the terminal's size),
 * and the virtio-rng every machine has.
 */
import type { BlockBackend } from '../../storage/backend.ts';
import { VirtioBlk } from '../../devices/virtio/blk/blk.ts';
import { VirtioConsole } from '../../devices/virtio/console/console.ts';
import { VirtioRng } from '../../devices/virtio/rng/rng.ts';
import type { VirtBoard } from '../../machine/virt.ts';
import { type HostFile, type HostFileSystem } from '../../storage/host-file.ts';
import { openImage } from '../../storage/open.ts';
import { VirtusError } from '../../util/errors.ts';
import { openWorkingDisk } from './opfs-file.ts';
import type { BootRequest } from './protocol.ts';

/** What the devices add to the machine. */
export interface BrowserDevices {
  /** The virtio console, when it is the guest's console: input and resizes go to it. */
  console: VirtioConsole | null;
  /** The disk's backend, when a disk is attached. */
  disk: BlockBackend | null;
  /** True when the disk keeps the guest's writes across visits (OPFS). */
  persistent: boolean;
  /** Words for the kernel command line. */
  append: string[];
}

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

/** Plugs the devices `req` asks for into `board`. */
export async function attachDevices(board: VirtBoard, req: BootRequest, output: (b: Uint8Array) => void): Promise<BrowserDevices> {
  const out: BrowserDevices = { console: null, disk: null, persistent: false, append: [] };
  if (req.disk) {
    // The working copy is keyed by the image's name and size: a different image starts afresh.
    const { file, persistent } = await openWorkingDisk(req.disk.name, req.disk.bytes, `${req.disk.name}:${req.disk.bytes.length}`);
    out.disk = openImage(singleFile(file), file.name);
    out.persistent = persistent;
    board.attachVirtio(new VirtioBlk(out.disk, { name: 'virtio-blk0', serial: 'virtus-root' }));
    if (req.root) out.append.push(`root=${req.root}`);
  }
  if (req.console === 'virtio') {
    out.console = new VirtioConsole({ output, cols: req.cols, rows: req.rows });
    board.attachVirtio(out.console);
    // The UART stays the first console, for the kernel's messages before the virtio driver
    // loads; the last console= named becomes /dev/console, where the shell runs.
    out.append.push('console=hvc0');
  }
  board.attachVirtio(new VirtioRng());
  return out;
}
