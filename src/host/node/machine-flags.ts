/**
 * The machine flags, defined once for every front end that makes a machine (`run`, `web`, the
 * daemon's client): what they are, their help, and how they become a MachineSpec. QEMU's
 * spellings of the same things are accepted too (qemu-args.ts): `-kernel`, `-m`, `-smp`,
 * `-drive file=..,if=virtio|none,id=..,snapshot=on,file.locking=off`, `-device
 * virtio-blk-device,drive=ID`, `-virtfs`/`-fsdev` + `-device virtio-9p-device`, `-M virt`,
 * `-nographic`, `-serial mon:stdio`, `-snapshot`, `-no-reboot`.
 */
import { resolve } from 'node:path';
import { parseFormat } from '../../storage/open.ts';
import { VirtusError } from '../../util/errors.ts';
import { parseSize } from '../../util/size.ts';
import type { Resources } from '../../vmm/shape.ts';
import { checkSpec, DEFAULT_CMDLINE, DEFAULT_MEMORY, MAX_HARTS, type DiskSpec, type MachineSpec, type ShareSpec } from '../../vmm/spec.ts';
import { onOff, splitOptions } from './qemu-args.ts';
import { NET_HELP, nicDescs } from './net/attach.ts';

/** parseArgs options for the machine flags. */
export const MACHINE_OPTIONS = {
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  image: { type: 'string' },
  append: { type: 'string' },
  bios: { type: 'string' },
  memory: { type: 'string', short: 'm' },
  smp: { type: 'string' },
  drive: { type: 'string', multiple: true },
  root: { type: 'string' },
  share: { type: 'string', multiple: true },
  console: { type: 'string' },
  deterministic: { type: 'boolean' },
  engine: { type: 'string' },
  device: { type: 'string', multiple: true },
  virtfs: { type: 'string', multiple: true },
  fsdev: { type: 'string', multiple: true },
  netdev: { type: 'string', multiple: true },
  nic: { type: 'string', multiple: true },
  machine: { type: 'string', short: 'M' },
  cpu: { type: 'string' },
  name: { type: 'string' },
  nographic: { type: 'boolean' },
  serial: { type: 'string' },
  display: { type: 'string' },
  snapshot: { type: 'boolean' },
  'no-reboot': { type: 'boolean' },
} as const;

/** The --help lines for them. */
export const MACHINE_HELP = `  --kernel FILE        kernel or program: a Linux Image (with or without its EFI
                       header) or an ELF file
  --initrd FILE        initial ramdisk
  --image NAME[:TAG]   boot a machine image from the local store (see 'virtus
                       image ls'): its kernel, initrd, command line, memory and
                       disks (virtio-blk, each over a temporary overlay)
  --append STRING      kernel command line (/chosen/bootargs); without it:
                       ${DEFAULT_CMDLINE}
  --bios FILE|none|opensbi
                       firmware started in M-mode as QEMU starts it (fw_dynamic);
                       "opensbi" is the default guest's OpenSBI; "none" starts
                       --kernel itself in M-mode. Default: the built-in SBI
                       (virtus is the firmware; the kernel starts in S-mode)
  --memory SIZE, -m    guest RAM (default 512M)
  --smp N              harts, 1 to 8 (default 1)
  --drive file=PATH[,format=raw|qcow2][,readonly=on][,serial=STR][,overlay=auto|PATH]
          [,snapshot=on][,locking=off]
                       a virtio-blk disk (repeatable; the first is /dev/vda).
                       The format is detected unless given; overlay=auto (or
                       snapshot=on) writes to a temporary qcow2 overlay over a
                       base left untouched; locking=off (QEMU's
                       file.locking=off) takes no image lock
  --root disk          boot the default guest's root disk (kept between runs)
                       as /dev/vda with root=/dev/vda
  --share PATH[,tag=NAME][,readonly=on]
                       share a host folder over virtio-9p (repeatable; tags
                       host0, host1, ...); in the guest: mount -t 9p -o
                       trans=virtio,version=9p2000.L host0 /mnt
  --console serial|virtio
                       the guest's console: the UART (ttyS0, default) or
                       virtio-console (hvc0, which follows the terminal's size)
${NET_HELP}
  --deterministic      derive time from the instruction count (reproducible runs)
  --engine jit|interp  translate hot code to WebAssembly (default), or only
                       interpret (the reference engine)
  --snapshot           every disk writes to a temporary overlay (QEMU's -snapshot)
  --no-reboot          a guest reboot ends virtus instead of restarting the machine
  QEMU's spellings work too: -kernel, -initrd, -append, -bios, -m, -smp, -drive
  (if=virtio, or if=none with -device virtio-blk-device,drive=ID), -virtfs,
  -fsdev with -device virtio-9p-device, -M virt (and virt,dumpdtb=FILE), -accel tcg,
  -nographic, -serial mon:stdio.`;

