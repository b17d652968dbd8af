/**
 * The cluster as one consistent read: every key under the prefix at one etcd revision, parsed
 * into records with the revision each was last written at (the compare of every transaction
 * that changes it). The scheduler and each daemon decide from such a read and write back only
 * through transactions that check nothing they read has changed since.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import {
  KEYS, PREFIX, parseAssignment, parseCordon, parseMove, parseNode, parseObserved, parseRebalance, parseVm,
  type Assignment, type Cordon, type Move, type NodeRecord, type Observed, type RebalanceRequest, type VmRecord,
} from './model.ts';

/** A record and the revision it was last written at. */
export interface At<T> {
  value: T;
  /** The key's mod_revision: a transaction compares it to know the record is unchanged. */
  rev: string;
}

/** The cluster at one revision. */
export interface ClusterState {
  /** The revision of the read. */
  revision: string;
  /** Live nodes (their lease holds). */
  nodes: Map<string, At<NodeRecord> & { lease: string }>;
  cordons: Map<string, At<Cordon>>;
  vms: Map<string, At<VmRecord>>;
  assigns: Map<string, At<Assignment>>;
  moves: Map<string, At<Move>>;
  /** Machine name → node → what that node sees. */
  observed: Map<string, Map<string, Observed>>;
  rebalance: At<RebalanceRequest> | null;
}

/** Reads the whole cluster; records that do not parse are skipped and reported through `log`. */
export async function readState(client: Etcd3, log: (line: string) => void = () => {}): Promise<ClusterState> {
  const r = await client.getAll().prefix(PREFIX).exec();
  const s: ClusterState = {
    revision: r.header.revision,
    nodes: new Map(),
    cordons: new Map(),
    vms: new Map(),
    assigns: new Map(),
    moves: new Map(),
    observed: new Map(),
    rebalance: null,
  };
  for (const kv of r.kvs) {
    try {
      take(s, kv);
    } catch (e) {
      log(`cluster: skipping ${kv.key.toString()}: ${(e as Error).message}`);
    }
  }
  return s;
}

function take(s: ClusterState, kv: IKeyValue): void {
  const key = kv.key.toString('utf8');
  const text = kv.value.toString('utf8');
  const rev = kv.mod_revision;
  const rest = (prefix: string): string | null => (key.startsWith(prefix) ? key.slice(prefix.length) : null);
  let k: string | null;
  if ((k = rest(KEYS.nodes)) !== null) {
    const value = parseNode(text, key);
    if (value.name !== k) throw new Error(`it names node ${value.name}`);
    s.nodes.set(k, { value, rev, lease: kv.lease });
  } else if ((k = rest(KEYS.cordons)) !== null) {
    s.cordons.set(k, { value: parseCordon(text, key), rev });
  } else if ((k = rest(KEYS.vms)) !== null) {
    const value = parseVm(text, key);
    if (value.name !== k) throw new Error(`it names machine ${value.name}`);
    s.vms.set(k, { value, rev });
  } else if ((k = rest(KEYS.assigns)) !== null) {
    s.assigns.set(k, { value: parseAssignment(text, key), rev });
  } else if ((k = rest(KEYS.moves)) !== null) {
    s.moves.set(k, { value: parseMove(text, key), rev });
  } else if ((k = rest(KEYS.observed)) !== null) {
    const [vm, node] = k.split('/');
    if (!vm || !node) throw new Error('expected observed/MACHINE/NODE');
    let m = s.observed.get(vm);
    if (!m) s.observed.set(vm, (m = new Map()));
    m.set(node, parseObserved(text, key));
  } else if (key === KEYS.rebalance) {
    s.rebalance = { value: parseRebalance(text, key), rev };
  }
}

/** Memory a node has promised: its machines' and those on their way to it. */
export function committedMemory(s: ClusterState, node: string): number {
  let n = 0;
  for (const [name, a] of s.assigns) if (a.value.node === node) n += s.vms.get(name)?.value.spec.memory ?? 0;
  for (const [name, m] of s.moves) if (m.value.to === node && m.value.status !== 'failed') n += s.vms.get(name)?.value.spec.memory ?? 0;
  return n;
}

/** Nodes that take new machines: live and not cordoned. */
export function schedulable(s: ClusterState): string[] {
  return [...s.nodes.keys()].filter((n) => !s.cordons.has(n)).sort();
}
