/**
 * What the cluster keeps in etcd: the keys, and the records under them as JSON. Everything is
 * under one prefix (`virtus/`):
 *
 *   virtus/nodes/NODE            a live daemon (under its lease: gone when the lease expires):
 *                                its API and migration addresses, memory limit and use
 *   virtus/cordon/NODE           the node takes no new machines; `drain` moves its machines off
 *   virtus/vms/NAME              a machine as declared: spec, restart policy, should it run
 *   virtus/assign/NAME           the one node that runs it (exists only while it should run)
 *   virtus/moves/NAME            a live migration under way: from, to, the target's address
 *   virtus/observed/NAME/NODE    what NODE sees of its copy of the machine (under NODE's lease)
 *   virtus/rebalance             a rebalance asked for, and its outcome
 *   virtus/election/scheduler/…  the scheduler's election (etcd3's Election recipe)
 *
 * Records read back are untrusted (anyone with access to etcd can write them): each is checked
 * field by field and a bad one is skipped, named in the log.
 */
import { VirtusError } from '../../../util/errors.ts';
import { Fields } from '../../../vmm/fields.ts';
import { parseMachineSpec, type MachineSpec } from '../../../vmm/spec.ts';
import type { RestartPolicy } from '../daemon/machine.ts';

/** The prefix every key of the cluster is under. */
export const PREFIX = 'virtus/';

/** The keys. */
export const KEYS = {
  nodes: `${PREFIX}nodes/`,
  node: (n: string) => `${PREFIX}nodes/${n}`,
  cordons: `${PREFIX}cordon/`,
  cordon: (n: string) => `${PREFIX}cordon/${n}`,
  vms: `${PREFIX}vms/`,
  vm: (name: string) => `${PREFIX}vms/${name}`,
  assigns: `${PREFIX}assign/`,
  assign: (name: string) => `${PREFIX}assign/${name}`,
  moves: `${PREFIX}moves/`,
  move: (name: string) => `${PREFIX}moves/${name}`,
  observed: `${PREFIX}observed/`,
  observedOf: (name: string, node: string) => `${PREFIX}observed/${name}/${node}`,
  rebalance: `${PREFIX}rebalance`,
  /** The namespace etcd3's Election recipe keeps its candidates in. */
  electionNamespace: `${PREFIX}election/`,
  electionName: 'scheduler',
} as const;

/** Names of nodes and machines: they are key segments, so no '/'. */
export const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** A live daemon, as it publishes itself under its lease. */
export interface NodeRecord {
  name: string;
  /** Where its HTTP API listens (for `virtus --host`). */
  api: string[];
  /** The address migrations to this node are sent to. */
  address: string;
  maxMemory: number;
  /** Guest RAM its running machines hold. */
  usedMemory: number;
  /** Machines it runs. */
  machines: number;
  /** When this daemon registered (ISO time). */
  since: string;
}

/** A machine as declared to the cluster. */
export interface VmRecord {
  name: string;
  id: string;
  spec: MachineSpec;
  restart: RestartPolicy;
  /** It should run (somewhere). */
  running: boolean;
  created: string;
  /** Why it stopped, when the cluster stopped it (its host died, its guest powered off). */
  note?: string;
}

/** Why a machine is where it is. */
export type AssignReason = 'placed' | 'failover' | 'migrated';

/** The node that runs a machine. */
export interface Assignment {
  node: string;
  reason: AssignReason;
  since: string;
}

/** A live migration of one machine, driven by the two daemons (see agent.ts). */
export interface Move {
  id: string;
  from: string;
  to: string;
  reason: 'drain' | 'rebalance';
  /** preparing: the target makes its waiting machine; ready: `uri` takes the stream; failed: `error`. */
  status: 'preparing' | 'ready' | 'failed';
  uri?: string;
  error?: string;
  created: string;
}

/** What one node sees of its copy of a machine. */
export interface Observed {
  state: string;
  since: string;
}

/** A node taken out of scheduling. */
export interface Cordon {
  since: string;
  /** Its machines are being moved off. */
  drain: boolean;
  /** Why the last drain stopped before the node was empty. */
  error?: string;
  /** When the last drain finished. */
  drained?: string;
}

/** A rebalance asked for, and its outcome. */
export interface RebalanceRequest {
  /** No node should hold more than this share of its memory limit (0-1). */
  threshold: number;
  requested: string;
  status: 'pending' | 'done' | 'failed';
  moves: number;
  error?: string;
}

function bad(what: string, message: string): never {
  throw new VirtusError('CLUSTER_BAD_RECORD', `${what}: ${message}`);
}

function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    return bad(what, `not JSON (${(e as Error).message})`);
  }
}

const MAX_MEMORY = 2 ** 50;

function name(f: Fields, key: string): string {
  const v = f.string(key, { min: 1, max: 63 });
  if (!NAME.test(v)) f.fail(key, `"${v}" is not a name (letters, digits, '_', '.', '-')`);
  return v;
}