/** What the machine flags parse into (node:util parseArgs values). */
export interface MachineFlags {
  kernel?: string;
  initrd?: string;
  image?: string;
  append?: string;
  bios?: string;
  memory?: string;
  smp?: string;
  drive?: string[];
  root?: string;
  share?: string[];
  console?: string;
  deterministic?: boolean;
  engine?: string;
  device?: string[];
  virtfs?: string[];
  fsdev?: string[];
  netdev?: string[];
  nic?: string[];
  machine?: string;
  cpu?: string;
  name?: string;
  nographic?: boolean;
  serial?: string;
  display?: string;
  snapshot?: boolean;
  'no-reboot'?: boolean;
}

function usage(cmd: string, message: string): VirtusError {
  return new VirtusError('BAD_FLAG', `${cmd}: ${message}`, { exitCode: 2 });
}

/** Runs a parser whose errors are usage errors (exit code 2). */
function usageOf<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof VirtusError && e.exitCode !== 2) throw new VirtusError(e.code, e.message, { exitCode: 2, cause: e });
    throw e;
  }
}

/** -m 512 (MiB), -m 1G, -m size=1G. */
export function parseMemory(text: string, cmd: string): number {
  const v = text.startsWith('size=') ? text.slice(5).split(',')[0]! : text;
  const n = parseSize(v, `${cmd}: --memory`, 'M');
  if (n === 0 || n % 4096) throw usage(cmd, `--memory ${text}: must be a multiple of 4 KiB`);
  return n;
}

/** The harts of `--smp N` (QEMU's `-smp N` or `-smp cpus=N,...`), 1 to MAX_HARTS. */
export function parseHarts(text: string, cmd: string): number {
  const m = /^(?:cpus=)?(\d+)(?:,.*)?$/.exec(text);
  const harts = m ? Number(m[1]) : NaN;
  if (!(harts >= 1 && harts <= MAX_HARTS)) throw usage(cmd, `--smp ${text}: expected a number of harts from 1 to ${MAX_HARTS}`);
  return harts;
}

/** The engine, harts, and the QEMU flags that only confirm what virtus does. */
function checkPlainFlags(v: MachineFlags, cmd: string): { engine: MachineSpec['engine']; harts: number } {
  const engine = v.engine ?? 'jit';
  if (engine !== 'jit' && engine !== 'interp') throw usage(cmd, `--engine must be jit or interp, not "${engine}"`);
  const harts = v.smp === undefined ? 1 : parseHarts(v.smp, cmd);
  if (v.machine !== undefined && !/^virt(,.*)?$/.test(v.machine) && !/^type=virt(,.*)?$/.test(v.machine)) {
    throw usage(cmd, `-M ${v.machine}: virtus has QEMU's virt board only`);
  }
  if (v.cpu !== undefined && !['rv64', 'max', 'any'].includes(v.cpu.split(',')[0]!)) throw usage(cmd, `-cpu ${v.cpu}: virtus's hart is rv64 (RV64GC)`);
  if (v.serial !== undefined && !['mon:stdio', 'stdio'].includes(v.serial)) throw usage(cmd, `-serial ${v.serial}: the serial console is the terminal (mon:stdio)`);
  if (v.display !== undefined && v.display !== 'none') throw usage(cmd, `-display ${v.display}: the virt board has no display`);
  return { engine, harts };
}

