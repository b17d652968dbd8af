/**
 * Forking a running machine (POST /vms/{id}/clone): the clones go on from the source's state
 * (the writer guest answers commands at once, with no new boot) and see the source's disk as
 * it was, each on its own copy-on-write layer: what a clone writes, neither the source nor the
 * other clone sees. The source runs on. A machine whose disk is written in place is refused.
 * A clone of a networked Linux machine has a fresh identity: a new MAC address (its NIC asks
 * the driver for a reset; the default guest rebinds it on the new VM generation and takes a
 * lease) and a new machine id, while the source keeps its own.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { NEW_MAC_MARKER, NET_MARKERS } from '../../src/host/node/guest/network.ts';
import { attach, curl, scratch, startDaemon, writerElf, type Daemon } from './support.ts';

describe('daemon: clones of a running machine', () => {
  const s = scratch();
  let d: Daemon;
  before(async () => {
    writeFileSync(s.path('base.img'), Buffer.alloc(1 << 20));
    d = await startDaemon(s.path('state'));
  });
  after(async () => {
    await d?.stop();
    s.cleanup();
  });

  it('makes running copies that go on from the source, each with its own disk layer', async () => {
    const spec = { memory: 16 << 20, boot: { mode: 'bare', kernel: writerElf() }, devices: { disks: [{ file: s.path('base.img'), format: 'raw', overlay: s.path('src.qcow2') }] } };
    assert.equal(curl(d.sock, 'POST', '/vms', { name: 'src', spec, start: true }).status, 201);
    const src = await attach(d.sock, 'src');
    await src.waitFor(/writer ready/);
    src.send('W src 3\n');
    await src.waitFor(/done src/);

    const t = performance.now();
    const c = curl(d.sock, 'POST', '/vms/src/clone', { count: 2 });
    const ms = performance.now() - t;
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(c.body.machines.map((m: { name: string; state: string }) => `${m.name}:${m.state}`), ['src-clone-1:running', 'src-clone-2:running']);
    process.stderr.write(`clone: 2 clones in ${ms.toFixed(0)} ms\n`);
    assert.equal(curl(d.sock, 'GET', '/vms/src').body.state, 'running', 'the source runs on');

    const [c1, c2] = await Promise.all(['src-clone-1', 'src-clone-2'].map((n) => attach(d.sock, n)));
    // The clones were not booted: they wait for a command where the source was.
    c1!.send('R 2\n');
    await c1!.waitFor(/sector 2: src sector 2/);
    assert.doesNotMatch(c1!.text(), /writer ready/);
    c1!.send('W one 1\n');
    await c1!.waitFor(/done one/);
    c2!.send('R 1\n');
    await c2!.waitFor(/sector 1: src sector 1/);
    c2!.send('W two 2\n');
    await c2!.waitFor(/done two/);
    src.send('R 1\n');
    await src.waitFor(/sector 1: src sector 1/);
    c1!.send('R 2\n');
    await c1!.waitFor(/sector 2: src sector 2[^]*sector 2: src sector 2/);
    c2!.send('R 1\n');
    await c2!.waitFor(/sector 1: two sector 1/);
    for (const x of [src, c1!, c2!]) x.close();

    // A disk written in place cannot be cloned (and base.img, under the overlays, is locked against writers).
    writeFileSync(s.path('plain.img'), Buffer.alloc(1 << 20));
    const plain = curl(d.sock, 'POST', '/vms', { name: 'plain', spec: { ...spec, devices: { disks: [{ file: s.path('plain.img'), format: 'raw' }] } }, start: true });
    assert.equal(plain.status, 201, plain.text);
    const refused = curl(d.sock, 'POST', '/vms/plain/clone', {});
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'NO_CLONE');
  });

  it('gives a clone of a networked Linux machine a new MAC address and machine id; the source keeps its own', async () => {
    const g = await ensureDefaultGuest({ progress: stderrProgress() });
    const spec = { memory: 128 << 20, boot: { mode: 'builtin', kernel: g.kernel, initrd: g.initrd, append: 'console=ttyS0' }, devices: { nics: [{ backend: { type: 'user' } }] } };
    assert.equal(curl(d.sock, 'POST', '/vms', { name: 'net', spec, start: true }).status, 201);
    const src = await attach(d.sock, 'net');
    await src.waitFor(new RegExp(`${NET_MARKERS.up}eth0 up`), 300_000);
    await src.waitFor(/virtus:~# /, 120_000);
    const who = 'echo "id=$(cat /etc/machine-id) mac=$(cat /sys/class/net/eth0/address) ip=$(ip -4 -o addr show eth0 | awk \'{print $4}\')"';
    src.send(`${who}; echo "who-$((40+2))"\n`);
    const [, srcId, srcMac] = (await src.waitFor(/id=([0-9a-f]{32}) mac=(\S+) ip=\S+\r?\nwho-42/))!;

    const c = curl(d.sock, 'POST', '/vms/net/clone', {});
    assert.equal(c.status, 201, c.text);
    const mac = curl(d.sock, 'GET', '/vms/net-clone-1').body.spec.devices.nics[0].mac as string;
    assert.match(mac, /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
    assert.notEqual(mac, srcMac);
    const clone = await attach(d.sock, 'net-clone-1');
    // The new generation reaches the guest, which rebinds the NIC and takes a lease on the clone's own NAT.
    await clone.waitFor(new RegExp(`${NEW_MAC_MARKER}eth0: ${mac}`), 60_000);
    // (Its NAT came with the machine, leases and all: the new address gets the next lease.)
    await clone.waitFor(new RegExp(`${NET_MARKERS.up}eth0 up, address 10\\.0\\.2\\.\\d+/24`), 60_000);
    clone.send(`${who}; ping -c 1 -W 5 10.0.2.2 >/dev/null && echo "ping-$((40+2))"\n`);
    const [, cloneId, cloneMac] = (await clone.waitFor(/id=([0-9a-f]{32}) mac=(\S+) ip=10\.0\.2\.\d+\/24\r?\n/))!;
    assert.equal(cloneMac, mac, 'the guest uses the address the clone was given');
    assert.notEqual(cloneId, srcId, 'a new machine id');
    await clone.waitFor(/ping-42/, 30_000);
    // The source was not asked for anything: same address, same id, and its network still answers.
    src.send(`${who}; ping -c 1 -W 5 10.0.2.2 >/dev/null && echo "ping-$((40+2))"\n`);
    await src.waitFor(new RegExp(`id=${srcId} mac=${srcMac} ip=10\\.0\\.2\\.15/24\\r?\\n[^]*ping-42`), 30_000);
    assert.doesNotMatch(src.text(), new RegExp(NEW_MAC_MARKER));
    src.close();
    clone.close();
  });
});
