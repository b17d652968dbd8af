/**
 * `virtus guest fetch` and the first `virtus run` without --kernel: resolve the current
 * Debian unstable kernel for riscv64 and the other packages of the default guest, download
 * what the cache lacks, and build the guest once per set of package versions.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { storeDefaultGuest } from '../../../repo/default-guest.ts';
import { VirtusError } from '../../../util/errors.ts';
import { PrivateApt, sha256File, type PackageInfo } from './apt.ts';
import { buildGuest, FILES, GUEST_FORMAT, recipeHash, type BuiltPackage, type GuestManifest, type Role, ROLES } from './build.ts';
import { allExist, cacheRoot, ensureDir, withCacheLock } from './cache.ts';
import { findTool, requireTool } from './exec.ts';
import { mb, quiet, type ProgressFn } from './progress.ts';

/** A built default guest: the files `virtus run` boots, and what they were made from. */
export interface DefaultGuest {
  /** The kernel: Debian's vmlinuz, a RISC-V Linux Image (with an EFI/PE header). */
  kernel: string;
  /** The initramfs: an uncompressed newc cpio with busybox, /init and the modules. */
  initrd: string;
  /** The pristine root disk (raw ext4); boot a copy of it (see ensureRootDisk). */
  rootfs: string;
  /** OpenSBI's fw_dynamic.bin from Debian's opensbi package. */
  opensbi: string;
  /** The kernel release, as `uname -r` prints it in the guest. */
  release: string;
  /** The kernel package's Debian version, e.g. 7.2.13-1. */
  version: string;
  /** The guest's directory in the cache. */
  dir: string;
  manifest: GuestManifest;
}

export interface GuestOptions {
  progress?: ProgressFn;
  /** Download and rebuild even when the cache already has this guest. */
  force?: boolean;
}

/** The packages to fetch, per role, as the archive lists them. */
type Resolved = Record<Role, PackageInfo>;

function guestFrom(dir: string): DefaultGuest | null {
  const files = Object.values(FILES).map((f) => join(dir, f));
  if (!allExist(files)) return null;
  let m: GuestManifest;
  try {
    m = JSON.parse(readFileSync(join(dir, FILES.manifest), 'utf8')) as GuestManifest;
  } catch {
    return null;
  }
  if (m.format !== GUEST_FORMAT || m.recipe !== recipeHash() || typeof m.release !== 'string') return null;
  const pkgOk = (p: BuiltPackage | undefined) => !!p && [p.name, p.version, p.sha256, p.file].every((x) => typeof x === 'string');
  if (!ROLES.every((r) => pkgOk(m.packages?.[r])) || !Array.isArray(m.modules) || !Array.isArray(m.builtin)) return null;
  return {
    kernel: join(dir, FILES.kernel),
    initrd: join(dir, FILES.initrd),
    rootfs: join(dir, FILES.rootfs),
    opensbi: join(dir, FILES.opensbi),
    release: m.release,
    version: m.packages.kernel.version,
    dir,
    manifest: m,
  };
}

/**
 * The guest `virtus run` uses, if one is built by this virtus's recipe (no network, no
 * building); null when there is none or it was built by a virtus that differs.
 */
export function currentGuest(): DefaultGuest | null {
  const guests = join(cacheRoot(), 'guests');
  let key: string;
  try {
    key = readFileSync(join(guests, 'current'), 'utf8').trim();
  } catch {
    return null;
  }
  return key && !key.includes('/') ? guestFrom(join(guests, key)) : null;
}

/** One clear line for a host that cannot build the guest (no apt, dpkg, xz or mke2fs). */
function checkHost(): void {
  const missing = ['apt-get', 'dpkg-deb'].filter((t) => !findTool(t));
  if (missing.length > 0) {
    throw new VirtusError(
      'GUEST_NO_APT',
      `the default guest is built from Debian's riscv64 packages with apt-get and dpkg-deb, and this host has no ${missing.join(' or ')}; ` +
        'on Debian or Ubuntu install apt and dpkg, or pass your own --kernel IMAGE and --initrd FILE to virtus run',
    );
  }
  requireTool('xz', 'building the default guest');
  requireTool('mke2fs', 'building the default guest');
}

/** Resolves the kernel from the linux-image-riscv64 metapackage, and the other packages. */
async function resolvePackages(apt: PrivateApt, progress: ProgressFn): Promise<Resolved> {
  const meta = await apt.show('linux-image-riscv64');
  const images = meta.depends.map((alt) => alt[0]!).filter((n) => n.startsWith('linux-image-') && n !== meta.name);
  if (images.length !== 1) {
    throw new VirtusError('GUEST_KERNEL', `linux-image-riscv64 ${meta.version} depends on ${images.length} kernel packages (${images.join(', ') || 'none'}); expected one`);
  }
  const image = await apt.show(images[0]!);
  const deps = image.depends.map((alt) => alt[0]!);
  // Debian now splits a kernel into linux-binary-* (the image) and linux-modules-*; older
  // kernels carry both in the linux-image-* package itself.
  const split = async (prefix: string) => {
    const name = deps.find((n) => n.startsWith(prefix));
    return name ? apt.show(name) : image;
  };
  const kernel = await split('linux-binary-');
  progress(`kernel: ${kernel.name} ${kernel.version} (from ${meta.name} ${meta.version})`);
  return {
    kernel,
    modules: await split('linux-modules-'),
    base: await split('linux-base-'),
    busybox: await apt.show('busybox-static'),
    opensbi: await apt.show('opensbi'),
  };
}

