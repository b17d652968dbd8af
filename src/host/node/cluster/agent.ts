/**
 * A daemon as a node of the cluster (`virtus daemon --cluster etcd://… --node NAME`). It
 * registers under a lease (lease.ts) and publishes its capacity and what it observes of its
 * machines; it campaigns for the scheduler (scheduler.ts); and it makes its machines what etcd
 * says, after every change it is told of (a watch) and every second:
 *
 * - a machine assigned to it runs here: defined from its declaration (Daemon.adopt) and started;
 * - a machine here that is not assigned to it is stopped and removed (its disks stay: they are
 *   the cluster's, on storage every node sees);
 * - a move whose target it is: it makes the waiting machine (Daemon.incoming) and publishes the
 *   address; once the machine has arrived it takes it over in one transaction (the assignment
 *   becomes its own, the move is deleted) on the condition that the move is as it wrote it;
 * - a move whose source it is: once the target is ready it live-migrates the machine there; a
 *   migration that fails (the machine runs on here) marks the move failed.
 *
 * Two nodes never run one machine: a node runs a machine only while it is assigned to it and
 * its lease holds; a machine changes node only by a transaction that sees the old node's key
 * gone (whose lease expired after the node fenced itself) or by the target of a live migration,
 * which ran it only after the source stopped it. A node that loses its lease stops every
 * machine (`fence`) and registers again with a new lease; until then it decides nothing.
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { Daemon } from '../daemon/daemon.ts';
import type { DaemonMachine } from '../daemon/machine.ts';
import { etcdError, openEtcd } from './etcd.ts';
import { NodeLease } from './lease.ts';
import type { LeaseGate } from './lease-gate.ts';
import { declare, type DeclareRequest } from './ops.ts';
import { readStatus, type ClusterStatus } from './status.ts';
import { KEYS, now, type Move, type NodeRecord, type VmRecord } from './model.ts';
import { Scheduler } from './scheduler.ts';
import { readState, type At, type ClusterState } from './state.ts';
import { Txn } from './txn.ts';

/** How long leaving may wait for etcd (ms). */
const LEAVE_MS = 2000;

/** How a daemon joins the cluster. */
export interface AgentOptions {
  /** etcd://HOST:PORT[,…] */
  url: string;
  node: string;
  /** The lease's time to live (seconds). */
  ttl: number;
  /** The address other nodes reach this one at (migrations to it listen there). */
  address: string;
  /** Where the daemon's API listens (published for `virtus --host`). */
  api: string[];
  daemon: Daemon;
  /** The gate the daemon's cluster machines run behind (lease-gate.ts): opened by each renewal. */
  gate?: LeaseGate;
  log(line: string): void;
}

/** A daemon's part of the cluster (see the file's comment). */
export class ClusterAgent {
  private client!: Etcd3;
  private lease: NodeLease | null = null;
  private watcher: Watcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  scheduler!: Scheduler;
  /** The etcd revision of this lease's registration: decisions need reads at least that new. */
  private registered: bigint | null = null;
  private running = false;
  private again = false;
  private stopped = false;
  private published = '';
  private readonly observed = new Map<string, string>();
  /** Machines being sent away (move id → machine name). */
  private readonly sending = new Map<string, string>();
  /** Moves this node prepared, with the revision it wrote the move at. */
  private readonly prepared = new Map<string, { id: string; rev: string }>();
  /** Machines whose start failed here: not before this time again (ms), and the next delay. */
  private readonly retry = new Map<string, { at: number; delay: number }>();
  private offEvents: (() => void) | null = null;

  private constructor(readonly o: AgentOptions) {}

  /** Joins the cluster: connects, registers, starts watching and campaigning. */
  static async join(o: AgentOptions): Promise<ClusterAgent> {
    const a = new ClusterAgent(o);
    a.client = await openEtcd(o.url);
    a.scheduler = new Scheduler(a.client, { node: o.node, ttl: o.ttl, log: o.log });
    try {
      await a.register();
      a.watcher = await a.client.watch().prefix(KEYS.nodes.slice(0, -'nodes/'.length)).create();
    } catch (e) {
      a.client.close();
      throw etcdError(e, `cluster: cannot join as ${o.node}`);
    }
    a.watcher.on('data', () => a.kick());
    a.watcher.on('error', () => {});
    // A migration's progress (every 100 ms while it runs) is no news to the cluster: its
    // status changing is.
    const migrationStatus = new Map<string, string>();
    a.offEvents = o.daemon.subscribe((e) => {
      if (e.type === 'migration') {
        if (migrationStatus.get(e.id) === e.info.status) return;
        migrationStatus.set(e.id, e.info.status);
      } else if (e.type === 'deleted') {
        migrationStatus.delete(e.id);
      }
      if (e.type === 'state' || e.type === 'stop' || e.type === 'migration' || e.type === 'deleted') a.kick();
    });
    a.timer = setInterval(() => a.kick(), 1000);
    a.scheduler.start();
    a.kick();
    return a;
  }

