/**
 * `virtus switch`: two virtus machines in separate processes, each plugged into its own
 * switch, the switches linked over TCP, one of them holding the user NAT. Both guests get
 * their addresses from the NAT's DHCP across the switches, reach the router, and move 16 MiB
 * from one to the other with busybox nc; the checksums must agree.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { NET_MARKERS } from '../../src/host/node/guest/network.ts';
import { Guest } from '../support/guest.ts';
import { VIRTUS } from '../support/toolchain.ts';
import { freePort } from './support.ts';

let dir: string;
before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
  dir = mkdtempSync(join(tmpdir(), 'virtus-switch-'));
});
after(() => {
  Guest.killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('switch: two machines on linked switches with a NAT move 16 MiB', { timeout: 30 * 60_000 }, async () => {
  const s1 = join(dir, 's1.sock');
  const s2 = join(dir, 's2.sock');
  const port = await freePort();
  const sw1 = Guest.command(process.execPath, [VIRTUS, 'switch', '--listen', `unix:${s1}`, '--listen', `tcp:127.0.0.1:${port}`, '--nat', 'user']);
  await sw1.waitForStderr(new RegExp(`listening on tcp:127\\.0\\.0\\.1:${port}`));
  const sw2 = Guest.command(process.execPath, [VIRTUS, 'switch', '--listen', `unix:${s2}`, '--link', `tcp:127.0.0.1:${port}`]);
  await sw2.waitForStderr(/linked to tcp:/);
  const a = Guest.virtus(['--nic', `switch=unix:${s1},mac=52:54:00:00:00:0a`]);
  const b = Guest.virtus(['--nic', `switch=unix:${s2},mac=52:54:00:00:00:0b`]);
  const [bootA, bootB] = await Promise.all([a.shell(), b.shell()]);
  // DHCP leases in the order the NAT heard the guests: one is .15, the other .16.
  const ipA = new RegExp(`${NET_MARKERS.up}eth0 up, address (10\\.0\\.2\\.1[56])/24`).exec(bootA)?.[1];
  const ipB = new RegExp(`${NET_MARKERS.up}eth0 up, address (10\\.0\\.2\\.1[56])/24`).exec(bootB)?.[1];
  assert.ok(ipA && ipB && ipA !== ipB, `leases ${ipA} and ${ipB}`);
  assert.match(await b.run('ping -c 2 10.0.2.2'), /2 packets received/);
  assert.match(await a.run(`ping -c 2 ${ipB}`), /2 packets received/);

  await a.run('dd if=/dev/urandom of=/tmp/out bs=1M count=16 2>/dev/null');
  const sent = (await a.run('sha256sum /tmp/out')).split(' ')[0];
  b.send('nc -l -p 5000 > /tmp/in; echo "nc-done-$((40+2))"');
  await b.waitFor('nc -l -p 5000');
  const r = await a.status(`for i in 1 2 3 4 5 6 7 8 9 10; do nc ${ipB} 5000 < /tmp/out && break; sleep 1; done`, 15 * 60_000);
  assert.equal(r.status, 0, r.out);
  await b.waitFor('nc-done-42', 15 * 60_000);
  assert.equal((await b.run('sha256sum /tmp/in')).split(' ')[0], sent);
  assert.equal(await a.powerOff(), 0);
  assert.equal(await b.powerOff(), 0);
});
