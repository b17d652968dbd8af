/**
 * One Ethernet segment shared by a virtus guest and a QEMU 7.2 guest (the same default guest
 * on both) over `-netdev stream` and `-netdev dgram`, spelled the same way on both command
 * lines: they ping each other and move a file with busybox nc, checksums compared. Then a
 * peer that breaks the stream framing closes the link with one line, and the machine runs on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../../src/host/node/guest/index.ts';
import { Guest } from '../support/guest.ts';
import { freePort } from './support.ts';

let g: DefaultGuest;
before(async () => {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-riscv64']).status !== 0) throw new Error('qemu-system-riscv64 is not installed (Debian package qemu-system-misc)');
  g = await ensureDefaultGuest({ progress: stderrProgress() });
});
after(() => Guest.killAll());

function qemu(netdev: string): Guest {
  return Guest.command('qemu-system-riscv64', [
    '-M', 'virt', '-m', '512M', '-smp', '1', '-nographic', '-bios', g.opensbi, '-kernel', g.kernel, '-initrd', g.initrd,
    '-append', 'console=ttyS0', '-netdev', netdev, '-device', 'virtio-net-device,netdev=n0,mac=52:54:00:00:00:02',
  ]);
}

/** Static addresses on the segment (there is no DHCP server on it). */
async function address(m: Guest, ip: string): Promise<void> {
  await m.run(`killall udhcpc 2>/dev/null; ip addr flush dev eth0; ip addr add ${ip}/24 dev eth0 && ip link set eth0 up`);
}

/** Pings both ways and sends 4 MiB from `a` (10.0.9.1) to `b` (10.0.9.2) with nc; the checksums must agree. */
async function exchange(a: Guest, b: Guest): Promise<void> {
  assert.match(await a.run('ping -c 3 -W 5 10.0.9.2'), /3 packets received/);
  assert.match(await b.run('ping -c 3 -W 5 10.0.9.1'), /3 packets received/);
  await a.run('dd if=/dev/urandom of=/tmp/out bs=1M count=4 2>/dev/null');
  const sent = (await a.run('sha256sum /tmp/out')).split(' ')[0];
  b.send('nc -l -p 5000 > /tmp/in; echo "nc-done-$((40+2))"');
  await b.waitFor('nc -l -p 5000');
  // The listener may not be up the moment the command is typed: retry the connection.
  const r = await a.status('for i in 1 2 3 4 5 6 7 8 9 10; do nc 10.0.9.2 5000 < /tmp/out && break; sleep 1; done', 5 * 60_000);
  assert.equal(r.status, 0, r.out);
  await b.waitFor('nc-done-42', 5 * 60_000);
  assert.equal((await b.run('sha256sum /tmp/in')).split(' ')[0], sent);
}

test('stream: a virtus guest (server) and a QEMU guest (client) on one segment', { timeout: 30 * 60_000 }, async () => {
  const port = await freePort();
  const v = Guest.virtus(['--netdev', `stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`, '--device', 'virtio-net-device,netdev=n0,mac=52:54:00:00:00:01']);
  await v.waitFor('Linux version'); // the listener is up before the machine starts
  const q = qemu(`stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`);
  await Promise.all([v.shell(), q.shell()]);
  await address(v, '10.0.9.1');
  await address(q, '10.0.9.2');
  await exchange(v, q);
  q.kill();
  await v.waitForStderr(/stream server tcp:127\.0\.0\.1:\d+: the peer hung up; link closed/);

  // A peer that breaks the framing: one line, the link closes, the machine runs on.
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  const line = await v.waitForStderr(/virtus: warning: stream server [^\n]*announced a frame of 4294967295 bytes[^\n]*link closed\n/);
  assert.doesNotMatch(line, /\n.+\n/);
  s.destroy();
  assert.equal((await v.run('echo still running')).trim(), 'still running');
  assert.equal(await v.powerOff(), 0);
});

test('dgram: a virtus guest and a QEMU guest exchange UDP-carried frames', { timeout: 30 * 60_000 }, async () => {
  const a = await freePort();
  const b = await freePort();
  const v = Guest.virtus(['--nic', `dgram,local.type=inet,local.host=127.0.0.1,local.port=${a},remote.type=inet,remote.host=127.0.0.1,remote.port=${b},mac=52:54:00:00:00:01`]);
  const q = qemu(`dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=${b},remote.type=inet,remote.host=127.0.0.1,remote.port=${a}`);
  await Promise.all([v.shell(), q.shell()]);
  await address(v, '10.0.9.1');
  await address(q, '10.0.9.2');
  await exchange(v, q);
  assert.equal(await v.powerOff(), 0);
});
