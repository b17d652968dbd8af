/**
 * The human monitor of `virtus run`: one command per line, each answered with one line of JSON
 * (`{"ok":true,...}` or `{"ok":false,"error":"..."}`), on a unix socket (--monitor unix:PATH)
 * and at the Ctrl-A C prompt. Every command is a VmmAction on the machine (vmm/actions.ts);
 * QMP (qmp.ts) is the same actions with QEMU's names and shapes.
 */
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Capability } from '../../machine/migrate-params.ts';
import { isVirtusError, VirtusError } from '../../util/errors.ts';
import { parseSize } from '../../util/size.ts';
import type { Vm } from '../../vmm/vm.ts';

/** Writes a snapshot's parts to `path` (through a temporary file, renamed when complete). */
export function writeSnapshotFile(path: string, parts: Uint8Array[]): number {
  const tmp = `${path}.tmp-${process.pid}`;
  let bytes = 0;
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (const p of parts) {
        writeSync(fd, p);
        bytes += p.length;
      }
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new VirtusError('FILE_WRITE', `cannot write snapshot ${path}: ${(e as Error).message}`);
  }
  return bytes;
}

/** Saves the machine to `path` now; the machine runs on. */
export async function saveVm(vm: Vm, path: string): Promise<{ bytes: number; ms: number }> {
  const s = await vm.handle({ type: 'savevm' });
  const t = performance.now();
  const bytes = writeSnapshotFile(path, s.parts);
  return { bytes, ms: s.ms + performance.now() - t };
}

const round = (x: number): number => Math.round(x * 10) / 10;

const HELP = 'savevm FILE | migrate tcp:HOST:PORT | migrate_set_capability NAME on|off | migrate_set_parameter NAME VALUE | migrate_cancel | '
  + 'migrate_start_postcopy | info migrate | info migrate_capabilities | info migrate_parameters | info status | stop | cont | system_reset | system_powerdown | quit';

/** A monitor word as a parameter value: on/off, a number (sizes may have K/M/G), or text. */
function parameterValue(name: string, v: string): unknown {
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  if (/^\d+$/.test(v)) return Number(v);
  if (/^\d+(\.\d+)?[kKmMgGtT]i?[bB]?$/.test(v)) return parseSize(v, name, 'B');
  return v;
}

/** The states as the monitor has always named them. */
function statusName(state: string, running: boolean): string {
  if (state === 'stopped') return 'quit';
  if (state === 'migrating-out') return running ? 'running' : 'paused';
  return state === 'created' ? 'paused' : state;
}

