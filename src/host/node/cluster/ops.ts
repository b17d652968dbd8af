/**
 * What a user changes in the cluster (the CLI's `virtus cluster …` and `virtus create
 * --cluster`, and a cluster daemon's POST /vms): declarations and requests written to etcd, each
 * in one transaction. The scheduler and the daemons act on them; nothing here runs a machine.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { VirtusError } from '../../../util/errors.ts';
import { parseMachineSpec } from '../../../vmm/spec.ts';
import type { RestartPolicy } from '../daemon/machine.ts';
import { KEYS, NAME, now, type Cordon, type RebalanceRequest, type VmRecord } from './model.ts';
import { readState } from './state.ts';
import { Txn } from './txn.ts';

/** A cluster-wide create (POST /vms on a cluster daemon). */
export interface DeclareRequest {
  name?: string;
  count?: number;
  spec?: unknown;
  image?: string;
  snapshot?: string;
  restart?: RestartPolicy;
  start?: boolean;
  [other: string]: unknown;
}

/**
 * Declares machines: each gets a record in etcd (running when `start`), all in one transaction
 * that fails when any name is taken. Only specs: a cluster's machine boots on whichever node
 * runs it, so its files (disks, kernel) must be on storage every node sees.
 */
export async function declare(client: Etcd3, req: DeclareRequest): Promise<VmRecord[]> {
  if (req.spec === undefined || req.image !== undefined || req.snapshot !== undefined) {
    throw new VirtusError('BAD_REQUEST', "a cluster's machine is declared with a spec whose files (kernel, disks) are on storage every node sees; image and snapshot are one daemon's");
  }
  const extra = Object.keys(req).filter((k) => !['name', 'count', 'spec', 'restart', 'start'].includes(k));
  if (extra.length) throw new VirtusError('BAD_REQUEST', `${extra.join(', ')}: not for a cluster's machine`);
  const spec = parseMachineSpec(req.spec, 'spec');
  for (const d of spec.devices.disks) {
    if (d.overlay === 'auto') throw new VirtusError('BAD_SPEC', 'spec.devices.disks: overlay "auto" is deleted at each stop; give a path on shared storage');
  }
  const count = req.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new VirtusError('BAD_REQUEST', 'count: from 1 to 64');
  let names: string[];
  if (req.name !== undefined) {
    if (!NAME.test(req.name)) throw new VirtusError('BAD_REQUEST', `name "${req.name}": use letters, digits, '_', '.', '-' (at most 63, starting with a letter or digit)`);
    names = count === 1 ? [req.name] : Array.from({ length: count }, (_, i) => `${req.name}-${i + 1}`);
  } else {
    const taken = new Set((await readState(client)).vms.keys());
    names = [];
    for (let i = 1; names.length < count; i++) if (!taken.has(`vm-${i}`)) names.push(`vm-${i}`);
  }
  const created = now();
  const records: VmRecord[] = names.map((name) => ({
    name, id: randomBytes(6).toString('hex'), spec, restart: req.restart ?? 'no', running: req.start === true, created,
  }));
  const t = new Txn(client);
  for (const r of records) t.absent(KEYS.vm(r.name)).put(KEYS.vm(r.name), r);
  if (!(await t.commit())) throw new VirtusError('NAME_TAKEN', `a machine named ${names.length === 1 ? `'${names[0]}'` : `like '${names[0]}'`} exists in the cluster`);
  return records;
}

async function vmOf(client: Etcd3, name: string): Promise<{ value: VmRecord; rev: string }> {
  const s = await readState(client);
  const v = s.vms.get(name);
  if (!v) throw new VirtusError('NO_SUCH_VM', `no machine '${name}' in the cluster`);
  return v;
}

/** Starts or stops a machine of the cluster (the scheduler places it; its node stops it). */
export async function setRunning(client: Etcd3, name: string, running: boolean): Promise<void> {
  for (;;) {
    const v = await vmOf(client, name);
    const { note: _, ...rest } = v.value;
    if (await new Txn(client).unchanged(KEYS.vm(name), v.rev).put(KEYS.vm(name), { ...rest, running }).commit()) return;
  }
}

/** Deletes a machine of the cluster (a running one only with `force`: its node stops it). */
export async function removeVm(client: Etcd3, name: string, force: boolean): Promise<void> {
  const v = await vmOf(client, name);
  if (v.value.running && !force) throw new VirtusError('VMM_STATE', `rm: ${name} should be running (stop it first, or force)`);
  if (!(await new Txn(client).unchanged(KEYS.vm(name), v.rev).del(KEYS.vm(name)).commit())) {
    throw new VirtusError('VMM_STATE', `rm: ${name} changed meanwhile; try again`);
  }
}

/** Takes a node out of scheduling; with `drain`, its machines are moved off too. */
export async function cordon(client: Etcd3, node: string, drain: boolean): Promise<void> {
  if (!NAME.test(node)) throw new VirtusError('BAD_FLAG', `"${node}" is not a node name`, { exitCode: 2 });
  const s = await readState(client);
  if (!s.nodes.has(node) && !s.cordons.has(node)) throw new VirtusError('NO_SUCH_NODE', `no node '${node}' in the cluster`);
  const c = s.cordons.get(node);
  const value: Cordon = { since: c?.value.since ?? now(), drain };
  const t = new Txn(client).put(KEYS.cordon(node), value);
  if (c) t.unchanged(KEYS.cordon(node), c.rev);
  else t.absent(KEYS.cordon(node));
  if (!(await t.commit())) return cordon(client, node, drain);
}

/** Lets a node take machines again (an unfinished drain stops). */
export async function uncordon(client: Etcd3, node: string): Promise<void> {
  const s = await readState(client);
  if (!s.cordons.has(node)) throw new VirtusError('NO_SUCH_NODE', `node '${node}' is not cordoned`);
  await client.delete().key(KEYS.cordon(node));
}

/** Asks the scheduler to rebalance until no node holds more than `threshold` of its memory. */
export async function requestRebalance(client: Etcd3, threshold: number): Promise<void> {
  if (!(threshold > 0 && threshold <= 1)) throw new VirtusError('BAD_FLAG', 'rebalance: --threshold is a share from 0 to 1 (or a percentage)', { exitCode: 2 });
  const value: RebalanceRequest = { threshold, requested: now(), status: 'pending', moves: 0 };
  await client.put(KEYS.rebalance).value(JSON.stringify(value));
}
