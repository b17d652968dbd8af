/**
 * The cluster (`virtus daemon --cluster`): a three-member etcd on loopback and three daemons
 * with 5 s leases, machines of the daemon tests' bare-metal writer guest (32 MiB, a qcow2
 * overlay each in one shared directory), each writing and flushing its disk without end while
 * it is measured:
 *
 * - scheduling latency: POST /vms {"start": true} on a node until the node the scheduler chose
 *   reports the machine running (median of five);
 * - drain of a node running N = 1, 4, 8 machines (VIRTUS_BENCH_CLUSTER_N overrides, e.g. "1,4"):
 *   `virtus cluster drain` from start to "drained"; each machine's downtime (the source's
 *   migration event: from the guest's stop to the target's start), median and worst. The N = 1
 *   drain is one live migration: the reference for the others' downtime;
 * - failover: `kill -9` of the daemon running a `restart: always` machine until the machine
 *   answers a command on its console on another node (the 5 s lease is part of it).
 *
 * There is no QEMU column: QEMU has no cluster of its own. Run with `npm run bench -- cluster`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { startEtcd, type EtcdCluster } from '../test/cluster/etcd.ts';
import { attach, baseDisk, curl, liveOn, scratch, startNode, status, stopNodes, until, writerElf, writerSpec, type Node } from '../test/cluster/support.ts';
import { subscribe } from '../test/daemon/support.ts';
import { VIRTUS } from '../test/support/toolchain.ts';
import type { Benchmark, Row } from './harness.ts';

const MIB = 32;
const sizes = (process.env.VIRTUS_BENCH_CLUSTER_N ?? '1,4,8').split(',').map(Number);

/** Migration downtimes (ms) a node reports through its server-sent events (`ready` once subscribed). */
function downtimes(n: Node): { list(): number[]; ready: Promise<void>; close(): void } {
  const log = subscribe(n.sock);
  const list = (): number[] => log.events.flatMap((e) => {
    const info = e.data.info as { status: string; downtimeMs?: number } | undefined;
    return e.type === 'migration' && info?.status === 'completed' && info.downtimeMs !== undefined ? [info.downtimeMs] : [];
  });
  return { list, ready: log.ready, close: () => log.close() };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export const bench: Benchmark = {
  name: 'cluster',
  async run(): Promise<Row[]> {
    const s = scratch('virtus-bench-cluster-');
    const shared = s.path('shared');
    mkdirSync(shared);
    baseDisk(shared, 16);
    const elf = writerElf();
    let etcd: EtcdCluster | null = null;
    let nodes: Node[] = [];
    const rows: Row[] = [];
    try {
      etcd = await startEtcd(s.path('etcd'));
      const url = etcd.url();
      const maxN = Math.max(...sizes);
      nodes = await Promise.all(['a', 'b', 'c'].map((n) => startNode(s.path('nodes'), url, n, Math.max(256, 2 * maxN * MIB))));
      await until('three nodes', () => status(nodes[0]!).nodes.filter((n) => n.state === 'ready').length === 3, 30_000);
      const cli = (...args: string[]) => {
        const r = spawnSync(process.execPath, [VIRTUS, 'cluster', ...args], { encoding: 'utf8', env: { ...process.env, VIRTUS_CLUSTER: url }, timeout: 300_000 });
        if (r.status !== 0) throw new Error(`virtus cluster ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      const runningOn = (name: string): string | undefined => {
        const m = status(nodes[1]!).machines.find((x) => x.name === name);
        return m?.node && m.observed.some((o) => o.node === m.node && o.state === 'running') ? m.node : undefined;
      };
      const create = (name: string, restart = 'always') => {
        const r = curl(nodes[0]!.sock, 'POST', '/vms', { name, restart, spec: writerSpec(elf, shared, name, MIB), start: true });
        if (r.status !== 202) throw new Error(`create ${name}: ${r.text}`);
      };
      const on = (name: string) => nodes.find((n) => n.name === name)!;
      const write = async (node: Node, names: string[]) => {
        for (const name of names) {
          const con = await attach(node.sock, name);
          await con.waitFor(/writer ready/);
          con.send(`W ${name} 0\n`);
          await con.waitFor(new RegExp(`^synced ${name} 5$`, 'm'));
          con.close();
        }
      };
      const remove = (names: string[]) => {
        for (const name of names) cli('stop', name);
        for (const name of names) cli('rm', name);
      };

      // Scheduling latency.
      const sched: number[] = [];
      for (let i = 1; i <= 5; i++) {
        const t = performance.now();
        create(`s${i}`, 'no');
        await until(`s${i} running`, () => runningOn(`s${i}`), 60_000);
        sched.push(performance.now() - t);
      }
      remove(['s1', 's2', 's3', 's4', 's5']);
      rows.push({ name: 'scheduling: create to running (median of 5)', unit: 'ms', better: 'lower', virtus: median(sched) });

      // Drains of N machines off a.
      let single: number | null = null;
      for (const n of sizes) {
        const names = Array.from({ length: n }, (_, i) => `d${n}-${i + 1}`);
        cli('cordon', 'b');
        cli('cordon', 'c');
        for (const name of names) create(name);
        await until(`${n} machines on a`, () => names.every((m) => liveOn(nodes).get(m)?.join() === 'a'), 120_000);
        cli('uncordon', 'b');
        cli('uncordon', 'c');
        await write(on('a'), names);
        const events = downtimes(on('a'));
        await events.ready;
        const t = performance.now();
        await new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, [VIRTUS, 'cluster', 'drain', 'a'], { env: { ...process.env, VIRTUS_CLUSTER: url }, stdio: ['ignore', 'ignore', 'pipe'] });
          let err = '';
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`drain: ${err}`))));
        });
        const ms = performance.now() - t;
        await until('every downtime reported', () => events.list().length === n, 10_000);
        events.close();
        const down = events.list();
        if (n === 1) single = down[0]!;
        rows.push({ name: `drain of ${n} machine${n > 1 ? 's' : ''}: total`, unit: 's', better: 'lower', virtus: ms / 1000 });
        rows.push({
          name: `drain of ${n}: downtime per machine, median`, unit: 'ms', better: 'lower', virtus: median(down),
          note: `worst ${Math.max(...down).toFixed(0)} ms${single !== null && n > 1 ? `; ${(Math.max(...down) / single).toFixed(1)}x the single migration's` : ''}`,
        });
        cli('uncordon', 'a');
        remove(names);
      }

      // Failover.
      cli('cordon', 'b');
      cli('cordon', 'c');
      create('f1');
      await until('f1 on a', () => runningOn('f1') === 'a', 60_000);
      cli('uncordon', 'b');
      cli('uncordon', 'c');
      await write(on('a'), ['f1']);
      const killed = performance.now();
      await on('a').kill9();
      const to = await until('f1 elsewhere', () => (runningOn('f1') ?? 'a') !== 'a' && runningOn('f1'), 60_000);
      const con = await attach(on(to).sock, 'f1');
      await con.waitFor(/writer ready/);
      con.send('R 5\n');
      await con.waitFor(/^sector 5: f1 sector 5$/m);
      con.close();
      rows.push({ name: 'failover: kill -9 to console answering', unit: 's', better: 'lower', virtus: (performance.now() - killed) / 1000, note: 'lease ttl 5 s; the fence margin is 1.5 s' });
      return rows;
    } catch (e) {
      for (const n of nodes) process.stderr.write(`--- node ${n.name}\n${n.log()}\n`);
      throw e;
    } finally {
      await stopNodes(nodes);
      await etcd?.stop();
      s.cleanup();
    }
  },
};
