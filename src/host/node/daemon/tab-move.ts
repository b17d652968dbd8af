/**
 * Moving a running machine between the daemon and a browser tab, live: the web console's
 * "to tab" and "back" (src/host/browser/daemon/page.ts). A machine's thread speaks the migration
 * stream over a socket (migration-link.ts), the tab speaks WebSocket; this file bridges the two
 * through a unix socket made for the one move in the machine's own directory (the state
 * directory is the daemon user's alone, so no other local user can reach it). Both WebSockets
 * need the daemon's token on TCP, as every request does (api.ts).
 *
 * GET /vms/{id}/to-tab: the daemon migrates the machine out to the tab.
 *   daemon → tab  binary messages: the migration stream (machine/migrate.ts);
 *                 text messages, JSON: {"output": base64} the machine's console (its recent
 *                 output first, then live until it stopped here), {"migration": MigrationInfo}
 *                 progress, {"error": {code, message}} the move failed or was refused (the
 *                 socket then closes, and the machine runs on here).
 *   tab → daemon  one text message: the answer line (`OK`, or `ERR message`).
 * Once the tab answered OK the machine stops here (reason migrated, `migratedTo` "a browser
 * tab"): it stays listed, stopped, so the way back keeps its name, id and restart policy; `rm`
 * forgets it (the tab's copy runs on until the tab closes).
 *
 * GET /vms/{id}/from-tab: the tab migrates that machine back (only a machine that moved to a
 * tab can come back into its record).
 *   tab → daemon  binary messages: the migration stream.
 *   daemon → tab  text messages, JSON: {"answer": "OK" | "ERR message"}, then {"error": ...}
 *                 when the machine could not be taken back.
 * The stream is untrusted like any other: the machine's thread checks it (migrate-in.ts) and
 * binds no disk, folder or NIC, so a stream that names one is refused; a stream that fails
 * leaves the machine where it was (in the tab), and nothing else here changes.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { WebSocket } from 'ws';
import { isVirtusError, VirtusError } from '../../../util/errors.ts';
import type { MigrationInfo } from '../../../vmm/actions.ts';
import { IN_A_TAB, type DaemonEvent, type DaemonMachine } from './machine.ts';

/** What a move needs of the daemon besides the machine. */
export interface TabMoveContext {
  /** The machine's directory (the move's socket is made there). */
  dir: string;
  subscribe(f: (e: DaemonEvent) => void): () => void;
}

/** Bytes queued on the WebSocket past which the machine's stream waits (backpressure). */
const HIGH_WATER = 4 << 20;

function wire(e: unknown): { code: string; message: string } {
  if (isVirtusError(e)) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: `internal error: ${e instanceof Error ? e.message : String(e)}` };
}

function sendJson(ws: WebSocket, j: unknown): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(j));
}

/** Refuses, with one line and before anything moves, a machine that a tab cannot run. */
export function checkTabMovable(m: DaemonMachine): void {
  if (m.state !== 'running' && m.state !== 'paused') throw new VirtusError('VMM_STATE', `move to a tab: the machine is ${m.state}`);
  const d = m.record.spec!.devices;
  const disk = d.disks[0];
  const what = disk ? `a disk (${disk.overlay ?? disk.file})` : d.shares[0] ? `a shared folder (${d.shares[0].path})` : d.nics.length ? 'a network interface' : null;
  if (what) {
    throw new VirtusError('TAB_MOVE', `move to a tab: the machine has ${what}, which a browser tab cannot open; only a machine without disks, shared folders and NICs moves into a tab (e.g. one running from its initramfs)`);
  }
}

/** A unix socket path for one move, in the machine's directory. */
const socketPath = (dir: string): string => join(dir, `tab-${randomBytes(4).toString('hex')}.sock`);

