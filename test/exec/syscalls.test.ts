/**
 * `virtus exec` against qemu-riscv64: C programs built with Debian's riscv64 cross gcc (one
 * per family of system calls) print what each call returned; stdout, stderr and the exit
 * status (or the killing signal) must be the same under both.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runQemuUser, runVirtusExec, type ExecRunOptions } from '../support/exec.ts';
import { buildLinuxProgram } from '../support/toolchain.ts';

function same(name: string, args: string[] = [], o: ExecRunOptions & { cflags?: string[] } = {}): void {
  const elf = buildLinuxProgram(name, [`${name}.c`], { cflags: o.cflags });
  const want = runQemuUser(elf, args, o);
  const got = runVirtusExec(elf, args, o);
  assert.equal(got.stdout, want.stdout, `${name}: stdout`);
  // A signal's death is reported by each monitor in its own words: compare the program's own lines.
  const own = (s: string) => s.split('\n').filter((l) => !/^(qemu|virtus exec): /.test(l)).join('\n');
  assert.equal(own(got.stderr), own(want.stderr), `${name}: stderr`);
  assert.deepEqual([got.status, got.signal], [want.status, want.signal], `${name}: exit status\n${got.stderr}`);
}

describe('virtus exec runs static glibc programs as qemu-riscv64 does', () => {
  it('files: open, read, write, seek, stat, truncate, dup, fcntl and their errors', () => same('files'));
  it('directories: mkdir, getdents64, rename, symlink, readlink, unlink, chdir, access', () => same('dirs'));
  it('memory: brk, malloc, anonymous and file mmap, MAP_FIXED, munmap, mprotect, madvise', () => same('memory'));
  it('process: argv, envp, auxv, identity, uname, clocks, sleep, limits, random, exit status', () =>
    same('process', ['42', 'two words', ''], { env: { VIRTUS_TEST: 'yes' } }));
  it('signals: SIGSEGV handled with siginfo and ucontext, resumed; raise; mask; abort', () => same('signals'));
  it('signals between processes: a blocked child killed, EINTR and SA_RESTART, sleeps that let others run', () => same('interrupt'));
  it('ITIMER_REAL: SIGALRM interrupting a wait, an interval timer, alarm() ending the process', () => same('timer'));
  it('shared file mappings: msync, munmap and exit write stores back, never past the end', () => same('shared'));
  it('the rest: link, truncate, chown, statfs, sendfile, prctl names, rusage, times, sysinfo, waitid', () => same('misc'));
  it('/proc/self: cmdline, maps, and pthread_getattr_np finding the stack through them', () =>
    same('procself', ['an arg', 'x'], { cflags: ['-pthread'] }));
  it('threads: create, join, mutex, condition variable, atomics, TLS, futex, fork of a threaded process', () =>
    same('threads', [], { cflags: ['-pthread'] }));
});
