/**
 * The default guest on virtus with every virtio device, in one boot (booting Linux on the
 * interpreter takes minutes, so one boot checks many things): the root disk (--root disk)
 * as /dev/vda, a second writable drive, a read-only drive, a read-write and a read-only
 * shared folder, hvc0 as the console, and the rng. Afterwards the host reads the file the
 * guest wrote out of the ext4 image with debugfs, and e2fsck -fn finds it clean.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { Guest } from '../support/guest.ts';

const SBIN = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

function requireTool(tool: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${tool}`], { env: SBIN }).status !== 0) throw new Error(`${tool} is not installed (Debian package ${pkg}); .ci/run installs it`);
}

let dir: string;
before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
  dir = mkdtempSync(join(tmpdir(), 'virtus-linux-virtio-'));
});
after(() => {
  Guest.killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('linux: root disk, drives, shared folders, hvc0 and rng on virtio-mmio', { timeout: 40 * 60_000 }, async () => {
  requireTool('debugfs', 'e2fsprogs');
  requireTool('e2fsck', 'e2fsprogs');
  const data = join(dir, 'data');
  mkdirSync(data);
  const env = { ...process.env, VIRTUS_DATA_DIR: data };
  const share = join(dir, 'share');
  const shareRo = join(dir, 'share-ro');
  const outside = join(dir, 'outside');
  for (const d of [share, shareRo, outside]) mkdirSync(d);
  writeFileSync(join(share, 'from-host.txt'), 'made on the host\n');
  writeFileSync(join(shareRo, 'ro.txt'), 'read me\n');
  writeFileSync(join(outside, 'secret'), 'host secret\n');
  symlinkSync(join(outside, 'secret'), join(share, 'escape'));
  symlinkSync('../outside', join(share, 'up'));
  const scratch = join(dir, 'scratch.img');
  writeFileSync(scratch, new Uint8Array(4 << 20));
  const ro = join(dir, 'ro.img');
  const roData = new Uint8Array(1 << 20);
  roData.set(new TextEncoder().encode('READ-ONLY-DISK'));
  writeFileSync(ro, roData);

  const m = Guest.virtus([
    '--root', 'disk', '--drive', `file=${scratch},serial=scratch-1`, '--drive', `file=${ro},readonly=on`,
    '--share', share, '--share', `${shareRo},tag=ro,readonly=on`, '--console', 'virtio', '--stats',
  ], { env });
  await m.shell({ root: '/dev/vda' });
  const sh = async (cmd: string) => (await m.status(cmd));

  // The root disk and the console.
  assert.match(await m.run('grep " / " /proc/mounts'), /^\/dev\/vda \/ ext4 rw/m);
  assert.match(await m.run('cat /proc/cmdline'), /root=\/dev\/vda console=hvc0/);
  assert.equal((await m.run('tty')).trim(), '/dev/hvc0', 'the shell runs on hvc0');
  assert.equal((await m.run('ls /sys/bus/virtio/devices | wc -l')).trim(), '7');
  assert.equal(await m.run('for d in vda vdb; do cat /sys/block/$d/serial; echo; done'), 'virtus-root\nscratch-1\n');

  // The root disk keeps what the guest writes (read back on the host below).
  await m.run('echo "written by the guest on virtus" > /root/virtio.txt && sync');

  // A second disk: written and read back through the block layer.
  assert.equal((await sh('dd if=/dev/urandom of=/tmp/pattern bs=4096 count=64 2>/dev/null && dd if=/tmp/pattern of=/dev/vdb bs=4096 conv=fsync 2>/dev/null && echo 3 > /proc/sys/vm/drop_caches && cmp /tmp/pattern /dev/vdb -n 262144')).status, 0);
  // The read-only disk reads, and refuses writes.
  assert.equal((await m.run('cat /sys/block/vdc/ro')).trim(), '1');
  assert.equal((await m.run('head -c 14 /dev/vdc')).trim(), 'READ-ONLY-DISK');
  assert.notEqual((await sh('echo x | dd of=/dev/vdc conv=fsync 2>/dev/null')).status, 0);

  // Shared folders.
  await m.run('mkdir -p /mnt/host /mnt/ro && mount -t 9p -o trans=virtio,version=9p2000.L host0 /mnt/host && mount -t 9p -o trans=virtio,version=9p2000.L,ro ro /mnt/ro');
  assert.equal(await m.run('cat /mnt/host/from-host.txt'), 'made on the host\n');
  await m.run('echo "written by the guest" > /mnt/host/from-guest.txt && mkdir /mnt/host/dir && echo nested > /mnt/host/dir/f && mv /mnt/host/dir /mnt/host/dir2');
  assert.equal(await m.run('ls /mnt/host | sort | tr "\\n" " "'), 'dir2 escape from-guest.txt from-host.txt up ');
  // Escape attempts: links are resolved by the guest, inside the guest; the host file stays unseen.
  const esc = await sh('cat /mnt/host/escape /mnt/host/up/secret 2>&1');
  assert.notEqual(esc.status, 0);
  assert.ok(!esc.out.includes('host secret'), esc.out);
  assert.equal((await m.run('ls -d /mnt/host/../..')).trim(), '/mnt/host/../..');
  assert.equal((await m.run('cat /mnt/host/../../etc/hostname')).trim(), 'virtus', '.. above the mount is the guest\'s own tree');
  // The read-only share.
  assert.equal(await m.run('cat /mnt/ro/ro.txt'), 'read me\n');
  assert.match((await sh('touch /mnt/ro/new 2>&1')).out, /Read-only file system/);
  await m.run('umount /mnt/host /mnt/ro');

  // Entropy.
  assert.match(await m.run('cat /sys/devices/virtual/misc/hw_random/rng_current'), /virtio_rng/);
  assert.equal((await sh('head -c 64 /dev/hwrng | od -An -tx1 | grep -q "[1-9a-f]"')).status, 0);

  assert.equal(await m.powerOff(), 0);

  // The host's view.
  assert.equal(readFileSync(join(share, 'from-guest.txt'), 'utf8'), 'written by the guest\n');
  assert.equal(readFileSync(join(share, 'dir2/f'), 'utf8'), 'nested\n');
  assert.ok(!existsSync(join(shareRo, 'new')));
  const root = join(data, 'root.img');
  const cat = spawnSync('debugfs', ['-R', 'cat /root/virtio.txt', root], { encoding: 'utf8', env: SBIN });
  assert.equal(cat.status, 0, cat.stderr);
  assert.equal(cat.stdout, 'written by the guest on virtus\n');
  const fsck = spawnSync('e2fsck', ['-fn', root], { encoding: 'utf8', env: SBIN });
  assert.equal(fsck.status, 0, `e2fsck -fn: ${fsck.stdout}${fsck.stderr}`);
  assert.match(m.stderr, /virtio-blk0 write requests +\d+/);
  assert.match(m.stderr, /virtio-9p0 requests +\d+/);
  assert.match(m.stderr, /virtio-console0 bytes out +\d+/);
});