/** A disk from a --drive value; `ids` collects if=none drives for -device. */
function parseDrive(text: string, cmd: string, snapshotAll: boolean): { disk: DiskSpec; id?: string; none: boolean } {
  const disk: DiskSpec = { file: '', readonly: false, serial: '', locking: true };
  let id: string | undefined;
  let none = false;
  let snapshot = snapshotAll;
  const bad = (m: string): VirtusError => usage(cmd, `--drive ${text}: ${m}`);
  for (const [k, val] of splitOptions(text, 'file')) {
    switch (k) {
      case 'file': disk.file = val; break;
      case 'format':
        disk.format = usageOf(() => parseFormat(val, `${cmd}: --drive format`));
        break;
      case 'readonly': disk.readonly = onOff(val, `${cmd}: --drive readonly`); break;
      case 'serial': disk.serial = val; break;
      case 'overlay':
        if (val === '') throw bad('overlay: expected auto or a path');
        disk.overlay = val;
        break;
      case 'snapshot': snapshot = onOff(val, `${cmd}: --drive snapshot`); break;
      case 'locking': case 'file.locking':
        if (val !== 'auto') disk.locking = onOff(val, `${cmd}: --drive ${k}`);
        break;
      case 'if':
        if (val !== 'virtio' && val !== 'none') throw bad(`if=${val}: the virt board's disks are virtio (if=virtio, or if=none with -device virtio-blk-device)`);
        none = val === 'none';
        break;
      case 'id': id = val; break;
      case 'media':
        if (val !== 'disk') throw bad(`media=${val}: virtus has disks only`);
        break;
      case 'cache': case 'aio': case 'discard': case 'detect-zeroes':
        // virtio-blk flushes reach the image whatever the cache mode; the rest are tuning.
        break;
      default:
        throw bad(`unknown key '${k}' (expected file, format, readonly, serial, overlay, snapshot, locking, if, id, media, cache)`);
    }
  }
  if (!disk.file) throw bad('file= is missing');
  if (snapshot && disk.overlay === undefined && !disk.readonly) disk.overlay = 'auto';
  if (disk.overlay !== undefined && disk.readonly) throw bad('overlay= and readonly=on do not go together (the overlay is what takes the writes)');
  return { disk, ...(id !== undefined ? { id } : {}), none };
}

/** A folder from --share PATH[,tag=NAME][,readonly=on]. */
export function parseShare(text: string, index: number, cmd: string): ShareSpec {
  const s: ShareSpec = { path: '', tag: `host${index}`, readonly: false };
  for (const [k, val] of splitOptions(text, 'path')) {
    if (k === 'path') s.path = val;
    else if (k === 'tag') s.tag = val;
    else if (k === 'readonly') s.readonly = onOff(val, `${cmd}: --share readonly`);
    else throw usage(cmd, `--share: unknown key '${k}' (expected path, tag, readonly)`);
  }
  if (!s.path) throw usage(cmd, `--share ${text}: the folder is missing`);
  return s;
}

/** QEMU's -virtfs local,path=P,mount_tag=T[,readonly=on][,security_model=..]. */
function parseVirtfs(text: string, cmd: string, asFsdev: boolean): ShareSpec & { id?: string } {
  const s: ShareSpec & { id?: string } = { path: '', tag: '', readonly: false };
  for (const [k, val] of splitOptions(text, 'driver')) {
    if (k === 'driver' || k === 'local') {
      if (k === 'driver' && val !== 'local') throw usage(cmd, `${asFsdev ? '-fsdev' : '-virtfs'} ${val}: virtus shares local folders only`);
    } else if (k === 'path') s.path = val;
    else if (k === 'mount_tag') s.tag = val;
    else if (k === 'id') s.id = val;
    else if (k === 'readonly') s.readonly = onOff(val, `${cmd}: readonly`);
    else if (k === 'security_model' || k === 'multidevs' || k === 'writeout') continue;
    else throw usage(cmd, `${asFsdev ? '-fsdev' : '-virtfs'}: unknown key '${k}'`);
  }
  if (!s.path) throw usage(cmd, `${asFsdev ? '-fsdev' : '-virtfs'} ${text}: path= is missing`);
  return s;
}

