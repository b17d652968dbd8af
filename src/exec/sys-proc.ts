/**
 * Process system calls: exit, identity, uname, time and sleep, resource limits, randomness,
 * and the thread bookkeeping a single-threaded glibc or musl program makes at start
 * (set_tid_address, set_robust_list, futex on itself).
 */
import { BLOCK, E, SYS } from './abi.ts';
import { i64At, timespecBytes } from './guest-struct.ts';
import type { GuestProcess } from './process.ts';
import { put } from './sys-dir.ts';
import type { Syscall, SyscallArgs } from './syscalls.ts';

const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;
const RLIMIT_STACK = 3;
const RLIMIT_NOFILE = 7;
const CLOCK_REALTIME = 0;
const CLOCK_REALTIME_COARSE = 5;
const CLOCK_TAI = 11;
const TIMER_ABSTIME = 1;
const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const FUTEX_WAIT_BITSET = 9;
const FUTEX_WAKE_BITSET = 10;

function clockNs(p: GuestProcess, clk: number): bigint | number {
  if (clk < 0 || clk > CLOCK_TAI || clk === 8 || clk === 9 || clk === 10) return -E.EINVAL;
  return clk === CLOCK_REALTIME || clk === CLOCK_REALTIME_COARSE || clk === CLOCK_TAI ? p.host.realtimeNs() : p.host.monotonicNs();
}

/** The 128-bit `struct rlimit` for a resource (the limits a new Linux process has by default). */
function rlimit(res: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  const [cur, max] = res === RLIMIT_STACK ? [8n << 20n, RLIM_INFINITY] : res === RLIMIT_NOFILE ? [1024n, 1024n] : [RLIM_INFINITY, RLIM_INFINITY];
  v.setBigUint64(0, cur, true);
  v.setBigUint64(8, max, true);
  return b;
}

/** Sleeps for the `struct timespec` at `ptr` (relative) or until it (absolute on clock `clk`). */
function sleep(p: GuestProcess, ptr: number, clk: number, abs: boolean): number {
  const ts = p.as.read(ptr, 16);
  if (!ts) return -E.EFAULT;
  const sec = i64At(ts, 0);
  const nsec = i64At(ts, 8);
  if (sec < 0 || nsec < 0 || nsec >= 1e9) return -E.EINVAL;
  // The thread waits (BLOCK) until its time comes, so other processes and threads run meanwhile;
  // the kernel sleeps the host when nothing else can run.
  const t = p.current;
  const now = p.host.monotonicNs();
  if (t.wakeAt === 0n) {
    let ns = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
    if (abs) {
      const base = clockNs(p, clk);
      if (typeof base === 'number') return base;
      ns -= base;
    }
    t.wakeAt = now + (ns > 0n ? ns : 0n);
  }
  return now >= t.wakeAt ? 0 : BLOCK;
}

/** `struct new_utsname`: six fields of 65 bytes. */
function uname(p: GuestProcess, a: SyscallArgs): number {
  const b = new Uint8Array(65 * 6);
  const enc = new TextEncoder();
  const u = p.host.uname;
  ['Linux', u.nodename, u.release, u.version, 'riscv64', '(none)'].forEach((s, i) => b.set(enc.encode(s).subarray(0, 64), i * 65));
  return put(p, a.num(0), b);
}

/**
 * futex(uaddr, op, val, timeout): WAIT blocks while the word holds `val` until a WAKE on the
 * same word releases it (or, with a timeout, until nothing else can run: ETIMEDOUT); WAKE
 * releases up to `val` waiters of this process. The PRIVATE flag changes nothing here.
 */
function futex(p: GuestProcess, a: SyscallArgs): number {
  const op = a.int(1) & 127;
  const addr = a.num(0);
  const t = p.current;
  if (op === FUTEX_WAKE || op === FUTEX_WAKE_BITSET) return p.futexWake(addr, Math.max(0, a.int(2)));
  if (op !== FUTEX_WAIT && op !== FUTEX_WAIT_BITSET) {
    p.kernel.unimplemented.set(SYS.futex, (p.kernel.unimplemented.get(SYS.futex) ?? 0) + 1);
    return -E.ENOSYS;
  }
  if (addr % 4 !== 0) return -E.EINVAL;
  if (t.woken) {
    t.woken = false;
    return 0;
  }
  if (t.timedOut) {
    t.futex = null;
    return -E.ETIMEDOUT;
  }
  const w = p.as.read(addr, 4);
  if (!w) return -E.EFAULT;
  if (new DataView(w.buffer).getInt32(0, true) !== a.int(2)) {
    t.futex = null;
    return -E.EAGAIN;
  }
  t.futex = addr;
  t.timed = a.num(3) !== 0;
  return BLOCK;
}

const ITIMER_REAL = 0;
const US = 1000n;

/** struct itimerval: it_interval, then it_value, each a timeval (seconds, microseconds). */
function itimerval(intervalNs: bigint, valueNs: bigint): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  [intervalNs, valueNs].forEach((ns, i) => {
    v.setBigInt64(16 * i, ns / 1_000_000_000n, true);
    v.setBigInt64(16 * i + 8, (ns % 1_000_000_000n) / US, true);
  });
  return b;
}

