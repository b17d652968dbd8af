/**
 * buildBoard: the one place a MachineSpec becomes a machine. The board's table (machine/virt.ts)
 * fixes every address and interrupt; this fills its virtio slots from the spec, in one order
 * for every host (disks — the first is /dev/vda —, shared folders, NICs, the console, and the
 * virtio-rng every machine has), so a snapshot taken by one host lines up slot for slot with
 * the machine another host builds from the same spec.
 */
import { VirtioP9 } from '../devices/virtio/9p/9p.ts';
import { VirtioBlk } from '../devices/virtio/blk/blk.ts';
import { VirtioConsole } from '../devices/virtio/console/console.ts';
import { VirtioNet } from '../devices/virtio/net/net.ts';
import { parseMac } from '../util/inet.ts';
import { defaultMac } from './nic.ts';
import { VirtioRng } from '../devices/virtio/rng/rng.ts';
import type { BootOptions } from '../machine/virt.ts';
import { VirtBoard } from '../machine/virt.ts';
import { VirtusError } from '../util/errors.ts';
import type { OpenedDisk, VmHost } from './host.ts';
import type { MachineSpec } from './spec.ts';

/** The seed of the virtio-rng in deterministic mode (any fixed value: the same on every host). */
const DETERMINISTIC_RNG_SEED = 0x5eed;
/** Host log lines a machine may cause before they are suppressed (a guest must not flood it). */
const MAX_WARNINGS = 20;

/** A machine built from a spec, with what it holds on the host. */
export interface BuiltMachine {
  readonly board: VirtBoard;
  /** The virtio console, when it is the guest's console (input and resizes go to it). */
  readonly console: VirtioConsole | null;
  /** The NICs' MAC addresses, in order (what a snapshot keeps of each). */
  readonly macs: string[];
  /** Has every NIC ask its guest to announce itself (after a restore or a migration: switches relearn its port). */
  announce(): void;
  /** Flushes and closes what the machine opened on the host; safe to call twice. */
  close(): void;
  /**
   * Lets go of everything without writing to the disks again (the machine went to another
   * host, which owns them now): NICs and folders are closed, disks abandoned.
   */
  abandon(): void;
  /** Lets go of the disks' image locks for a migration's target (they stay open and flushed). */
  handover(): void;
  /** Takes the disks' locks back after a migration that failed. */
  takeBack(): void;
  /** Makes every write to the machine's disks durable (each backend's flush), keeping them open. */
  flush(): void;
}

/** Where a machine's console output and host warnings go. */
export interface MachineIo {
  output(bytes: Uint8Array): void;
  /** Bytes the host can take now (optional): at 0 the consoles hold the guest's output back. */
  room?(): number;
  /** One line for the host's log. */
  warn(line: string): void;
}

/** The host log, limited to MAX_WARNINGS lines per machine. */
function warner(io: MachineIo): (what: string, message: string) => void {
  let left = MAX_WARNINGS;
  return (what, message) => {
    if (left-- > 0) io.warn(`virtus: warning: ${what}: ${message}${left === 0 ? ' (further warnings suppressed)' : ''}`);
  };
}

/** An empty board for `spec` (no virtio devices yet); console output goes to `output`. */
export function newBoard(spec: MachineSpec, host: VmHost, io: MachineIo): VirtBoard {
  return new VirtBoard({
    ramSize: spec.memory,
    harts: spec.harts,
    deterministic: spec.deterministic,
    engine: spec.engine,
    console: (b) => io.output(b),
    ...(io.room ? { consoleRoom: () => io.room!() } : {}),
    ...(host.sharedMemory !== undefined ? { sharedMemory: host.sharedMemory } : {}),
  });
}

/**
 * Opens what the spec's devices name on the host and plugs them into `board`'s virtio slots.
 * On any failure, whatever was opened is closed again.
 */
