/**
 * The daemon's machines: creating them (from a MachineSpec, an image of the store, a snapshot,
 * or as the target of a migration), finding them by id or name, deleting them, keeping their
 * definitions in the state directory and bringing them back when the daemon starts, and the
 * memory limit. The HTTP layer (api.ts) only translates requests into calls of this class and
 * of DaemonMachine, which translate them into VmmActions on the machines' threads.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { parseMachineSpec, type MachineSpec, type NicSpec } from '../../../vmm/spec.ts';
import type { Resources } from '../../../vmm/shape.ts';
import { trimMemory } from '../native.ts';
import { BootFiles } from './boot-files.ts';
import { imageTemplate, type ImageOverrides } from './images.ts';
import { DaemonMachine, IN_A_TAB, type DaemonEvent, type MachineRecord, type RestartPolicy } from './machine.ts';
import { writeAtomic, type StateDir } from './state-dir.ts';

/** How the daemon runs. */
export interface DaemonOptions {
  state: StateDir;
  /** Guest RAM all running machines may hold together, in bytes. */
  maxMemory: number;
  log(line: string): void;
  /**
   * The daemon is a node of a cluster (cluster/agent.ts): the cluster's machines are defined in
   * etcd, so their definitions left in the state directory are dropped when it starts.
   */
  cluster?: boolean;
  /** The cluster lease's gate (cluster/lease-gate.ts): its machines run only while the lease holds. */
  lease?: SharedArrayBuffer;
}

/** A create request, as the API's schema has already checked it. */
export interface CreateRequest {
  name?: string;
  spec?: unknown;
  image?: string;
  snapshot?: string;
  count?: number;
  restart?: RestartPolicy;
  start?: boolean;
  memory?: number;
  harts?: number;
  append?: string;
  boot?: ImageOverrides['boot'];
  console?: ImageOverrides['console'];
  disks?: Resources['disks'];
}

/** A machine name: what `virtus ps` shows and every endpoint accepts in place of the id. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** Every this many CPU samples (2 s each), freed memory goes back to the system. */
const TRIM_TICKS = 15;

/** The machines of one daemon, and the policies over them. */
export class Daemon {
  private readonly machines = new Map<string, DaemonMachine>();
  private readonly listeners = new Set<(e: DaemonEvent) => void>();
  private cpuTimer: NodeJS.Timeout | null = null;

  /** The machines' boot files: shared, except the daemon's own copies in its state directory, read again. */
  private readonly bootFiles: BootFiles;

  constructor(readonly o: DaemonOptions) {
    const own = resolve(o.state.root) + sep;
    this.bootFiles = new BootFiles((path) => resolve(path).startsWith(own));
  }

  /** Loads the machines defined in the state directory and starts those the policy says. */
  async load(): Promise<void> {
    for (const id of readdirSync(this.o.state.machines)) {
      const file = join(this.o.state.machineDir(id), 'machine.json');
      let record: MachineRecord;
      try {
        record = JSON.parse(readFileSync(file, 'utf8')) as MachineRecord;
        if (record.id !== id) throw new Error(`it names id ${record.id}`);
        if (record.spec) record.spec = parseMachineSpec(record.spec, `${file}: spec`);
      } catch (e) {
        this.o.log(`virtus daemon: skipping ${file}: ${(e as Error).message}`);
        continue;
      }
      if (!record.spec || (record.cluster && this.o.cluster)) {
        // An incoming machine that never arrived, or a cluster's machine (etcd has it): nothing to keep.
        rmSync(this.o.state.machineDir(id), { recursive: true, force: true });
        continue;
      }
      const m = this.add(record);
      m.markStopped();
    }
    for (const m of this.machines.values()) {
      const r = m.record;
      if (r.restart === 'always' || (r.restart === 'on-failure' && r.running)) {
        m.start().catch((e: Error) => this.o.log(`virtus daemon: ${m.name}: cannot start: ${e.message}`));
      } else if (r.running) {
        r.running = false;
        this.save(r);
      }
    }
    let ticks = 0;
    this.cpuTimer = setInterval(() => {
      for (const m of this.machines.values()) m.sampleCpu();
      // What the machine threads freed (their translators' compilations, mostly) goes back to
      // the system, as QEMU does: glibc keeps it mapped otherwise (native/memory.c).
      if (++ticks % TRIM_TICKS === 0) trimMemory();
    }, 2000);
    this.cpuTimer.unref();
  }