/** The disks and folders the flags name, in the board's order, with the QEMU -device wiring resolved. */
export function deviceFlags(v: MachineFlags, cmd: string, o: { rootDisk?: string } = {}): { disks: DiskSpec[]; shares: ShareSpec[] } {
  const disks: DiskSpec[] = [];
  const byId = new Map<string, DiskSpec>();
  if (o.rootDisk !== undefined) disks.push({ file: o.rootDisk, format: 'raw', readonly: false, serial: 'virtus-root', locking: true, ...(v.snapshot ? { overlay: 'auto' } : {}) });
  for (const text of v.drive ?? []) {
    const d = parseDrive(text, cmd, v.snapshot === true);
    if (d.id !== undefined) byId.set(d.id, d.disk);
    if (!d.none) disks.push(d.disk);
    else if (d.id === undefined) throw usage(cmd, `--drive ${text}: if=none needs id= (for -device virtio-blk-device,drive=ID)`);
  }
  const shares = (v.share ?? []).map((t, i) => parseShare(t, i, cmd));
  const fsdevs = new Map<string, ShareSpec>();
  for (const t of v.virtfs ?? []) {
    const s = parseVirtfs(t, cmd, false);
    if (!s.tag) throw usage(cmd, `-virtfs ${t}: mount_tag= is missing`);
    shares.push({ path: s.path, tag: s.tag, readonly: s.readonly });
  }
  for (const t of v.fsdev ?? []) {
    const s = parseVirtfs(t, cmd, true);
    if (!s.id) throw usage(cmd, `-fsdev ${t}: id= is missing`);
    fsdevs.set(s.id, { path: s.path, tag: '', readonly: s.readonly });
  }
  for (const t of v.device ?? []) {
    const opts = splitOptions(t, 'driver');
    const driver = opts[0]![1];
    const get = (k: string): string | undefined => opts.find(([key]) => key === k)?.[1];
    switch (driver) {
      case 'virtio-blk-device': {
        const id = get('drive');
        const d = id !== undefined ? byId.get(id) : undefined;
        if (!d) throw usage(cmd, `-device ${t}: no -drive with id=${id ?? '(none)'}`);
        const serial = get('serial');
        disks.push(serial !== undefined ? { ...d, serial } : d);
        break;
      }
      case 'virtio-9p-device': {
        const id = get('fsdev');
        const s = id !== undefined ? fsdevs.get(id) : undefined;
        const tag = get('mount_tag');
        if (!s || !tag) throw usage(cmd, `-device ${t}: needs fsdev= naming an -fsdev, and mount_tag=`);
        shares.push({ ...s, tag });
        break;
      }
      case 'virtio-rng-device':
        break; // every machine has one
      case 'virtio-net-device':
        break; // a NIC: with its -netdev (net/attach.ts)
      default:
        if (/-pci$/.test(driver)) throw usage(cmd, `-device ${driver}: the virt board has no PCI here; use the -device ...-device (virtio-mmio) form`);
        throw usage(cmd, `-device ${driver}: virtus has virtio-blk-device, virtio-9p-device, virtio-net-device and virtio-rng-device`);
    }
  }
  return { disks, shares };
}

/** What the default guest and the image store give a spec (the host's commands supply them). */
export interface SpecSources {
  /** The default guest's kernel, initrd and OpenSBI (fetched on first use). */
  defaultGuest(): Promise<{ kernel: string; initrd: string; opensbi: string }>;
  /** The default guest's root disk (--root disk). */
  rootDisk(): Promise<string>;
  /** A machine image of the store: files as in-memory references, its disks, memory, command line. */
  image?(name: string): Promise<{ kernel: string; initrd?: string; append?: string; memory?: number; disks: DiskSpec[]; rootDisk: boolean }>;
}