/** Serves GET /vms/{id}/to-tab on an open WebSocket (see the file's comment). */
export function moveToTab(m: DaemonMachine, ws: WebSocket, ctx: TabMoveContext): void {
  let server: Server | null = null;
  let link: Socket | null = null;
  let path: string | null = null;
  let done = false;
  const cleanup: Array<() => void> = [];
  const finish = (error?: unknown): void => {
    if (done) return;
    done = true;
    if (error !== undefined) sendJson(ws, { error: wire(error) });
    for (const f of cleanup) f();
    server?.close();
    if (path) rmSync(path, { force: true });
    // A move that failed drops the link, so the machine's thread gives up and runs on.
    if (error !== undefined) link?.destroy();
    if (ws.readyState === ws.OPEN) ws.close(error === undefined ? 1000 : 1011);
  };
  let answered = false;
  ws.on('close', () => {
    // The tab went away: a move under way fails and the machine runs on here; a tab that has
    // answered already may go, its answer still reaches the machine's thread.
    if (answered) link?.end();
    else link?.destroy();
    finish();
  });
  ws.on('error', () => link?.destroy());
  try {
    checkTabMovable(m);
  } catch (e) {
    return finish(e);
  }
  path = socketPath(ctx.dir);
  const srv = createServer({ allowHalfOpen: true });
  server = srv;
  srv.on('connection', (sock: Socket) => {
    if (link) return void sock.destroy();
    link = sock;
    srv.close();
    sock.on('data', (d: Buffer) => {
      ws.send(d, { binary: true }, () => {
        if (sock.isPaused() && ws.bufferedAmount < HIGH_WATER / 2) sock.resume();
      });
      if (ws.bufferedAmount > HIGH_WATER) sock.pause();
    });
    sock.on('error', () => {});
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], binary: boolean) => {
      const b = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      // The tab says one thing: its answer line.
      if (binary || b.length > 4096 || b.includes(10)) return void finish(new VirtusError('TAB_PROTOCOL', 'the tab sent something other than its answer line'));
      if (answered) return void finish(new VirtusError('TAB_PROTOCOL', 'the tab answered twice'));
      answered = true;
      if (!sock.destroyed) sock.write(Buffer.concat([b, Buffer.from('\n')]));
    });
  });
  // Console output goes with the machine: what it printed lately, then live until it stops here.
  const recent = m.console.contents();
  if (recent.length) sendJson(ws, { output: Buffer.from(recent).toString('base64') });
  cleanup.push(m.attachConsole((b) => sendJson(ws, { output: Buffer.from(b).toString('base64') })));
  cleanup.push(ctx.subscribe((e) => {
    if (e.id !== m.id || e.type !== 'migration') return;
    sendJson(ws, { migration: e.info });
    endOf(e.info);
  }));
  const endOf = (info: MigrationInfo): void => {
    if (info.status === 'completed') finish();
    else if (info.status === 'failed') finish(new VirtusError('MIGRATE_FAILED', `the move to the tab failed: ${info.error ?? 'unknown error'}; the machine runs on in the daemon`));
    else if (info.status === 'cancelled') finish(new VirtusError('MIGRATE_CANCELLED', 'the move to the tab was cancelled; the machine runs on in the daemon'));
  };
  srv.once('error', (e) => finish(new VirtusError('TAB_MOVE', `move to a tab: cannot listen on ${path}: ${e.message}`)));
  srv.listen(path, () => {
    if (done) return;
    m.migrate(`unix:${path}`, { target: IN_A_TAB }).catch((e: unknown) => finish(e));
  });
}

/** Serves GET /vms/{id}/from-tab on an open WebSocket (see the file's comment). */
export function moveFromTab(m: DaemonMachine, ws: WebSocket, ctx: TabMoveContext): void {
  // Nothing is read from the tab until the machine's thread listens.
  ws.pause();
  let sock: Socket | null = null;
  let closed = false;
  const fail = (e: unknown): void => {
    sendJson(ws, { error: wire(e) });
    // Reading again lets the closing handshake through (a paused socket would wait out its timeout).
    ws.resume();
    if (ws.readyState === ws.OPEN) ws.close(1011);
  };
  ws.on('close', () => {
    closed = true;
    // A stream cut short: the machine's thread answers ERR to nobody and gives up.
    sock?.end();
  });
  ws.on('error', () => sock?.destroy());
  /** Stream bytes that came before the machine's thread listened (a paused socket may still hand over what it had read). */
  const early: Buffer[] = [];
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], binary: boolean) => {
    const b = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (!binary) {
      sock?.destroy();
      return fail(new VirtusError('TAB_PROTOCOL', 'the tab sent text: the stream is binary messages'));
    }
    if (!sock) return void early.push(b);
    if (!sock.destroyed && !sock.write(b)) {
      ws.pause();
      sock.once('drain', () => ws.resume());
    }
  });
  void (async () => {
    let arrived: Promise<void>;
    try {
      const r = await m.receiveFromTab(`unix:${socketPath(ctx.dir)}`);
      arrived = r.arrived;
      const c = connect(r.uri.slice('unix:'.length));
      await new Promise<void>((resolve, reject) => {
        c.once('connect', resolve);
        c.once('error', reject);
      });
      sock = c;
    } catch (e) {
      return fail(e);
    }
    const s = sock;
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      text += d;
      const i = text.indexOf('\n');
      if (i >= 0 && text.length - d.length <= i) sendJson(ws, { answer: text.slice(0, i) });
    });
    s.on('error', () => {});
    for (const b of early.splice(0)) s.write(b);
    if (closed) s.end();
    else ws.resume();
    arrived.then(
      () => {
        if (ws.readyState === ws.OPEN) ws.close(1000);
      },
      (e: unknown) => fail(e),
    );
  })();
}
