/**
 * Bad guest actions never crash or hang `virtus exec`: a guest program makes thousands of
 * random system calls with random arguments (test/guest/exec/syscall-fuzz.c) inside a --root
 * of its own. Each run must end with the guest's own exit status, or with one of virtus's
 * one-line errors; never an internal error, a stack trace or a timeout. Then bad programs:
 * not an ELF, a truncated one, one for another machine, a directory.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runVirtusExec } from '../support/exec.ts';
import { buildLinuxProgram } from '../support/toolchain.ts';

describe('virtus exec and bad guests', () => {
  it('answers random system calls with random arguments', () => {
    const elf = buildLinuxProgram('syscall-fuzz', ['syscall-fuzz.c']);
    for (let seed = 1; seed <= 8; seed++) {
      const r = runVirtusExec('/fuzz', [String(seed), '3000'], {
        setup: (dir) => copyFileSync(elf, join(dir, 'fuzz')),
        virtusFlags: ['--root', '.'],
      });
      assert.ok(r.signal === null || r.signal !== 'SIGTERM', `seed ${seed}: timed out`);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, `seed ${seed}: ${r.stderr}`);
      // The guest's own end (exit 0, or a signal it brought on itself), or one line from virtus.
      assert.ok(r.status === 0 || /^virtus( exec)?: [^\n]+\n$/.test(r.stderr), `seed ${seed}: status ${r.status} ${r.stderr}`);
    }
  });

  it('refuses programs it cannot run with one line each', () => {
    const hello = buildLinuxProgram('hello', ['hello.c']);
    const cases: Array<[string, (dir: string) => void, RegExp]> = [
      ['/text', (d) => writeFileSync(join(d, 'text'), 'just text\n'), /^virtus: \/text is not an ELF program\n$/],
      ['/short', (d) => writeFileSync(join(d, 'short'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1])), /^virtus: \/short is not an ELF program\n$/],
      ['/x86', (d) => {
        const b = Buffer.alloc(128);
        b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
        b.writeUInt16LE(2, 16);
        b.writeUInt16LE(62, 18);
        writeFileSync(join(d, 'x86'), b);
      }, /^virtus: \/x86: an ELF file for machine 62, not RISC-V\n$/],
      ['/cut', (d) => writeFileSync(join(d, 'cut'), readFileSync(hello).subarray(0, 200)), /^virtus: \/cut: [^\n]+\n$/],
      ['/dir', (d) => mkdirSync(join(d, 'dir')), /^virtus: \/dir: is a directory\n$/],
      ['/missing', () => {}, /^virtus: \/missing: no such file or directory\n$/],
    ];
    for (const [prog, setup, want] of cases) {
      const r = runVirtusExec(prog, [], { setup, virtusFlags: ['--root', '.'] });
      assert.equal(r.status, 1, `${prog}: ${r.stderr}`);
      assert.match(r.stderr, want);
    }
  });
});

