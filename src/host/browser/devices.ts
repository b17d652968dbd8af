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

/**
 * The devices as a snapshot remembers them, in the shape of `virtus run`'s flags (VirtioFlags
 * in host/node/virtio-devices.ts), so that both hosts read each other's descriptions. A tab
 * has at most one disk (its working copy in OPFS, named by the image's file name) and no
 * shared folders.
 */
export interface DeviceConfig {
  drive: string[];
  share: string[];
  console: 'serial' | 'virtio';
}

/** The description of the devices `req` asks for. */
export function deviceConfig(req: BootRequest): DeviceConfig {
  return { drive: req.disk ? [`file=${req.disk.name}`] : [], share: [], console: req.console };
}

/** Checks a device description read from a snapshot (untrusted) against what a tab can build. */
export function checkDeviceConfig(d: unknown): DeviceConfig {
  const o = (typeof d === 'object' && d !== null ? d : {}) as Record<string, unknown>;
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
  if (!strings(o.drive) || !strings(o.share)) throw new VirtusError('BAD_SNAPSHOT', "the snapshot's device configuration is corrupt");
  if (o.share.length) throw new VirtusError('INCOMPATIBLE', "the snapshot's machine shares host folders (virtio-9p), which a browser tab cannot");
  if (o.drive.length > 1) throw new VirtusError('INCOMPATIBLE', `the snapshot's machine has ${o.drive.length} disks; a browser tab attaches one`);
  const con = o.console ?? 'serial';
  if (con !== 'serial' && con !== 'virtio') throw new VirtusError('BAD_SNAPSHOT', "the snapshot's device configuration is corrupt (console)");
  return { drive: o.drive, share: [], console: con };
}

/** Plugs the devices `req` asks for into `board`; the disk is the image's working copy. */
export async function attachDevices(board: VirtBoard, req: BootRequest, output: (b: Uint8Array) => void): Promise<BrowserDevices> {
  let disk: BlockBackend | null = null;
  let persistent = false;
  if (req.disk) {
    // The working copy is keyed by the image's name and size: a different image starts afresh.
    const w = await openWorkingDisk(req.disk.name, req.disk.bytes, `${req.disk.name}:${req.disk.bytes.length}`);
    disk = openImage(singleFile(w.file), w.file.name);
    persistent = w.persistent;
  }
  const out = plugDevices(board, deviceConfig(req), { disk, persistent, cols: req.cols, rows: req.rows, output });
  if (disk && req.root) out.append.push(`root=${req.root}`);
  return out;
}

/**
 * Plugs the devices `config` describes into `board`, in the order `virtus run` does (disk,
 * console, rng): a snapshot's virtio slots must line up. `o.disk` is the disk to attach when
 * the configuration has one (a restore reuses the open working copy: OPFS lets one handle at
 * a time hold a file).
 */
export function plugDevices(
  board: VirtBoard,
  config: DeviceConfig,
  o: { disk: BlockBackend | null; persistent: boolean; cols: number; rows: number; output: (b: Uint8Array) => void },
): BrowserDevices {
  const out: BrowserDevices = { console: null, disk: null, persistent: false, append: [] };
  if (config.drive.length) {
    if (!o.disk) throw new VirtusError('INCOMPATIBLE', `the snapshot's machine has a disk (${config.drive[0]}) and this one has none: boot with that disk, then load the snapshot`);
    out.disk = o.disk;
    out.persistent = o.persistent;
    board.attachVirtio(new VirtioBlk(o.disk, { name: 'virtio-blk0', serial: 'virtus-root' }));
  }
  if (config.console === 'virtio') {
    out.console = new VirtioConsole({ output: o.output, cols: o.cols, rows: o.rows });
    board.attachVirtio(out.console);
    // The UART stays the first console, for the kernel's messages before the virtio driver
    // loads; the last console= named becomes /dev/console, where the shell runs.
    out.append.push('console=hvc0');
  }
  board.attachVirtio(new VirtioRng());
  return out;
}
