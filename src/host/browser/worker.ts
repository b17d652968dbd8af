/**
 * The machine's Web Worker: runs a Vm (vmm/vm.ts) for the page, the same machine, run loop and
 * devices `virtus run` has, built from the MachineSpec the page sends and the files it hands
 * over. Page messages become VmmActions; the machine's events become messages (console output,
 * state, counters every 250 ms). The page stays responsive however long a slice runs.
 *
 * Guest RAM is a shared WebAssembly.Memory when the page is cross-origin isolated (COOP/COEP),
 * and an ordinary one otherwise: browsers only allow shared memory in isolated pages.
 *
 * Snapshots are the CLI's files: a save is the savevm action; a load builds the snapshot's
 * machine beside the running one, with the tab's disk (which must be the disk the snapshot was
 * taken with), and only then replaces it. A snapshot that fails anywhere leaves the running
 * machine as it was. Compression is the core's portable codec (fflate): a browser has no
 * synchronous zlib.
 *
 * The tab's shared folder (vm-host.ts) is served to the page here too: files put, listed,
 * read, and all of them handed over before a reset, so the next worker starts with them. A
 * snapshot does not hold the folder's files (as the CLI's snapshots hold none of a --share):
 * a loaded machine that had a share gets the tab's folder as it is now, one that had none
 * gets none (a snapshot of `virtus run` without --share loads in any tab), and one with more
 * than one is refused.
 *
 * A machine can also arrive running instead of booting: received live from the daemon over a
 * WebSocket (ws-link.ts), as a restored snapshot with no disk, folder or NIC of the tab's — a
 * stream whose machine names one is refused before it runs. It leaves the same way (migrate).
 */
import { FsError } from '../../devices/virtio/9p/fs.ts';
import { isVirtusError, VirtusError } from '../../util/errors.ts';
import type { VmEvent, VmState } from '../../vmm/actions.ts';
import { createVm, receiveVm, restoreVm, snapshotShape } from '../../vmm/create.ts';
import { TAB_SHARE } from '../../vmm/spec.ts';
import type { Vm } from '../../vmm/vm.ts';
import type { BootRequest, Capabilities, PageMessage, ReceiveRequest, RunState, ShareFile, WorkerMessage } from './protocol.ts';
import { browserHartThreads, noHartThreads } from './hart-threads.ts';
import { BrowserRunnerHost, OutputBatcher } from './runner-host.ts';
import { BrowserVmHost, TAB_SHARE_LIMITS } from './vm-host.ts';
import { incomingWebSocket } from './ws-link.ts';

/** The part of DedicatedWorkerGlobalScope used here (the project compiles against the DOM library). */
interface WorkerScope {
  postMessage(message: WorkerMessage, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<PageMessage>) => void) | null;
  crossOriginIsolated?: boolean;
}

const scope = globalThis as unknown as WorkerScope;
/** How often the counters go to the page (the panel's charts sample at this rate). */
const STATS_MS = 250;

const post = (m: WorkerMessage, transfer: Transferable[] = []): void => scope.postMessage(m, transfer);

const output = new OutputBatcher((bytes) => post({ type: 'output', bytes }, [bytes.buffer]));
const encoder = new TextEncoder();
const runner = new BrowserRunnerHost(() => output.flush());
const whyNoThreads = noHartThreads(scope.crossOriginIsolated === true);
// Beside this worker's script: virtus web bundles hart-worker.js next to it.
if (whyNoThreads === null) runner.threads = browserHartThreads(new URL('./hart-worker.js', import.meta.url));
const host = new BrowserVmHost({
  runner,
  sharedMemory: scope.crossOriginIsolated === true,
  warn: (line) => output.write(encoder.encode(`\r\n[${line.replace(/^virtus: /, 'virtus] ')}\r\n`)),
});
let vm: Vm | null = null;
/** Snapshot operations, one at a time. */
let busy: Promise<void> = Promise.resolve();

function capabilities(): Capabilities {
  return {
    sharedMemory: scope.crossOriginIsolated === true,
    // Before boot: what the board can offer; after: what this machine has.
    consoleResize: vm ? vm.spec.devices.console === 'virtio' : true,
    disk: true,
    persistentDisk: host.persistentDisk,
    snapshots: true,
    share: vm ? vm.spec.devices.shares.length > 0 : false,
    noHartThreads: whyNoThreads,
  };
}

/** What the Files panel shows. */
function listing(id: number): WorkerMessage {
  const files = host.share.listFiles().map((f) => ({ path: f.path, size: f.size, mtimeMs: Number(f.mtimeNs / 1_000_000n) }));
  return { type: 'share-listed', id, files, bytesUsed: host.share.bytesUsed, maxBytes: TAB_SHARE_LIMITS.maxBytes };
}

