/**
 * The exec page's Web Worker: runs the busybox shell (session.ts) a slice of scheduler turns
 * at a time, yielding to the event loop between slices so keys and resizes arrive. When every
 * guest process waits — on the terminal for input, or asleep — the loop parks: it sleeps on a
 * timer until the first sleeper's time (none when only input can help), and a key ends that
 * sleep at once. An idle shell thus costs no CPU: no turn runs until something happens.
 */
import { isVirtusError } from '../../../util/errors.ts';
import { BrowserRunnerHost, OutputBatcher } from '../runner-host.ts';
import type { ExecPageMessage, ExecStatus, ExecWorkerMessage } from './protocol.ts';
import { ExecSession, HOME } from './session.ts';

interface WorkerScope {
  postMessage(message: ExecWorkerMessage, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ExecPageMessage>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;
/** How long the loop runs turns before it lets the event loop run (input, resizes). */
const SLICE_MS = 20;
/** The longest timer a browser keeps (2^31 - 1 ms): a park with no timer waits on input only. */
const FOREVER_MS = 2 ** 31 - 1;
/** The most a dropped file may hold (the tree lives in this worker's memory). */
const PUT_MAX = 256 * 2 ** 20;
const SIGWINCH = 28;

const post = (m: ExecWorkerMessage, transfer: Transferable[] = []): void => scope.postMessage(m, transfer);
const output = new OutputBatcher((bytes) => post({ type: 'output', bytes }, [bytes.buffer]));
const runner = new BrowserRunnerHost(() => output.flush());
let session: ExecSession | null = null;
let loop: ExecStatus['loop'] = 'exited';

async function run(s: ExecSession): Promise<void> {
  for (;;) {
    let t;
    try {
      t = s.run(SLICE_MS);
    } catch (e) {
      loop = 'exited';
      output.flush();
      post({ type: 'error', message: isVirtusError(e) ? e.message : `the process VM failed: ${(e as Error).message}` });
      return;
    }
    if (t.state === 'exited') {
      loop = 'exited';
      output.flush();
      post({ type: 'exited', code: t.exit.code, signal: t.exit.signal, message: t.exit.message });
      return;
    }
    if (t.state === 'ran') {
      await runner.yield();
      continue;
    }
    const ms = t.wakeAt === null ? null : Math.max(0, Number(t.wakeAt - s.host.monotonicNs()) / 1e6);
    loop = t.hostWait ? (ms === null ? 'input' : 'input+timer') : 'timer';
    await runner.sleep(ms ?? FOREVER_MS);
    loop = 'running';
  }
}

/** A dropped file's name as one path component, or null. */
function fileName(name: string): string | null {
  const n = name.split(/[\\/]/).pop() ?? '';
  return n === '' || n === '.' || n === '..' || n.includes('\0') || new TextEncoder().encode(n).length > 255 ? null : n;
}

scope.onmessage = (e) => {
  const m = e.data;
  switch (m.type) {
    case 'start':
      session = new ExecSession({ busybox: m.busybox, applets: m.applets, engine: m.engine, screen: (b) => output.write(b) });
      session.tty.resize(m.cols, m.rows);
      loop = 'running';
      void run(session);
      break;
    case 'input':
      session?.tty.input(m.bytes);
      runner.wake();
      break;
    case 'resize':
      session?.tty.resize(m.cols, m.rows);
      session?.signalAll(SIGWINCH);
      runner.wake();
      break;
    case 'put': {
      const name = fileName(m.name);
      let error: string | null = null;
      if (!session) error = 'the shell has not started';
      else if (!name) error = `${m.name} is not a file name`;
      else if (m.bytes.length > PUT_MAX) error = `${name} is larger than ${PUT_MAX / 2 ** 20} MiB`;
      else {
        try {
          session.host.writeFile(`${HOME}/${name}`, m.bytes);
        } catch {
          error = `${name}: a directory of that name is in the way`;
        }
      }
      post({ type: 'put', id: m.id, error });
      break;
    }
    case 'status':
      post({
        type: 'status', id: m.id, turns: session?.turns ?? 0, loop,
        processes: session ? [...session.kernel.procs.values()].filter((p) => !p.exit).length : 0,
      });
      break;
  }
};
