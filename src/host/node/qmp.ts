/**
 * QMP, the QEMU Machine Protocol, on a unix socket (`--qmp unix:PATH`): the commands virtus
 * shares with QEMU, with QEMU's names and JSON shapes, so tools written for QEMU drive virtus.
 * Each is a VmmAction on the machine.
 *
 * A connection gets the greeting, must negotiate with `qmp_capabilities`, then sends
 * `{"execute": NAME, "arguments": {...}, "id": ...}` objects and gets `{"return": ...}` or
 * `{"error": {"class": ..., "desc": ...}}` (with the request's id), and asynchronous
 * `{"event": NAME, "data": {...}, "timestamp": {"seconds", "microseconds"}}` objects.
 */
import { type Server } from 'node:net';
import { isVirtusError, VirtusError } from '../../util/errors.ts';
import type { MigrationInfo, VmEvent, VmState } from '../../vmm/actions.ts';
import type { Vm } from '../../vmm/vm.ts';
import { saveVm, serveUnix } from './monitor.ts';
import { JsonSplitter } from './json-stream.ts';

/** The QEMU version whose QMP this follows. */
const VERSION = { qemu: { micro: 0, minor: 2, major: 7 }, package: 'virtus' };

type Json = Record<string, unknown>;

class QmpError extends Error {
  constructor(
    readonly cls: 'GenericError' | 'CommandNotFound' | 'DeviceNotActive',
    desc: string,
  ) {
    super(desc);
  }
}

function timestamp(): { seconds: number; microseconds: number } {
  const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
}

/** QEMU's RunState for a virtus machine state. */
function runState(s: VmState, running: boolean, stop?: string): string {
  switch (s) {
    case 'created': return 'prelaunch';
    case 'incoming': return 'inmigrate';
    case 'migrating-out': return running ? 'running' : 'finish-migrate';
    case 'stopped': return stop === 'migrated' ? 'postmigrate' : 'shutdown';
    default: return s;
  }
}

/** query-migrate's answer, as QEMU shapes it (MigrationInfo in qapi/migration.json). */
function migrationInfo(m: MigrationInfo): Json {
  if (m.status === 'none') return {};
  const status = m.status === 'stop-and-copy' ? 'device' : m.status;
  return {
    status,
    ...(m.totalMs !== undefined ? { 'total-time': Math.round(m.totalMs) } : {}),
    ...(m.downtimeMs !== undefined ? { downtime: Math.round(m.downtimeMs) } : {}),
    ram: { transferred: m.bytes ?? 0, 'dirty-sync-count': m.rounds ?? 0, 'dirty-pages-rate': 0, remaining: (m.dirtyPages ?? 0) * 4096, 'page-size': 4096 },
    ...(m.error ? { 'error-desc': m.error } : {}),
  };
}

/** Parses --qmp unix:PATH[,server=on|server][,wait=off|nowait]. */
export function parseQmpSpec(spec: string): string {
  const m = /^unix:([^,]+)((?:,[^,]*)*)$/.exec(spec);
  if (!m) throw new VirtusError('BAD_FLAG', `run: --qmp takes unix:PATH[,server=on,wait=off], not "${spec}"`, { exitCode: 2 });
  for (const opt of m[2]!.split(',').filter(Boolean)) {
    if (!['server', 'server=on', 'nowait', 'wait=off'].includes(opt)) {
      throw new VirtusError('BAD_FLAG', `run: --qmp: virtus serves QMP and never waits for a client; '${opt}' is not supported`, { exitCode: 2 });
    }
  }
  return m[1]!;
}

/** One QMP connection: the commands it may send, and its answers. */
class QmpSession {
  private negotiated = false;

  constructor(
    private readonly vm: Vm,
    private readonly send: (o: Json) => void,
  ) {
    send({ QMP: { version: VERSION, capabilities: ['oob'] } });
  }

  /** Delivers a machine event once the client has negotiated. */
  event(e: Json): void {
    if (this.negotiated) this.send(e);
  }

  async request(text: string): Promise<void> {
    let id: unknown;
    try {
      let msg: unknown;
      try {
        msg = JSON.parse(text);
      } catch (e) {
        throw new QmpError('GenericError', `JSON parse error, ${(e as Error).message}`);
      }
      if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new QmpError('GenericError', 'QMP input must be a JSON object');
      const o = msg as Json;
      id = o.id;
      const cmd = o.execute ?? o['exec-oob'];
      if (typeof cmd !== 'string') throw new QmpError('GenericError', "QMP input lacks member 'execute'");
      const args = (o.arguments ?? {}) as Json;
      if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new QmpError('GenericError', "QMP input member 'arguments' must be an object");
      const ret = await this.execute(cmd, args);
      this.send({ return: ret, ...(id !== undefined ? { id } : {}) });
    } catch (e) {
      const err = e instanceof QmpError ? { class: e.cls, desc: e.message } : { class: 'GenericError', desc: isVirtusError(e) ? e.message : `internal error: ${(e as Error).message}` };
      this.send({ error: err, ...(id !== undefined ? { id } : {}) });
    }
  }