  private add(record: MachineRecord): DaemonMachine {
    const m = new DaemonMachine(record, {
      save: (r) => this.save(r),
      publish: (e) => this.publish(e),
      reserve: (who, memory) => {
        this.reserve(who, memory);
        this.checkDisks(who);
      },
      dir: (id) => this.o.state.machineDir(id),
      bootFiles: (spec) => this.bootFiles.forSpec(spec),
      ...(this.o.lease ? { lease: this.o.lease } : {}),
      log: (line) => this.o.log(`virtus daemon: ${line}`),
    });
    this.machines.set(record.id, m);
    return m;
  }

  private save(r: MachineRecord): void {
    const dir = this.o.state.machineDir(r.id);
    if (!existsSync(dir)) return; // deleted meanwhile
    writeAtomic(join(dir, 'machine.json'), JSON.stringify(r, null, 2) + '\n');
  }

  /** Every machine, oldest first. */
  list(): DaemonMachine[] {
    return [...this.machines.values()].sort((a, b) => a.record.created.localeCompare(b.record.created) || a.name.localeCompare(b.name));
  }

  /** The machine with this id or name. */
  get(ref: string): DaemonMachine {
    const m = this.machines.get(ref) ?? [...this.machines.values()].find((x) => x.name === ref);
    if (!m) throw new VirtusError('NO_SUCH_VM', `no machine '${ref}'`);
    return m;
  }

  /** Guest RAM held by running machines. */
  usedMemory(): number {
    let n = 0;
    for (const m of this.machines.values()) if (m.live) n += m.memory;
    return n;
  }

  private reserve(who: DaemonMachine | null, memory: number): void {
    const used = this.usedMemory() - (who?.live ? who.memory : 0);
    if (used + memory > this.o.maxMemory) {
      const mib = (n: number): string => `${Math.round(n / 1048576)} MiB`;
      throw new VirtusError(
        'NO_MEMORY',
        `not enough memory: the machine needs ${mib(memory)}, running machines hold ${mib(used)} of the daemon's ${mib(this.o.maxMemory)} (--max-memory); stop a machine or raise the limit`,
      );
    }
  }

  /** Refuses to start a machine whose writable disk another running machine writes. */
  private checkDisks(who: DaemonMachine): void {
    const writes = (m: DaemonMachine): string[] => (m.record.spec?.devices.disks ?? []).filter((d) => !d.readonly).map((d) => d.overlay ?? d.file);
    const mine = new Set(writes(who));
    for (const m of this.machines.values()) {
      if (m === who || !m.live) continue;
      const shared = writes(m).find((f) => mine.has(f));
      if (shared) throw new VirtusError('DISK_IN_USE', `${shared} is written by the running machine '${m.name}': stop it first (or give this machine other disks)`);
    }
  }

