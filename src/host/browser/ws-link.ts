/**
 * Migration links over a WebSocket, for a machine that moves between the daemon and a browser
 * tab (the daemon's side is host/node/daemon/tab-move.ts, which documents the messages):
 * binary messages carry the migration stream, text messages are JSON — the daemon's console
 * output, progress, answers and errors — and the tab's own answer is one text line.
 */
import type { IncomingLink } from '../../machine/migrate.ts';
import { VirtusError } from '../../util/errors.ts';
import type { MigrationInfo } from '../../vmm/actions.ts';
import type { MigrationLink } from '../../vmm/host.ts';

/** What the daemon's text messages tell the tab, besides the stream. */
export interface DaemonNotes {
  /** Console output of the machine while it still ran in the daemon. */
  output(bytes: Uint8Array): void;
  /** The daemon's side of the migration (the source's progress). */
  progress(info: MigrationInfo): void;
}

/** Largest message the tab sends: the daemon takes messages up to 1 MiB. */
const MAX_MESSAGE = 256 * 1024;
/** Bytes queued on the socket past which the sender waits (a browser WebSocket has no drain event). */
const HIGH_WATER = 4 << 20;

/** A text message of the daemon, checked: it is not trusted to have any shape. */
interface Note {
  output?: unknown;
  migration?: unknown;
  answer?: unknown;
  error?: { code?: unknown; message?: unknown };
}

function parseNote(text: string): Note {
  try {
    const j = JSON.parse(text) as unknown;
    if (j !== null && typeof j === 'object' && !Array.isArray(j)) return j as Note;
  } catch {
    // below
  }
  throw new VirtusError('TAB_PROTOCOL', `the daemon sent a message that is not a JSON object: ${text.slice(0, 80)}`);
}

function noteError(n: Note): VirtusError | null {
  if (!n.error) return null;
  const code = typeof n.error.code === 'string' ? n.error.code : 'MIGRATE_FAILED';
  return new VirtusError(code, typeof n.error.message === 'string' ? n.error.message : 'the daemon gave up the move');
}

function base64Bytes(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Opens a WebSocket for binary messages; resolves once it is open. */
function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new VirtusError('MIGRATE_CONNECT', 'cannot open the WebSocket to the daemon (is it running, and is the token right?)'));
  });
}

/** The target's side: a machine the daemon sends over the WebSocket at `url`. */
export async function incomingWebSocket(url: string, notes: DaemonNotes): Promise<IncomingLink & { close(): void }> {
  const ws = await open(url);
  const queue: Uint8Array[] = [];
  let ended = false;
  let error: Error | null = null;
  let wake: (() => void) | null = null;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
    if (typeof e.data !== 'string') {
      queue.push(new Uint8Array(e.data));
      return poke();
    }
    try {
      const n = parseNote(e.data);
      if (typeof n.output === 'string') notes.output(base64Bytes(n.output));
      if (n.migration && typeof n.migration === 'object') notes.progress(n.migration as MigrationInfo);
      error ??= noteError(n);
    } catch (err) {
      error ??= err as Error;
    }
    poke();
  };
  ws.onclose = () => {
    ended = true;
    poke();
  };
  return {
    chunks: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (error) throw error;
          if (queue.length) yield queue.shift()!;
          else if (ended) return;
          else await new Promise<void>((r) => (wake = r));
        }
      },
    },
    answer: (line) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(line);
    },
    close: () => ws.close(),
  };
}

/** The source's side: connects to the daemon's WebSocket at `url` and sends it the machine. */
export async function outgoingWebSocket(url: string): Promise<MigrationLink> {
  const ws = await open(url);
  let failure: Error | null = null;
  let answer: string | null = null;
  let waiter: { resolve: (l: string) => void; reject: (e: Error) => void } | null = null;
  const settle = (): void => {
    if (!waiter) return;
    if (answer !== null) waiter.resolve(answer);
    else if (failure) waiter.reject(failure);
    else return;
    waiter = null;
  };
  ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
    try {
      if (typeof e.data !== 'string') throw new VirtusError('TAB_PROTOCOL', 'the daemon sent binary data: it answers in text');
      const n = parseNote(e.data);
      if (answer === null && typeof n.answer === 'string') answer = n.answer;
      failure ??= noteError(n);
    } catch (err) {
      failure ??= err as Error;
    }
    settle();
  };
  ws.onclose = () => {
    failure ??= new VirtusError('MIGRATE_LINK', 'the daemon closed the WebSocket');
    settle();
  };
  return {
    async send(bytes) {
      for (let at = 0; at < bytes.length; at += MAX_MESSAGE) {
        if (failure) throw failure;
        // A target that refused answers at once: its answer says why.
        if (answer !== null && answer !== 'OK') throw new VirtusError('MIGRATE_REFUSED', `the daemon refused the machine: ${answer.replace(/^ERR /, '')}`);
        // A view of shared memory cannot be sent: copy it.
        ws.send(bytes.slice(at, Math.min(bytes.length, at + MAX_MESSAGE)));
        while (ws.bufferedAmount > HIGH_WATER && !failure) await new Promise((r) => setTimeout(r, 5));
      }
    },
    answer() {
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
        settle();
      });
    },
    close: () => ws.close(),
  };
}
