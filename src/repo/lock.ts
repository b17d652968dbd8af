/**
 * Advisory locks between virtus processes: a file created exclusively (O_EXCL) that holds
 * the owner's pid. A lock whose owner no longer runs is taken over, so a crash never
 * wedges the store. Locks are held only for short critical sections (an index update,
 * a garbage collection) or for one blob's download, never for a whole pull.
 */
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { VirtusError } from '../util/errors.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when `pid` names a running process (for in-use markers). */
export function processAlive(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0 && alive(pid);
}

/** Tries once to take the lock; false when a live process holds it. */
export function tryLock(path: string): boolean {
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new VirtusError('STORE_LOCK', `cannot lock ${path}: ${(e as Error).message}`);
    }
    let pid = 0;
    let age = 0;
    try {
      pid = Number(readFileSync(path, 'utf8')) || 0;
      age = Date.now() - statSync(path).mtimeMs;
    } catch {
      continue; // released meanwhile: try again
    }
    // An empty lock file is being written by its owner, unless it has been empty for long.
    if ((pid > 0 && !alive(pid)) || (pid === 0 && age > 10_000)) {
      rmSync(path, { force: true });
      continue;
    }
    return false;
  }
}

/** Releases a lock taken with tryLock. */
export function unlock(path: string): void {
  rmSync(path, { force: true });
}

/**
 * Runs `fn` holding the lock at `path`, waiting (and calling `onWait` once) while another
 * live process holds it.
 */
export async function withLock<T>(path: string, fn: () => T | Promise<T>, onWait?: (pid: number) => void): Promise<T> {
  let told = false;
  while (!tryLock(path)) {
    if (!told && onWait) {
      let pid = 0;
      try {
        pid = Number(readFileSync(path, 'utf8')) || 0;
      } catch {
        // gone already
      }
      onWait(pid);
    }
    told = true;
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    return await fn();
  } finally {
    unlock(path);
  }
}