function time(f: Fields, key: string): string {
  const v = f.string(key, { min: 1, max: 40 });
  if (Number.isNaN(Date.parse(v))) f.fail(key, `"${v}" is not a time`);
  return v;
}

function optional<T>(f: Fields, key: string, read: () => T): T | undefined {
  return f.value[key] === undefined ? undefined : read();
}

function strings(f: Fields, key: string, max: number, length: number): string[] {
  const v = f.value[key];
  if (!Array.isArray(v) || v.length > max || !v.every((s) => typeof s === 'string' && s.length <= length && !s.includes('\0'))) {
    f.fail(key, `must be an array of at most ${max} strings of at most ${length} characters`);
  }
  return v as string[];
}

/** Reads a node record (untrusted). */
export function parseNode(text: string, what: string): NodeRecord {
  const f = new Fields(what, json(text, what), ['name', 'api', 'address', 'maxMemory', 'usedMemory', 'machines', 'since']);
  return {
    name: name(f, 'name'),
    api: strings(f, 'api', 8, 300),
    address: f.string('address', { min: 1, max: 255 }),
    maxMemory: f.int('maxMemory', { min: 0, max: MAX_MEMORY }),
    usedMemory: f.int('usedMemory', { min: 0, max: MAX_MEMORY }),
    machines: f.int('machines', { min: 0, max: 1 << 20 }),
    since: time(f, 'since'),
  };
}

/** Reads a machine's declaration (untrusted). */
export function parseVm(text: string, what: string): VmRecord {
  const f = new Fields(what, json(text, what), ['name', 'id', 'spec', 'restart', 'running', 'created', 'note']);
  const r: VmRecord = {
    name: name(f, 'name'),
    id: f.string('id', { min: 1, max: 64 }),
    spec: parseMachineSpec(f.value.spec, `${what}.spec`),
    restart: f.oneOf('restart', ['always', 'on-failure', 'no'] as const),
    running: f.bool('running'),
    created: time(f, 'created'),
  };
  const note = f.optionalString('note', 1000);
  if (note !== undefined) r.note = note;
  return r;
}

/** Reads an assignment (untrusted). */
export function parseAssignment(text: string, what: string): Assignment {
  const f = new Fields(what, json(text, what), ['node', 'reason', 'since']);
  return { node: name(f, 'node'), reason: f.oneOf('reason', ['placed', 'failover', 'migrated'] as const), since: time(f, 'since') };
}

/** Reads a move (untrusted). */
export function parseMove(text: string, what: string): Move {
  const f = new Fields(what, json(text, what), ['id', 'from', 'to', 'reason', 'status', 'uri', 'error', 'created']);
  const m: Move = {
    id: f.string('id', { min: 1, max: 64 }),
    from: name(f, 'from'),
    to: name(f, 'to'),
    reason: f.oneOf('reason', ['drain', 'rebalance'] as const),
    status: f.oneOf('status', ['preparing', 'ready', 'failed'] as const),
    created: time(f, 'created'),
  };
  const uri = optional(f, 'uri', () => f.string('uri', { min: 1, max: 300 }));
  if (uri !== undefined) {
    if (!/^tcp:.+:\d{1,5}$/.test(uri)) f.fail('uri', `"${uri}" is not tcp:HOST:PORT`);
    m.uri = uri;
  }
  const error = f.optionalString('error', 2000);
  if (error !== undefined) m.error = error;
  return m;
}

/** Reads an observed state (untrusted). */
export function parseObserved(text: string, what: string): Observed {
  const f = new Fields(what, json(text, what), ['state', 'since']);
  return { state: f.string('state', { min: 1, max: 32 }), since: time(f, 'since') };
}

/** Reads a cordon (untrusted). */
export function parseCordon(text: string, what: string): Cordon {
  const f = new Fields(what, json(text, what), ['since', 'drain', 'error', 'drained']);
  const c: Cordon = { since: time(f, 'since'), drain: f.bool('drain') };
  const error = f.optionalString('error', 2000);
  if (error !== undefined) c.error = error;
  const drained = optional(f, 'drained', () => time(f, 'drained'));
  if (drained !== undefined) c.drained = drained;
  return c;
}

/** Reads a rebalance request (untrusted). */
export function parseRebalance(text: string, what: string): RebalanceRequest {
  const f = new Fields(what, json(text, what), ['threshold', 'requested', 'status', 'moves', 'error']);
  const threshold = f.value.threshold;
  if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1)) return f.fail('threshold', 'must be a number above 0, at most 1');
  const r: RebalanceRequest = {
    threshold,
    requested: time(f, 'requested'),
    status: f.oneOf('status', ['pending', 'done', 'failed'] as const),
    moves: f.int('moves', { min: 0, max: 1 << 20 }),
  };
  const error = f.optionalString('error', 2000);
  if (error !== undefined) r.error = error;
  return r;
}

/** The time now, as records hold it. */
export const now = (): string => new Date().toISOString();
