/**
 * The machine's Web Worker: builds a virt board from the images the page sends, runs it with
 * the core's Runner (the same run loop `virtus run` uses), and streams console output and the
 * monitor's counters back. The page stays responsive however long a slice of guest code runs.
 *
 * Guest RAM is a shared WebAssembly.Memory when the page is cross-origin isolated (COOP/COEP),
 * and an ordinary one otherwise: browsers only allow shared memory in isolated pages.
 *
 * Snapshots follow `virtus run` (--snapshot-on-exit, --restore): a save encodes the board
 * between slices with the core's encodeSnapshot; a restore opens the file, builds a fresh
 * board from its configuration with the same devices (the disk is the open working copy in
 * OPFS, which must be the disk the snapshot was taken with), applies it, and only then
 * replaces the running machine. A snapshot that fails anywhere leaves the old machine as it
 * was. Compression is the core's portable codec (fflate): a browser has no synchronous zlib.
 */
import { Runner } from '../../machine/runner.ts';
import { encodeSnapshot, openSnapshot, type HostConfig } from '../../machine/snapshot.ts';
import { collectStats } from '../../machine/stats.ts';
import { VirtBoard } from '../../machine/virt.ts';
import { isVirtusError, VirtusError } from '../../util/errors.ts';
import { attachDevices, checkDeviceConfig, deviceConfig, plugDevices, type BrowserDevices } from './devices.ts';
import type { BootRequest, Capabilities, PageMessage, RunState, WorkerMessage } from './protocol.ts';
import { BrowserRunnerHost, OutputBatcher } from './runner-host.ts';

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
const host = new BrowserRunnerHost(() => output.flush());
let board: VirtBoard | null = null;
let runner: Runner | null = null;
let state: RunState = 'booting';
/** The run loop while it runs; resolves when it has left its slice. */
let looping: Promise<void> | null = null;
/** The page's Pause and Resume. */
let pausedByPage = false;
/** True while a snapshot is being taken or applied: the machine stays between slices. */
let held = false;
/** Snapshot operations, one at a time. */
let busy: Promise<void> = Promise.resolve();
let devices: BrowserDevices | null = null;
/** How to rebuild this machine (a snapshot's configuration); null before boot. */
let hostConfig: HostConfig | null = null;
/** The terminal's size, for a restored virtio-console. */
let term = { cols: 80, rows: 24 };
/** False for a machine restored from a snapshot: it has no boot images to reboot from. */
let canReboot = true;
/** The engine the page asked for (a restored machine runs on it too). */
let engine: BootRequest['engine'] = 'jit';

function capabilities(): Capabilities {
  return {
    sharedMemory: scope.crossOriginIsolated === true,
    // Before boot: what the board can offer; after: what this machine has.
    consoleResize: devices ? devices.console !== null : true,
    disk: true,
    persistentDisk: devices?.persistent ?? false,
    snapshots: true,
  };
}

function setState(s: RunState, reason?: string): void {
  state = s;
  post({ type: 'state', state: s, ...(reason ? { reason } : {}) });
}

function sendStats(): void {
  if (board) post({ type: 'stats', time: performance.now(), stats: collectStats(board) });
}

/** One line for the user about `e`: a VirtusError's own message, anything else as internal. */
function describe(e: unknown): string {
  return isVirtusError(e) ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
}

function fail(e: unknown): void {
  output.flush();
  const message = describe(e);
  post({ type: 'error', message });
  setState('stopped', message);
}

function newBoard(ramSize: number, engine: BootRequest['engine'], deterministic = false): VirtBoard {
  const b = new VirtBoard({
    ramSize,
    engine,
    deterministic,
    // With virtio-console the UART stays on: the kernel's first messages and /init's own
    // output come there before hvc0 exists. From then on the kernel writes its messages to
    // both consoles, so they show twice; hiding either console would lose output.
    console: (bytes) => output.write(bytes),
    sharedMemory: scope.crossOriginIsolated === true,
  });
  b.onVirtioError = (device, reason) => output.write(new TextEncoder().encode(`\r\n[virtus] ${device}: ${reason} (the device needs a reset)\r\n`));
  return b;
}

async function boot(req: BootRequest): Promise<void> {
  engine = req.engine;
  term = { cols: req.cols, rows: req.rows };
  const b = newBoard(req.ramSize, req.engine);
  devices = await attachDevices(b, req, (bytes) => output.write(bytes));
  b.boot({
    kernel: req.kernel.bytes,
    kernelName: req.kernel.name,
    ...(req.initrd ? { initrd: req.initrd.bytes } : {}),
    append: [req.append, ...devices.append].filter(Boolean).join(' '),
    firmware: 'builtin',
  });
  hostConfig = { boot: 'builtin', htif: null, devices: deviceConfig(req) };
  board = b;
  runner = new Runner(b.machine, host);
  const caps = capabilities();
  post({ type: 'started', capabilities: caps, memory: caps.sharedMemory ? b.machine.memory : null, diskAttached: devices.disk !== null });
  setInterval(sendStats, STATS_MS);
  start();
}

