/**
 * `virtus exec` as a command: its flags (the environment against qemu-riscv64's -E and -U,
 * the working directory inside the root), and a one-line error with a usage exit status for
 * each bad flag.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runQemuUser, runVirtusExec } from '../support/exec.ts';
import { buildLinuxProgram, runVirtus } from '../support/toolchain.ts';

describe('virtus exec flags', () => {
  it('--env and --unset-env change the environment as qemu-riscv64 -E and -U do', () => {
    const elf = buildLinuxProgram('process', ['process.c']);
    const env = { VIRTUS_TEST: 'from the parent', VIRTUS_GONE: 'x' };
    const want = runQemuUser(elf, [], { env, qemuFlags: ['-E', 'VIRTUS_TEST=set by a flag', '-U', 'VIRTUS_TEST'] });
    const got = runVirtusExec(elf, [], { env, virtusFlags: ['--env', 'VIRTUS_TEST=set by a flag', '--unset-env', 'VIRTUS_TEST'] });
    assert.equal(got.stdout, want.stdout);
    assert.match(got.stdout, /VIRTUS_TEST=\(unset\)/);
    const set = runVirtusExec(elf, [], { env, virtusFlags: ['--env', 'VIRTUS_TEST=set by a flag'] });
    assert.match(set.stdout, /VIRTUS_TEST=set by a flag\n/);
  });

  it('--cwd names the working directory inside the root', () => {
    const elf = buildLinuxProgram('dirs', ['dirs.c']);
    const r = runVirtusExec('/dirs', [], {
      setup: (dir) => {
        mkdirSync(join(dir, 'work'));
        writeFileSync(join(dir, 'dirs'), spawnSync('cat', [elf], { encoding: 'buffer' }).stdout, { mode: 0o755 });
      },
      virtusFlags: ['--root', '.', '--cwd', '/work'],
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /getcwd ends in \/sub = 1/);
  });

  it('refuses bad flags with one line and status 2', () => {
    const hello = buildLinuxProgram('hello', ['hello.c']);
    const cases: Array<[string[], RegExp]> = [
      [[], /^virtus: exec: no program given \(try 'virtus exec --help'\)\n$/],
      [['--engine', 'fast', hello], /^virtus: exec: --engine must be jit or interp, not 'fast'\n$/],
      [['--root', '/nonexistent-virtus-root', hello], /^virtus: exec: --root \/nonexistent-virtus-root is not a directory\n$/],
      [['--env', 'NOEQUALS', hello], /^virtus: exec: --env takes K=V, not 'NOEQUALS'\n$/],
      [['--frobnicate', hello], /^virtus: exec: unknown option '--frobnicate' \(try 'virtus exec --help'\)\n$/],
      [['--cwd', '/nonexistent-virtus-dir', hello], /^virtus: the working directory \/nonexistent-virtus-dir is not a directory inside the root\n$/],
    ];
    for (const [args, want] of cases) {
      const r = runVirtus(['exec', ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
    }
    const bad = runVirtus(['exec', '--memory', 'lots', hello]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^virtus: --memory: "lots" is not a size \(examples: 512M, 2G, 65536\)\n$/);
    // Flags after PROGRAM are the program's own.
    const own = runVirtus(['exec', hello, '--engine', 'fast']);
    assert.equal(own.status, 0, own.stderr);
    assert.equal(own.stdout, 'hello from riscv64\n');
  });
});
