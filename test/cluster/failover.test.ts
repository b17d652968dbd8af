/**
 * Losing a node, on a three-member etcd with daemons whose leases live 5 s.
 *
 * kill -9: node a runs three `restart: always` writers and one `restart: no`; each writer has
 * written and flushed 100 sectors. After `kill -9` of a's daemon its lease expires, the
 * scheduler restarts the `always` machines on b and c from their disks on the shared storage:
 * each answers on its console there ("writer ready", then reads back sector 100 as written
 * before the kill); the `no` machine is left stopped with the reason. The time from the kill to
 * the last console answering is printed.
 *
 * A partition: node d reaches etcd through a relay the test cuts; d's daemon runs on, but it
 * cannot renew its lease. It stops its machine itself (its console's last output) before the
 * machine starts on another node (its new console's first output), both seen by this process's
 * clock; once the relay heals, d joins again and does not start the machine again.
 *
 * A pause: node e's daemon is stopped (SIGSTOP) with its machine writing, for longer than its
 * lease, while no other node may take the machine. When it continues, its guest must not run
 * before the daemon's thread notices the lease is gone: the disk (read with qemu-io) holds at
 * most the one sector that was being written when it stopped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { VIRTUS } from '../support/toolchain.ts';
import { startEtcd, type EtcdCluster } from './etcd.ts';
import { attach, baseDisk, curl, dumpLogs, etcdRelay, liveOn, scratch, startNode, status, stopNodes, until, watchTwice, writerElf, writerSpec, type Node } from './support.ts';

/** A console whose every message is stamped with this process's clock. */
async function stamped(sock: string, name: string): Promise<{ chunks: Array<{ at: number; text: string }>; close(): void }> {
  const ws = new WebSocket(`ws+unix:${sock}:/vms/${name}/console`);
  const chunks: Array<{ at: number; text: string }> = [];
  ws.on('message', (d: Buffer) => chunks.push({ at: performance.now(), text: d.toString('latin1') }));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { chunks, close: () => ws.close() };
}