/** Starts the run loop if the machine should run and is not already running. */
function start(): void {
  if (!board || !runner || looping || pausedByPage || held || state === 'stopped') return;
  looping = loop(board, runner).finally(() => (looping = null));
}

/** Runs until the guest stops the machine or it is asked to pause; a guest reboot restarts it. */
async function loop(b: VirtBoard, r: Runner): Promise<void> {
  setState('running');
  try {
    for (;;) {
      const exit = await r.run();
      output.flush();
      if (exit?.reason === 'reboot' && canReboot) {
        b.reboot();
        if (!pausedByPage && !held) continue;
        setState('paused');
        break;
      }
      sendStats();
      if (exit?.reason === 'reboot') setState('stopped', 'the guest rebooted, and a machine loaded from a snapshot has no boot images to reboot from');
      else if (exit) setState('stopped', exit.message ?? `the guest stopped the machine (${exit.reason}, code ${exit.code})`);
      else setState('paused');
      break;
    }
  } catch (e) {
    fail(e);
  }
}

/** Stops the run loop and waits until the machine is between slices. */
async function halt(): Promise<void> {
  if (!looping) return;
  runner?.requestStop();
  host.wake();
  await looping;
}

/**
 * Runs a snapshot operation with the machine stopped between slices, one at a time; then the
 * machine runs again unless the page paused it. The answer goes to the page by `id`.
 */
function withMachineStopped(id: number, op: () => WorkerMessage | Promise<WorkerMessage>, transfer: (m: WorkerMessage) => Transferable[] = () => []): void {
  busy = busy.then(async () => {
    held = true;
    let answer: WorkerMessage;
    try {
      await halt();
      answer = await op();
    } catch (e) {
      answer = { type: 'refused', id, message: describe(e) };
    }
    held = false;
    // Running again before the answer: the page sees the machine's state settled when it gets it.
    start();
    post(answer, transfer(answer));
  });
}

function save(id: number): WorkerMessage {
  if (!board || !hostConfig) throw new VirtusError('NO_SNAPSHOT', 'the machine has not booted yet: nothing to save');
  if (board.machine.exit) throw new VirtusError('NO_SNAPSHOT', 'the machine has stopped: nothing to save');
  const t = performance.now();
  const parts = encodeSnapshot(board, hostConfig);
  return { type: 'saved', id, parts, ms: performance.now() - t };
}

/** Builds the snapshot's machine beside the current one and, once it is whole, puts it in its place. */
function restore(id: number, name: string, bytes: Uint8Array): WorkerMessage {
  if (!board) throw new VirtusError('NOT_BOOTED', 'the machine is still starting: load the snapshot once it runs');
  const t = performance.now();
  const reader = openSnapshot(bytes, name);
  const c = reader.config;
  if (c.boot !== 'builtin' || c.htif) throw new VirtusError('INCOMPATIBLE', `snapshot ${name}: its machine ${c.htif ? 'uses HTIF' : `boots with firmware "${c.boot}"`}, which the web console does not run`);
  const config = checkDeviceConfig(c.devices);
  const b = newBoard(c.ramSize, engine, c.deterministic);
  const d = plugDevices(b, config, { disk: devices?.disk ?? null, persistent: devices?.persistent ?? false, ...term, output: (x) => output.write(x) });
  reader.restore(b);
  // The guest learns the terminal's size now, not the one saved with the snapshot.
  d.console?.resize(term.cols, term.rows);
  board = b;
  runner = new Runner(b.machine, host);
  devices = d;
  hostConfig = { boot: c.boot, htif: null, devices: config };
  canReboot = false;
  output.flush();
  if (state !== 'paused') setState('paused');
  const caps = capabilities();
  return { type: 'restored', id, ms: performance.now() - t, capabilities: caps, memory: caps.sharedMemory ? b.machine.memory : null, diskAttached: d.disk !== null };
}

scope.onmessage = (e) => {
  const m = e.data;
  try {
    switch (m.type) {
      case 'boot':
        if (!board) boot(m).catch(fail);
        break;
      case 'input':
        if (devices?.console) devices.console.write(m.bytes);
        else board?.consoleInput(m.bytes);
        host.wake();
        break;
      case 'resize':
        term = { cols: m.cols, rows: m.rows };
        devices?.console?.resize(m.cols, m.rows);
        break;
      case 'pause':
        pausedByPage = true;
        void halt();
        break;
      case 'resume':
        pausedByPage = false;
        start();
        break;
      case 'save':
        withMachineStopped(m.id, () => save(m.id), (a) => (a.type === 'saved' ? [...new Set(a.parts.map((p) => p.buffer))] : []));
        break;
      case 'restore':
        withMachineStopped(m.id, () => restore(m.id, m.name, m.bytes));
        break;
    }
  } catch (err) {
    fail(err);
  }
};

post({ type: 'hello', capabilities: capabilities() });
