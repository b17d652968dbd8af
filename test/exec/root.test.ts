/**
 * `virtus exec --root`: path resolution stays inside the root. An attacker program tries
 * "..", absolute and relative symbolic links, chains and loops, links it makes itself, creating
 * and unlinking through them; a file next to the root must stay unread and untouched. Then a
 * dynamically linked program whose interpreter and libc come from the root (Debian's riscv64
 * glibc) runs as it does under `qemu-riscv64 -L`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runQemuUser, runVirtusExec } from '../support/exec.ts';
import { buildLinuxProgram } from '../support/toolchain.ts';

const SYSROOT = '/usr/riscv64-linux-gnu';

describe('virtus exec --root', () => {
  it('keeps "..", absolute links, link chains and links made at run time inside the root', () => {
    const elf = buildLinuxProgram('escape', ['escape.c']);
    const top = mkdtempSync(join(tmpdir(), 'virtus-root-'));
    try {
      const root = join(top, 'root');
      mkdirSync(join(root, 'dir'), { recursive: true });
      writeFileSync(join(top, 'secret'), 'SECRET OUTSIDE\n');
      writeFileSync(join(root, 'secret'), 'decoy inside\n');
      copyFileSync(elf, join(root, 'escape'));
      symlinkSync('/secret', join(root, 'abs'));
      symlinkSync('../../../secret', join(root, 'up'));
      symlinkSync(join(top, 'secret'), join(root, 'hostpath'));
      symlinkSync('chain2', join(root, 'chain1'));
      symlinkSync('/../chain3', join(root, 'chain2'));
      symlinkSync('dir/../../../../secret', join(root, 'chain3'));
      symlinkSync('../../..', join(root, 'dir', 'escape'));
      symlinkSync('loop2', join(root, 'loop1'));
      symlinkSync('/loop1', join(root, 'loop2'));
      const paths = ['/../secret', '../../secret', '/abs', '/up', '/hostpath', '/chain1', '/dir/escape/secret', '/dir/escape/../secret', '/loop1', '/secret/..'];
      const r = runVirtusExec('/escape', paths, { virtusFlags: ['--root', root] });
      assert.equal(r.stderr, '');
      assert.equal(r.status, 0);
      assert.equal(r.stdout, [
        '/../secret: read "decoy inside"',
        '../../secret: read "decoy inside"',
        '/abs: read "decoy inside"',
        '/up: read "decoy inside"',
        '/hostpath: No such file or directory',
        '/chain1: read "decoy inside"',
        '/dir/escape/secret: read "decoy inside"',
        '/dir/escape/../secret: read "decoy inside"',
        '/loop1: Too many levels of symbolic links',
        '/secret/..: Not a directory',
        '/made-abs: read "decoy inside"',
        '/made-rel: read "decoy inside"',
        'create through link: created',
        'unlink /../secret: 0',
        'cwd after ..: /',
        'listing /../.. shows the host\'s parent: 0',
        '/proc/self/exe: /escape',
        '',
      ].join('\n'));
      assert.equal(readFileSync(join(top, 'secret'), 'utf8'), 'SECRET OUTSIDE\n', 'the file outside is untouched');
      assert.ok(existsSync(join(root, 'new-outside')), 'created inside the root');
      assert.ok(!existsSync(join(top, 'new-outside')) && !existsSync(join(top, '..', 'new-outside')), 'nothing created outside');
      assert.ok(!existsSync(join(root, 'secret')), 'unlink /../secret removed the root\'s own file');
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });

  it('runs a dynamically linked program with its interpreter and libc from the root, as qemu-riscv64 -L', () => {
    for (const name of ['files', 'memory']) {
      const elf = buildLinuxProgram(`${name}-dyn`, [`${name}.c`], { dynamic: true });
      const want = runQemuUser(elf, [], { qemuFlags: ['-L', SYSROOT] });
      const got = runVirtusExec('/prog', [], {
        setup: (dir) => {
          mkdirSync(join(dir, 'lib'));
          for (const f of ['ld-linux-riscv64-lp64d.so.1', 'libc.so.6']) copyFileSync(join(SYSROOT, 'lib', f), join(dir, 'lib', f));
          copyFileSync(elf, join(dir, 'prog'));
        },
        virtusFlags: ['--root', '.'],
      });
      assert.equal(got.stdout, want.stdout, `${name}: stdout`);
      assert.equal(got.stderr, want.stderr, `${name}: stderr`);
      assert.equal(got.status, want.status, `${name}: status`);
    }
  });

  it('says which interpreter is missing from the root', () => {
    const elf = buildLinuxProgram('files-dyn', ['files.c'], { dynamic: true });
    const r = runVirtusExec('/prog', [], { setup: (dir) => copyFileSync(elf, join(dir, 'prog')), virtusFlags: ['--root', '.'] });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^virtus: \/prog: its interpreter \/lib\/ld-linux-riscv64-lp64d\.so\.1 is not in the root \(no such file or directory\); give the root with --root\n$/);
  });
});
