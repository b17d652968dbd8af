/**
 * A three-member etcd cluster and three daemons on loopback with 256, 192 and 128 MiB: ten
 * machines of 16 to 64 MiB declared one after the other through POST /vms on different nodes.
 * Each runs on exactly one node, the one the status names; the placement is the greedy one
 * by free memory (most free first, ties by name) replayed in declaration order; a cordoned
 * node takes nothing, the web console of a node shows the cluster, `virtus cluster stop` stops a machine where it runs, and `virtus cluster
 * rebalance` brings every node under its threshold by live migration (or says why it cannot).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VIRTUS } from '../support/toolchain.ts';
import { launchChromium } from '../web/browser.ts';
import { startEtcd, type EtcdCluster } from './etcd.ts';
import { attach, baseDisk, dumpLogs, curl, liveOn, scratch, startNode, status, stopNodes, until, watchTwice, writerElf, writerSpec, type Node } from './support.ts';

const NODES: Array<[string, number]> = [['a', 256], ['b', 192], ['c', 128]];
const SIZES = [32, 64, 16, 48, 32, 64, 16, 32, 16, 48];

describe('cluster: placement', () => {
  const s = scratch('virtus-cluster-');
  const shared = s.path('shared');
  let etcd: EtcdCluster;
  let nodes: Node[] = [];
  before(async () => {
    mkdirSync(shared);
    baseDisk(shared);
    etcd = await startEtcd(s.path('etcd'));
    nodes = await Promise.all(NODES.map(([n, mib]) => startNode(s.path('nodes'), etcd.url(), n, mib, { tcp: n === 'b' })));
    await until('three nodes', () => status(nodes[0]!).nodes.filter((n) => n.state === 'ready').length === 3, 20_000);
  });
  after(async () => {
    dumpLogs(nodes);
    await stopNodes(nodes);
    await etcd?.stop();
    s.cleanup();
  });

  it('places ten machines by free memory, each on exactly one node', { timeout: 180_000 }, async () => {
    const elf = writerElf();
    const twice = watchTwice(() => nodes);
    for (const [i, mib] of SIZES.entries()) {
      const name = `m${i + 1}`;
      const r = curl(nodes[i % 3]!.sock, 'POST', '/vms', { name, restart: 'always', spec: writerSpec(elf, shared, name, mib), start: true });
      assert.equal(r.status, 202, r.text);
      assert.deepEqual(r.body.cluster.map((m: { name: string }) => m.name), [name]);
    }
    const st = await until('ten machines running', () => {
      const x = status(nodes[0]!);
      return x.machines.length === 10 && x.machines.every((m) => m.node && m.observed.some((o) => o.node === m.node && o.state === 'running')) && x;
    }, 120_000);
    // The greedy placement, replayed.
    const free = new Map(NODES.map(([n, mib]) => [n, mib]));
    const expected = new Map<string, string>();
    SIZES.forEach((mib, i) => {
      const best = [...free].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))[0]!;
      assert.ok(best[1] >= mib);
      expected.set(`m${i + 1}`, best[0]);
      free.set(best[0], best[1] - mib);
    });
    for (const m of st.machines) assert.equal(m.node, expected.get(m.name), `${m.name} placed by free memory`);
    const where = liveOn(nodes);
    for (const m of st.machines) assert.deepEqual(where.get(m.name), [m.node], `${m.name} runs on ${m.node} only`);
    for (const n of st.nodes) assert.equal(n.committedMemory, SIZES.reduce((t, mib, i) => t + (expected.get(`m${i + 1}`) === n.name ? mib << 20 : 0), 0));
    // Each answers on its console on its node.
    for (const m of st.machines.slice(0, 3)) {
      const con = await attach(nodes.find((n) => n.name === m.node)!.sock, m.name);
      await con.waitFor(/writer ready/);
      con.close();
    }
    assert.deepEqual(twice.stop(), [], 'no machine ran on two nodes');

    // The web console of any node shows the cluster as GET /cluster does.
    const b = nodes[1]!;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const [, host, port] = /^tcp:(.*):(\d+)$/.exec(b.tcp!)!;
      await page.goto(`http://${host}:${port}/ui#token=${readFileSync(join(b.state, 'token'), 'utf8').trim()}`);
      for (const m of st.machines) await page.locator(`#cluster-machines tr[data-name="${m.name}"] td.node`, { hasText: new RegExp(`^${m.node}$`) }).waitFor({ timeout: 30_000 });
      for (const n of st.nodes) await page.locator(`#cluster-nodes tr[data-name="${n.name}"][data-state="ready"] td.machines`, { hasText: n.machines.join(', ') }).waitFor({ timeout: 10_000 });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });

  it('status from the CLI; a stopped machine stops where it ran; a cordoned node takes nothing new', { timeout: 120_000 }, async () => {
    const env = { ...process.env, VIRTUS_CLUSTER: etcd.url() };
    const text = spawnSync(process.execPath, [VIRTUS, 'cluster', 'status'], { encoding: 'utf8', env });
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^NODE\s+STATE\s+LEASE\s+MEMORY\s+MACHINES$/m);
    assert.match(text.stdout, /^a\s+ready[^\n]*5s \(\d+s left\)/m);
    assert.match(text.stdout, /^m1\s+running\s+a\s+a:running\s+always\s+32M/m);

    const stop = spawnSync(process.execPath, [VIRTUS, 'cluster', 'stop', 'm1'], { encoding: 'utf8', env });
    assert.equal(stop.status, 0, stop.stderr);
    await until('m1 to stop on a', () => !liveOn(nodes).has('m1'), 30_000);
    assert.equal(status(nodes[1]!).machines.find((m) => m.name === 'm1')!.node, null);

    const c = spawnSync(process.execPath, [VIRTUS, 'cluster', 'cordon', 'a'], { encoding: 'utf8', env });
    assert.equal(c.status, 0, c.stderr);
    writeFileSync(s.path('late.json'), JSON.stringify(writerSpec(writerElf(), shared, 'late', 16)));
    const create = spawnSync(process.execPath, [VIRTUS, '--cluster', etcd.url(), 'create', '--name', 'late', '--spec', s.path('late.json'), '--start'], { encoding: 'utf8', env });
    assert.equal(create.status, 0, create.stderr);
    assert.match(create.stdout, /^late\t[0-9a-f]{12}\trunning$/m);
    const late = await until('late placed', () => status(nodes[0]!).machines.find((m) => m.name === 'late' && m.node), 30_000);
    assert.notEqual(late.node, 'a', 'the cordoned node took nothing');
    assert.equal(status(nodes[0]!).nodes.find((n) => n.name === 'a')!.state, 'cordoned');
    assert.equal(spawnSync(process.execPath, [VIRTUS, 'cluster', 'uncordon', 'a'], { encoding: 'utf8', env }).status, 0);
  });

  it('rebalances by live migration until no node holds more than the threshold', { timeout: 120_000 }, async () => {
    // Now a holds m2, m5, m6 (160/256 MiB), b m3, m4, m7, m9, m10 (144/192: 75%), c m8, late (48/128).
    // Under 70%, b's biggest machines fit nowhere below it; m3 (16 MiB) does on a (176/256).
    const env = { ...process.env, VIRTUS_CLUSTER: etcd.url() };
    const before = status(nodes[0]!);
    assert.equal(before.nodes.find((n) => n.name === 'b')!.committedMemory, 144 << 20);
    const twice = watchTwice(() => nodes);
    const r = spawnSync(process.execPath, [VIRTUS, 'cluster', 'rebalance', '--threshold', '70'], { encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^m3\tb -> a\tmigrated$/m);
    assert.match(r.stdout, /^rebalanced to 70%: 1 machine\(s\) moved$/m);
    const st = await until('m3 running on a', () => {
      const x = status(nodes[0]!);
      return x.machines.find((m) => m.name === 'm3')!.observed.some((o) => o.node === 'a' && o.state === 'running') && x;
    }, 30_000);
    assert.deepEqual(twice.stop(), [], 'no machine ran on two nodes');
    for (const n of st.nodes) assert.ok(n.committedMemory <= 0.7 * n.maxMemory!, `${n.name}: ${n.committedMemory >> 20}/${n.maxMemory! >> 20} MiB`);
    assert.deepEqual(liveOn(nodes).get('m3'), ['a']);
    assert.equal(st.rebalance?.status, 'done');
    const con = await attach(nodes[0]!.sock, 'm3');
    con.send('R 1\n');
    await con.waitFor(/^sector 1: /m);
    con.close();

    // A threshold nothing can meet stops with the reason.
    const stuck = spawnSync(process.execPath, [VIRTUS, 'cluster', 'rebalance', '--threshold', '10'], { encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(stuck.status, 1);
    assert.match(stuck.stderr, /^virtus: rebalance stopped: a node is above 10% of its memory and no machine on it fits elsewhere below that$/m);
  });
});