/** Executes one monitor command line; the answer is one JSON object. */
export async function execute(vm: Vm, line: string): Promise<Record<string, unknown>> {
  const [cmd = '', ...args] = line.trim().split(/\s+/);
  try {
    const need = (n: number, usage: string): void => {
      if (args.length !== n) throw new VirtusError('MONITOR_USAGE', `usage: ${usage}`);
    };
    switch (cmd) {
      case 'savevm': {
        need(1, 'savevm FILE');
        const r = await saveVm(vm, args[0]!);
        return { ok: true, file: args[0], bytes: r.bytes, ms: round(r.ms) };
      }
      case 'migrate':
        need(1, 'migrate tcp:HOST:PORT');
        await vm.handle({ type: 'migrate', uri: args[0]! });
        return { ok: true, status: 'active' };
      case 'migrate_set_capability': {
        need(2, 'migrate_set_capability NAME on|off');
        if (args[1] !== 'on' && args[1] !== 'off') throw new VirtusError('MONITOR_USAGE', 'usage: migrate_set_capability NAME on|off');
        await vm.handle({ type: 'migrate-set-capabilities', capabilities: [{ capability: args[0] as Capability, state: args[1] === 'on' }] });
        return { ok: true };
      }
      case 'migrate_set_parameter':
        need(2, 'migrate_set_parameter NAME VALUE');
        await vm.handle({ type: 'migrate-set-parameters', parameters: { [args[0]!]: parameterValue(args[0]!, args[1]!) } });
        return { ok: true };
      case 'migrate_cancel':
      case 'migrate-cancel':
        need(0, 'migrate_cancel');
        await vm.handle({ type: 'migrate-cancel' });
        return { ok: true };
      case 'migrate_start_postcopy':
        need(0, 'migrate_start_postcopy');
        await vm.handle({ type: 'migrate-start-postcopy' });
        return { ok: true };
      case 'info': {
        need(1, 'info migrate|migrate_capabilities|migrate_parameters|status');
        if (args[0] === 'migrate') return { ok: true, ...(await vm.handle({ type: 'query-migrate' })) };
        if (args[0] === 'migrate_capabilities') return { ok: true, ...(await vm.handle({ type: 'query-migrate-capabilities' })) };
        if (args[0] === 'migrate_parameters') return { ok: true, ...(await vm.handle({ type: 'query-migrate-parameters' })) };
        if (args[0] === 'status') {
          const s = await vm.handle({ type: 'query-status' });
          return { ok: true, status: statusName(s.state, s.running), instret: s.instret };
        }
        throw new VirtusError('MONITOR_USAGE', `info: unknown item '${args[0]}' (try info status, info migrate)`);
      }
      case 'stop':
        need(0, 'stop');
        await vm.handle({ type: 'pause' });
        return { ok: true, status: 'paused' };
      case 'cont':
        need(0, 'cont');
        await vm.handle({ type: 'resume' });
        return { ok: true, status: 'running' };
      case 'system_reset':
        need(0, 'system_reset');
        await vm.handle({ type: 'reset' });
        return { ok: true };
      case 'system_powerdown':
        need(0, 'system_powerdown');
        await vm.handle({ type: 'powerdown' });
        return { ok: true };
      case 'quit':
        need(0, 'quit');
        await vm.handle({ type: 'quit' });
        return { ok: true };
      case 'help':
        return { ok: true, commands: HELP };
      case '':
        return { ok: false, error: 'empty command (try help)' };
      default:
        return { ok: false, error: `unknown command '${cmd}' (try help)` };
    }
  } catch (e) {
    if (isVirtusError(e)) return { ok: false, error: e.message };
    return { ok: false, error: `internal error: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * Listens on a unix socket at `path` (`flag` names the option in errors). Each connection gets
 * a handler for its text as it arrives, and a way to write back; handlers run one chunk at a
 * time, in order. Once `until` resolves (the machine has ended), the server stops listening
 * and every connection is closed after what was written to it, so no client keeps the
 * process alive. The socket file is removed at exit.
 */
export function serveUnix(
  path: string,
  flag: string,
  onConnection: (write: (text: string) => void, closed: Promise<void>) => (chunk: string) => Promise<void>,
  until?: Promise<unknown>,
): Promise<Server> {
  if (existsSync(path)) {
    if (!statSync(path).isSocket()) throw new VirtusError('BAD_FLAG', `run: ${flag} ${path} exists and is not a socket`, { exitCode: 2 });
    rmSync(path);
  }
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    let chain = Promise.resolve();
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    const handle = onConnection((t) => {
      if (!sock.destroyed) sock.write(t);
    }, closed);
    sock.on('data', (d: string) => {
      chain = chain.then(() => handle(d)).catch(() => void sock.destroy());
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new VirtusError('MONITOR_LISTEN', `run: ${flag} ${path}: ${e.message}`, { exitCode: 2 })));
    server.listen(path, () => {
      server.unref();
      // After the answers already on their way (the reply to a quit comes after the machine ends).
      void until?.then(() => setImmediate(() => {
        server.close();
        for (const s of sockets) s.end();
      }));
      process.once('exit', () => rmSync(path, { force: true }));
      resolve(server);
    });
  });
}

/** Serves the human monitor on --monitor unix:PATH. */
export function serveMonitor(vm: Vm, spec: string): Promise<Server> {
  const m = /^unix:(.+)$/.exec(spec);
  if (!m) throw new VirtusError('BAD_FLAG', `run: --monitor takes unix:PATH, not "${spec}"`, { exitCode: 2 });
  return serveUnix(m[1]!, '--monitor', (write) => {
    let buf = '';
    return async (chunk) => {
      buf += chunk;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        write(JSON.stringify(await execute(vm, line)) + '\n');
      }
    };
  }, vm.stopped());
}
