/**
 * Where the default guest lives on the host. Everything downloaded or built is a cache
 * (rebuildable, safe to delete): $VIRTUS_CACHE_DIR, else $XDG_CACHE_HOME/virtus, else
 * ~/.cache/virtus. A root disk the user writes to is data, not cache: it lives under
 * $XDG_DATA_HOME/virtus (~/.local/share/virtus) so that clearing caches keeps it.
 *
 *   <cache>/apt/                the private apt (lists, config) for Debian unstable riscv64
 *   <cache>/debs/               downloaded packages, named as in the archive's pool
 *   <cache>/guests/<key>/       one built guest: Image, initrd.cpio, rootfs.img,
 *                               fw_dynamic.bin, manifest.json; <key> names the kernel
 *                               release and a hash of every package version and the format
 *   <cache>/guests/current      the key of the guest `virtus run` uses
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import type { ProgressFn } from './progress.ts';

/** The cache directory (not created). */
export function cacheRoot(): string {
  const env = process.env;
  if (env.VIRTUS_CACHE_DIR) return env.VIRTUS_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'virtus');
  return join(home(), '.cache', 'virtus');
}

/** The directory for the user's data (root disks), not created. */
export function dataRoot(): string {
  const env = process.env;
  if (env.VIRTUS_DATA_DIR) return env.VIRTUS_DATA_DIR;
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, 'virtus');
  return join(home(), '.local', 'share', 'virtus');
}

function home(): string {
  const h = homedir();
  if (!h) throw new VirtusError('GUEST_CACHE', 'no home directory to keep the guest in; set VIRTUS_CACHE_DIR');
  return h;
}

/** Creates a directory, turning failure into one clear line. */
export function ensureDir(path: string): string {
  try {
    mkdirSync(path, { recursive: true });
  } catch (e) {
    throw new VirtusError('GUEST_CACHE', `cannot create ${path}: ${(e as Error).message}`);
  }
  return path;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding the cache's lock, so that two virtus processes (two first `virtus run`s,
 * or test files running in parallel) do not build the guest into the same place at once.
 * A lock left by a process that no longer runs is taken over.
 */
export async function withCacheLock<T>(root: string, progress: ProgressFn, fn: () => Promise<T>): Promise<T> {
  ensureDir(root);
  const lock = join(root, 'lock');
  let told = false;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new VirtusError('GUEST_CACHE', `cannot lock ${lock}: ${(e as Error).message}`);
      }
    }
    let pid = 0;
    let age = 0;
    try {
      pid = Number(readFileSync(lock, 'utf8')) || 0;
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    // An empty lock is being written by its owner, unless it has been empty for long.
    if ((pid > 0 && !alive(pid)) || (pid === 0 && age > 10_000)) {
      rmSync(lock, { force: true });
      continue;
    }
    if (!told) progress(`waiting for another virtus process${pid ? ` (${pid})` : ''}, which is building the guest`);
    told = true;
    await new Promise((r) => setTimeout(r, 500));
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** True when every path exists. */
export function allExist(paths: readonly string[]): boolean {
  return paths.every((p) => existsSync(p));
}