  subscribe(f: (e: DaemonEvent) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private publish(e: DaemonEvent): void {
    for (const f of this.listeners) f(e);
  }

  private newRecord(name: string, o: Partial<MachineRecord>): MachineRecord {
    let id: string;
    do id = randomBytes(6).toString('hex');
    while (this.machines.has(id));
    return { id, name, spec: null, restart: 'no', running: false, created: new Date().toISOString(), owned: [], ...o };
  }

  private names(req: { name?: string }, count: number, stem: string): string[] {
    const taken = new Set([...this.machines.values()].map((m) => m.name));
    const names: string[] = [];
    if (req.name !== undefined) {
      if (!NAME.test(req.name)) throw new VirtusError('BAD_REQUEST', `name "${req.name}": use letters, digits, '_', '.', '-' (at most 63, starting with a letter or digit)`);
      for (let i = 1; i <= count; i++) names.push(count === 1 ? req.name : `${req.name}-${i}`);
    } else {
      const base = stem.replace(/[^a-zA-Z0-9_.-]/g, '-').replace(/^[^a-zA-Z0-9]+/, '').slice(0, 40) || 'vm';
      for (let i = 1; names.length < count; i++) if (!taken.has(`${base}-${i}`) && !names.includes(`${base}-${i}`)) names.push(`${base}-${i}`);
    }
    for (const n of names) if (taken.has(n)) throw new VirtusError('NAME_TAKEN', `a machine named '${n}' exists`);
    return names;
  }

  /** Creates machines; starts them when asked. Nothing is created when any part fails. */
  async create(req: CreateRequest): Promise<DaemonMachine[]> {
    const count = req.count ?? 1;
    const sources = [req.spec, req.image, req.snapshot].filter((x) => x !== undefined).length;
    if (sources !== 1) throw new VirtusError('BAD_REQUEST', 'give exactly one of spec, image, snapshot');
    if (req.image === undefined && (req.memory !== undefined || req.harts !== undefined || req.append !== undefined || req.boot !== undefined || req.console !== undefined)) {
      throw new VirtusError('BAD_REQUEST', 'memory, harts, append, boot and console go with image (a spec says them itself)');
    }
    if (req.snapshot === undefined && req.disks !== undefined && (req.image === undefined || req.disks.length > 0)) {
      throw new VirtusError('BAD_REQUEST', "disks goes with snapshot (with image, only [], which leaves out the image's disks)");
    }
    if (req.snapshot !== undefined && count !== 1) throw new VirtusError('BAD_REQUEST', 'a snapshot makes one machine (count 1): its disks are its own');
    const stem = req.image?.split(/[:@]/)[0]?.split('/').pop() ?? (req.snapshot !== undefined ? req.snapshot : 'vm');
    const names = this.names(req, count, stem);
    const records: MachineRecord[] = [];
    const base = { restart: req.restart ?? 'no' };
    if (req.spec !== undefined) {
      const spec = parseMachineSpec(req.spec, 'spec');
      for (const d of spec.devices.disks) if (d.overlay === 'auto') throw new VirtusError('BAD_SPEC', 'spec.devices.disks: overlay "auto" is deleted at each stop; give a path');
      for (const name of names) records.push(this.newRecord(name, { ...base, spec }));
    } else if (req.image !== undefined) {
      const t = await imageTemplate(this.o.state, req.image, { ...(req.memory !== undefined ? { memory: req.memory } : {}), ...(req.harts !== undefined ? { harts: req.harts } : {}), ...(req.append !== undefined ? { append: req.append } : {}), ...(req.boot ? { boot: req.boot } : {}), ...(req.console ? { console: req.console } : {}), ...(req.disks !== undefined ? { disks: false } : {}) });
      for (const name of names) {
        const r = this.newRecord(name, { ...base, image: req.image });
        const { spec, owned } = t.forMachine(this.o.state.machineDir(r.id));
        Object.assign(r, { spec, owned });
        records.push(r);
      }
    } else {
      const snap = this.snapshotInfo(req.snapshot!);
      const resources: Resources = { disks: req.disks ?? snap.resources.disks, shares: snap.resources.shares, nics: snap.resources.nics ?? [], engine: snap.resources.engine };
      records.push(this.newRecord(names[0]!, { ...base, spec: snap.spec, snapshot: { path: snap.path, resources } }));
    }
    const need = records.reduce((n, r) => n + (r.spec?.memory ?? 0), 0);
    if (req.start) this.reserve(null, need);
    else for (const r of records) this.reserve(null, r.spec?.memory ?? 0);
    const made: DaemonMachine[] = [];
    for (const r of records) {
      mkdirSync(this.o.state.machineDir(r.id), { recursive: true });
      this.save(r);
      const m = this.add(r);
      made.push(m);
      this.publish({ id: r.id, name: r.name, type: 'created' });
    }
    if (req.start) {
      const results = await Promise.allSettled(made.map((m) => m.start()));
      const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
    }
    return made;
  }

  /**
   * Prepares to receive a machine migrated from another host: a new machine in state incoming
   * whose thread listens on `listen`; resolves with it and the address the source must send to.
   */
  async incoming(req: {
    name?: string; listen: string; disks?: Resources['disks']; restart?: RestartPolicy;
    /** A cluster's move: the machine keeps its cluster id, NICs and folders. */
    cluster?: { id: string; nics: Resources['nics']; shares: Resources['shares'] };
  }): Promise<{ machine: DaemonMachine; uri: string }> {
    const [name] = this.names(req, 1, 'incoming');
    const c = req.cluster;
    if (c && this.machines.has(c.id)) throw new VirtusError('NAME_TAKEN', `a machine with id ${c.id} exists here`);
    const r = this.newRecord(name!, {
      restart: req.restart ?? 'no',
      snapshot: { path: '', resources: { disks: req.disks ?? [], shares: c?.shares ?? [], nics: c?.nics ?? [], engine: 'jit' } },
      ...(c ? { id: c.id, cluster: true } : {}),
    });
    mkdirSync(this.o.state.machineDir(r.id), { recursive: true });
    this.save(r);
    const m = this.add(r);
    this.publish({ id: r.id, name: r.name, type: 'created' });
    try {
      return { machine: m, uri: await m.receive(req.listen) };
    } catch (e) {
      await this.remove(m.id, true);
      throw e;
    }
  }

  /**
   * Defines a machine the cluster assigned to this node, under the cluster's id and name (not
   * started). Its disks are the cluster's (shared storage): removing it never deletes them.
   */
  adopt(o: { id: string; name: string; spec: MachineSpec; restart: RestartPolicy }): DaemonMachine {
    if (this.machines.has(o.id)) throw new VirtusError('NAME_TAKEN', `a machine with id ${o.id} exists here`);
    this.names({ name: o.name }, 1, o.name);
    const r: MachineRecord = { id: o.id, name: o.name, spec: o.spec, restart: o.restart, running: false, created: new Date().toISOString(), owned: [], cluster: true };
    mkdirSync(this.o.state.machineDir(r.id), { recursive: true });
    this.save(r);
    const m = this.add(r);
    this.publish({ id: r.id, name: r.name, type: 'created' });
    return m;
  }

  /** Deletes a machine (a running one only with `force`: it is powered off hard first). */
  async remove(ref: string, force = false): Promise<void> {
    const m = this.get(ref);
    if (m.live || m.state === 'stopping') {
      if (!force) throw new VirtusError('VMM_STATE', `rm: the machine is ${m.state} (stop it first, or force)`);
      await m.stop({ force: true }).catch(() => {});
    }
    this.machines.delete(m.id);
    // A machine that migrated away handed its disks to the target: those stay (one that moved
    // into a browser tab had none). A cluster's machine owns no disk here, and its directory
    // holds only what this node kept of it.
    const handedOver = m.record.migratedTo !== undefined && m.record.migratedTo !== IN_A_TAB && !m.record.cluster;
    if (!handedOver) for (const f of m.record.owned) rmSync(f, { force: true });
    rmSync(join(this.o.state.machineDir(m.id), 'machine.json'), { force: true });
    if (!handedOver) rmSync(this.o.state.machineDir(m.id), { recursive: true, force: true });
    this.publish({ id: m.id, name: m.name, type: 'deleted' });
  }

  /** Saves a machine to the snapshot `name` (in the state directory). */
  async snapshot(ref: string, name: string): Promise<{ name: string; path: string; bytes: number; ms: number }> {
    const m = this.get(ref);
    if (!NAME.test(name)) throw new VirtusError('BAD_REQUEST', `snapshot name "${name}": use letters, digits, '_', '.', '-'`);
    const path = join(this.o.state.snapshots, `${name}.snap`);
    const r = await m.savevm(path);
    const spec = m.record.spec!;
    writeAtomic(
      join(this.o.state.snapshots, `${name}.json`),
      JSON.stringify({ machine: m.name, spec, resources: { disks: spec.devices.disks, shares: spec.devices.shares, nics: spec.devices.nics, engine: spec.engine } }, null, 2) + '\n',
    );
    return { name, path, bytes: r.bytes, ms: Math.round(r.ms * 10) / 10 };
  }

  /**
   * Forks a running (or paused) machine: `count` new machines that go on from its state now —
   * its RAM and devices (a snapshot) and its disks (a copy of each overlay, made while the
   * machine is held between two slices with its disks flushed, so every clone has its own
   * copy-on-write layer over the same base). The source runs on. Writable disks must be
   * overlays: a clone never copies a whole disk.
   */
  async clone(ref: string, o: { count?: number; name?: string; start?: boolean; restart?: RestartPolicy }): Promise<DaemonMachine[]> {
    const src = this.get(ref);
    const spec = src.record.spec;
    if (!spec || (src.state !== 'running' && src.state !== 'paused')) throw new VirtusError('VMM_STATE', `clone: the machine is ${src.state}`);
    const plain = spec.devices.disks.find((d) => !d.readonly && d.overlay === undefined);
    if (plain) throw new VirtusError('NO_CLONE', `clone: the disk ${plain.file} is written in place; a clone needs each writable disk to be an overlay`);
    const count = o.count ?? 1;
    const names = this.names(o.name !== undefined ? { name: o.name } : {}, count, `${src.name}-clone`);
    if (o.start !== false) this.reserve(null, spec.memory * count);
    const stamp = `${src.name}-clone-${Date.now().toString(36)}`;
    const snapPath = join(this.o.state.snapshots, `${stamp}.snap`);
    const records = names.map((name) => this.newRecord(name, { restart: o.restart ?? 'no' }));
    const wasRunning = src.state === 'running';
    if (wasRunning) await src.action({ type: 'pause' });
    try {
      await src.action({ type: 'flush' });
      await src.savevm(snapPath);
      for (const r of records) {
        mkdirSync(this.o.state.machineDir(r.id), { recursive: true });
        const disks = spec.devices.disks.map((d, i) => {
          if (d.readonly) return d;
          const copy = join(this.o.state.machineDir(r.id), `disk${i}.qcow2`);
          copyFileSync(d.overlay!, copy);
          r.owned.push(copy);
          return { ...d, overlay: copy };
        });
        const nics = spec.devices.nics.map(freshNic);
        r.spec = { ...spec, devices: { ...spec.devices, disks, nics } };
        r.snapshot = { path: snapPath, resources: { disks, shares: spec.devices.shares, nics, engine: spec.engine, freshMacs: true } };
      }
    } finally {
      if (wasRunning) await src.action({ type: 'resume' }).catch(() => {});
    }
    const made = records.map((r) => {
      this.save(r);
      const m = this.add(r);
      this.publish({ id: r.id, name: r.name, type: 'created' });
      return m;
    });
    if (o.start !== false) {
      const results = await Promise.allSettled(made.map((m) => m.start()));
      const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
    }
    return made;
  }

  private snapshotInfo(name: string): { path: string; spec: MachineSpec; resources: Resources } {
    const path = resolve(this.o.state.snapshots, `${name}.snap`);
    const meta = resolve(this.o.state.snapshots, `${name}.json`);
    if (!NAME.test(name) || !existsSync(path) || !existsSync(meta)) throw new VirtusError('NO_SUCH_SNAPSHOT', `no snapshot '${name}' in ${this.o.state.snapshots}`);
    const j = JSON.parse(readFileSync(meta, 'utf8')) as { spec: unknown; resources: Resources };
    return { path, spec: parseMachineSpec(j.spec, `snapshot ${name}`), resources: j.resources };
  }

  /** Snapshots in the state directory. */
  snapshots(): Array<{ name: string; machine: string; bytes: number }> {
    const out: Array<{ name: string; machine: string; bytes: number }> = [];
    for (const f of readdirSync(this.o.state.snapshots)) {
      if (!f.endsWith('.json')) continue;
      const name = f.slice(0, -5);
      try {
        const j = JSON.parse(readFileSync(join(this.o.state.snapshots, f), 'utf8')) as { machine: string };
        out.push({ name, machine: j.machine, bytes: statSync(join(this.o.state.snapshots, `${name}.snap`)).size });
      } catch {
        // a snapshot being written, or one whose file is gone
      }
    }
    return out;
  }

  /** Stops every machine's thread (their definitions keep saying whether they should run). */
  async shutdown(): Promise<void> {
    if (this.cpuTimer) clearInterval(this.cpuTimer);
    await Promise.all([...this.machines.values()].map((m) => m.shutdown()));
  }
}

/**
 * A clone's NIC: the source's backend with a new random MAC address (52:54:00:xx:xx:xx, QEMU's
 * prefix), so copies on one segment do not answer for each other; a user-mode NAT forwards no
 * host ports (the source holds them).
 */
function freshNic(n: NicSpec): NicSpec {
  const b = randomBytes(3);
  const mac = `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
  return { ...n, mac, backend: n.backend.type === 'user' ? { ...n.backend, hostfwd: [] } : n.backend };
}