  private async register(): Promise<void> {
    const lease = new NodeLease(this.client, {
      ttl: this.o.ttl,
      lost: (why) => void this.fence(why),
      renewed: (deadline, expiry) => this.o.gate?.open(performance.timeOrigin + deadline, performance.timeOrigin + expiry),
    });
    const id = await lease.acquire();
    const put = await this.client.put(KEYS.node(this.o.node)).value(JSON.stringify(this.nodeRecord())).lease(id);
    this.lease = lease;
    this.registered = BigInt(put.header.revision);
    this.published = '';
    this.observed.clear();
    this.o.log(`cluster: ${this.o.node} joined (lease ${id}, ttl ${this.o.ttl} s)`);
  }

  private nodeRecord(): NodeRecord {
    const d = this.o.daemon;
    return {
      name: this.o.node, api: this.o.api, address: this.o.address, maxMemory: d.o.maxMemory, usedMemory: d.usedMemory(),
      machines: this.local().filter((m) => m.live).length, since: now(),
    };
  }

  /** The cluster's machines on this node. */
  private local(): DaemonMachine[] {
    return this.o.daemon.list().filter((m) => m.record.cluster);
  }

  /**
   * The lease is lost (or its deadline passed): stops every machine of the cluster here now,
   * then registers again with a new lease.
   */
  private async fence(why: string): Promise<void> {
    if (this.registered === null) return;
    this.registered = null;
    const at = now();
    const live = this.local().filter((m) => m.live);
    await Promise.all(live.map((m) => m.fence()));
    this.o.log(`cluster: fenced at ${at}: ${why}; stopped ${live.length} machine(s) by ${now()}${live.length ? `: ${live.map((m) => m.name).join(', ')}` : ''}`);
    for (const m of this.local()) await this.o.daemon.remove(m.id, true).catch(() => {});
    this.sending.clear();
    this.prepared.clear();
    while (!this.stopped && this.registered === null) {
      try {
        await this.register();
        this.kick();
      } catch {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Something changed: reconcile again (passes never overlap). */
  kick(): void {
    this.scheduler.kick();
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
        } catch (e) {
          this.o.log(`cluster: ${this.o.node}: ${(e as Error).message.split('\n')[0]}`);
        }
      } while (this.again && !this.stopped);
      this.running = false;
    })();
  }

  private holds(s: ClusterState): boolean {
    return this.registered !== null && BigInt(s.revision) >= this.registered && this.lease !== null && this.lease.valid;
  }

  private async pass(): Promise<void> {
    if (this.registered === null || this.stopped) return;
    const s = await readState(this.client, this.o.log);
    if (!this.holds(s)) return;
    const me = this.o.node;
    const byName = new Map(this.local().map((m) => [m.name, m]));
    for (const [name, a] of s.assigns) {
      if (a.value.node !== me) continue;
      const vm = s.vms.get(name);
      if (!vm || !vm.value.running) continue;
      await this.runHere(s, vm.value, byName.get(name));
    }
    for (const [name, m] of byName) {
      if (s.assigns.get(name)?.value.node === me) continue;
      const move = s.moves.get(name);
      if (move && move.value.to === me) await this.target(s, move, m);
      else await this.drop(m, `it is ${s.assigns.has(name) ? `assigned to ${s.assigns.get(name)!.value.node}` : 'not assigned to any node'}`);
    }
    for (const [name, move] of s.moves) {
      if (move.value.to === me && move.value.status === 'preparing' && !byName.has(name)) await this.prepare(s, name, move);
      if (move.value.from === me && move.value.status === 'ready' && !this.sending.has(move.value.id)) this.send(name, move.value, byName.get(name));
    }
    await this.publish(s);
  }

  /** A machine assigned here: it runs here. */
  private async runHere(s: ClusterState, vm: VmRecord, m: DaemonMachine | undefined): Promise<void> {
    if (m?.record.migratedTo !== undefined) {
      // It left for a target that never took it over (the target died or fenced): its last
      // state is lost, its disks are not; it starts again from them.
      if (s.moves.get(vm.name)?.value.from === this.o.node) return;
      this.o.log(`cluster: ${vm.name}: its migration never completed; starting it again from its disks`);
      await this.o.daemon.remove(m.id, true);
      m = undefined;
    }
    if (!m) {
      if ((this.retry.get(vm.name)?.at ?? 0) > Date.now()) return;
      m = this.o.daemon.adopt({ id: vm.id, name: vm.name, spec: vm.spec, restart: vm.restart });
      this.o.log(`cluster: starting ${vm.name} on ${this.o.node}`);
    } else if (m.live || m.state !== 'stopped') {
      return;
    } else if (!m.record.running) {
      // It stopped by itself and its restart policy let it be: so says the cluster too.
      const stop = m.info().stop;
      const cur = s.vms.get(vm.name)!;
      await new Txn(this.client).unchanged(KEYS.vm(vm.name), cur.rev)
        .put(KEYS.vm(vm.name), { ...vm, running: false, note: `stopped on ${this.o.node} (${stop?.reason ?? 'stopped'}${stop?.code ? ` ${stop.code}` : ''}) at ${now()}` } satisfies VmRecord)
        .commit();
      return;
    } else {
      return; // its restart policy restarts it
    }
    if (!this.lease?.valid) return;
    try {
      await m.start();
      this.retry.delete(vm.name);
    } catch (e) {
      // Another node may still let go of its disks (a fenced node quits its machines): again later.
      const delay = Math.min(5000, (this.retry.get(vm.name)?.delay ?? 125) * 2);
      this.retry.set(vm.name, { at: Date.now() + delay, delay });
      this.o.log(`cluster: ${vm.name}: cannot start on ${this.o.node} (again in ${delay} ms): ${(e as Error).message}`);
      await this.o.daemon.remove(m.id, true).catch(() => {});
    }
  }

  /** A machine here that the cluster has elsewhere (or nowhere): stopped and removed. */
  private async drop(m: DaemonMachine, why: string): Promise<void> {
    if (m.state === 'migrating') return; // its migration ends it either way
    if (m.live) this.o.log(`cluster: stopping ${m.name} on ${this.o.node}: ${why}`);
    await this.o.daemon.remove(m.id, true).catch((e: Error) => this.o.log(`cluster: ${m.name}: ${e.message}`));
  }

  /** Prepares to receive a moving machine: the waiting machine, and its address in the move. */
  private async prepare(s: ClusterState, name: string, move: At<Move>): Promise<void> {
    const vm = s.vms.get(name)?.value;
    if (!vm) return;
    let uri: string;
    let m: DaemonMachine;
    try {
      const spec = vm.spec.devices;
      ({ machine: m, uri } = await this.o.daemon.incoming({
        name, listen: `tcp:${this.o.address}:0`, disks: spec.disks, restart: vm.restart,
        cluster: { id: vm.id, nics: spec.nics, shares: spec.shares },
      }));
    } catch (e) {
      await this.fail(name, move, `${this.o.node} cannot take it: ${(e as Error).message}`);
      return;
    }
    const ready: Move = { ...move.value, status: 'ready', uri };
    const t = new Txn(this.client).unchanged(KEYS.move(name), move.rev).put(KEYS.move(name), ready);
    const ok = await t.commit().catch(() => false);
    if (!ok) {
      await this.o.daemon.remove(m.id, true).catch(() => {});
      return;
    }
    const r = await this.client.get(KEYS.move(name)).exec();
    const rev = r.kvs[0]?.mod_revision;
    if (rev) this.prepared.set(name, { id: move.value.id, rev });
  }

  /** This node is the target of a move and has a copy of the machine. */
  private async target(s: ClusterState, move: At<Move>, m: DaemonMachine): Promise<void> {
    const name = m.name;
    const mine = this.prepared.get(name);
    if (move.value.status === 'failed' || !mine || mine.id !== move.value.id) {
      if (m.state === 'incoming' || !m.live) await this.drop(m, 'its move failed');
      else this.o.log(`cluster: ${name} arrived, but its move is ${move.value.status}: stopping this copy`), await this.o.daemon.remove(m.id, true).catch(() => {});
      return;
    }
    if (m.state === 'running' || m.state === 'paused') {
      // It arrived: the source has stopped it. It is this node's now, if the move still says so.
      const ok = await new Txn(this.client).unchanged(KEYS.move(name), mine.rev).del(KEYS.move(name))
        .put(KEYS.assign(name), { node: this.o.node, reason: 'migrated', since: now() }).commit();
      if (ok) {
        this.prepared.delete(name);
        this.o.log(`cluster: ${name} arrived from ${move.value.from}; it runs on ${this.o.node} now`);
      }
      return;
    }
    if (m.state === 'incoming') {
      // A source that is gone can no longer send it (it fenced itself before its lease expired).
      if (!s.nodes.has(move.value.from)) await this.fail(name, move, `its source ${move.value.from} is gone`);
      return;
    }
    await this.fail(name, move, `${this.o.node} did not receive it: ${m.info().stop?.message ?? m.state}`);
  }

  /** Marks a move failed (the scheduler drops it). */
  private async fail(name: string, move: At<Move>, error: string): Promise<void> {
    const cur = await this.client.get(KEYS.move(name)).exec();
    const kv = cur.kvs[0];
    if (!kv || JSON.parse(kv.value.toString()).id !== move.value.id) return;
    await new Txn(this.client).unchanged(KEYS.move(name), kv.mod_revision).put(KEYS.move(name), { ...move.value, status: 'failed', error } satisfies Move).commit();
    this.o.log(`cluster: move of ${name} to ${move.value.to} failed: ${error}`);
  }

  /** This node is the source of a ready move: sends the machine. */
  private send(name: string, move: Move, m: DaemonMachine | undefined): void {
    if (!m || (m.state !== 'running' && m.state !== 'paused')) return;
    this.sending.set(move.id, name);
    const at = { value: move, rev: '' } as At<Move>;
    this.o.log(`cluster: sending ${name} to ${move.to} at ${move.uri}`);
    void (async () => {
      try {
        await m.migrate(move.uri!);
        const info = await new Promise<{ status: string; error?: string }>((resolve) => {
          const off = this.o.daemon.subscribe((e) => {
            if (e.id !== m.id) return;
            if (e.type === 'migration' && (e.info.status === 'completed' || e.info.status === 'failed')) {
              off();
              resolve(e.info);
            }
          });
          const i = m.info().migration;
          if (i && (i.status === 'completed' || i.status === 'failed')) {
            off();
            resolve(i);
          }
        });
        if (info.status === 'failed') throw new Error(info.error ?? 'the migration failed');
      } catch (e) {
        await this.fail(name, at, `the migration failed: ${(e as Error).message}`).catch(() => {});
      } finally {
        this.sending.delete(move.id);
        this.kick();
      }
    })();
  }

  /** Publishes the node's record and the state of each machine here, when they changed. */
  private async publish(s: ClusterState): Promise<void> {
    const lease = this.lease;
    if (!lease || !lease.valid) return;
    const rec = this.nodeRecord();
    const key = JSON.stringify({ ...rec, since: '' });
    if (key !== this.published || !s.nodes.has(this.o.node)) {
      const prev = s.nodes.get(this.o.node)?.value.since;
      await this.client.put(KEYS.node(this.o.node)).value(JSON.stringify({ ...rec, since: prev ?? rec.since })).lease(lease.leaseId);
      this.published = key;
    }
    const here = new Set<string>();
    for (const m of this.local()) {
      here.add(m.name);
      if (this.observed.get(m.name) === m.state) continue;
      await this.client.put(KEYS.observedOf(m.name, this.o.node)).value(JSON.stringify({ state: m.state, since: now() })).lease(lease.leaseId);
      this.observed.set(m.name, m.state);
    }
    for (const name of [...this.observed.keys()]) {
      if (here.has(name)) continue;
      await this.client.delete().key(KEYS.observedOf(name, this.o.node));
      this.observed.delete(name);
    }
  }

  /** Declares machines cluster-wide (POST /vms on this daemon); they run where the scheduler puts them. */
  async declare(req: DeclareRequest): Promise<Array<{ name: string; id: string; memory: number; restart: string; desired: string }>> {
    const made = await declare(this.client, req).catch((e: unknown) => Promise.reject(etcdError(e, 'create')));
    return made.map((r) => ({ name: r.name, id: r.id, memory: r.spec.memory, restart: r.restart, desired: r.running ? 'running' : 'stopped' }));
  }

  /** The cluster's status (GET /cluster). */
  status(): Promise<ClusterStatus> {
    return readStatus(this.client).catch((e: unknown) => Promise.reject(etcdError(e, 'cluster status')));
  }

  /** Stops reconciling (the daemon is stopping its machines). */
  pause(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Leaves the cluster: the lease is given back, so the node is gone at once. Call after its
   * machines stopped. An etcd it cannot reach gets LEAVE_MS: then the node just goes, and its
   * lease expires by itself (its machines are stopped already, so nothing waits on it).
   */
  async leave(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.offEvents?.();
    let timer: NodeJS.Timeout | undefined;
    const steps = (async () => {
      await this.scheduler.stop();
      await this.watcher?.cancel().catch(() => {});
      await this.lease?.release();
    })();
    const late = await Promise.race([steps.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), LEAVE_MS)))]);
    clearTimeout(timer);
    if (late) this.o.log(`cluster: ${this.o.node} left without etcd's answer (its lease expires by itself)`);
    this.lease?.abandon();
    this.client.close();
  }
}