/** Puts a file the user dropped in the folder; a name or size the folder refuses is one line. */
function putFile(path: string[], bytes: Uint8Array): void {
  try {
    host.share.putFile(path, bytes);
  } catch (e) {
    if (!(e instanceof FsError)) throw e;
    throw new VirtusError('SHARE_PUT', `cannot put ${JSON.stringify(path.join('/'))} in the shared folder: ${e.message}`);
  }
}

/** A copy of a file of the folder, for a download. */
function getFile(path: string[]): Uint8Array {
  try {
    return host.share.getFile(path);
  } catch (e) {
    if (!(e instanceof FsError)) throw e;
    throw new VirtusError('SHARE_GET', `cannot read ${JSON.stringify(path.join('/'))} from the shared folder: ${e.message}`);
  }
}

function exportFiles(): ShareFile[] {
  return host.share.listFiles().map((f) => ({ path: f.path, bytes: host.share.getFile(f.path) }));
}

/** The page's four states. */
function runState(s: VmState): RunState {
  return s === 'created' || s === 'incoming' ? 'booting' : s === 'migrating-out' ? 'running' : s;
}

/** One line for the user about `e`: a VirtusError's own message, anything else as internal. */
function describe(e: unknown): string {
  return isVirtusError(e) ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
}

function fail(e: unknown): void {
  output.flush();
  const message = describe(e);
  post({ type: 'error', message });
  post({ type: 'state', state: 'stopped', reason: message });
}

/** The events of machine `m`, while it is the tab's machine. */
function listener(self: () => Vm | null): (e: VmEvent) => void {
  return (e) => {
    const m = self();
    if (m !== vm) return;
    if (e.type === 'output') output.write(e.bytes);
    else if (e.type === 'migration') post({ type: 'migration', info: e.info });
    else if (e.type === 'state' && e.state !== 'stopped') post({ type: 'state', state: runState(e.state) });
    else if (e.type === 'stop') {
      output.flush();
      sendStats();
      const r = e.info;
      post({ type: 'state', state: 'stopped', reason: r.message ?? `the guest stopped the machine (${r.reason}, code ${r.code})` });
    }
  };
}

function sendStats(): void {
  const time = performance.now();
  void vm?.handle({ type: 'query-stats' }).then((stats) => post({ type: 'stats', time, stats }));
}

async function boot(req: BootRequest): Promise<void> {
  host.term = { cols: req.cols, rows: req.rows };
  for (const f of req.files) host.files.set(f.name, f.bytes);
  for (const f of req.shareFiles) {
    try {
      putFile(f.path, f.bytes);
    } catch (e) {
      host.warn(describe(e));
    }
  }
  let m: Vm | null = null;
  m = await createVm(req.spec, host, { on: listener(() => m) });
  vm = m;
  const caps = capabilities();
  post({ type: 'started', capabilities: caps, memory: caps.sharedMemory ? m.board.machine.memory : null, diskAttached: m.spec.devices.disks.length > 0 });
  setInterval(sendStats, STATS_MS);
  await m.handle({ type: 'start' });
}

/** Answers a request about the shared folder at once (it is never busy). */
function answer(id: number, op: () => WorkerMessage, transfer: (m: WorkerMessage) => Transferable[] = () => []): void {
  let m: WorkerMessage;
  try {
    m = op();
  } catch (e) {
    m = { type: 'refused', id, message: describe(e) };
  }
  post(m, transfer(m));
}

/** How a received machine's resources are named in messages: a tab gives it none. */
const TAB_RESOURCES = {
  disk: 'the tab', share: 'the tab', nic: 'the tab', memory: 'the tab',
  mismatch: (want: number, _got: number, what: string) => `the machine has ${want} ${what}${want === 1 ? '' : 's'}, and a browser tab cannot open the host's: it runs only machines without disks, shared folders and NICs`,
};

/** Receives a running machine from the daemon and runs it here. */
async function receive(req: ReceiveRequest): Promise<void> {
  host.term = { cols: req.cols, rows: req.rows };
  const link = await incomingWebSocket(req.url, {
    output: (b) => output.write(b),
    progress: (info) => post({ type: 'migration', info }),
  });
  // This worker holds one machine: its events are the tab's from the start.
  try {
    const got = await receiveVm(link, { disks: [], shares: [], nics: [], engine: 'jit' }, TAB_RESOURCES, host, { on: listener(() => vm) });
    vm = got.vm;
  } finally {
    link.close();
  }
  const caps = capabilities();
  post({ type: 'started', capabilities: caps, memory: caps.sharedMemory ? vm.board.machine.memory : null, diskAttached: false });
  setInterval(sendStats, STATS_MS);
  await vm.handle({ type: 'console-resize', ...host.term }).catch(() => {});
}

/** Runs a snapshot operation, one at a time; the answer goes to the page by `id`. */
function serially(id: number, op: () => Promise<WorkerMessage>, transfer: (m: WorkerMessage) => Transferable[] = () => []): void {
  busy = busy.then(async () => {
    let answer: WorkerMessage;
    try {
      answer = await op();
    } catch (e) {
      answer = { type: 'refused', id, message: describe(e) };
    }
    post(answer, transfer(answer));
  });
}

