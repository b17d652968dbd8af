/**
 * MachineSpec: the one description of a machine, host-neutral and JSON-serializable. The CLI's
 * flags, a machine image's configuration, a snapshot's configuration record and an HTTP
 * request all become one, and buildBoard() builds the machine from it.
 *
 * Files are named by reference (`kernel`, a disk's `file`, a share's `path`): a host path for
 * the Node host, the name of a file the page holds in a browser. What the guest can see of a
 * device (a disk's serial and read-only flag, a share's tag, a NIC's MAC address) is apart from
 * where the host finds it, so a snapshot can keep the one and leave the other to whoever
 * restores it (shape.ts).
 *
 * parseMachineSpec() checks untrusted JSON: unknown fields and bad values are refused with a
 * message naming the field (`devices.disks[1].format: ...`); absent optional fields get their
 * defaults, so the result is complete and round-trips through JSON unchanged.
 */
import { MAX_HARTS as LAYOUT_MAX_HARTS, RAM_MAX } from '../cpu/layout.ts';
import { VirtusError } from '../util/errors.ts';
import type { NicBackendSpec } from '../net/nic.ts';
import { Fields } from './fields.ts';
import { parseNicBackend } from './nic.ts';

/** How the machine starts (QEMU's -bios). */
export type BootMode = 'builtin' | 'firmware' | 'bare';

export interface BootSpec {
  /**
   * `builtin`: virtus is the SBI firmware and starts the kernel in S-mode; `firmware`: the
   * `firmware` file starts in M-mode (fw_dynamic, as QEMU starts it); `bare`: the kernel
   * itself starts in M-mode (QEMU's -bios none).
   */
  mode: BootMode;
  /** The firmware file (mode `firmware` only). */
  firmware?: string;
  /** A Linux Image or an ELF file (required but with mode `firmware`). */
  kernel?: string;
  initrd?: string;
  /** The kernel command line (/chosen/bootargs). */
  append: string;
}

/** A virtio-blk disk. */
export interface DiskSpec {
  /** The image: a host path (Node) or a file the page holds (browser). */
  file: string;
  /** Insist on a format instead of detecting it. */
  format?: 'raw' | 'qcow2';
  /** The guest sees a read-only disk (VIRTIO_BLK_F_RO). */
  readonly: boolean;
  /** What the guest reads as the disk's ID (at most 20 bytes of printable ASCII). */
  serial: string;
  /** Writes go to a qcow2 overlay: `auto` (temporary, deleted at exit) or a path. */
  overlay?: string;
  /** Take image locks, as QEMU does (false: QEMU's file.locking=off). */
  locking: boolean;
}

/** A host folder shared over virtio-9p. */
export interface ShareSpec {
  path: string;
  /** The mount tag the guest names (`mount -t 9p TAG`). */
  tag: string;
  readonly: boolean;
}

/**
 * The share a browser tab gives its machine (`virtus web`: files dropped on the page), and
 * where the default guest's rcS mounts it when the tag is there (a CLI `--share` is never
 * mounted for the user: its tag is the user's to mount).
 */
export const TAB_SHARE = { tag: 'tab', mountPoint: '/mnt/tab' } as const;

/** A virtio-net interface: the guest-visible part, and the host backend it is plugged into. */
export interface NicSpec {
  /** The MAC address, `52:54:00:xx:xx:xx` form; QEMU's 52:54:00:12:34:56 (+ the NIC's index) when absent. */
  mac?: string;
  /** The backend: the user NAT, a stream or a dgram link, as net/nic.ts describes them. */
  backend: NicBackendSpec;
}

export interface DevicesSpec {
  disks: DiskSpec[];
  shares: ShareSpec[];
  nics: NicSpec[];
  /** The guest's console: the UART (ttyS0) or virtio-console (hvc0). */
  console: 'serial' | 'virtio';
}

export interface MachineSpec {
  /** Guest RAM in bytes: a multiple of 4 KiB, at most 3 GiB. */
  memory: number;
  /** Harts (1 to MAX_HARTS). */
  harts: number;
  /** Time from the instruction count, fixed entropy: a run repeats exactly. */
  deterministic: boolean;
  /** How guest code runs: translated to WebAssembly when hot, or only interpreted. */
  engine: 'jit' | 'interp';
  boot: BootSpec;
  devices: DevicesSpec;
}

/** Harts a machine may have (`--smp`, QEMU's flag): the memory layout has a block for each (cpu/layout.ts). */
export const MAX_HARTS = LAYOUT_MAX_HARTS;
/**
 * The kernel command line virtus boots Linux with when none is given: the default guest's, and
 * any kernel's given without --append. Besides the console, it turns off two timers that wake an
 * idle guest for nothing a virtual machine needs: the soft-lockup watchdog (every 4 s; under
 * emulation on a busy host it also reports lockups that are only the host's slowness) and
 * proactive memory compaction (kcompactd wakes twice a second to check fragmentation;
 * compaction on demand stays). An idle default guest then takes about 4 timer interrupts a
 * second instead of 8 (counted in /proc/interrupts across `sleep 30`), and each costs the host
 * about a millisecond of CPU. Kernels that do not know a parameter ignore it.
 */
