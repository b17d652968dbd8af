/**
 * Building the default guest from downloaded Debian packages, without root: each package is
 * unpacked with `dpkg-deb -x`, then the kernel Image and OpenSBI are copied out, the
 * modules are chosen (modules.ts), the initramfs is written as a cpio, and the root disk is
 * made by `mke2fs -t ext4 -d` from the same tree.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { busyboxApplets } from './busybox.ts';
import { exec, lastLines, requireTool } from './exec.ts';
import { guestTree, toCpio, writeTree, type GuestEntry } from './layout.ts';
import { GUEST_MODULES, selectModules } from './modules.ts';
import { etcFiles, initScript, inittab, rcScript } from './scripts.ts';
import { udhcpcScript, generationScript } from './network.ts';
import { mb, type ProgressFn } from './progress.ts';

/** Bumped whenever the built guest changes shape, so a newer virtus rebuilds old guests. */
export const GUEST_FORMAT = 1;
/**
 * A hash of how the guest is built from its packages (format, disk size, wanted modules,
 * scripts), stored in the manifest and part of the cache key: a virtus whose /init or
 * inittab differs from the one a cached guest was built with rebuilds it.
 */
export function recipeHash(): string {
  const recipe = [GUEST_FORMAT, ROOTFS_SIZE_MIB, GUEST_MODULES, initScript('@'), rcScript(), inittab(), etcFiles(), udhcpcScript(), generationScript()];
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 16);
}

/** Size of the root disk: the busybox tree takes ~2 MB; the rest is room for the user. */
export const ROOTFS_SIZE_MIB = 128;

/** File names inside a guest directory. */
export const FILES = { kernel: 'Image', initrd: 'initrd.cpio', rootfs: 'rootfs.img', opensbi: 'fw_dynamic.bin', manifest: 'manifest.json' } as const;

/**
 * The package roles the guest is built from: the kernel image; its modules; the kernel's
 * base files (modules.builtin, which says what needs no loading); busybox; OpenSBI. With
 * older kernels one linux-image package plays the first three roles.
 */
export type Role = 'kernel' | 'modules' | 'base' | 'busybox' | 'opensbi';
export const ROLES: readonly Role[] = ['kernel', 'modules', 'base', 'busybox', 'opensbi'];

export interface BuiltPackage {
  name: string;
  version: string;
  sha256: string;
  /** The .deb's file name in <cache>/debs. */
  file: string;
}

/** What manifest.json records about a built guest. */
export interface GuestManifest {
  format: number;
  /** recipeHash() of the virtus that built it. */
  recipe: string;
  key: string;
  /** The kernel release (`uname -r` in the guest). */
  release: string;
  built: string;
  mirror: string;
  packages: Record<Role, BuiltPackage>;
  /** Modules the initramfs loads, in order. */
  modules: string[];
  /** Wanted modules the kernel has built in. */
  builtin: string[];
}

async function unpack(deb: string, dest: string): Promise<void> {
  const r = await exec(requireTool('dpkg-deb', 'building the default guest'), ['-x', deb, dest]);
  if (r.code !== 0) throw new VirtusError('GUEST_UNPACK', `dpkg-deb -x ${deb} failed: ${lastLines(r.stderr)}`);
}

/** The first of `candidates` (paths under `root`) that exists. */
function pick(root: string, candidates: string[], what: string): string {
  for (const c of candidates) if (existsSync(join(root, c))) return join(root, c);
  throw new VirtusError('GUEST_LAYOUT', `the ${what} package has no ${candidates.join(' or ')}`);
}

/** Finds the kernel release and image in an unpacked kernel package (new and old layouts). */
function findKernel(root: string): { release: string; image: string } {
  for (const base of ['usr/lib/modules', 'lib/modules']) {
    const dir = join(root, base);
    if (!existsSync(dir)) continue;
    for (const release of readdirSync(dir)) {
      const image = join(dir, release, 'vmlinuz');
      if (existsSync(image)) return { release, image };
    }
  }
  const boot = join(root, 'boot');
  const v = existsSync(boot) ? readdirSync(boot).find((n) => n.startsWith('vmlinuz-')) : undefined;
  if (v) return { release: v.slice('vmlinuz-'.length), image: join(boot, v) };
  throw new VirtusError('GUEST_LAYOUT', 'the kernel package holds no vmlinuz');
}

