/**
 * Choosing the kernel modules the default guest loads at boot: the virtio transport and
 * devices, 9p and ext4 (Debian's kernel builds them as modules), plus everything their
 * `depends=` fields pull in, in an order where each module follows its dependencies.
 *
 * Modules are decompressed with the host's xz (xz-utils): every Debian host that can run
 * dpkg-deb has it (dpkg itself depends on liblzma, and xz-utils is Priority: required), it
 * is fast, and it spares virtus a 1,000-line LZMA2 decoder used only on this cold path.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { VirtusError } from '../../../util/errors.ts';
import { exec, lastLines, requireTool } from './exec.ts';
import { moduleDepends, moduleNameOf, modinfoField, parseModinfo, type ModInfo } from './modinfo.ts';

/** Device IDs of the virtio devices whose drivers the guest carries (virtio 1.2 §5). */
export const VIRTIO_ID = { net: 1, blk: 2, console: 3, rng: 4, p9: 9 } as const;

/** A module the default guest wants; `devices`: only on a machine with one of these virtio devices. */
export interface WantedModule {
  name: string;
  optional?: boolean;
  devices?: readonly number[];
}

/**
 * The modules the default guest wants, in the order they are asked for. The virtio transport
 * loads on every machine; a driver (and the file system its device carries: ext4 on a disk,
 * 9p on a shared folder) only where the machine has that device, as udev would load it from
 * the device's modalias. Each module costs the boot time: Linux checks its signature (SHA-256
 * and public-key arithmetic: half the time in a profile of the guest) and links it; all 14
 * took 3.4-3.9 s under virtus, 0.12-1 s each (1.2 s on QEMU, 0.04-0.3 s each).
 */
export const GUEST_MODULES: readonly WantedModule[] = [
  { name: 'virtio_mmio' },
  { name: 'virtio_blk', devices: [VIRTIO_ID.blk] },
  { name: 'virtio_net', devices: [VIRTIO_ID.net] },
  { name: 'virtio_console', optional: true, devices: [VIRTIO_ID.console] },
  { name: 'virtio_rng', optional: true, devices: [VIRTIO_ID.rng] },
  { name: '9pnet_virtio', devices: [VIRTIO_ID.p9] },
  { name: '9p', devices: [VIRTIO_ID.p9] },
  { name: 'ext4', devices: [VIRTIO_ID.blk] },
];

/** One module, decompressed, with what its .modinfo says. */
export interface KernelModule {
  name: string;
  /** Path under the release's module directory, e.g. kernel/fs/ext4/ext4.ko.xz. */
  source: string;
  /** The module's ELF bytes, decompressed (the kernel's loader takes them as they are). */
  data: Uint8Array;
  depends: string[];
  info: ModInfo;
  /**
   * The virtio device IDs that want the module (it or a module needing it was asked for with
   * them, WantedModule.devices); null when every machine does.
   */
  devices: number[] | null;
}

export interface ModuleSelection {
  /** The kernel release the modules belong to (`uname -r`). */
  release: string;
  /** Every module to load, each after its dependencies. */
  modules: KernelModule[];
  /** Wanted modules the kernel has built in, so there is nothing to load. */
  builtin: string[];
  /** Optional wanted modules the kernel has neither built in nor as a module. */
  absent: string[];
}

/** Where a release's modules are, module name → path relative to `moduleDir`. */
export function indexModules(moduleDir: string): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ko(\.(xz|gz|zst))?$/.test(e.name)) {
        const name = moduleNameOf(e.name);
        if (!index.has(name)) index.set(name, relative(moduleDir, p));
      }
    }
  };
  walk(join(moduleDir, 'kernel'));
  return index;
}

/** Names of the modules the kernel has built in (modules.builtin lists them as paths). */
export function builtinModules(moduleDir: string): Set<string> {
  let text = '';
  try {
    text = readFileSync(join(moduleDir, 'modules.builtin'), 'utf8');
  } catch {
    // an old package without the list: then nothing counts as built in
  }
  const names = text.split('\n').filter(Boolean).map((l) => moduleNameOf(l.slice(l.lastIndexOf('/') + 1)));
  return new Set(names);
}

