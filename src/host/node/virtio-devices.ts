/**
 * `virtus run`'s paravirtual devices: --drive, --root disk, --share and --console virtio
 * become virtio devices on the board, in QEMU's order (the root disk, then each --drive in
 * order: the first is /dev/vda; then shares, the console, and a virtio-rng every machine
 * has). Bad specifications and drives that cannot be opened are one clear line at start-up;
 * at run time, I/O errors and broken drivers are warnings on stderr and errors to the guest.
 */
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { VirtioP9 } from '../../devices/virtio/9p/9p.ts';
import { VirtioBlk, ID_BYTES } from '../../devices/virtio/blk/blk.ts';
import { VirtioConsole } from '../../devices/virtio/console/console.ts';
import { VirtioRng } from '../../devices/virtio/rng/rng.ts';
import type { VirtBoard } from '../../machine/virt.ts';
import { openDrive, parseDriveSpec, type Drive } from '../../storage/drive.ts';
import { VirtusError } from '../../util/errors.ts';
import { NodeHostFs } from './host-fs.ts';
import { nodeFileSystem } from './host-file.ts';
import { attachNics, nicDescs, NET_HELP, NET_OPTIONS } from './net/attach.ts';

/** parseArgs options for the virtio flags. */
export const VIRTIO_OPTIONS = {
  drive: { type: 'string', multiple: true },
  root: { type: 'string' },
  share: { type: 'string', multiple: true },
  console: { type: 'string' },
  ...NET_OPTIONS,
} as const;

/** The --help lines for them. */
export const VIRTIO_HELP = `  --drive file=PATH[,format=raw|qcow2][,readonly=on][,serial=STR][,overlay=auto|PATH]
                       a virtio-blk disk (repeatable; the first is /dev/vda).
                       The format is detected unless given; overlay=auto writes
                       to a temporary qcow2 overlay over a base left untouched
  --root disk          boot the default guest's root disk (kept between runs)
                       as /dev/vda with root=/dev/vda
  --share PATH[,tag=NAME][,readonly=on]
                       share a host folder over virtio-9p (repeatable; tags
                       host0, host1, ...); in the guest: mount -t 9p -o
                       trans=virtio,version=9p2000.L host0 /mnt
  --console serial|virtio
                       the guest's console: the UART (ttyS0, default) or
                       virtio-console (hvc0, which follows the terminal's size)
${NET_HELP}`;

/** A parsed --share value. */
export interface ShareSpec {
  path: string;
  tag?: string;
  readOnly: boolean;
}

/** Parses `PATH[,tag=NAME][,readonly=on]` (or `path=PATH,...`); ",," is a literal comma. */
export function parseShareSpec(text: string): ShareSpec {
  const items = text.replace(/,,/g, '\0').split(',').map((p) => p.replace(/\0/g, ','));
  const spec: Partial<ShareSpec> = { readOnly: false };
  items.forEach((item, i) => {
    const eq = item.indexOf('=');
    if (eq < 0 && i === 0 && item !== '') {
      spec.path = item;
      return;
    }
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (eq < 0) throw new VirtusError('BAD_SHARE', `--share: '${item}' is not key=value`, { exitCode: 2 });
    if (key === 'path') spec.path = value;
    else if (key === 'tag') spec.tag = value;
    else if (key === 'readonly') {
      if (!['on', 'off', 'true', 'false'].includes(value)) throw new VirtusError('BAD_SHARE', `--share readonly: expected on or off, got '${value}'`, { exitCode: 2 });
      spec.readOnly = value === 'on' || value === 'true';
    } else throw new VirtusError('BAD_SHARE', `--share: unknown key '${key}' (expected path, tag, readonly)`, { exitCode: 2 });
  });
  if (!spec.path) throw new VirtusError('BAD_SHARE', `--share ${text}: the folder is missing`, { exitCode: 2 });
  return spec as ShareSpec;
}

export interface VirtioFlags {
  drive?: string[];
  root?: string;
  share?: string[];
  console?: string;
  nic?: string[];
  netdev?: string[];
  device?: string[];
}

/** What attachVirtio set up. */
export interface VirtioSetup {
  /** Words for the kernel command line (root=, console=). */
  append: string[];
  /** The virtio console, when it is the guest's console. */
  console: VirtioConsole | null;
  /** Flushes and closes the drives (deleting temporary overlays) and the shares' handles. */
  close(): void;
}

let overlays = 0;

/** Runs a parser whose errors are usage errors (exit code 2). */
function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof VirtusError && e.exitCode !== 2) throw new VirtusError(e.code, e.message, { exitCode: 2, cause: e });
    throw e;
  }
}