/** The cache key: the kernel release, then a hash of everything the guest is built from. */
export function guestKey(r: Record<Role, { name: string; version: string; sha256: string }>): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([recipeHash(), ...ROLES.map((k) => [r[k].name, r[k].version, r[k].sha256])]));
  const release = r.kernel.name.replace(/^linux-(binary|image)-/, '');
  return `${release}-${h.digest('hex').slice(0, 12)}`;
}

async function download(apt: PrivateApt, pkg: PackageInfo, debs: string, progress: ProgressFn): Promise<string> {
  const dest = join(debs, basename(pkg.filename));
  if (existsSync(dest) && (await sha256File(dest)) === pkg.sha256) {
    progress(`have ${pkg.name} ${pkg.version}`);
    return dest;
  }
  progress(`downloading ${pkg.name} ${pkg.version} (${mb(pkg.size)})`);
  return apt.download(pkg, debs, (n) => {
    const pct = pkg.size ? ` (${Math.min(100, Math.floor((100 * n) / pkg.size))}%)` : '';
    progress(`downloading ${pkg.name}: ${mb(n)} of ${mb(pkg.size)}${pct}`, true);
  });
}

/** Removes guests and packages other than the current ones: a new kernel replaces the old. */
function prune(root: string, key: string, keepDebs: Set<string>): void {
  const guests = join(root, 'guests');
  for (const n of readdirSync(guests)) if (n !== key && n !== 'current') rmSync(join(guests, n), { recursive: true, force: true });
  const debs = join(root, 'debs');
  for (const n of readdirSync(debs)) if (!keepDebs.has(n)) rmSync(join(debs, n), { recursive: true, force: true });
}

async function fetchLocked(o: GuestOptions, progress: ProgressFn): Promise<{ guest: DefaultGuest; built: boolean }> {
  const root = cacheRoot();
  const guests = ensureDir(join(root, 'guests'));
  const debs = ensureDir(join(root, 'debs'));
  const apt = await PrivateApt.open(ensureDir(join(root, 'apt')), progress);
  const pkgs = await resolvePackages(apt, progress);
  const key = guestKey(pkgs);
  const dir = join(guests, key);
  const setCurrent = () => {
    writeFileSync(join(guests, 'current.tmp'), key + '\n');
    renameSync(join(guests, 'current.tmp'), join(guests, 'current'));
  };
  const have = guestFrom(dir);
  if (have && !o.force) {
    setCurrent();
    progress(`up to date: ${key}`);
    await storeDefaultGuest(have, progress); // also in the image store, as default:latest
    return { guest: have, built: false };
  }
  const files = {} as Record<Role, string>;
  const packages = {} as Record<Role, BuiltPackage>;
  const fresh = new Set<string>();
  for (const role of ROLES) {
    const p = pkgs[role];
    const name = basename(p.filename);
    if (o.force && !fresh.has(name)) rmSync(join(debs, name), { force: true });
    fresh.add(name);
    files[role] = await download(apt, p, debs, progress);
    packages[role] = { name: p.name, version: p.version, sha256: p.sha256, file: basename(files[role]) };
  }
  await buildGuest({ debs: files, packages, key, mirror: apt.mirror.uri, outDir: dir, workRoot: root, progress });
  setCurrent();
  prune(root, key, new Set(Object.values(files).map((f) => basename(f))));
  const guest = guestFrom(dir);
  if (!guest) throw new VirtusError('GUEST_BUILD', `the guest built in ${dir} is incomplete`);
  progress(`ready: ${guest.dir}`);
  await storeDefaultGuest(guest, progress);
  return { guest, built: true };
}

/**
 * Brings the default guest up to date with Debian unstable: always reads the package
 * lists; downloads and builds only when the versions changed (or `force`).
 */
export function fetchDefaultGuest(o: GuestOptions = {}): Promise<{ guest: DefaultGuest; built: boolean }> {
  const progress = o.progress ?? quiet;
  checkHost();
  return withCacheLock(cacheRoot(), progress, () => fetchLocked(o, progress));
}

/**
 * The default guest for `virtus run`: the one in the cache, without touching the network;
 * fetched and built first when there is none.
 */
export async function ensureDefaultGuest(o: GuestOptions = {}): Promise<DefaultGuest> {
  const have = o.force ? null : currentGuest();
  if (have) return have;
  const progress = o.progress ?? quiet;
  checkHost();
  return withCacheLock(cacheRoot(), progress, async () => {
    const again = o.force ? null : currentGuest(); // another process may have built it meanwhile
    if (again) return again;
    progress('no default guest yet: building one from Debian unstable (about 130 MB to download)');
    return (await fetchLocked(o, progress)).guest;
  });
}
