/**
 * Many machines from one image: two Linux guests run at the same time from one qcow2 base,
 * each with `--drive file=base.qcow2,overlay=auto` (a temporary thin overlay of its own).
 * Each mounts the ext4 file system, sees the base's file, writes a file of its own; then
 * each checks that it does not see the other's. After both power off, the base is
 * byte-for-byte what it was (SHA-256), qemu-img check finds it clean, and the temporary
 * overlays are gone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../../src/host/node/guest/index.ts';
import { Guest } from '../support/guest.ts';
import { runVirtus } from '../support/toolchain.ts';
import { qemuCheck, scratch, sha256 } from './support.ts';

const SBIN = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const s = scratch();
let guest: DefaultGuest;

before(async () => {
  guest = await ensureDefaultGuest({ progress: stderrProgress() });
});
after(() => {
  Guest.killAll();
  s.cleanup();
});

/** Temporary overlays of this test's machines (named after the virtus process). */
function overlays(pids: number[]): string[] {
  return readdirSync(tmpdir()).filter((n) => pids.some((p) => n.startsWith(`virtus-overlay-${p}-`)));
}

test('two machines run from one qcow2 base, each in its own overlay; the base is unchanged', { timeout: 30 * 60_000 }, async () => {
  // The base: an ext4 file system with one file, made by mke2fs -d, converted to qcow2 by virtus.
  const tree = s.path('tree');
  mkdirSync(tree);
  writeFileSync(join(tree, 'base.txt'), 'from the base image\n');
  const raw = s.path('base.raw');
  const mk = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, raw, '16M'], { encoding: 'utf8', env: SBIN });
  assert.equal(mk.status, 0, `mke2fs (Debian package e2fsprogs): ${mk.stderr}`);
  const base = s.path('base.qcow2');
  const conv = runVirtus(['image', 'convert', '-O', 'qcow2', raw, base]);
  assert.equal(conv.status, 0, conv.stderr);
  const before = sha256(readFileSync(base));

  const names = ['alpha', 'beta'];
  const machines = names.map(() => Guest.virtus(['--kernel', guest.kernel, '--initrd', guest.initrd, '--append', 'console=ttyS0', '--drive', `file=${base},overlay=auto`]));
  const pids = machines.map((m) => m.pid);
  await Promise.all(machines.map((m) => m.shell()));
  assert.equal(overlays(pids).length, 2, 'each machine has its own overlay');
  for (const [i, m] of machines.entries()) {
    await m.run('echo 1 > /proc/sys/kernel/printk; mkdir -p /mnt/disk && mount -t ext4 /dev/vda /mnt/disk');
    assert.equal(await m.run('cat /mnt/disk/base.txt'), 'from the base image\n');
    await m.run(`echo "written by ${names[i]}" > /mnt/disk/${names[i]}.txt && sync`);
  }
  // Both have written: each sees the base's file and its own, never the other's.
  for (const [i, m] of machines.entries()) {
    assert.equal(await m.run('echo 3 > /proc/sys/vm/drop_caches; ls /mnt/disk | grep -v lost+found | tr "\\n" " "'), `${[`${names[i]}.txt`, 'base.txt'].sort().join(' ')} `);
    assert.equal(await m.run(`cat /mnt/disk/${names[i]}.txt`), `written by ${names[i]}\n`);
    await m.run('umount /mnt/disk');
  }
  assert.deepEqual(await Promise.all(machines.map((m) => m.powerOff())), [0, 0]);

  assert.equal(sha256(readFileSync(base)), before, 'the base image is unchanged');
  assert.equal(qemuCheck(base).corruptions, 0);
  assert.deepEqual(overlays(pids), [], 'temporary overlays are deleted at exit');
});
