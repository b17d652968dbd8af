/**
 * The scheduler: one daemon of the cluster at a time, elected with etcd3's Election recipe
 * (every daemon campaigns; etcd orders the candidates by their keys' revisions and the oldest
 * leads; a leader whose lease expires loses its key, and the next one leads). The leader reads
 * the cluster and writes its decisions, each a transaction conditioned on what it read:
 *
 * - a machine that should run and has no node is assigned to the node with the most free
 *   memory (placement.ts), if that node is still alive;
 * - a machine whose node is gone (the node's lease expired, so the node has stopped it: see
 *   lease.ts) is assigned elsewhere if its restart policy is `always` or `on-failure`, on the
 *   condition that the dead node's key is still absent; otherwise it is marked stopped;
 * - a draining node's machines get moves (live migrations carried out by the two daemons,
 *   agent.ts), one at a time; the drain ends when the node has no machine, or stops with
 *   the reason when a machine cannot go anywhere or its migration failed three times;
 * - a rebalance moves one machine at a time off the fullest node above the threshold.
 *
 * Safety does not rest on the election: two leaders for a moment (an old one that has not yet
 * heard it lost) decide from reads, and only one of two conflicting transactions can succeed.
 */
import type { Campaign, Etcd3 } from 'etcd3';
import { randomBytes } from 'node:crypto';
import { KEYS, now, type Move, type VmRecord } from './model.ts';
import { pickNode, rebalanceStep } from './placement.ts';
import { readState, type ClusterState } from './state.ts';
import { Txn } from './txn.ts';

/**
 * Migrations out of one draining node at a time. One, as OpenStack Nova's default
 * (max_concurrent_live_migrations): two at once also shared the cores between the migrations'
 * stop-and-copy phases (`npm run bench -- cluster`, drain of 4: downtime 1.7-2.5x a single
 * migration's, worst 7x; one at a time: 1.4-2.0x, worst 2.6x).
 */
export const DRAIN_PARALLEL = 1;
/** A machine whose migration failed this often stops the drain. */
const MAX_MOVE_FAILURES = 3;