/** The interval and the time left of ITIMER_REAL, as getitimer reports them. */
function currentTimer(p: GuestProcess): Uint8Array {
  const left = p.itimer.at === 0n ? 0n : p.itimer.at - p.host.monotonicNs();
  return itimerval(p.itimer.interval, left > 0n ? left : 1000n);
}

/** setitimer(ITIMER_REAL, new, old): SIGALRM after it_value, then every it_interval (the kernel fires it). */
function setitimer(p: GuestProcess, a: SyscallArgs): number {
  if (a.int(0) !== ITIMER_REAL) return -E.EINVAL; // the CPU-time timers are not kept
  if (a.num(2) !== 0 && put(p, a.num(2), currentTimer(p)) < 0) return -E.EFAULT;
  if (a.num(1) === 0) return 0;
  const b = p.as.read(a.num(1), 32);
  if (!b) return -E.EFAULT;
  const ns = (i: number): bigint | null => {
    const sec = i64At(b, 16 * i);
    const usec = i64At(b, 16 * i + 8);
    return sec < 0 || usec < 0 || usec >= 1e6 ? null : BigInt(sec) * 1_000_000_000n + BigInt(usec) * US;
  };
  const interval = ns(0);
  const value = ns(1);
  if (interval === null || value === null) return -E.EINVAL;
  p.itimer = { at: value === 0n ? 0n : p.host.monotonicNs() + value, interval };
  return 0;
}

export const PROC_CALLS: Record<number, Syscall> = {
  [SYS.exit]: (p, a) => {
    p.exitThread(a.int(0));
    return 0;
  },
  [SYS.exit_group]: (p, a) => {
    p.exitWith(a.int(0));
    return 0;
  },
  [SYS.set_tid_address]: (p, a) => {
    p.current.clearTid = a.num(0);
    return p.current.tid;
  },
  [SYS.set_robust_list]: (_p, a) => (a.num(1) === 24 ? 0 : -E.EINVAL),
  [SYS.gettid]: (p) => p.current.tid,
  [SYS.getpid]: (p) => p.pid,
  [SYS.getppid]: (p) => p.ppid,
  [SYS.getuid]: (p) => p.host.ids.uid,
  [SYS.geteuid]: (p) => p.host.ids.uid,
  [SYS.getgid]: (p) => p.host.ids.gid,
  [SYS.getegid]: (p) => p.host.ids.gid,
  [SYS.getresuid]: (p, a) => {
    const id = new Uint8Array(new Uint32Array([p.host.ids.uid]).buffer);
    return put(p, a.num(0), id) || put(p, a.num(1), id) || put(p, a.num(2), id);
  },
  [SYS.getresgid]: (p, a) => {
    const id = new Uint8Array(new Uint32Array([p.host.ids.gid]).buffer);
    return put(p, a.num(0), id) || put(p, a.num(1), id) || put(p, a.num(2), id);
  },
  [SYS.getpgid]: (p) => p.pid,
  [SYS.getsid]: (p) => p.pid,
  [SYS.setpgid]: () => 0,
  [SYS.getgroups]: () => 0,
  [SYS.uname]: uname,
  [SYS.umask]: (p, a) => {
    const old = p.umask;
    p.umask = a.int(0) & 0o777;
    return old;
  },
  [SYS.clock_gettime]: (p, a) => {
    const ns = clockNs(p, a.int(0));
    return typeof ns === 'number' ? ns : put(p, a.num(1), timespecBytes(ns));
  },
  [SYS.clock_getres]: (p, a) => {
    const ns = clockNs(p, a.int(0));
    if (typeof ns === 'number') return ns;
    return a.num(1) === 0 ? 0 : put(p, a.num(1), timespecBytes(1n));
  },
  [SYS.gettimeofday]: (p, a) => {
    if (a.num(0) === 0) return 0;
    const ns = p.host.realtimeNs();
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigInt64(0, ns / 1_000_000_000n, true);
    v.setBigInt64(8, (ns % 1_000_000_000n) / 1000n, true);
    return put(p, a.num(0), b);
  },
  [SYS.nanosleep]: (p, a) => sleep(p, a.num(0), 1, false),
  [SYS.clock_nanosleep]: (p, a) => {
    if (typeof clockNs(p, a.int(0)) === 'number') return -E.EINVAL;
    return sleep(p, a.num(2), a.int(0), (a.int(1) & TIMER_ABSTIME) !== 0);
  },
  [SYS.sched_yield]: () => 0,
  [SYS.getrandom]: (p, a) => {
    const buf = new Uint8Array(Math.min(a.num(1), 1 << 25));
    p.host.random(buf);
    return put(p, a.num(0), buf, buf.length);
  },
  [SYS.prlimit64]: (p, a) => {
    if (a.int(0) !== 0 && a.int(0) !== p.pid) return -E.ESRCH;
    if (a.num(3) !== 0) return put(p, a.num(3), rlimit(a.int(1)));
    return 0;
  },
  [SYS.getrlimit]: (p, a) => put(p, a.num(1), rlimit(a.int(0))),
  [SYS.setrlimit]: () => 0,
  [SYS.futex]: futex,
  [SYS.setitimer]: setitimer,
  [SYS.getitimer]: (p, a) => (a.int(0) !== ITIMER_REAL ? -E.EINVAL : put(p, a.num(1), p.itimer.at === 0n ? itimerval(p.itimer.interval, 0n) : currentTimer(p))),
};