/** Makes the machine the flags describe. */
export async function specFromFlags(v: MachineFlags, cmd: string, src: SpecSources): Promise<MachineSpec> {
  const { engine, harts } = checkPlainFlags(v, cmd);
  if (v.root !== undefined && v.root !== 'disk') throw usage(cmd, `--root takes "disk" (the default guest's root disk), not "${v.root}"`);
  const con = v.console ?? 'serial';
  if (con !== 'serial' && con !== 'virtio') throw usage(cmd, `--console must be serial or virtio, not "${con}"`);
  const words: string[] = [];
  const root = v.root === 'disk' ? await src.rootDisk() : undefined;
  const devices = deviceFlags(v, cmd, root !== undefined ? { rootDisk: root } : {});
  if (root !== undefined) words.push('root=/dev/vda');

  let boot: MachineSpec['boot'];
  let memory = v.memory !== undefined ? parseMemory(v.memory, cmd) : undefined;
  const firmware = async (): Promise<Pick<MachineSpec['boot'], 'mode' | 'firmware'>> => {
    if (v.bios === undefined || v.bios === 'default') return { mode: 'builtin' };
    if (v.bios === 'none') return { mode: 'bare' };
    if (v.bios === 'opensbi') return { mode: 'firmware', firmware: (await src.defaultGuest()).opensbi };
    return { mode: 'firmware', firmware: resolve(v.bios) };
  };
  if (v.image !== undefined) {
    if (v.kernel !== undefined) throw usage(cmd, '--image gives the kernel; drop --kernel (or --image)');
    if (v.bios === 'opensbi') throw usage(cmd, "--bios opensbi is the default guest's firmware; with --image give --bios FILE or none");
    if (!src.image) throw usage(cmd, '--image is not available here');
    const img = await src.image(v.image);
    devices.disks.unshift(...img.disks.map((d) => (v.snapshot ? { ...d, overlay: 'auto' } : d)));
    if (img.rootDisk && v.append === undefined) words.unshift('root=/dev/vda');
    memory ??= img.memory;
    boot = { ...(await firmware()), kernel: img.kernel, ...(v.initrd !== undefined ? { initrd: resolve(v.initrd) } : img.initrd !== undefined ? { initrd: img.initrd } : {}), append: v.append ?? img.append ?? '' };
  } else if (v.kernel !== undefined) {
    boot = { ...(await firmware()), kernel: resolve(v.kernel), ...(v.initrd !== undefined ? { initrd: resolve(v.initrd) } : {}), append: v.append ?? '' };
  } else {
    if (v.bios === 'none') throw usage(cmd, '--bios none needs --kernel FILE');
    const g = await src.defaultGuest();
    boot = { ...(await firmware()), kernel: g.kernel, initrd: v.initrd !== undefined ? resolve(v.initrd) : g.initrd, append: v.append ?? DEFAULT_CMDLINE };
  }
  boot.append = [boot.append, ...words].filter(Boolean).join(' ');
  for (const d of devices.disks) {
    d.file = resolve(d.file);
    if (d.overlay !== undefined && d.overlay !== 'auto') d.overlay = resolve(d.overlay);
  }
  for (const s of devices.shares) s.path = resolve(s.path);
  return checkSpec({
    memory: memory ?? DEFAULT_MEMORY,
    harts,
    deterministic: v.deterministic === true,
    engine,
    boot,
    devices: { disks: devices.disks, shares: devices.shares, nics: nicDescs(v), console: con },
  });
}

/**
 * The host resources for a restored or received machine: the disks and folders the flags
 * name (the machine itself comes from the snapshot or the stream). Flags that describe a
 * machine are refused.
 */
export async function resourcesFromFlags(v: MachineFlags, cmd: string, flag: string, src: Pick<SpecSources, 'rootDisk'>): Promise<Resources> {
  const describing = (['kernel', 'initrd', 'image', 'append', 'bios', 'console', 'deterministic', 'smp', 'snapshot'] as const).find((k) => v[k] !== undefined);
  if (describing) throw usage(cmd, `${flag} takes the machine's configuration from the ${flag === '--restore' ? 'snapshot' : 'source'}: drop --${describing}`);
  const { engine } = checkPlainFlags(v, cmd);
  const root = v.root === 'disk' ? await src.rootDisk() : undefined;
  if (v.root !== undefined && v.root !== 'disk') throw usage(cmd, `--root takes "disk", not "${v.root}"`);
  const { disks, shares } = deviceFlags(v, cmd, root !== undefined ? { rootDisk: root } : {});
  for (const d of disks) {
    d.file = resolve(d.file);
    if (d.overlay !== undefined && d.overlay !== 'auto') d.overlay = resolve(d.overlay);
  }
  for (const s of shares) s.path = resolve(s.path);
  return { disks, shares, nics: nicDescs(v), engine, ...(v.memory !== undefined ? { memory: parseMemory(v.memory, cmd) } : {}) };
}