async function save(id: number): Promise<WorkerMessage> {
  if (!vm) throw new VirtusError('NO_SNAPSHOT', 'the machine has not booted yet: nothing to save');
  if (vm.state === 'stopped') throw new VirtusError('NO_SNAPSHOT', 'the machine has stopped: nothing to save');
  const s = await vm.handle({ type: 'savevm' });
  return { type: 'saved', id, parts: s.parts, ms: s.ms };
}

/** Builds the snapshot's machine beside the current one and, once it is whole, puts it in its place. */
async function restore(id: number, name: string, bytes: Uint8Array): Promise<WorkerMessage> {
  const old = vm;
  if (!old) throw new VirtusError('NOT_BOOTED', 'the machine is still starting: load the snapshot once it runs');
  const t = performance.now();
  const wasRunning = old.state === 'running';
  if (wasRunning) await old.handle({ type: 'pause' });
  let m: Vm | null = null;
  try {
    // The tab's folder is the one share a tab has: a snapshot's machine gets it if it had a share (whatever its tag), and none if it had none.
    const shares = snapshotShape(bytes, name).devices.shares.slice(0, 1).map(() => ({ path: TAB_SHARE.tag, tag: TAB_SHARE.tag, readonly: false }));
    m = await restoreVm(
      bytes,
      name,
      { disks: old.spec.devices.disks, shares, nics: old.spec.devices.nics, engine: old.spec.engine },
      {
        disk: 'the tab', share: 'the tab', nic: 'the tab', memory: 'the tab',
        mismatch: (want, got, what) => `the snapshot's machine has ${want || 'no'} ${what}${want === 1 ? '' : 's'} and this one has ${got || 'none'}: boot with ${want ? 'them' : 'none'}, then load the snapshot`,
      },
      host,
      { on: listener(() => m) },
    );
  } catch (e) {
    if (wasRunning && (old.state as VmState) === 'paused') await old.handle({ type: 'resume' });
    throw e;
  }
  vm = m;
  await old.handle({ type: 'quit' });
  // The guest learns the terminal's size now, not the one saved with the snapshot.
  await m.handle({ type: 'console-resize', ...host.term });
  output.flush();
  // It runs on as the old one did (the page's Pause stands).
  if (wasRunning) await m.handle({ type: 'resume' });
  else post({ type: 'state', state: 'paused' });
  const caps = capabilities();
  return { type: 'restored', id, ms: performance.now() - t, capabilities: caps, memory: caps.sharedMemory ? m.board.machine.memory : null, diskAttached: m.spec.devices.disks.length > 0 };
}

scope.onmessage = (e) => {
  const m = e.data;
  try {
    switch (m.type) {
      case 'boot':
        if (!vm) boot(m).catch(fail);
        break;
      case 'receive':
        if (!vm) receive(m).catch(fail);
        break;
      case 'migrate': {
        // As the daemon's own moves: a guest that dirties memory faster than the link carries is slowed until it converges.
        const v = vm;
        void v
          ?.handle({ type: 'migrate-set-capabilities', capabilities: [{ capability: 'auto-converge', state: true }] })
          .then(() => v.handle({ type: 'migrate', uri: m.url }))
          .catch((err: unknown) => post({ type: 'error', message: describe(err) }));
        break;
      }
      case 'input':
        void vm?.handle({ type: 'console-input', bytes: m.bytes });
        break;
      case 'resize':
        host.term = { cols: m.cols, rows: m.rows };
        void vm?.handle({ type: 'console-resize', cols: m.cols, rows: m.rows });
        break;
      case 'pause':
        void vm?.handle({ type: 'pause' }).catch(() => {});
        break;
      case 'resume':
        void vm?.handle({ type: 'resume' }).catch(() => {});
        break;
      case 'save':
        serially(m.id, () => save(m.id), (a) => (a.type === 'saved' ? [...new Set(a.parts.map((p) => p.buffer))] : []));
        break;
      case 'restore':
        serially(m.id, () => restore(m.id, m.name, m.bytes));
        break;
      case 'share-put':
        answer(m.id, () => (putFile([m.name], m.bytes), listing(m.id)));
        break;
      case 'share-list':
        answer(m.id, () => listing(m.id));
        break;
      case 'share-get':
        answer(m.id, () => ({ type: 'share-file', id: m.id, bytes: getFile(m.path) }), (a) => (a.type === 'share-file' ? [a.bytes.buffer] : []));
        break;
      case 'share-export':
        answer(m.id, () => ({ type: 'share-exported', id: m.id, files: exportFiles() }), (a) => (a.type === 'share-exported' ? a.files.map((f) => f.bytes.buffer) : []));
        break;
    }
  } catch (err) {
    fail(err);
  }
};

post({ type: 'hello', capabilities: capabilities() });
