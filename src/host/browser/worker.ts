/**
 * The machine's Web Worker: builds a virt board from the images the page sends, runs it with
 * the core's Runner (the same run loop `virtus run` uses), and streams console output and the
 * monitor's counters back. The page stays responsive however long a slice of guest code runs.
 *
 * Guest RAM is a shared WebAssembly.Memory when the page is cross-origin isolated (COOP/COEP),
 * and an ordinary one otherwise: browsers only allow shared memory in isolated pages.
 */
import { Runner } from '../../machine/runner.ts';
import { collectStats } from '../../machine/stats.ts';
import { VirtBoard } from '../../machine/virt.ts';
import { isVirtusError } from '../../util/errors.ts';
import { attachDevices, type BrowserDevices } from './devices.ts';
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
let looping = false;
let devices: BrowserDevices | null = null;

function capabilities(): Capabilities {
  return {
    sharedMemory: scope.crossOriginIsolated === true,
    // Before boot: what the board can offer; after: what this machine has.
    consoleResize: devices ? devices.console !== null : true,
    disk: true,
    persistentDisk: devices?.persistent ?? false,
    snapshots: false,
  };
}

function setState(s: RunState, reason?: string): void {
  state = s;
  post({ type: 'state', state: s, ...(reason ? { reason } : {}) });
}

function sendStats(): void {
  if (board) post({ type: 'stats', time: performance.now(), stats: collectStats(board) });
}

function fail(e: unknown): void {
  output.flush();
  const message = isVirtusError(e) ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
  post({ type: 'error', message });
  setState('stopped', message);
}

async function boot(req: BootRequest): Promise<void> {
  const b = new VirtBoard({
    ramSize: req.ramSize,
    engine: req.engine,
    // With virtio-console the UART stays on: the kernel's first messages and /init's own
    // output come there before hvc0 exists. From then on the kernel writes its messages to
    // both consoles, so they show twice; hiding either console would lose output.
    console: (bytes) => output.write(bytes),
    sharedMemory: scope.crossOriginIsolated === true,
  });
  b.onVirtioError = (device, reason) => output.write(new TextEncoder().encode(`\r\n[virtus] ${device}: ${reason} (the device needs a reset)\r\n`));
  devices = await attachDevices(b, req, (bytes) => output.write(bytes));
  b.boot({
    kernel: req.kernel.bytes,
    kernelName: req.kernel.name,
    ...(req.initrd ? { initrd: req.initrd.bytes } : {}),
    append: [req.append, ...devices.append].filter(Boolean).join(' '),
    firmware: 'builtin',
  });
  board = b;
  runner = new Runner(b.machine, host);
  const caps = capabilities();
  post({ type: 'started', capabilities: caps, memory: caps.sharedMemory ? b.machine.memory : null, diskAttached: devices.disk !== null });
  setInterval(sendStats, STATS_MS);
  void loop();
}

/** Runs until the guest stops the machine or the page pauses it; a guest reboot restarts it. */
async function loop(): Promise<void> {
  if (!board || !runner || looping) return;
  looping = true;
  setState('running');
  try {
    for (;;) {
      const exit = await runner.run();
      output.flush();
      if (exit?.reason === 'reboot') {
        board.reboot();
        continue;
      }
      sendStats();
      if (exit) setState('stopped', exit.message ?? `the guest stopped the machine (${exit.reason}, code ${exit.code})`);
      else setState('paused');
      break;
    }
  } catch (e) {
    fail(e);
  } finally {
    looping = false;
  }
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
        devices?.console?.resize(m.cols, m.rows);
        break;
      case 'pause':
        if (state === 'running') {
          runner?.requestStop();
          host.wake();
        }
        break;
      case 'resume':
        if (state === 'paused') void loop();
        break;
      case 'snapshot':
        post({ type: 'error', message: 'snapshots are not implemented yet' });
        break;
    }
  } catch (err) {
    fail(err);
  }
};

post({ type: 'hello', capabilities: capabilities() });