/** A module file's ELF bytes, decompressing .xz with the host's xz and .gz with zlib. */
export async function readModuleFile(path: string): Promise<Uint8Array> {
  if (path.endsWith('.ko')) return new Uint8Array(readFileSync(path));
  if (path.endsWith('.gz')) return new Uint8Array(gunzipSync(readFileSync(path)));
  if (path.endsWith('.xz')) {
    const r = await exec(requireTool('xz', 'reading the kernel modules'), ['-dc', path]);
    if (r.code !== 0) throw new VirtusError('MODULE_XZ', `cannot decompress ${path}: ${lastLines(r.stderr)}`);
    return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
  }
  throw new VirtusError('MODULE_COMPRESSION', `${path}: this compression is not supported (only .ko, .ko.xz, .ko.gz)`);
}

/**
 * Orders modules so each follows its dependencies (a depth-first post-order from the
 * wanted names, so unrelated modules keep the order they were asked for). A cycle, which
 * the kernel itself could never load, is refused.
 */
export function loadOrder(wanted: readonly string[], dependsOf: (name: string) => readonly string[]): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]) => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      throw new VirtusError('MODULE_CYCLE', `kernel modules depend on each other in a cycle: ${[...path, name].join(' -> ')}`);
    }
    state.set(name, 'visiting');
    for (const d of dependsOf(name)) visit(d, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

/**
 * Selects `wanted` and the closure of their dependencies from a release's module
 * directory (usr/lib/modules/<release> of an extracted linux-modules package).
 */
export async function selectModules(
  moduleDir: string,
  release: string,
  wanted: readonly WantedModule[] = GUEST_MODULES,
): Promise<ModuleSelection> {
  const index = indexModules(moduleDir);
  const builtin = builtinModules(moduleDir);
  const loaded = new Map<string, KernelModule>();
  const sel: ModuleSelection = { release, modules: [], builtin: [], absent: [] };

  const load = async (name: string, wantedBy: string | null): Promise<void> => {
    if (loaded.has(name) || builtin.has(name)) return;
    const source = index.get(name);
    if (!source) {
      const by = wantedBy ? ` (needed by ${wantedBy})` : '';
      throw new VirtusError('MODULE_MISSING', `kernel ${release} has no module ${name}${by}, built in or loadable`);
    }
    const data = await readModuleFile(join(moduleDir, source));
    const info = parseModinfo(data, source);
    const vermagic = modinfoField(info, 'vermagic')?.split(' ')[0];
    if (vermagic !== release) {
      throw new VirtusError('MODULE_VERSION', `${source} was built for kernel ${vermagic ?? '(unknown)'}, not ${release}`);
    }
    const mod: KernelModule = { name, source, data, depends: moduleDepends(info), info, devices: [] };
    loaded.set(name, mod);
    for (const d of mod.depends) await load(d, name);
  };

  const roots: string[] = [];
  for (const w of wanted) {
    if (builtin.has(w.name)) sel.builtin.push(w.name);
    else if (!index.has(w.name) && w.optional) sel.absent.push(w.name);
    else {
      await load(w.name, null);
      roots.push(w.name);
    }
  }
  const dependsOf = (n: string) => (loaded.get(n)?.depends ?? []).filter((d) => !builtin.has(d));
  // Each module is wanted by the devices of every root whose closure holds it (by all machines
  // when one such root is wanted by all).
  for (const w of wanted) {
    if (!loaded.has(w.name)) continue;
    for (const n of loadOrder([w.name], dependsOf)) {
      const m = loaded.get(n)!;
      if (m.devices === null) continue;
      if (!w.devices) m.devices = null;
      else for (const id of w.devices) if (!m.devices.includes(id)) m.devices.push(id);
    }
  }
  sel.modules = loadOrder(roots, dependsOf).map((n) => loaded.get(n)!);
  return sel;
}