/** Warnings at run time: one line each, limited so a guest cannot flood the terminal. */
function warner(write: (line: string) => void): (what: string, message: string) => void {
  let left = 20;
  return (what, message) => {
    if (left-- > 0) write(`virtus: warning: ${what}: ${message}${left === 0 ? ' (further warnings suppressed)' : ''}`);
  };
}

/**
 * Opens what the flags name and plugs the devices into `board`. `rootDisk` resolves
 * `--root disk` (the default guest's disk path). On error, whatever was opened is closed.
 */
export async function attachVirtio(
  board: VirtBoard,
  v: VirtioFlags,
  o: { rootDisk: () => Promise<string>; output: (b: Uint8Array) => void; warn: (line: string) => void; wake?: () => void },
): Promise<VirtioSetup> {
  const drives: Drive[] = [];
  let nets: { close(): void } | null = null;
  const shares: NodeHostFs[] = [];
  const setup: VirtioSetup = {
    append: [],
    console: null,
    close() {
      for (const d of drives.splice(0)) {
        try {
          d.close();
        } catch (e) {
          o.warn(`virtus: warning: closing ${d.backend.name}: ${(e as Error).message}`);
        }
      }
      for (const s of shares.splice(0)) s.closeAll();
      nets?.close();
    },
  };
  const warn = warner(o.warn);
  board.onVirtioError = (device, reason) => warn(device, `${reason} (the device needs a reset)`);
  const deterministic = board.machine.clock.deterministic;
  const con = v.console ?? 'serial';
  if (con !== 'serial' && con !== 'virtio') throw new VirtusError('BAD_FLAG', `run: --console must be serial or virtio, not "${con}"`, { exitCode: 2 });
  if (v.root !== undefined && v.root !== 'disk') throw new VirtusError('BAD_FLAG', `run: --root takes "disk" (the default guest's root disk), not "${v.root}"`, { exitCode: 2 });
  try {
    const specs = (v.drive ?? []).map((text) => {
      const spec = usage(() => parseDriveSpec(text));
      const serial = spec.other.get('serial');
      spec.other.delete('serial');
      const unknown = [...spec.other.keys()];
      if (unknown.length) throw new VirtusError('BAD_DRIVE', `--drive: unknown key '${unknown[0]}' (expected file, format, readonly, serial, overlay)`, { exitCode: 2 });
      if (serial !== undefined && (new TextEncoder().encode(serial).length > ID_BYTES || !/^[\x20-\x7e]*$/.test(serial))) {
        throw new VirtusError('BAD_DRIVE', `--drive serial: at most ${ID_BYTES} printable ASCII characters`, { exitCode: 2 });
      }
      return { spec, serial };
    });
    if (v.root === 'disk') {
      specs.unshift({ spec: parseDriveSpec(`file=${(await o.rootDisk()).replace(/,/g, ',,')},format=raw`), serial: 'virtus-root' });
      setup.append.push('root=/dev/vda');
    }
    specs.forEach(({ spec, serial }, i) => {
      let drive: Drive;
      try {
        drive = openDrive(nodeFileSystem, spec, {
          absolute: (p) => resolve(p),
          temporaryPath: () => join(tmpdir(), `virtus-overlay-${process.pid}-${overlays++}.qcow2`),
        });
      } catch (e) {
        if (e instanceof VirtusError) throw new VirtusError(e.code, `--drive ${spec.file}: ${e.message}`, { exitCode: 2, cause: e });
        throw e;
      }
      drives.push(drive);
      board.attachVirtio(new VirtioBlk(drive.backend, { name: `virtio-blk${i}`, serial: serial ?? '', onIoError: (d, m) => warn(d, `I/O error: ${m}`) }));
    });
    (v.share ?? []).forEach((text, i) => {
      const s = parseShareSpec(text);
      const fs = new NodeHostFs(s.path, { readOnly: s.readOnly });
      shares.push(fs);
      const clock = deterministic ? () => board.wallClockNs() : undefined;
      board.attachVirtio(new VirtioP9({ name: `virtio-9p${i}`, tag: s.tag ?? `host${i}`, fs, ...(clock ? { clock } : {}) }));
    });
    nets = await attachNics(usage(() => nicDescs(v)), (d) => board.attachVirtio(d), { wake: o.wake ?? (() => {}), warn: o.warn });
    if (con === 'virtio') {
      const cols = process.stdout.isTTY ? process.stdout.columns : 80;
      const rows = process.stdout.isTTY ? process.stdout.rows : 24;
      setup.console = new VirtioConsole({ output: o.output, cols, rows });
      board.attachVirtio(setup.console);
      // The UART stays the first console: /init runs before the virtio modules load; once
      // they have, /dev/console and the shell are hvc0 (the last console= named).
      setup.append.push('console=hvc0');
    }
    board.attachVirtio(new VirtioRng(deterministic ? { seed: 0x5eed } : {}));
  } catch (e) {
    setup.close();
    throw e;
  }
  return setup;
}
