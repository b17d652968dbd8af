/**
 * Test support for the cluster: an etcd cluster of three members (etcd.ts) and daemons started
 * as real processes with `--cluster` on it, each with its own state directory, all sharing one
 * directory as the storage every node sees. Machines are the daemon tests' bare-metal writer
 * (test/guest/daemon/writer.c) with a qcow2 overlay each in the shared directory. A watcher
 * polls every daemon's machines and records any moment at which one machine was live on two.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { curl, startDaemon, type Daemon } from '../daemon/support.ts';
import type { ClusterStatus } from '../../src/host/node/cluster/status.ts';

export { attach, curl, scratch, until, writerElf } from '../daemon/support.ts';

/** A daemon that is a node of the cluster. */
export interface Node extends Daemon {
  name: string;
}

/** Starts a daemon on `etcd` as node `name` with `maxMemory` MiB, its state in `dir`/name. */
export async function startNode(dir: string, etcd: string, name: string, maxMemoryMiB: number, o: { ttl?: number; env?: Record<string, string>; tcp?: boolean } = {}): Promise<Node> {
  const d = await startDaemon(join(dir, name), {
    tcp: o.tcp === true,
    args: ['--cluster', etcd, '--node', name, '--max-memory', `${maxMemoryMiB}M`, '--lease-ttl', String(o.ttl ?? 5)],
    ...(o.env ? { env: o.env } : {}),
  });
  return Object.assign(d, { name });
}

/** Every node's log, for a failing test (printed when VIRTUS_CLUSTER_LOGS is set). */
export function dumpLogs(nodes: Node[]): void {
  if (!process.env.VIRTUS_CLUSTER_LOGS) return;
  for (const n of nodes) process.stderr.write(`--- node ${n.name}\n${n.log()}\n`);
}

/** GET /cluster on a node (checked against the document). */
export function status(n: Node): ClusterStatus {
  const a = curl(n.sock, 'GET', '/cluster');
  assert.equal(a.status, 200, a.text);
  return a.body as ClusterStatus;
}

/** A raw disk of `mib` MiB in the shared directory. */
export function baseDisk(shared: string, mib = 4): string {
  const p = join(shared, 'base.img');
  writeFileSync(p, Buffer.alloc(mib << 20));
  return p;
}

/** The writer guest's spec: `memory` MiB, an overlay of the shared base disk in the shared directory. */
export function writerSpec(elf: string, shared: string, name: string, memoryMiB: number): Record<string, unknown> {
  return {
    memory: memoryMiB << 20,
    boot: { mode: 'bare', kernel: elf },
    devices: { disks: [{ file: join(shared, 'base.img'), format: 'raw', readonly: false, overlay: join(shared, `${name}.qcow2`) }] },
  };
}

/** The machines live on each node (running, paused, migrating or starting), by name. */
export function liveOn(nodes: Node[]): Map<string, string[]> {
  const where = new Map<string, string[]>();
  for (const n of nodes) {
    if (n.child.exitCode !== null || n.child.signalCode !== null) continue;
    const a = curl(n.sock, 'GET', '/vms', undefined, { check: false });
    if (a.status !== 200) continue;
    for (const m of a.body.machines as Array<{ name: string; state: string }>) {
      if (['running', 'paused', 'migrating', 'starting', 'stopping'].includes(m.state)) where.set(m.name, [...(where.get(m.name) ?? []), n.name]);
    }
  }
  return where;
}

/**
 * Polls every node every `ms` and remembers each time a machine was live on two nodes at once
 * (`migrating` on the source and `running` on the target is the hand-over itself: the source's
 * guest is stopped then, so that pair is allowed). The nodes are asked one after another, so a
 * machine that moved between two answers shows on both: a pair is only counted when asking the
 * later node first and the earlier one after it shows the machine live on both again (the
 * earlier copy was then live from before the later one's answer to after it). The pairs that
 * did not hold are kept apart, as hand-overs seen across one sample.
 */
export function watchTwice(nodes: () => Node[], ms = 100): { stop(): string[]; samples(): number; handovers(): string[] } {
  const seen: string[] = [];
  const handovers: string[] = [];
  let samples = 0;
  /** The machines live on `n`, by name, with their states; null when it did not answer. */
  const live = (n: Node): Map<string, string> | null => {
    if (n.child.exitCode !== null || n.child.signalCode !== null) return null;
    let a;
    try {
      a = curl(n.sock, 'GET', '/vms', undefined, { check: false });
    } catch {
      return null;
    }
    if (a.status !== 200) return null;
    const out = new Map<string, string>();
    for (const m of a.body.machines as Array<{ name: string; state: string }>) {
      if (['running', 'paused', 'migrating', 'stopping'].includes(m.state)) out.set(m.name, m.state);
    }
    return out;
  };
  const t = setInterval(() => {
    samples++;
    const per = new Map<string, Array<{ node: Node; state: string }>>();
    for (const n of nodes()) {
      for (const [name, state] of live(n) ?? []) per.set(name, [...(per.get(name) ?? []), { node: n, state }]);
    }
    for (const [name, list] of per) {
      const running = list.filter((x) => x.state !== 'migrating');
      if (running.length < 2) continue;
      const what = `${new Date().toISOString()} ${name} on ${list.map((x) => `${x.node.name}:${x.state}`).join(' ')}`;
      // Again, the later answer first.
      const again = [...running].reverse().map((x) => live(x.node)?.get(name));
      if (again.every((st) => st !== undefined && st !== 'migrating')) seen.push(`${what}, and again (${again.join(', ')})`);
      else handovers.push(what);
    }
  }, ms);
  return {
    stop() {
      clearInterval(t);
      return seen;
    },
    samples: () => samples,
    handovers: () => handovers,
  };
}

/**
 * A loopback TCP relay in front of each etcd member, for one node (relay.ts, in its own process:
 * this one blocks in curl while the node waits for etcd). `cut()` ends every relayed connection
 * and refuses new ones (the node's etcd traffic stops, the node itself runs on); `heal()` lets
 * traffic through again. Each resolves once the relay confirmed it.
 */
export async function etcdRelay(etcdUrl: string): Promise<{ url: string; cut(): Promise<void>; heal(): Promise<void>; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./relay.ts', import.meta.url)), etcdUrl], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  let out = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  const line = async (re: RegExp): Promise<RegExpExecArray> => {
    for (;;) {
      const m = re.exec(out);
      if (m) {
        out = out.slice(m.index + m[0].length);
        return m;
      }
      if (child.exitCode !== null) throw new Error('the etcd relay exited');
      await Promise.race([new Promise<void>((r) => waiters.push(r)), exited]);
    }
  };
  const url = (await line(/^(etcd:\/\/\S+)\n/m))[1]!;
  const ask = async (cmd: string): Promise<void> => {
    child.stdin!.write(`${cmd}\n`);
    await line(new RegExp(`^${cmd} done\\n`, 'm'));
  };
  return {
    url,
    cut: () => ask('cut'),
    heal: () => ask('heal'),
    async close() {
      child.stdin!.end();
      await exited;
    },
  };
}

/** Stops every node (SIGTERM); one still running after 20 s is killed, so a failed test cannot hang its file. */
export async function stopNodes(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map(async (n) => {
    const t = setTimeout(() => {
      process.stderr.write(`node ${n.name} did not stop within 20 s of SIGTERM: killed\n`);
      void n.kill9();
    }, 20_000);
    await n.stop();
    clearTimeout(t);
  }));
}