/** The scheduler's part of one daemon: campaigns, and decides while it leads. */
export class Scheduler {
  private campaign: Campaign | null = null;
  private leading = false;
  private stopped = false;
  private running = false;
  private again = false;
  private readonly failures = new Map<string, number>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly client: Etcd3,
    private readonly o: { node: string; ttl: number; log(line: string): void },
  ) {}

  /** True while this daemon is the elected scheduler. */
  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning (again after a lost campaign). */
  start(): void {
    if (this.stopped) return;
    const election = this.client.namespace(KEYS.electionNamespace).election(KEYS.electionName, this.o.ttl);
    const c = election.campaign(this.o.node);
    this.campaign = c;
    c.on('elected', () => {
      if (this.campaign !== c) return;
      this.leading = true;
      this.o.log(`cluster: ${this.o.node} is the scheduler`);
      this.kick();
    });
    c.on('error', (e: Error) => {
      if (this.campaign !== c) return;
      if (this.leading) this.o.log(`cluster: ${this.o.node} is no longer the scheduler: ${e.message}`);
      this.leading = false;
      this.campaign = null;
      void c.resign().catch(() => {});
      setTimeout(() => this.start(), 500).unref();
    });
  }

  /** Resigns (the daemon stops). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.leading = false;
    const c = this.campaign;
    this.campaign = null;
    await c?.resign().catch(() => {});
  }

  /** Something changed: decide again (passes never overlap; one more runs after a busy one). */
  kick(): void {
    if (!this.leading) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void (async () => {
      do {
        this.again = false;
        try {
          await this.pass(await readState(this.client, this.o.log));
        } catch (e) {
          this.o.log(`cluster: scheduler: ${(e as Error).message.split('\n')[0]}`);
        }
      } while (this.again && this.leading);
      this.running = false;
    })();
  }

  private warnOnce(key: string, line: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.o.log(line);
  }

  /** One round of decisions over one read (see the file's comment). */
  async pass(s: ClusterState): Promise<void> {
    await this.tidyMoves(s);
    await this.failover(s);
    await this.unassignStopped(s);
    await this.place(s);
    await this.drain(s);
    await this.rebalance(s);
  }

  private async tidyMoves(s: ClusterState): Promise<void> {
    for (const [name, m] of [...s.moves]) {
      const a = s.assigns.get(name);
      let why: string | null = null;
      if (m.value.status === 'failed') why = `failed: ${m.value.error ?? 'unknown error'}`;
      else if (!s.nodes.has(m.value.to)) why = `its target ${m.value.to} is gone`;
      else if (!a || a.value.node !== m.value.from) why = 'the machine is no longer on its source';
      if (why === null) continue;
      if (await new Txn(this.client).unchanged(KEYS.move(name), m.rev).del(KEYS.move(name)).commit()) {
        s.moves.delete(name);
        this.o.log(`cluster: move of ${name} ${m.value.from} -> ${m.value.to} ${why.startsWith('failed') ? why : `dropped: ${why}`}`);
        if (m.value.status === 'failed') this.failures.set(name, (this.failures.get(name) ?? 0) + 1);
      }
    }
  }

  private async failover(s: ClusterState): Promise<void> {
    for (const [name, a] of [...s.assigns]) {
      const dead = a.value.node;
      if (s.nodes.has(dead)) continue;
      // A move to a live target is settled by the target: its copy arrived (and it takes the
      // machine) or it did not (and it marks the move failed).
      const move = s.moves.get(name);
      if (move && s.nodes.has(move.value.to)) continue;
      const vm = s.vms.get(name);
      const t = new Txn(this.client).unchanged(KEYS.assign(name), a.rev).absent(KEYS.node(dead));
      if (move) t.unchanged(KEYS.move(name), move.rev).del(KEYS.move(name));
      if (vm && vm.value.running && vm.value.restart !== 'no') {
        const to = pickNode(s, vm.value.spec.memory);
        if (!to) {
          this.warnOnce(`failover-${name}-${a.rev}`, `cluster: ${name} lost its node ${dead}, and no node has ${vm.value.spec.memory >> 20} MiB free`);
          continue;
        }
        t.present(KEYS.node(to)).put(KEYS.assign(name), { node: to, reason: 'failover', since: now() });
        if (await t.commit()) {
          this.o.log(`cluster: ${name}: its node ${dead} is gone; restarting it on ${to}`);
          s.assigns.set(name, { value: { node: to, reason: 'failover', since: now() }, rev: '0' });
          s.moves.delete(name);
        }
      } else {
        t.del(KEYS.assign(name));
        if (vm) t.unchanged(KEYS.vm(name), vm.rev).put(KEYS.vm(name), { ...vm.value, running: false, note: `its node ${dead} died (${now()}); restart ${vm.value.restart}` } satisfies VmRecord);
        if (await t.commit()) {
          this.o.log(`cluster: ${name}: its node ${dead} is gone; restart policy ${vm?.value.restart ?? '-'}: left stopped`);
          s.assigns.delete(name);
        }
      }
    }
  }

  private async unassignStopped(s: ClusterState): Promise<void> {
    for (const [name, a] of [...s.assigns]) {
      const vm = s.vms.get(name);
      if (vm?.value.running) continue;
      const t = new Txn(this.client).unchanged(KEYS.assign(name), a.rev).del(KEYS.assign(name));
      if (vm) t.unchanged(KEYS.vm(name), vm.rev);
      else t.absent(KEYS.vm(name));
      if (await t.commit()) s.assigns.delete(name);
    }
  }

  private async place(s: ClusterState): Promise<void> {
    const waiting = [...s.vms.values()].filter((v) => v.value.running && !s.assigns.has(v.value.name))
      .sort((a, b) => Number(BigInt(a.rev) - BigInt(b.rev)) || a.value.created.localeCompare(b.value.created) || a.value.name.localeCompare(b.value.name));
    for (const vm of waiting) {
      const name = vm.value.name;
      const to = pickNode(s, vm.value.spec.memory);
      if (!to) {
        this.warnOnce(`place-${name}-${vm.rev}`, `cluster: ${name}: no node has ${vm.value.spec.memory >> 20} MiB free; it waits`);
        continue;
      }
      const value = { node: to, reason: 'placed' as const, since: now() };
      const ok = await new Txn(this.client).unchanged(KEYS.vm(name), vm.rev).absent(KEYS.assign(name)).present(KEYS.node(to))
        .put(KEYS.assign(name), value).commit();
      if (ok) s.assigns.set(name, { value, rev: '0' });
    }
  }

  private async startMove(s: ClusterState, name: string, from: string, to: string, reason: Move['reason'], extra: Txn): Promise<boolean> {
    const a = s.assigns.get(name)!;
    const move: Move = { id: randomBytes(6).toString('hex'), from, to, reason, status: 'preparing', created: now() };
    const ok = await extra.unchanged(KEYS.assign(name), a.rev).absent(KEYS.move(name)).present(KEYS.node(to)).put(KEYS.move(name), move).commit();
    if (ok) {
      s.moves.set(name, { value: move, rev: '0' });
      this.o.log(`cluster: moving ${name} ${from} -> ${to} (${reason})`);
    }
    return ok;
  }

  private async drain(s: ClusterState): Promise<void> {
    for (const [node, c] of s.cordons) {
      if (!c.value.drain) continue;
      const stop = async (error: string | null): Promise<void> => {
        const value = error === null ? { since: c.value.since, drain: false, drained: now() } : { since: c.value.since, drain: false, error };
        if (await new Txn(this.client).unchanged(KEYS.cordon(node), c.rev).put(KEYS.cordon(node), value).commit()) {
          this.o.log(`cluster: drain of ${node} ${error === null ? 'done' : `stopped: ${error}`}`);
          for (const name of s.assigns.keys()) this.failures.delete(name);
        }
      };
      const on = [...s.assigns].filter(([, a]) => a.value.node === node).map(([name]) => name).sort();
      const moving = on.filter((name) => s.moves.has(name));
      if (!on.length) {
        await stop(null);
        continue;
      }
      const failed = on.find((name) => (this.failures.get(name) ?? 0) >= MAX_MOVE_FAILURES);
      if (failed) {
        await stop(`the migration of ${failed} failed ${MAX_MOVE_FAILURES} times`);
        continue;
      }
      if (!s.nodes.has(node)) continue; // a dead node's machines fail over instead
      let slots = DRAIN_PARALLEL - moving.length;
      for (const name of on) {
        if (slots <= 0) break;
        if (s.moves.has(name)) continue;
        const vm = s.vms.get(name);
        if (!vm) continue;
        const to = pickNode(s, vm.value.spec.memory, [node]);
        if (!to) {
          if (!moving.length) await stop(`no other node has ${vm.value.spec.memory >> 20} MiB free for ${name}`);
          break;
        }
        if (await this.startMove(s, name, node, to, 'drain', new Txn(this.client).unchanged(KEYS.cordon(node), c.rev))) slots--;
      }
    }
  }

  private async rebalance(s: ClusterState): Promise<void> {
    const r = s.rebalance;
    if (!r || r.value.status !== 'pending') return;
    if ([...s.moves.values()].some((m) => m.value.reason === 'rebalance')) return;
    const step = rebalanceStep(s, r.value.threshold);
    const finish = (status: 'done' | 'failed', error?: string) =>
      new Txn(this.client).unchanged(KEYS.rebalance, r.rev).put(KEYS.rebalance, { ...r.value, status, ...(error ? { error } : {}) }).commit();
    if (step === null) {
      if (await finish('done')) this.o.log(`cluster: rebalance done (${r.value.moves} moves)`);
      return;
    }
    if (step === 'stuck') {
      await finish('failed', `a node is above ${Math.round(r.value.threshold * 100)}% of its memory and no machine on it fits elsewhere below that`);
      return;
    }
    if ((this.failures.get(step.vm) ?? 0) >= MAX_MOVE_FAILURES) {
      await finish('failed', `the migration of ${step.vm} failed ${MAX_MOVE_FAILURES} times`);
      return;
    }
    const t = new Txn(this.client).unchanged(KEYS.rebalance, r.rev).put(KEYS.rebalance, { ...r.value, moves: r.value.moves + 1 });
    await this.startMove(s, step.vm, step.from, step.to, 'rebalance', t);
  }
}