/** Makes the ext4 root disk image from a tree; as a normal user, fixes the owners to root. */
async function makeRootfs(entries: GuestEntry[], work: string, out: string): Promise<void> {
  const tree = join(work, 'rootfs');
  writeTree(entries, tree);
  const mke2fs = requireTool('mke2fs', 'building the root disk');
  const args = ['-q', '-F', '-t', 'ext4', '-L', 'virtus-root', '-E', 'root_owner=0:0', '-d', tree, out, `${ROOTFS_SIZE_MIB}M`];
  const r = await exec(mke2fs, args, { env: { ...process.env, LC_ALL: 'C' } });
  if (r.code !== 0) throw new VirtusError('GUEST_MKE2FS', `mke2fs failed: ${lastLines(r.stderr)}`);
  if (process.getuid?.() === 0) return;
  // mke2fs -d copies each file's owner, which is us; the guest's files belong to root.
  const cmds = entries.filter((x) => x.kind !== 'char').flatMap((x) => [`sif /${x.path} uid 0`, `sif /${x.path} gid 0`]);
  const script = join(work, 'owners.debugfs');
  writeFileSync(script, cmds.join('\n') + '\n');
  const d = await exec(requireTool('debugfs', 'building the root disk'), ['-w', '-f', script, out]);
  if (d.code !== 0) throw new VirtusError('GUEST_MKE2FS', `debugfs could not set the owners: ${lastLines(d.stderr)}`);
}

export interface BuildInput {
  debs: Record<Role, string>;
  packages: Record<Role, BuiltPackage>;
  key: string;
  mirror: string;
  /** The directory to create (must not exist); built beside it, then renamed into place. */
  outDir: string;
  /** Scratch space on the same file system. */
  workRoot: string;
  progress: ProgressFn;
}

/** Builds a guest directory from the packages; returns its manifest. */
export async function buildGuest(i: BuildInput): Promise<GuestManifest> {
  const work = mkdtempSync(join(i.workRoot, 'build-'));
  try {
    const x: Partial<Record<Role, string>> = {};
    const unpacked = new Set<string>();
    for (const role of ['kernel', 'busybox', 'opensbi', 'base', 'modules'] as const) {
      // The base files go beside the modules: modules.builtin belongs in their directory.
      x[role] = join(work, role === 'base' ? 'modules' : role);
      if (unpacked.has(i.debs[role])) continue;
      unpacked.add(i.debs[role]);
      i.progress(`unpacking ${i.packages[role].name} ${i.packages[role].version} (${mb(statSync(i.debs[role]).size)})`);
      await unpack(i.debs[role], x[role]);
    }
    const { release, image } = findKernel(x.kernel!);
    const moduleDir = pick(x.modules!, [`usr/lib/modules/${release}`, `lib/modules/${release}`], 'modules');
    i.progress(`choosing kernel modules for ${release}`);
    const sel = await selectModules(moduleDir, release);
    const size = sel.modules.reduce((n, m) => n + m.data.length, 0);
    i.progress(`modules, in load order: ${sel.modules.map((m) => m.name).join(' ')} (${mb(size)})`);
    if (sel.builtin.length) i.progress(`built into the kernel: ${sel.builtin.join(' ')}`);

    const busybox = new Uint8Array(readFileSync(pick(x.busybox!, ['usr/bin/busybox', 'bin/busybox'], 'busybox-static')));
    const applets = busyboxApplets(busybox);
    const opensbi = pick(x.opensbi!, ['usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin'], 'opensbi');

    const out = join(work, 'out');
    mkdirSync(out);
    copyFileSync(image, join(out, FILES.kernel));
    copyFileSync(opensbi, join(out, FILES.opensbi));
    const tree = { busybox, applets, release, modules: sel.modules };
    const cpio = toCpio(guestTree({ ...tree, initramfs: true }));
    i.progress(`writing the initramfs: busybox (${applets.length} applets), /init, ${sel.modules.length} modules (${mb(cpio.length)})`);
    writeFileSync(join(out, FILES.initrd), cpio);
    i.progress(`making the root disk: ext4, ${ROOTFS_SIZE_MIB} MiB (mke2fs -d)`);
    await makeRootfs(guestTree({ ...tree, initramfs: false }), work, join(out, FILES.rootfs));

    const manifest: GuestManifest = {
      format: GUEST_FORMAT,
      recipe: recipeHash(),
      key: i.key,
      release,
      built: new Date().toISOString(),
      mirror: i.mirror,
      packages: i.packages,
      modules: sel.modules.map((m) => m.name),
      builtin: sel.builtin,
    };
    writeFileSync(join(out, FILES.manifest), JSON.stringify(manifest, null, 2) + '\n');
    rmSync(i.outDir, { recursive: true, force: true });
    renameSync(out, i.outDir);
    return manifest;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
