/**
 * QMP, the QEMU Machine Protocol, on a unix socket (`--qmp unix:PATH`): the commands virtus
 * shares with QEMU, with QEMU's names, arguments and JSON shapes (QEMU 7.2's qapi schema:
 * control.json, run-state.json, migration.json, misc.json), so tools written for QEMU drive
 * virtus. Each command is a VmmAction on the machine.
 *
 * A connection gets the greeting, must negotiate with `qmp_capabilities`, then sends
 * `{"execute": NAME, "arguments": {...}, "id": ...}` objects and gets `{"return": ...}` or
 * `{"error": {"class": ..., "desc": ...}}` (with the request's id), and asynchronous
 * `{"event": NAME, "data": {...}, "timestamp": {"seconds", "microseconds"}}` objects. Input is
 * checked as QEMU checks it: unknown members and arguments, and values of the wrong type, are
 * refused with QEMU's messages. When the machine ends, every connection is closed (QEMU's
 * process exits).
 */
import { type Server } from 'node:net';
import { isVirtusError, VirtusError } from '../../util/errors.ts';
import type { VmEvent, VmState } from '../../vmm/actions.ts';
import type { Vm } from '../../vmm/vm.ts';
import { serveUnix } from './monitor.ts';
import { JsonSplitter, type JsonPiece } from './json-stream.ts';
import { COMMANDS, hmp, VERSION } from './qmp-commands.ts';
import { checkArguments, parseRequest, QmpError, type Json } from './qmp-request.ts';

function timestamp(): { seconds: number; microseconds: number } {
  const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
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
  private oob = false;

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

  /** Answers one request (the text of one JSON value, or why the splitter refused one). */
  async request(piece: JsonPiece): Promise<void> {
    let id: unknown;
    try {
      const r = parseRequest(piece, this.oob);
      id = r.id;
      const ret = await this.execute(r.command, r.args, r.oob);
      this.send({ return: ret, ...(id !== undefined ? { id } : {}) });
    } catch (e) {
      if (e instanceof QmpError && e.id !== undefined) id = e.id;
      const err = e instanceof QmpError ? { class: e.cls, desc: e.message } : { class: 'GenericError', desc: isVirtusError(e) ? e.message : `internal error: ${(e as Error).message}` };
      this.send({ ...(id !== undefined ? { id } : {}), error: err });
    }
  }

  private async execute(cmd: string, args: Json, oob: boolean): Promise<unknown> {
    const c = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    if (!this.negotiated && cmd !== 'qmp_capabilities') throw new QmpError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
    if (!c) throw new QmpError('CommandNotFound', `The command ${cmd} has not been found`);
    // No command virtus has may run out of band (QEMU's are migrate-recover and migrate-pause).
    if (oob) throw new QmpError('GenericError', `The command ${cmd} does not support OOB`);
    if (c.params) checkArguments(c.params, args);
    if (cmd === 'qmp_capabilities') {
      if (this.negotiated) throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
      for (const cap of (args.enable as unknown[] | undefined) ?? []) {
        if (cap !== 'oob') throw new QmpError('GenericError', `Parameter 'enable' does not accept value '${String(cap)}'`);
      }
      this.oob = ((args.enable as unknown[] | undefined) ?? []).includes('oob');
      this.negotiated = true;
      return {};
    }
    if (cmd === 'human-monitor-command') return hmp(this.vm, (args['command-line'] as string).trim());
    return c.run(this.vm, args);
  }
}

/** What the last migration events told, to send MIGRATION and MIGRATION_PASS on changes only. */
interface MigrationSeen {
  status: string;
  rounds: number;
}

/**
 * The QMP events a machine event becomes (qapi/run-state.json, qapi/migration.json). Migration
 * events go out only with the `events` capability, as QEMU's.
 */
function qmpEvents(e: VmEvent, previous: VmState, vm: Vm, seen: MigrationSeen): Json[] {
  const ev = (event: string, data?: Json): Json => ({ timestamp: timestamp(), event, ...(data ? { data } : {}) });
  switch (e.type) {
    case 'state':
      // The end of the machine is SHUTDOWN only: QEMU stops its CPUs at exit without a STOP.
      if (e.state === 'paused') return [ev('STOP')];
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
    case 'migration': {
      const status = e.info.status === 'stop-and-copy' ? 'device' : e.info.status;
      const rounds = e.info.rounds ?? 0;
      const out: Json[] = [];
      const events = vm.migration.capabilities().events;
      if (rounds > seen.rounds && events) out.push(ev('MIGRATION_PASS', { pass: rounds }));
      if (status !== seen.status && events) out.push(ev('MIGRATION', { status }));
      seen.status = status;
      seen.rounds = rounds;
      return out;
    }
    default:
      return [];
  }
}

/** Serves QMP for `vm` on --qmp unix:PATH. */
export function serveQmp(vm: Vm, spec: string): Promise<Server> {
  const path = parseQmpSpec(spec);
  const sessions = new Set<QmpSession>();
  let previous = vm.state;
  const seen: MigrationSeen = { status: 'none', rounds: 0 };
  vm.on((e) => {
    // A new migration counts its passes from 0; its setup is told once, however often it is reported.
    if (e.type === 'migration' && e.info.status === 'setup') seen.rounds = 0;
    for (const q of qmpEvents(e, previous, vm, seen)) for (const s of sessions) s.event(q);
    if (e.type === 'state') previous = e.state;
  });
  return serveUnix(path, '--qmp', (write, closed) => {
    const session = new QmpSession(vm, (o) => write(JSON.stringify(o) + '\r\n'));
    sessions.add(session);
    void closed.then(() => sessions.delete(session));
    const split = new JsonSplitter();
    return async (chunk) => {
      for (const piece of split.push(chunk)) await session.request(piece);
    };
  }, vm.stopped());
}
