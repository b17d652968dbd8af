/**
 * Test support for the cluster: an etcd cluster of three members (etcd.ts) and daemons started
 * as real processes with `--cluster` on it, each with its own state directory, all sharing one
 * directory as the storage every node sees. Machines are the daemon tests' bare-metal writer
 * (test/guest/daemon/writer.c) with a qcow2 overlay each in the shared directory. A watcher
 * polls every daemon's machines and records any moment at which one machine was live on two.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { curl, startDaemon, type Daemon } from '../daemon/support.ts';
import type { ClusterStatus } from '../../src/host/node/cluster/status.ts';

export { attach, curl, scratch, until, writerElf } from '../daemon/support.ts';

/** A daemon that is a node of the cluster. */
export interface Node extends Daemon {
  name: string;
}

/** Starts a daemon on `etcd` as node `name` with `maxMemory` MiB, its state in `dir`/name. */
export async function startNode(dir: string, etcd: string, name: string, maxMemoryMiB: number, o: { ttl?: number; env?: Record<string, string> } = {}): Promise<Node> {
  const d = await startDaemon(join(dir, name), {
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
 * guest is stopped then, so that pair is allowed).
 */
export function watchTwice(nodes: () => Node[], ms = 100): { stop(): string[] } {
  const seen: string[] = [];
  const t = setInterval(() => {
    const per = new Map<string, Array<[string, string]>>();
    for (const n of nodes()) {
      if (n.child.exitCode !== null || n.child.signalCode !== null) continue;
      let a;
      try {
        a = curl(n.sock, 'GET', '/vms', undefined, { check: false });
      } catch {
        continue;
      }
      if (a.status !== 200) continue;
      for (const m of a.body.machines as Array<{ name: string; state: string }>) {
        if (['running', 'paused', 'migrating', 'stopping'].includes(m.state)) per.set(m.name, [...(per.get(m.name) ?? []), [n.name, m.state]]);
      }
    }
    for (const [name, list] of per) {
      const running = list.filter(([, st]) => st !== 'migrating');
      if (running.length > 1) seen.push(`${new Date().toISOString()} ${name} on ${list.map(([n, st]) => `${n}:${st}`).join(' ')}`);
    }
  }, ms);
  return {
    stop() {
      clearInterval(t);
      return seen;
    },
  };
}