export const DEFAULT_CMDLINE = 'console=ttyS0 nowatchdog sysctl.vm.compaction_proactiveness=0';
/** RAM when a spec does not say (QEMU's virt board gives 128 MiB; virtus' default guest wants more). */
export const DEFAULT_MEMORY = 512 * 1024 * 1024;
/** The longest serial virtio-blk can report (virtio 1.2 §5.2.6: VIRTIO_BLK_ID_BYTES). */
export const SERIAL_BYTES = 20;

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Checks a machine description read from JSON (untrusted); returns it complete, with defaults. */
export function parseMachineSpec(json: unknown, what = 'machine'): MachineSpec {
  const f = new Fields(what, json, ['memory', 'harts', 'deterministic', 'engine', 'boot', 'devices']);
  const memory = f.int('memory', { min: 4096, max: RAM_MAX, dflt: DEFAULT_MEMORY });
  if (memory % 4096) f.fail('memory', 'must be a multiple of 4 KiB');
  const spec: MachineSpec = {
    memory,
    harts: f.int('harts', { min: 1, max: MAX_HARTS, dflt: 1 }),
    deterministic: f.bool('deterministic', false),
    engine: f.oneOf('engine', ['jit', 'interp'] as const, 'jit'),
    boot: parseBoot(f.object('boot', true)),
    devices: parseDevices(f.object('devices', false)),
  };
  return spec;
}

function parseBoot(f: Fields): BootSpec {
  f.only(['mode', 'firmware', 'kernel', 'initrd', 'append']);
  const mode = f.oneOf('mode', ['builtin', 'firmware', 'bare'] as const, 'builtin');
  const boot: BootSpec = { mode, append: f.string('append', { dflt: '', max: 4096 }) };
  for (const k of ['firmware', 'kernel', 'initrd'] as const) {
    const v = f.optionalString(k);
    if (v !== undefined) boot[k] = v;
  }
  if (mode === 'firmware' && boot.firmware === undefined) f.fail('firmware', 'is required with mode "firmware"');
  if (mode !== 'firmware' && boot.firmware !== undefined) f.fail('firmware', `goes only with mode "firmware", not "${mode}"`);
  if (mode !== 'firmware' && boot.kernel === undefined) f.fail('kernel', `is required with mode "${mode}"`);
  return boot;
}

function parseDevices(f: Fields): DevicesSpec {
  f.only(['disks', 'shares', 'nics', 'console']);
  return {
    disks: f.array('disks', 8, parseDisk),
    shares: f.array('shares', 8, parseShare),
    nics: f.array('nics', 8, parseNic),
    console: f.oneOf('console', ['serial', 'virtio'] as const, 'serial'),
  };
}

function parseDisk(f: Fields): DiskSpec {
  f.only(['file', 'format', 'readonly', 'serial', 'overlay', 'locking']);
  const d: DiskSpec = {
    file: f.string('file', { min: 1, max: 4096 }),
    readonly: f.bool('readonly', false),
    serial: f.string('serial', { dflt: '', max: SERIAL_BYTES }),
    locking: f.bool('locking', true),
  };
  if (!/^[\x20-\x7e]*$/.test(d.serial)) f.fail('serial', 'must be printable ASCII');
  const format = f.optionalOneOf('format', ['raw', 'qcow2'] as const);
  if (format) d.format = format;
  const overlay = f.optionalString('overlay');
  if (overlay !== undefined) {
    if (overlay === '') f.fail('overlay', 'must be "auto" or a path');
    if (d.readonly) f.fail('overlay', 'does not go with readonly (the overlay is what takes the writes)');
    d.overlay = overlay;
  }
  return d;
}

function parseShare(f: Fields): ShareSpec {
  f.only(['path', 'tag', 'readonly']);
  const s: ShareSpec = { path: f.string('path', { min: 1, max: 4096 }), tag: f.string('tag', { min: 1, max: 64 }), readonly: f.bool('readonly', false) };
  if (!/^[\x21-\x7e]+$/.test(s.tag)) f.fail('tag', 'must be printable ASCII without spaces');
  return s;
}

function parseNic(f: Fields): NicSpec {
  f.only(['mac', 'backend']);
  const nic: NicSpec = { backend: parseNicBackend(f.object('backend', true)) };
  const mac = f.optionalString('mac');
  if (mac !== undefined) {
    if (!MAC.test(mac)) f.fail('mac', `"${mac}" is not a MAC address like 52:54:00:12:34:56 (lower-case hex)`);
    if (parseInt(mac.slice(0, 2), 16) & 1) f.fail('mac', 'must be a unicast address (the first byte even)');
    nic.mac = mac;
  }
  return nic;
}

/** A spec as JSON text (stable field order, for files and messages). */
export function specJson(spec: MachineSpec): string {
  return JSON.stringify(spec);
}

/** Checks a spec made in code (the flags' parser, tests): the same rules as untrusted JSON. */
export function checkSpec(spec: MachineSpec): MachineSpec {
  try {
    return parseMachineSpec(JSON.parse(JSON.stringify(spec)));
  } catch (e) {
    if (e instanceof VirtusError) throw new VirtusError(e.code, e.message, { exitCode: 2 });
    throw e;
  }
}