export async function attachDevices(board: VirtBoard, spec: MachineSpec, host: VmHost, io: MachineIo): Promise<BuiltMachine> {
  /** What closes each opened resource, and what lets it go without a write (disks). */
  const closers: Array<() => void> = [];
  const abandoners: Array<() => void> = [];
  const disks: OpenedDisk[] = [];
  const nics: VirtioNet[] = [];
  const macs: string[] = [];
  let console: VirtioConsole | null = null;
  const warn = warner(io);
  board.onVirtioError = (device, reason) => warn(device, `${reason} (the device needs a reset)`);
  const run = (fs: Array<() => void>): void => {
    for (const f of fs.reverse()) {
      try {
        f();
      } catch (e) {
        io.warn(`virtus: warning: closing a device: ${(e as Error).message}`);
      }
    }
  };
  const close = (): void => {
    abandoners.length = 0;
    run(closers.splice(0));
  };
  const abandon = (): void => {
    closers.length = 0;
    run(abandoners.splice(0));
  };
  try {
    const d = spec.devices;
    for (const [i, disk] of d.disks.entries()) {
      const opened = await host.openDisk(disk, i);
      closers.push(() => opened.close());
      abandoners.push(() => opened.abandon?.());
      disks.push(opened);
      board.attachVirtio(new VirtioBlk(opened.backend, { name: `virtio-blk${i}`, serial: disk.serial, onIoError: (dev, m) => warn(dev, `I/O error: ${m}`) }));
    }
    for (const [i, share] of d.shares.entries()) {
      if (!host.openShare) throw new VirtusError('NO_SHARES', `this host cannot share folders (devices.shares[${i}]: ${share.path})`);
      const opened = host.openShare(share, i);
      closers.push(() => opened.close());
      abandoners.push(() => opened.close());
      const clock = spec.deterministic ? { clock: () => board.wallClockNs() } : {};
      board.attachVirtio(new VirtioP9({ name: `virtio-9p${i}`, tag: share.tag, fs: opened.fs, ...clock }));
    }
    for (const [i, nic] of d.nics.entries()) {
      if (!host.openNic) throw new VirtusError('NO_NETWORK', `this host has no network for devices.nics[${i}]`);
      const mac = nic.mac ?? defaultMac(i);
      const opened = await host.openNic(nic, i, mac);
      closers.push(() => opened.close());
      abandoners.push(() => opened.close());
      const dev = new VirtioNet(opened.backend, { name: `virtio-net${i}`, mac: parseMac(mac)! });
      nics.push(dev);
      macs.push(mac);
      board.attachVirtio(dev);
    }
    if (d.console === 'virtio') {
      const size = host.consoleSize?.() ?? { cols: 80, rows: 24 };
      console = new VirtioConsole({ output: (b) => io.output(b), ...(io.room ? { room: () => io.room!() } : {}), ...size });
      board.attachVirtio(console);
      const hvc = console;
      board.uartHidden = () => hvc.inUse;
    }
    board.attachVirtio(new VirtioRng(spec.deterministic ? { seed: DETERMINISTIC_RNG_SEED } : {}));
  } catch (e) {
    close();
    throw e;
  }
  return {
    board,
    console,
    macs,
    announce: () => nics.forEach((n) => n.announce()),
    close,
    abandon,
    handover: () => disks.forEach((d) => d.inactivate?.()),
    takeBack: () => disks.forEach((d) => d.activate?.()),
    flush: () => disks.forEach((d) => d.backend.flush()),
  };
}

/** Builds the machine `spec` describes: the board and its devices (not yet booted). */
export async function buildBoard(spec: MachineSpec, host: VmHost, io: MachineIo): Promise<BuiltMachine> {
  return attachDevices(newBoard(spec, host, io), spec, host, io);
}

/**
 * The kernel command line the guest gets: the spec's, and what the devices need. With
 * virtio-console the UART stays the first console (the kernel's first messages and /init come
 * there before hvc0 exists); the last console= named becomes /dev/console, where the shell runs.
 */
export function kernelCommandLine(spec: MachineSpec): string {
  const words = [spec.boot.append];
  if (spec.devices.console === 'virtio') words.push('console=hvc0');
  return words.filter(Boolean).join(' ');
}

/**
 * The boot files the spec names, through the host: their bytes, or where the host offers it
 * (bootFileReader), properties that read the file again each time they are asked.
 */
export async function bootOptions(spec: MachineSpec, host: VmHost): Promise<BootOptions> {
  const b = spec.boot;
  if (b.kernel === undefined) throw new VirtusError('NO_KERNEL', 'the machine has no kernel: name one (--kernel)', { exitCode: 2 });
  const o = { kernelName: b.kernel, append: kernelCommandLine(spec) } as BootOptions;
  await bootImage(o, 'kernel', host, b.kernel, 'kernel');
  if (b.initrd !== undefined) await bootImage(o, 'initrd', host, b.initrd, 'initrd');
  if (b.mode === 'builtin') o.firmware = 'builtin';
  else if (b.mode === 'bare') o.firmware = 'none';
  else {
    const firmware = { name: b.firmware! } as { bytes: Uint8Array; name: string };
    await bootImage(firmware, 'bytes', host, b.firmware!, 'firmware');
    o.firmware = firmware;
  }
  return o;
}

/** Sets `target[key]` to the file's bytes, or to a getter that reads them again. */
async function bootImage<K extends string>(target: { [k in K]?: Uint8Array }, key: K, host: VmHost, ref: string, what: string): Promise<void> {
  const reread = host.bootFileReader?.(ref, what);
  if (reread) Object.defineProperty(target, key, { get: reread, enumerable: true, configurable: true });
  else target[key] = await host.readFile(ref, what);
}
