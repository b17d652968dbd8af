/**
 * The default guest's file tree, described once and written two ways: as the initramfs (a
 * newc cpio) and as a directory that mke2fs turns into the root disk. Both hold busybox with
 * a symlink per applet, busybox init with its inittab and rcS, and a small /etc; the
 * initramfs adds /init, the kernel modules and the device nodes the kernel needs before
 * devtmpfs is mounted.
 */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpioWriter } from '../../../util/cpio.ts';
import type { KernelModule } from './modules.ts';
import { etcFiles, initScript, inittab, rcScript } from './scripts.ts';
import { UDHCPC_SCRIPT, udhcpcScript, GENERATION_SCRIPT, generationScript } from './network.ts';

export type GuestEntry =
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'file'; path: string; data: Uint8Array | string; mode: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'char'; path: string; major: number; minor: number; mode: number };

export interface TreeOptions {
  busybox: Uint8Array;
  applets: readonly string[];
  /** Kernel release the modules belong to. */
  release: string;
  /** Modules in load order; the initramfs carries and loads them. */
  modules: readonly KernelModule[];
  /** The initramfs (with /init, modules, device nodes) or the root disk. */
  initramfs: boolean;
}

/** Applets that get no /bin symlink: init lives in /sbin, the others are not commands. */
const NOT_IN_BIN = new Set(['busybox', 'init', 'linuxrc']);

/** The guest's entries, parents before children. */
export function guestTree(o: TreeOptions): GuestEntry[] {
  const e: GuestEntry[] = [];
  const dir = (path: string, mode = 0o755) => e.push({ kind: 'dir', path, mode });
  const file = (path: string, data: Uint8Array | string, mode = 0o644) => e.push({ kind: 'file', path, data, mode });
  for (const d of ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'etc/init.d', 'dev', 'proc', 'sys', 'run', 'mnt', 'lib']) dir(d);
  dir('root', 0o700);
  dir('tmp', 0o1777);
  file('bin/busybox', o.busybox, 0o755);
  for (const a of o.applets) if (!NOT_IN_BIN.has(a)) e.push({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' });
  e.push({ kind: 'symlink', path: 'sbin/init', target: '../bin/busybox' });
  file('etc/inittab', inittab());
  file('etc/init.d/rcS', rcScript(), 0o755);
  for (const [path, text] of Object.entries(etcFiles())) file(path, text);
  file(UDHCPC_SCRIPT, udhcpcScript(), 0o755);
  file(GENERATION_SCRIPT, generationScript(), 0o755);
  if (o.initramfs) {
    file('init', initScript(o.release), 0o755);
    dir('newroot');
    // The kernel opens /dev/console for /init before anything can mount devtmpfs.
    e.push({ kind: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 });
    e.push({ kind: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
    const moddir = `lib/modules/${o.release}`;
    dir('lib/modules');
    dir(moddir);
    for (const m of o.modules) file(`${moddir}/${m.name}.ko`, m.data);
    // A module per line, after its dependencies; then the virtio device IDs that want it, if not every machine does.
    file(`${moddir}/modules.load`, o.modules.map((m) => (m.devices ? [m.name, ...m.devices] : [m.name]).join(' ')).join('\n') + '\n');
  }
  return e;
}

/** The entries as a newc archive, owned by root. */
export function toCpio(entries: readonly GuestEntry[]): Uint8Array {
  const w = new CpioWriter();
  for (const x of entries) {
    switch (x.kind) {
      case 'dir': w.dir(x.path, x.mode); break;
      case 'file': w.file(x.path, x.data, x.mode); break;
      case 'symlink': w.symlink(x.path, x.target); break;
      case 'char': w.device(x.path, 'char', x.major, x.minor, x.mode); break;
    }
  }
  return w.finish();
}

/**
 * Writes the entries under `root` (which must not exist yet), for mke2fs -d. Device nodes
 * are left out: creating them needs root, and the disk's /dev is a devtmpfs anyway.
 * Modes are set explicitly so the user's umask cannot change them.
 */
export function writeTree(entries: readonly GuestEntry[], root: string): void {
  mkdirSync(root, { recursive: false });
  for (const x of entries) {
    const p = join(root, x.path);
    switch (x.kind) {
      case 'dir': mkdirSync(p); chmodSync(p, x.mode); break;
      case 'file': writeFileSync(p, x.data); chmodSync(p, x.mode); break;
      case 'symlink': symlinkSync(x.target, p); break;
      case 'char': break;
    }
  }
  chmodSync(root, 0o755);
}
