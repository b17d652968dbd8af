/**
 * Image locking as QEMU does it (block/file-posix.c, "raw_apply_lock_bytes" and
 * "raw_check_lock_bytes"), so virtus, qemu-system, qemu-img and qemu-io see each other's
 * locks: Linux open file description (OFD) locks on single bytes of the image file. Byte
 * 100+bit is read-locked for each permission the user holds, byte 200+bit for each one it
 * does not let others have; a user may take permission `bit` only if nobody holds byte
 * 200+bit, and may deny it only if nobody holds byte 100+bit. The bytes are taken first and
 * checked after, so of two processes racing, at worst both fail. OFD locks belong to the open
 * file: closing it drops them, and two opens in one process conflict as two processes do.
 *
 * Node has no fcntl: build/native/ofd-lock.node (src/host/node/native/ofd-lock.c, built by
 * `npm install`) supplies it. Without it virtus warns once and runs without locks.
 */
import { fstatSync, readdirSync, readFileSync } from 'node:fs';
import type { LockMode } from '../../storage/host-file.ts';
import { VirtusError } from '../../util/errors.ts';
import { nativeHelper } from './native.ts';

interface OfdLock {
  setLock(fd: number, type: number, start: number, length: number): number;
  getLock(fd: number, type: number, start: number, length: number): number;
  RDLCK: number;
  WRLCK: number;
  UNLCK: number;
}

/** QEMU's permission bits (include/block/block-common.h) and their names in its messages. */
const PERM = { consistentRead: 0, write: 1, writeUnchanged: 2, resize: 3 } as const;
const PERM_NAMES = ['consistent read', 'write', 'write unchanged', 'resize'];
const PERM_BASE = 100;
const SHARED_BASE = 200;

/** What each mode holds and what it denies others (as qemu-io holds them on a qcow2 image). */
const MODES: Record<LockMode, { perm: number[]; deny: number[] }> = {
  write: { perm: [PERM.consistentRead, PERM.write, PERM.resize], deny: [PERM.write, PERM.resize] },
  read: { perm: [PERM.consistentRead], deny: [PERM.write, PERM.resize] },
  shared: { perm: [PERM.consistentRead], deny: [] },
};

let warned = false;

function load(): OfdLock | null {
  return nativeHelper<OfdLock>('ofd-lock');
}

function unavailable(why: string): void {
  if (warned) return;
  warned = true;
  process.stderr.write(`virtus: warning: images are not locked (${why}); nothing stops another process from writing them meanwhile\n`);
}

/** Loads the native helper now, where its loading costs nothing that waits (a migration target's preparation). */
export function preloadImageLocks(): void {
  load();
}

/**
 * Takes QEMU's lock bytes for `mode` on the open file `fd` (the image at `name`), or throws
 * IMAGE_LOCKED naming who holds a conflicting lock.
 */
export function lockImage(fd: number, name: string, mode: LockMode): void {
  const ofd = load();
  if (!ofd) return unavailable('the native helper build/native/ofd-lock.node is missing: run npm install, which builds it with a C compiler');
  const { perm, deny } = MODES[mode];
  for (const byte of [...perm.map((p) => PERM_BASE + p), ...deny.map((p) => SHARED_BASE + p)]) {
    const r = ofd.setLock(fd, ofd.RDLCK, byte, 1);
    if (r === 0) continue;
    if (-r === 38 || -r === 22) return unavailable(`the file system of ${name} has no open file description locks`); // ENOSYS, EINVAL
    throw conflict(fd, name, byte, `Failed to lock byte ${byte}`);
  }
  // A permission is refused if someone denies it; a denial, if someone holds the permission.
  for (const p of perm) {
    if (ofd.getLock(fd, ofd.WRLCK, SHARED_BASE + p, 1) !== ofd.UNLCK) throw conflict(fd, name, SHARED_BASE + p, `Failed to get "${PERM_NAMES[p]}" lock`);
  }
  for (const p of deny) {
    if (ofd.getLock(fd, ofd.WRLCK, PERM_BASE + p, 1) !== ofd.UNLCK) throw conflict(fd, name, PERM_BASE + p, `Failed to get shared "${PERM_NAMES[p]}" lock`);
  }
}

/**
 * Drops every lock byte on the open file `fd` (a migration hands the image over: the target
 * takes it once the source has stopped writing). lockImage takes them again.
 */
export function unlockImage(fd: number): void {
  const ofd = load();
  if (!ofd) return;
  ofd.setLock(fd, ofd.UNLCK, PERM_BASE, 4);
  ofd.setLock(fd, ofd.UNLCK, SHARED_BASE, 4);
}

function conflict(fd: number, name: string, byte: number, what: string): VirtusError {
  const holders = lockHolders(fd, byte);
  const who = holders.length ? ` ${holders.join(' and ')} ${holders.length > 1 ? 'have' : 'has'} it open.` : '';
  return new VirtusError('IMAGE_LOCKED', `${what}. Is another process using the image [${name}]?${who}`);
}

/**
 * Who holds a lock on `byte` of the file open as `fd`, other than `fd` itself: OFD locks
 * carry no process id (/proc/locks says -1), but /proc/PID/fdinfo/FD lists the locks of each
 * open file ("lock:" lines, with device and inode as /proc/locks prints them).
 */
function lockHolders(fd: number, byte: number): string[] {
  let key: string;
  try {
    const st = fstatSync(fd, { bigint: true });
    const major = Number(((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn));
    const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn));
    key = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  } catch {
    return [];
  }
  const out = new Set<string>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue;
    }
    for (const f of fds) {
      if (Number(pid) === process.pid && Number(f) === fd) continue;
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/fdinfo/${f}`, 'utf8');
      } catch {
        continue;
      }
      for (const m of text.matchAll(/^lock:\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)\s+(\d+)\s+(\d+|EOF)$/gm)) {
        if (m[1] !== key || byte < Number(m[2]) || (m[3] !== 'EOF' && byte > Number(m[3]))) continue;
        out.add(describeProcess(pid));
      }
    }
  }
  return [...out];
}

function describeProcess(pid: string): string {
  if (Number(pid) === process.pid) return `this process (pid ${pid})`;
  let name = 'a process';
  try {
    name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (argv.some((a) => /virtus(\.mjs)?$|cli\.m?[jt]s$/.test(a))) name = 'virtus';
  } catch {
    // gone meanwhile
  }
  return `${name} (pid ${pid})`;
}
