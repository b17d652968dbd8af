/**
 * The worker thread of one daemon machine: it builds the Vm its WorkerInit describes on the
 * Node host (the same NodeVmHost `virtus run` uses), forwards the Vm's events to the daemon
 * and carries out the actions the daemon sends (protocol.ts). The thread holds the machine's
 * RAM, translator and open disks; a guest that spins keeps only this thread busy, and a
 * worker that dies takes nothing else with it.
 */
import { join } from 'node:path';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { useCodec } from '../../../machine/snapshot-format.ts';
import { isVirtusError } from '../../../util/errors.ts';
import type { VmEvent } from '../../../vmm/actions.ts';
import { receiveVm, restoreVm, createVm, type ResourceFlags } from '../../../vmm/create.ts';
import type { MachineSpec } from '../../../vmm/spec.ts';
import type { Vm, VmOptions } from '../../../vmm/vm.ts';
import { readHostFile } from '../files.ts';
import { receiveMigration } from '../migration-link.ts';
import { saveVm } from '../monitor.ts';
import { nodeCodec } from '../snapshot-codec.ts';
import { NodeVmHost } from '../vm-host.ts';
import { readGate } from '../cluster/lease-gate.ts';
import type { FromWorker, ToWorker, WireError, WorkerInit } from './protocol.ts';
import { writeAtomic } from './state-dir.ts';

/** How each kind of resource is named in the API, for the messages of a restore or migration. */
export const API_RESOURCES: ResourceFlags = {
  disk: 'devices.disks',
  share: 'devices.shares',
  nic: 'devices.nics',
  memory: 'memory',
  mismatch: (want, got, what) => `the machine has ${want} ${what}(s), but the request names ${got}: list each, in order`,
};

/** A failure as plain data. */
export function wireError(e: unknown): WireError {
  if (isVirtusError(e)) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: `internal error: ${e instanceof Error ? e.message : String(e)}` };
}

/** Console output gathered for one message per turn of the event loop (a guest prints bytewise). */
class OutputCoalescer {
  private chunks: Uint8Array[] = [];
  private scheduled = false;

  constructor(private readonly post: (m: FromWorker) => void) {}

  push(b: Uint8Array): void {
    this.chunks.push(b.slice());
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (!this.chunks.length) return;
    const bytes = Buffer.concat(this.chunks);
    this.chunks = [];
    this.post({ t: 'event', event: { type: 'output', bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) } });
  }
}

async function build(init: WorkerInit, host: NodeVmHost, o: VmOptions, post: (m: FromWorker) => void): Promise<Vm> {
  switch (init.kind) {
    case 'create':
      return createVm(init.spec, host, o);
    case 'restore':
      return restoreVm(readHostFile(init.snapshot, 'snapshot'), init.snapshot, init.resources, API_RESOURCES, host, o);
    case 'incoming': {
      const got = await receiveMigration(
        init.listen,
        (line) => post({ t: 'event', event: { type: 'warning', message: line } }),
        (link) => receiveVm(link, init.resources, API_RESOURCES, host, o),
        { listening: (uri) => post({ t: 'listening', uri }), ...(init.once ? { once: true } : {}), postcopy: o.migration?.capabilities?.['postcopy-ram'] === true },
      );
      return got.vm;
    }
  }
}

/**
 * The spec of a machine that arrived by migration, with its boot images (which came in the
 * stream) kept in `dir`: a later start (the restart policy, a reboot of the daemon) boots it
 * from them as any other machine.
 */
function keepBootImages(vm: Vm, dir: string): MachineSpec {
  const boot = vm.board.lastBoot;
  if (!boot) return vm.spec;
  const file = (name: string, bytes: Uint8Array): string => {
    writeAtomic(join(dir, name), bytes);
    return join(dir, name);
  };
  const b: MachineSpec['boot'] = { mode: vm.spec.boot.mode, append: vm.spec.boot.append, kernel: file('kernel', boot.kernel) };
  if (boot.initrd) b.initrd = file('initrd', boot.initrd);
  if (typeof boot.firmware === 'object') b.firmware = file('firmware', boot.firmware.bytes);
  return { ...vm.spec, boot: b };
}

/** Runs the machine of this worker thread (called once, in the worker). */
export async function vmWorkerMain(): Promise<void> {
  const port = parentPort as MessagePort;
  const init = workerData as WorkerInit;
  useCodec(nodeCodec);
  const post = (m: FromWorker): void => port.postMessage(m);
  const out = new OutputCoalescer(post);
  // Device warnings also arrive as 'warning' events (vmm/create.ts): the host log stays quiet.
  const gate = init.lease ? readGate(init.lease) : null;
  const files = init.kind === 'create' && init.files ? new Map(Object.entries(init.files).map(([k, v]) => [k, new Uint8Array(v)])) : undefined;
  const reread = init.kind === 'create' && init.reread ? new Set(init.reread) : undefined;
  const host = new NodeVmHost({ warn: () => {}, ...(files ? { files } : {}), ...(reread ? { reread } : {}), consoleSize: () => ({ cols: 80, rows: 24 }), ...(gate ? { mayWrite: gate.mayWrite } : {}) });
  if (gate) host.runner.gate = gate.mayRun;
  const o: VmOptions = {
    on: (e: VmEvent) => {
      if (e.type === 'output') return out.push(e.bytes);
      out.flush();
      post({ t: 'event', event: e });
    },
  };
  let vm: Vm;
  const queued: ToWorker[] = [];
  let ready = false;
  const serve = async (m: ToWorker): Promise<void> => {
    if (gate && m.t === 'action' && m.action.type === 'quit') {
      // Past the lease's expiry another node may run this machine: its disks are not touched
      // again, not even flushed (cluster/lease-gate.ts). Before it, the guest stops and flushes.
      if (!gate.mayWrite()) process.exit(0);
      host.runner.release();
    }
    try {
      const value = m.t === 'savevm' ? await saveVm(vm, m.path) : await vm.handle(m.action);
      post({ t: 'result', id: m.id, ok: true, value });
    } catch (e) {
      post({ t: 'result', id: m.id, ok: false, error: wireError(e) });
    }
  };
  port.on('message', (m: ToWorker) => (ready ? void serve(m) : queued.push(m)));
  try {
    vm = await build(init, host, o, post);
  } catch (e) {
    post({ t: 'failed', error: wireError(e) });
    return;
  }
  let announced!: () => void;
  const readyPosted = new Promise<void>((r) => (announced = r));
  // A guest may end before its first slice is over: the daemon hears `ready` first all the same.
  void vm.stopped().then(async (info) => {
    await readyPosted;
    out.flush();
    post({ t: 'stopped', info });
  });
  if (init.kind !== 'incoming' && init.start) {
    await vm.handle({ type: vm.state === 'created' ? 'start' : 'resume' }).catch(() => {});
  }
  let spec = vm.spec;
  if (init.kind === 'incoming') {
    try {
      spec = keepBootImages(vm, init.dir);
    } catch (e) {
      post({ t: 'event', event: { type: 'warning', message: `cannot keep the boot images: ${wireError(e).message}` } });
    }
  }
  post({ t: 'ready', state: vm.state, spec });
  announced();
  ready = true;
  for (const m of queued.splice(0)) void serve(m);
  // Fault injection for the daemon's isolation test: this machine's thread dies of an uncaught error.
  if (process.env.VIRTUS_WORKER_FAULT && process.env.VIRTUS_WORKER_FAULT === init.name) {
    setTimeout(() => {
      throw new Error('injected fault (VIRTUS_WORKER_FAULT)');
    }, 300);
  }
}
