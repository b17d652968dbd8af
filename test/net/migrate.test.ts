/**
 * A TCP connection between two guests on a switch survives the live migration of one end: A
 * sends 64 MiB to B with busybox nc; mid-transfer B moves to a new process plugged into the
 * same switch (the target names its NIC's backend, the MAC comes with the machine), announces
 * itself (gratuitous ARP through VIRTIO_NET_F_GUEST_ANNOUNCE), the switch learns its new port,
 * and the stream goes on: the receiver's checksum equals the sender's.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
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
  dir = mkdtempSync(join(tmpdir(), 'virtus-netmig-'));
});
after(() => {
  Guest.killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One monitor command; resolves with its JSON answer. */
function monitor(path: string, line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    s.setEncoding('utf8');
    s.on('error', reject);
    s.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) {
        s.end();
        resolve(JSON.parse(buf.slice(0, buf.indexOf('\n'))) as Record<string, unknown>);
      }
    });
    s.write(line + '\n');
  });
}

test('a TCP stream between two guests on a switch survives the migration of the receiver', { timeout: 30 * 60_000 }, async () => {
  const sw = join(dir, 'sw.sock');
  const mon = join(dir, 'b.sock');
  const swProc = Guest.command(process.execPath, [VIRTUS, 'switch', '--listen', `unix:${sw}`, '--nat', 'user']);
  await swProc.waitForStderr(/listening on unix:/);
  const a = Guest.virtus(['--nic', `switch=unix:${sw},mac=52:54:00:00:00:0a`]);
  const b = Guest.virtus(['--nic', `switch=unix:${sw},mac=52:54:00:00:00:0b`, '--monitor', `unix:${mon}`]);
  const [, bootB] = await Promise.all([a.shell(), b.shell()]);
  const ipB = new RegExp(`${NET_MARKERS.up}eth0 up, address (10\\.0\\.2\\.1[56])/24`).exec(bootB)?.[1];
  assert.ok(ipB, 'B has an address');

  await a.run('dd if=/dev/urandom of=/tmp/out bs=1M count=64 2>/dev/null');
  const sent = (await a.run('sha256sum /tmp/out')).split(' ')[0];
  b.send('nc -l -p 5000 > /tmp/in; echo "nc-done-$((40+2))"; sha256sum /tmp/in');
  await b.waitFor('nc -l -p 5000');
  a.send(`for i in 1 2 3 4 5 6 7 8 9 10; do nc ${ipB} 5000 < /tmp/out && break; sleep 1; done; echo "sent-rc=$?"`);

  // Mid-transfer: B goes to a new process on the same switch.
  const port = await freePort();
  const c = Guest.virtus(['--incoming', `tcp:127.0.0.1:${port}`, '--nic', `switch=unix:${sw}`]);
  await c.waitForStderr(/waiting for a machine/);
  await new Promise((r) => setTimeout(r, 5000));
  const answer = await monitor(mon, `migrate tcp:127.0.0.1:${port}`);
  assert.equal(answer.ok, true, JSON.stringify(answer));
  assert.equal(await b.exited(5 * 60_000), 0, b.stderr);
  assert.match(b.stderr, /migrated to tcp:/);
  await c.waitForStderr(/machine received/);
  assert.doesNotMatch(b.output, /nc-done-42/, 'the transfer was still under way when B moved');

  await a.waitFor('sent-rc=0', 20 * 60_000);
  const tail = await c.waitFor(/nc-done-42\n[0-9a-f]{64}/, 20 * 60_000);
  assert.equal(/([0-9a-f]{64})\s*$/.exec(tail)?.[1], sent, 'every byte arrived, once');
  // The announcement after the move went through the device.
  const stats = await c.run('cat /sys/class/net/eth0/statistics/tx_packets');
  assert.ok(Number(stats) > 0);
  assert.equal(await a.powerOff(), 0);
  assert.equal(await c.powerOff(), 0);
  swProc.kill();
});
