/**
 * The default guest end to end, on the reference machine (QEMU's virt): Debian's kernel with
 * our initramfs loads its modules and gives a shell; with our ext4 disk as root=/dev/vda, a
 * file written in the guest is on the disk after poweroff and still there on the next boot.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureRootDisk, MARKERS, type DefaultGuest } from '../../src/host/node/guest/index.ts';
import { runVirtus } from '../support/toolchain.ts';
import type { SerialConsole } from './console.ts';
import { bootOnQemu, defaultGuest, requireTool } from './support.ts';

let guest: DefaultGuest;
let scratch: string;
const machines: SerialConsole[] = [];

before(async () => {
  guest = await defaultGuest();
  scratch = mkdtempSync(join(tmpdir(), 'virtus-guest-'));
});

after(() => {
  for (const m of machines) m.kill();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function boot(o: Parameters<typeof bootOnQemu>[1] = {}): SerialConsole {
  const m = bootOnQemu(guest, o);
  machines.push(m);
  return m;
}

/**
 * Waits for the boot markers up to the shell prompt; returns the console text so far. `modules`:
 * how many modules /init loads (all of them on a machine with every device).
 */
async function untilShell(m: SerialConsole, root: 'initramfs' | string, modules = guest.manifest.modules.length): Promise<string> {
  let log = await m.waitFor(MARKERS.started);
  const loaded = await m.waitFor(/virtus-init: loaded (\d+) modules\n/);
  log += loaded;
  assert.equal(Number(/loaded (\d+) modules/.exec(loaded)![1]), modules, 'the modules the machine wants load');
  assert.ok(!log.includes(MARKERS.moduleFailed), 'no module failed to load');
  log += await m.waitFor(root === 'initramfs' ? MARKERS.initramfsRoot : `${MARKERS.switchingRoot}${root} (ext4, rw)`);
  log += await m.waitFor(`${MARKERS.ready}, root is ${root === 'initramfs' ? 'rootfs' : root}`);
  log += await m.waitFor('virtus:~# ');
  return log;
}

async function powerOff(m: SerialConsole): Promise<void> {
  m.send('poweroff');
  await m.waitFor(MARKERS.shuttingDown);
  assert.equal(await m.exited(), 0, 'QEMU exits when the guest powers off');
}

test('guest: the kernel boots our initramfs, loads the modules and gives a shell', async () => {
  // Every device the guest has drivers for: every module loads.
  const blank = join(scratch, 'blank.img');
  writeFileSync(blank, '');
  truncateSync(blank, 1 << 20);
  const m = boot({ disk: blank, nic: true, share: scratch, rng: true });
  await untilShell(m, 'initramfs');
  const modules = (await m.run('cut -d" " -f1 /proc/modules')).trim().split('\n');
  for (const want of ['virtio_mmio', 'virtio_blk', 'virtio_net', '9pnet_virtio', '9p', 'ext4', 'jbd2']) {
    assert.ok(modules.includes(want), `/proc/modules lists ${want}: ${modules.join(' ')}`);
  }
  assert.deepEqual([...modules].sort(), [...guest.manifest.modules].sort());
  const uname = await m.run('uname -a');
  assert.match(uname, new RegExp(`^Linux virtus ${guest.release.replace(/[+]/g, '\\+')} .* riscv64 GNU/Linux\\n$`));
  assert.equal((await m.run('cat /proc/filesystems | grep -c -w -e ext4 -e 9p')).trim(), '2');
  await powerOff(m);
});

test('guest: a machine loads the drivers of the virtio devices it has, and no others', async () => {
  const loaded = async (m: SerialConsole) => (await m.run('cut -d" " -f1 /proc/modules')).trim().split('\n').filter(Boolean).sort();
  // No virtio device: the transport alone.
  let m = boot();
  await untilShell(m, 'initramfs', 1);
  assert.deepEqual(await loaded(m), ['virtio_mmio']);
  await powerOff(m);
  // A shared folder only: 9p and what it needs, no disk driver, ext4 or network driver.
  writeFileSync(join(scratch, 'shared.txt'), 'from the host\n');
  m = boot({ share: scratch });
  await untilShell(m, 'initramfs', guest.manifest.modules.filter((n) => /^(virtio_mmio|netfs|9pnet|9pnet_virtio|9p)$/.test(n)).length);
  const mods = await loaded(m);
  for (const want of ['virtio_mmio', '9pnet_virtio', '9p']) assert.ok(mods.includes(want), `${want} in ${mods.join(' ')}`);
  for (const not of ['virtio_blk', 'ext4', 'jbd2', 'virtio_net', 'virtio_rng']) assert.ok(!mods.includes(not), `${not} not in ${mods.join(' ')}`);
  assert.equal((await m.run('mkdir -p /mnt/host && mount -t 9p -o trans=virtio,version=9p2000.L host0 /mnt/host && cat /mnt/host/shared.txt')), 'from the host\n');
  await powerOff(m);
});

test('guest: the ext4 root disk boots as root=/dev/vda and keeps what the guest writes', async () => {
  requireTool('debugfs');
  const disk = ensureRootDisk(guest, { path: join(scratch, 'copy.img') });
  // A disk only: its driver and ext4's stack.
  const modules = guest.manifest.modules.filter((n) => /^(virtio_mmio|virtio_blk|ext4|jbd2|mbcache|crc16)$/.test(n)).length;
  let m = boot({ disk, append: 'root=/dev/vda' });
  await untilShell(m, '/dev/vda', modules);
  assert.match(await m.run('grep " / " /proc/mounts'), /^\/dev\/vda \/ ext4 rw/m);
  await m.run('echo "written by the guest" > /root/hello.txt');
  await powerOff(m);

  const cat = spawnSync('debugfs', ['-R', 'cat /root/hello.txt', disk], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  assert.equal(cat.status, 0, cat.stderr);
  assert.equal(cat.stdout, 'written by the guest\n');

  m = boot({ disk, append: 'root=/dev/vda' });
  await untilShell(m, '/dev/vda', modules);
  assert.equal(await m.run('cat /root/hello.txt'), 'written by the guest\n');
  assert.equal((await m.run('stat -c "%u:%g %a" /bin/busybox /etc/init.d/rcS /root')).trim(), '0:0 755\n0:0 755\n0:0 700');
  await powerOff(m);
});

test('guest: virtus guest info shows the built guest; bad use is one line', () => {
  const info = runVirtus(['guest', 'info']);
  assert.equal(info.status, 0, info.stderr);
  assert.ok(info.stdout.includes(guest.kernel) && info.stdout.includes(guest.initrd) && info.stdout.includes(guest.release));
  const json = runVirtus(['guest', 'info', '--json']);
  assert.equal(JSON.parse(json.stdout).rootfs, guest.rootfs);
  const bad = runVirtus(['guest', 'fetchh']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});

test('guest: a host without apt gets one line saying what to do', () => {
  const env = { ...process.env, PATH: join(scratch, 'empty-path'), VIRTUS_CACHE_DIR: join(scratch, 'cache') };
  const r = runVirtus(['guest', 'fetch'], { env });
  assert.equal(r.status, 1);
  assert.ok(!existsSync(env.VIRTUS_CACHE_DIR), 'nothing is created');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /apt-get.*--kernel.*--initrd/);
});
