/**
 * Memory system calls: brk, mmap (anonymous and of files), munmap, mprotect, madvise, msync.
 * A file mapping is read into its pages when it is made. A MAP_SHARED one is written back to
 * its file (never past the file's end) at msync, munmap, execve and exit; until then other
 * processes reading the file, or mapping it too, do not see the stores.
 */
import {
  E, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE, SYS, TASK_SIZE,
} from './abi.ts';
import { pageUp } from './address-space.ts';
import type { GuestProcess } from './process.ts';
import type { Syscall, SyscallArgs } from './syscalls.ts';

const PAGE = 4096;
const MIN_ADDR = 0x10000;
const MADV_DONTNEED = 4;

function mmap(p: GuestProcess, a: SyscallArgs): number {
  const addr = a.num(0);
  const len = pageUp(a.num(1));
  const prot = a.int(2);
  const flags = a.int(3);
  const off = a.i64(5);
  if (len === 0 || len > TASK_SIZE || off < 0 || off % PAGE !== 0) return -E.EINVAL;
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return -E.EINVAL;
  if ((flags & (MAP_SHARED | MAP_PRIVATE)) === 0) return -E.EINVAL;
  const anon = (flags & MAP_ANONYMOUS) !== 0;
  const f = anon ? undefined : p.fds.get(a.int(4));
  if (!anon && !f) return -E.EBADF;
  if (f && (f.isDir || f.pos === null)) return -E.ENODEV;
  let start: number;
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (addr % PAGE !== 0 || addr < MIN_ADDR || addr + len > TASK_SIZE) return -E.EINVAL;
    if (flags & MAP_FIXED) {
      p.syncShared(addr, addr + len);
      p.as.unmap(addr, addr + len);
    }
    else if (!p.as.isFree(addr, addr + len)) return -E.EEXIST;
    start = addr;
  } else if (addr >= MIN_ADDR && addr % PAGE === 0 && addr + len <= TASK_SIZE && p.as.isFree(addr, addr + len)) {
    start = addr;
  } else {
    start = p.as.findFree(len);
    if (start < 0) return start;
  }
  p.as.insert(start, start + len, prot, f && flags & MAP_SHARED ? { path: f.path, offset: off } : undefined);
  if (f) {
    const buf = new Uint8Array(Math.min(len, 1 << 24));
    for (let done = 0; done < len;) {
      const n = p.host.read(f.handle, buf.subarray(0, Math.min(buf.length, len - done)), off + done);
      if (n < 0) {
        p.as.unmap(start, start + len);
        return n;
      }
      if (n === 0) break;
      if (!p.as.write(start + done, buf.subarray(0, n), true)) {
        p.as.unmap(start, start + len);
        return -E.ENOMEM;
      }
      done += n;
    }
    if (flags & MAP_SHARED) p.as.markClean(start, start + len);
  }
  return start;
}

function range(a: SyscallArgs): [number, number] | number {
  const start = a.num(0);
  const len = pageUp(a.num(1));
  if (start % PAGE !== 0 || start + len > TASK_SIZE) return -E.EINVAL;
  return [start, start + len];
}

export const MEM_CALLS: Record<number, Syscall> = {
  [SYS.brk]: (p, a) => p.as.brk(a.num(0)),
  [SYS.mmap]: mmap,
  [SYS.munmap]: (p, a) => {
    const r = range(a);
    if (typeof r === 'number' || r[0] === r[1]) return typeof r === 'number' ? r : -E.EINVAL;
    p.syncShared(r[0], r[1]);
    p.as.unmap(r[0], r[1]);
    return 0;
  },
  [SYS.mprotect]: (p, a) => {
    const r = range(a);
    if (typeof r === 'number') return r;
    if (a.int(2) & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return -E.EINVAL;
    return r[0] === r[1] ? 0 : p.as.protect(r[0], r[1], a.int(2));
  },
  [SYS.madvise]: (p, a) => {
    const r = range(a);
    if (typeof r === 'number') return r;
    // MADV_DONTNEED on private anonymous memory: the next touch sees zeros.
    if (a.int(2) === MADV_DONTNEED) p.as.discard(r[0], r[1]);
    return 0;
  },
  [SYS.msync]: (p, a) => {
    const r = range(a);
    if (typeof r === 'number') return r;
    return p.syncShared(r[0], r[1]);
  },
  [SYS.riscv_flush_icache]: () => 0, // decoded and translated code is checked against memory already
};
