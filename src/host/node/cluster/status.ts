/**
 * `virtus cluster status` and GET /cluster: the nodes (state, lease, memory, machines) and the
 * machines (desired state, the node that should run them, what each node observes, a move under
 * way), from one read of etcd, the scheduler's election and each live node's lease.
 */
import type { Etcd3 } from 'etcd3';
import { KEYS } from './model.ts';
import { committedMemory, readState, type ClusterState } from './state.ts';

/** One node as the status shows it. */
export interface NodeStatus {
  name: string;
  /** ready; cordoned (takes no new machine); draining; down (its lease expired, or it left). */
  state: 'ready' | 'cordoned' | 'draining' | 'down';
  /** The lease's time to live and what is left of it (seconds), for a live node. */
  lease: { ttl: number; remaining: number } | null;
  maxMemory: number | null;
  /** Memory of the machines assigned to it or on their way. */
  committedMemory: number;
  /** Guest RAM its running machines hold, as it last published. */
  usedMemory: number | null;
  machines: string[];
  api: string[];
  since: string | null;
  drained: string | null;
  error: string | null;
}

/** One machine as the status shows it. */
export interface MachineStatus {
  name: string;
  id: string;
  memory: number;
  restart: string;
  desired: 'running' | 'stopped';
  /** The node that should run it. */
  node: string | null;
  reason: string | null;
  /** What each node that has a copy sees. */
  observed: Array<{ node: string; state: string; since: string }>;
  move: { from: string; to: string; reason: string; status: string } | null;
  note: string | null;
}

/** The whole status. */
export interface ClusterStatus {
  revision: string;
  /** The node that schedules (the election's leader). */
  scheduler: string | null;
  nodes: NodeStatus[];
  machines: MachineStatus[];
  rebalance: { threshold: number; status: string; moves: number; error: string | null } | null;
}

const byName = <T extends { name: string }>(a: T, b: T): number => a.name.localeCompare(b.name, undefined, { numeric: true });

/** Reads the status from etcd. */
export async function readStatus(client: Etcd3): Promise<ClusterStatus> {
  const s = await readState(client);
  const leader = await client.namespace(KEYS.electionNamespace).election(KEYS.electionName).leader().catch(() => undefined);
  const leases = new Map<string, { ttl: number; remaining: number }>();
  await Promise.all([...s.nodes].map(async ([name, n]) => {
    const r = await client.leaseClient.leaseTimeToLive({ ID: n.lease }).catch(() => null);
    if (r && Number(r.TTL) >= 0) leases.set(name, { ttl: Number(r.grantedTTL), remaining: Number(r.TTL) });
  }));
  return statusOf(s, leader ?? null, leases);
}

/** The status of one read. */
export function statusOf(s: ClusterState, scheduler: string | null, leases: Map<string, { ttl: number; remaining: number }>): ClusterStatus {
  const names = new Set([...s.nodes.keys(), ...s.cordons.keys(), ...[...s.assigns.values()].map((a) => a.value.node)]);
  const nodes: NodeStatus[] = [...names].map((name): NodeStatus => {
    const n = s.nodes.get(name)?.value;
    const c = s.cordons.get(name)?.value;
    return {
      name,
      state: !n ? 'down' : c?.drain ? 'draining' : c ? 'cordoned' : 'ready',
      lease: leases.get(name) ?? null,
      maxMemory: n?.maxMemory ?? null,
      committedMemory: committedMemory(s, name),
      usedMemory: n?.usedMemory ?? null,
      machines: [...s.assigns].filter(([, a]) => a.value.node === name).map(([m]) => m).sort((a, b) => a.localeCompare(b, undefined, { numeric: true })),
      api: n?.api ?? [],
      since: n?.since ?? null,
      drained: c?.drained ?? null,
      error: c?.error ?? null,
    };
  }).sort(byName);
  const machines: MachineStatus[] = [...s.vms.values()].map(({ value: v }): MachineStatus => {
    const a = s.assigns.get(v.name)?.value;
    const m = s.moves.get(v.name)?.value;
    return {
      name: v.name,
      id: v.id,
      memory: v.spec.memory,
      restart: v.restart,
      desired: v.running ? 'running' : 'stopped',
      node: a?.node ?? null,
      reason: a?.reason ?? null,
      observed: [...(s.observed.get(v.name) ?? new Map<string, { state: string; since: string }>())].map(([node, o]) => ({ node, state: o.state, since: o.since })),
      move: m ? { from: m.from, to: m.to, reason: m.reason, status: m.status } : null,
      note: v.note ?? null,
    };
  }).sort(byName);
  const r = s.rebalance?.value;
  return {
    revision: s.revision,
    scheduler,
    nodes,
    machines,
    rebalance: r ? { threshold: r.threshold, status: r.status, moves: r.moves, error: r.error ?? null } : null,
  };
}

const mib = (n: number | null): string => (n === null ? '-' : `${Math.round(n / 1048576)}M`);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n');
}

/** The status as `virtus cluster status` prints it. */
export function statusText(st: ClusterStatus): string {
  const nodes = [['NODE', 'STATE', 'LEASE', 'MEMORY', 'MACHINES']];
  for (const n of st.nodes) {
    const lease = n.lease ? `${n.lease.ttl}s (${n.lease.remaining}s left)` : '-';
    const state = n.name === st.scheduler ? `${n.state}, scheduler` : n.state;
    nodes.push([n.name, n.error ? `${state} (drain stopped: ${n.error})` : state, lease, `${mib(n.committedMemory)}/${mib(n.maxMemory)}`, n.machines.join(',') || '-']);
  }
  const machines = [['MACHINE', 'DESIRED', 'NODE', 'OBSERVED', 'RESTART', 'MEMORY', 'NOTE']];
  for (const m of st.machines) {
    const observed = m.observed.map((o) => `${o.node}:${o.state}`).join(',') || '-';
    const node = m.move ? `${m.move.from}->${m.move.to} (${m.move.reason}, ${m.move.status})` : m.node ?? '-';
    machines.push([m.name, m.desired, node, observed, m.restart, mib(m.memory), m.note ?? '']);
  }
  const lines = [table(nodes), '', table(machines)];
  if (st.rebalance) lines.push('', `rebalance to ${Math.round(st.rebalance.threshold * 100)}%: ${st.rebalance.status}, ${st.rebalance.moves} moves${st.rebalance.error ? `: ${st.rebalance.error}` : ''}`);
  return lines.join('\n');
}