describe('cluster: failover', () => {
  const s = scratch('virtus-cluster-');
  const shared = s.path('shared');
  let etcd: EtcdCluster;
  let nodes: Node[] = [];
  const cli = (...args: string[]) => spawnSync(process.execPath, [VIRTUS, 'cluster', ...args], { encoding: 'utf8', env: { ...process.env, VIRTUS_CLUSTER: etcd.url() } });
  const on = (name: string) => nodes.find((n) => n.name === name)!;
  // Consoles a failed test left open would keep this file's process alive.
  const open: Array<{ close(): void }> = [];
  const track = <T extends { close(): void }>(c: T): T => (open.push(c), c);
  before(async () => {
    mkdirSync(shared);
    baseDisk(shared, 16);
    etcd = await startEtcd(s.path('etcd'));
    nodes = await Promise.all([['a', 256], ['b', 256], ['c', 256]].map(([n, mib]) => startNode(s.path('nodes'), etcd.url(), n as string, mib as number)));
    await until('three nodes', () => status(nodes[1]!).nodes.filter((n) => n.state === 'ready').length === 3, 20_000);
  });
  after(async () => {
    for (const c of open) c.close();
    dumpLogs(nodes);
    await stopNodes(nodes);
    await etcd?.stop();
    s.cleanup();
  });

  it('kill -9 of a node: its restart:always machines answer from other nodes with their synced writes', { timeout: 180_000 }, async () => {
    const elf = writerElf();
    assert.equal(cli('cordon', 'b').status, 0);
    assert.equal(cli('cordon', 'c').status, 0);
    const always = ['f1', 'f2', 'f3'];
    for (const name of [...always, 'once']) {
      const r = curl(on('a').sock, 'POST', '/vms', { name, restart: name === 'once' ? 'no' : 'always', spec: writerSpec(elf, shared, name, 32), start: true });
      assert.equal(r.status, 202, r.text);
    }
    await until('four machines on a', () => [...always, 'once'].every((m) => liveOn(nodes).get(m)?.join() === 'a'), 60_000);
    assert.equal(cli('uncordon', 'b').status, 0);
    assert.equal(cli('uncordon', 'c').status, 0);
    for (const name of always) {
      const con = track(await attach(on('a').sock, name));
      await con.waitFor(/writer ready/);
      con.send(`W ${name} 100\n`);
      await con.waitFor(new RegExp(`^done ${name}$`, 'm'));
      con.close();
    }
    const twice = watchTwice(() => nodes);
    const killed = performance.now();
    await on('a').kill9();
    const answered: number[] = [];
    await Promise.all(always.map(async (name) => {
      const m = await until(`${name} running elsewhere`, () => {
        const x = status(on('b')).machines.find((y) => y.name === name)!;
        return x.node !== 'a' && x.node !== null && x.observed.some((o) => o.node === x.node && o.state === 'running') && x;
      }, 30_000);
      assert.equal(m.reason, 'failover');
      const con = track(await attach(on(m.node!).sock, name));
      await con.waitFor(/writer ready/);
      con.send('R 100\n');
      await con.waitFor(new RegExp(`^sector 100: ${name} sector 100$`, 'm'));
      answered.push(performance.now() - killed);
      con.close();
    }));
    const st = status(on('b'));
    assert.ok(!st.nodes.some((n) => n.name === 'a' && n.state !== 'down'), 'a left the cluster with its lease');
    const once = st.machines.find((m) => m.name === 'once')!;
    assert.equal(once.desired, 'stopped');
    assert.equal(once.node, null);
    assert.match(once.note ?? '', /its node a died/);
    assert.deepEqual(twice.stop(), []);
    const worst = Math.max(...answered);
    console.log(`# failover: kill -9 to the last of ${always.length} consoles answering: ${worst.toFixed(0)} ms (lease ttl 5 s)`);
    assert.ok(worst < 10_000, `failover within 10 s (${answered.map((x) => x.toFixed(0)).join(', ')} ms)`);
  });

  it('a partitioned node stops its machine before another node starts it', { timeout: 180_000 }, async () => {
    const relay = await etcdRelay(etcd.url());
    try {
      assert.equal(cli('cordon', 'b').status, 0);
      assert.equal(cli('cordon', 'c').status, 0);
      const d = await startNode(s.path('nodes'), relay.url, 'd', 256);
      nodes.push(d);
      const r = curl(d.sock, 'POST', '/vms', { name: 'p1', restart: 'always', spec: writerSpec(writerElf(), shared, 'p1', 32), start: true });
      assert.equal(r.status, 202, r.text);
      await until('p1 on d', () => liveOn(nodes).get('p1')?.join() === 'd', 30_000);
      assert.equal(cli('uncordon', 'b').status, 0);
      assert.equal(cli('uncordon', 'c').status, 0);
      const old = track(await stamped(d.sock, 'p1'));
      await until('writer ready', () => old.chunks.some((c) => c.text.includes('writer ready')));
      const input = track(await attach(d.sock, 'p1'));
      input.send('W p1 0\n');
      await input.waitFor(/^synced p1 20$/m);

      const twice = watchTwice(() => nodes);
      const cut = performance.now();
      await relay.cut();
      // d fences itself, then its lease expires, then p1 starts elsewhere.
      await until('d to stop p1', () => !liveOn([d]).has('p1'), 10_000);
      const lastOld = old.chunks.at(-1)!.at;
      const m = await until('p1 elsewhere', () => {
        const x = status(on('b')).machines.find((y) => y.name === 'p1')!;
        return x.node !== null && x.node !== 'd' && x.observed.some((o) => o.node === x.node && o.state === 'running') && x;
      }, 30_000);
      const fresh = track(await stamped(on(m.node!).sock, 'p1'));
      await until('the new copy says something', () => fresh.chunks.length > 0);
      const firstNew = fresh.chunks[0]!.at;
      console.log(`# partition: cut at 0; d's copy said its last at ${(lastOld - cut).toFixed(0)} ms; the copy on ${m.node} said its first at ${(firstNew - cut).toFixed(0)} ms`);
      assert.ok(lastOld < firstNew, 'the old copy was silent before the new one spoke');
      const fence = /cluster: fenced at (\S+): no keepalive answered for \d+ ms \(ttl 5 s\); stopped 1 machine\(s\) by (\S+): p1/.exec(d.log());
      assert.ok(fence, `d fenced itself:\n${d.log()}`);
      assert.ok(Date.parse(fence[2]!) - Date.parse(fence[1]!) < 1500, 'the fence took less than its margin');

      // Healed, d joins again with a new lease and leaves p1 where it is.
      await relay.heal();
      await until('d back', () => status(on('b')).nodes.find((n) => n.name === 'd')?.state === 'ready', 30_000);
      await until('d joined twice', () => d.log().match(/cluster: d joined/g)!.length === 2);
      assert.deepEqual(twice.stop(), [], 'p1 never ran on two nodes');
      assert.deepEqual(liveOn(nodes).get('p1'), [m.node], 'd did not start p1 again');

      // Cut off again, d still stops when asked (leaving the cluster is all it cannot do).
      await relay.cut();
      const stopped = await Promise.race([d.stop(), new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
      assert.equal(stopped, 0);
    } finally {
      await relay.close();
    }
  });

  it('a node paused (SIGSTOP) past its lease runs no guest code once it continues', { timeout: 180_000 }, async () => {
    // No other node takes the machine, so its disk is only ever written by e's copy.
    assert.equal(cli('cordon', 'b').status, 0);
    assert.equal(cli('cordon', 'c').status, 0);
    const e = await startNode(s.path('nodes'), etcd.url(), 'e', 256);
    nodes.push(e);
    const r = curl(e.sock, 'POST', '/vms', { name: 'p2', restart: 'always', spec: writerSpec(writerElf(), shared, 'p2', 32), start: true });
    assert.equal(r.status, 202, r.text);
    await until('p2 on e', () => liveOn([e]).has('p2'), 30_000);
    const con = track(await attach(e.sock, 'p2'));
    await con.waitFor(/writer ready/);
    con.send('W p2 0\n');
    await con.waitFor(/^synced p2 200$/m);
    const overlay = join(shared, 'p2.qcow2');

    e.child.kill('SIGSTOP');
    let before: number;
    try {
      await until('e down', () => status(on('b')).nodes.find((n) => n.name === 'e')?.state !== 'ready', 20_000);
      before = writtenSectors(overlay);
    } finally {
      e.child.kill('SIGCONT');
    }
    await until('e to fence', () => /cluster: fenced at \S+: (no keepalive|etcd says)/.test(e.log()), 10_000);
    await until('e back', () => /cluster: e joined[^]*cluster: e joined/.test(e.log()), 20_000);
    const afterwards = writtenSectors(overlay);
    console.log(`# SIGSTOP past the lease: ${before} sectors written before SIGCONT, ${afterwards} after`);
    assert.ok(afterwards <= before + 1, `the guest wrote ${afterwards - before} sectors after its node continued without its lease`);
    assert.equal(cli('uncordon', 'b').status, 0);
    assert.equal(cli('uncordon', 'c').status, 0);
  });
});

/** How many sectors from 1 on the writer guest has written to `overlay` (qemu-io, which reads past the writer's lock). */
function writtenSectors(overlay: string): number {
  const has = (k: number): boolean => {
    const r = spawnSync('qemu-io', ['-U', '-r', '-f', 'qcow2', '-c', `read -P 0 ${k * 512} 512`, overlay], { encoding: 'utf8' });
    const out = r.stdout + r.stderr;
    if (/Pattern verification failed/.test(out)) return true;
    if (r.status !== 0 || !/read 512\/512 bytes/.test(out)) throw new Error(`qemu-io ${overlay}: ${out}`);
    return false;
  };
  let lo = 0; // sectors 1..lo are written
  let hi = 1;
  while (has(hi)) [lo, hi] = [hi, hi * 2];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (has(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