  private async execute(cmd: string, args: Json): Promise<unknown> {
    if (cmd === 'qmp_capabilities') {
      if (this.negotiated) throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
      this.negotiated = true;
      return {};
    }
    if (!this.negotiated) throw new QmpError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
    const vm = this.vm;
    switch (cmd) {
      case 'query-status': {
        const s = await vm.handle({ type: 'query-status' });
        return { status: runState(s.state, s.running, s.stop?.reason), singlestep: false, running: s.running };
      }
      case 'query-version':
        return VERSION;
      case 'query-name':
        return {};
      case 'stop':
        if (vm.state === 'created') return {};
        await vm.handle({ type: 'pause' });
        return {};
      case 'cont':
        await vm.handle({ type: 'resume' });
        return {};
      case 'system_reset':
        await vm.handle({ type: 'reset' });
        return {};
      case 'system_powerdown':
        await vm.handle({ type: 'powerdown' });
        return {};
      case 'quit':
        // The answer goes out before the machine ends (as QEMU answers, then exits).
        setImmediate(() => void vm.handle({ type: 'quit' }));
        return {};
      case 'migrate': {
        if (typeof args.uri !== 'string') throw new QmpError('GenericError', "Parameter 'uri' is missing");
        await vm.handle({ type: 'migrate', uri: args.uri });
        return {};
      }
      case 'query-migrate':
        return migrationInfo(await vm.handle({ type: 'query-migrate' }));
      case 'human-monitor-command': {
        const line = args['command-line'];
        if (typeof line !== 'string') throw new QmpError('GenericError', "Parameter 'command-line' is missing");
        return this.hmp(line.trim());
      }
      default:
        throw new QmpError('CommandNotFound', `The command ${cmd} has not been found`);
    }
  }

  /** The human monitor commands QMP clients pass through (answers are text, as QEMU's). */
  private async hmp(line: string): Promise<string> {
    const [cmd = '', ...args] = line.split(/\s+/);
    switch (cmd) {
      case 'savevm':
        if (args.length !== 1) return 'savevm: virtus saves to a file: savevm FILE\r\n';
        await saveVm(this.vm, args[0]!);
        return '';
      case 'info': {
        if (args[0] === 'status') {
          const s = await this.vm.handle({ type: 'query-status' });
          return `VM status: ${s.running ? 'running' : runState(s.state, false, s.stop?.reason) === 'prelaunch' ? 'paused (prelaunch)' : 'paused'}\r\n`;
        }
        if (args[0] === 'migrate') {
          const m = await this.vm.handle({ type: 'query-migrate' });
          return m.status === 'none' ? '' : `Migration status: ${m.status}\r\n`;
        }
        return `info ${args[0] ?? ''}: virtus knows info status and info migrate\r\n`;
      }
      case 'stop':
        await this.vm.handle({ type: 'pause' });
        return '';
      case 'cont': case 'c':
        await this.vm.handle({ type: 'resume' });
        return '';
      default:
        return `unknown command: '${cmd}'\r\n`;
    }
  }
}

/** The QMP events a machine event becomes. */
function qmpEvents(e: VmEvent, previous: VmState): Json[] {
  const ev = (event: string, data?: Json): Json => ({ event, ...(data ? { data } : {}), timestamp: timestamp() });
  switch (e.type) {
    case 'state':
      if (e.state === 'paused' || (e.state === 'stopped' && previous !== 'paused')) return [ev('STOP')];
      if (e.state === 'running' && (previous === 'paused' || previous === 'created')) return [ev('RESUME')];
      return [];
    case 'reset':
      return [ev('RESET', { guest: e.guest, reason: e.guest ? 'guest-reset' : 'host-qmp-system-reset' })];
    case 'powerdown':
      return [ev('POWERDOWN')];
    case 'stop': {
      const r = e.info.reason;
      if (r === 'migrated') return [];
      const guest = r === 'poweroff' || r === 'exit' || r === 'reboot';
      return [ev('SHUTDOWN', { guest, reason: guest ? (r === 'reboot' ? 'guest-reset' : 'guest-shutdown') : r === 'quit' ? 'host-qmp-quit' : 'host-error' })];
    }
    case 'migration':
      return [ev('MIGRATION', { status: e.info.status === 'stop-and-copy' ? 'device' : e.info.status })];
    default:
      return [];
  }
}

/** Serves QMP for `vm` on --qmp unix:PATH. */
export function serveQmp(vm: Vm, spec: string): Promise<Server> {
  const path = parseQmpSpec(spec);
  const sessions = new Set<QmpSession>();
  let previous = vm.state;
  vm.on((e) => {
    for (const q of qmpEvents(e, previous)) for (const s of sessions) s.event(q);
    if (e.type === 'state') previous = e.state;
  });
  return serveUnix(path, '--qmp', (write, closed) => {
    const session = new QmpSession(vm, (o) => write(JSON.stringify(o) + '\r\n'));
    sessions.add(session);
    void closed.then(() => sessions.delete(session));
    const split = new JsonSplitter();
    return async (chunk) => {
      for (const text of split.push(chunk)) await session.request(text);
    };
  });
}
