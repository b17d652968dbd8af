/**
 * A TCP connection between two guests on a switch survives the live migration of one end: A
 * sends 24 MiB to B with busybox nc; mid-transfer B moves to a new process plugged into the
 * same switch (the target names its NIC's backend, the MAC comes with the machine), announces
 * itself (gratuitous ARP through VIRTIO_NET_F_GUEST_ANNOUNCE), the switch learns its new port,
 * and the stream goes on: the receiver's checksum equals the sender's.
 *
 * Every wait is bounded well inside the test's own limit, and a stalled stream fails with
 * what each side had (bytes received, the migration's summary, the switch's counters).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { NET_MARKERS } from '../../src/host/node/guest/network.ts';
import { Guest } from '../support/guest.ts';
import { freePort, monitor } from '../support/migration.ts';
import { VIRTUS } from '../support/toolchain.ts';

let dir: string;
before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
  dir = mkdtempSync(join(tmpdir(), 'virtus-netmig-'));
});
after(() => {
  Guest.killAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const MIB = 1 << 20;

/** Bytes of /tmp/in on a guest whose shell is free (the receiving nc runs in the background). */
async function received(g: Guest): Promise<number> {
  const out = await g.run('echo "bytes=$(wc -c < /tmp/in)"');
  return Number(/bytes=(\d+)/.exec(out)?.[1] ?? NaN);
}

test('a TCP stream between two guests on a switch survives the migration of the receiver', { timeout: 12 * 60_000 }, async () => {
  const sw = join(dir, 'sw.sock');
  const mon = join(dir, 'b.sock');
  const swProc = Guest.command(process.execPath, [VIRTUS, 'switch', '--listen', `unix:${sw}`, '--nat', 'user', '--stats']);
  await swProc.waitForStderr(/listening on unix:/);
  const a = Guest.virtus(['--nic', `switch=unix:${sw},mac=52:54:00:00:00:0a`]);
  const b = Guest.virtus(['--nic', `switch=unix:${sw},mac=52:54:00:00:00:0b`, '--monitor', `unix:${mon}`]);
  const [, bootB] = await Promise.all([a.shell(), b.shell()]);
  const ipB = new RegExp(`${NET_MARKERS.up}eth0 up, address (10\\.0\\.2\\.1[56])/24`).exec(bootB)?.[1];
  assert.ok(ipB, 'B has an address');

  await a.run('dd if=/dev/urandom of=/tmp/out bs=1M count=24 2>/dev/null');
  const sent = (await a.run('sha256sum /tmp/out')).split(' ')[0];
  // The receiver runs in the background, so its shell can say how far the stream has come; its
  // input is a FIFO it holds open itself (no EOF to pass on, and not the terminal, which would stop it).
  await b.run(`mkfifo /tmp/idle; (nc -l -p 5000 <> /tmp/idle > /tmp/in; echo "nc-done-$((40+2))"; sha256sum /tmp/in) & ` +
    `until grep -qs ':1388 0\\+:0000 0A' /proc/net/tcp /proc/net/tcp6; do sleep 0.1; done; echo listening`);
  // A paces its 24 MiB (a MiB each quarter second of its own time), so the stream outlasts B's move.
  a.send(`(for i in $(seq 0 23); do dd if=/tmp/out bs=1M skip=$i count=1 2>/dev/null; sleep 0.25; done) | nc ${ipB} 5000; echo "sent-rc=$?"`);

  // Mid-transfer (4 MiB have arrived, by B's own count): B goes to a new process on the same switch.
  const port = await freePort();
  const c = Guest.virtus(['--incoming', `tcp:127.0.0.1:${port}`, '--nic', `switch=unix:${sw}`]);
  await c.waitForStderr(/waiting for a machine/);
  let got = 0;
  for (let i = 0; i < 600 && !(got >= 4 * MIB); i++) got = await received(b);
  assert.ok(got >= 4 * MIB && got < 24 * MIB, `the stream is under way on B (${got} bytes)\nA: ${a.output.slice(-600)}\nB: ${b.output.slice(-600)}`);
  const [answer] = await monitor(mon, `migrate tcp:127.0.0.1:${port}`);
  assert.equal(answer!.ok, true, JSON.stringify(answer));
  assert.equal(await b.exited(5 * 60_000), 0, b.stderr);
  assert.match(b.stderr, /migrated to tcp:/);
  await c.waitForStderr(/machine received/);
  assert.doesNotMatch(b.output, /nc-done-42/, 'the transfer was still under way when B moved');

  // The rest of the stream; a stall says where each side stood.
  const stalled = async (e: unknown): Promise<never> => {
    const onC = await received(c).catch(() => NaN);
    swProc.kill('SIGTERM');
    await swProc.exited(10_000).catch(() => null);
    throw new Error(`the stream stalled after the move: C has ${onC} of ${24 * MIB} bytes\n` +
      `B: ${b.stderr.trim().split('\n').pop()}\nswitch: ${swProc.stderr.slice(-1500)}\n${e instanceof Error ? e.message : String(e)}`);
  };
  const rc = await a.waitFor(/sent-rc=\d+/, 5 * 60_000).catch(stalled);
  assert.match(rc, /sent-rc=0$/, 'A sent everything');
  const tail = await c.waitFor(/nc-done-42\n[0-9a-f]{64}/, 5 * 60_000).catch(stalled);
  assert.equal(/([0-9a-f]{64})\s*$/.exec(tail)?.[1], sent, 'every byte arrived, once');
  // The announcement after the move went through the device.
  const stats = await c.run('cat /sys/class/net/eth0/statistics/tx_packets');
  assert.ok(Number(stats) > 0);
  assert.equal(await a.powerOff(), 0);
  assert.equal(await c.powerOff(), 0);
  swProc.kill();
});
