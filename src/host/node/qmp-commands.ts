/**
 * The QMP commands virtus has, as QEMU 7.2's schema defines them: each command's parameters
 * (checked before it runs) and what it does to the machine, and the human monitor commands
 * that `human-monitor-command` passes through. Answers have QEMU's shapes: StatusInfo
 * (qapi/run-state.json), MigrationInfo (qapi/migration.json), VersionInfo (qapi/control.json).
 */
import { isVirtusError } from '../../util/errors.ts';
import type { MigrationInfo, VmState } from '../../vmm/actions.ts';
import type { Vm } from '../../vmm/vm.ts';
import { saveVm } from './monitor.ts';
import { QmpError, type Json, type QmpParams } from './qmp-request.ts';

/** The QEMU version whose QMP this follows. */
export const VERSION = { qemu: { micro: 0, minor: 2, major: 7 }, package: 'virtus' };

/** QEMU's RunState for a virtus machine state. */
export function runState(s: VmState, running: boolean, stop?: string): string {
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

/** A command: its parameters (`name?` is optional; the type is a JSON type or `int`), and its action. */
export interface QmpCommand {
  params: QmpParams;
  run(vm: Vm, args: Json): Promise<unknown> | unknown;
}

const empty = (): Json => ({});

/** Every command, by its QMP name (qmp_capabilities and human-monitor-command are the session's). */
export const COMMANDS: Record<string, QmpCommand> = {
  qmp_capabilities: { params: { 'enable?': 'array' }, run: empty },
  'query-status': {
    params: {},
    async run(vm) {
      const s = await vm.handle({ type: 'query-status' });
      return { status: runState(s.state, s.running, s.stop?.reason), singlestep: false, running: s.running };
    },
  },
  'query-version': { params: {}, run: () => VERSION },
  'query-name': { params: {}, run: empty },
  'query-vm-generation-id': { params: {}, run: (vm) => vm.handle({ type: 'query-vm-generation-id' }) },
  'query-commands': { params: {}, run: () => Object.keys(COMMANDS).map((name) => ({ name })) },
  stop: {
    params: {},
    async run(vm) {
      // A machine that has not started stays in prelaunch, as QEMU's does.
      if (vm.state !== 'created') await vm.handle({ type: 'pause' });
      return {};
    },
  },
  cont: { params: {}, run: async (vm) => (await vm.handle({ type: 'resume' }), {}) },
  system_reset: { params: {}, run: async (vm) => (await vm.handle({ type: 'reset' }), {}) },
  system_powerdown: { params: {}, run: async (vm) => (await vm.handle({ type: 'powerdown' }), {}) },
  // SHUTDOWN goes out before the answer, as QEMU sends it; the connection closes after it.
  quit: { params: {}, run: async (vm) => (await vm.handle({ type: 'quit' }), {}) },
  migrate: {
    params: { uri: 'string', 'blk?': 'boolean', 'inc?': 'boolean', 'detach?': 'boolean', 'resume?': 'boolean' },
    async run(vm, args) {
      if (args.blk === true || args.inc === true) throw new QmpError('GenericError', 'virtus migrates no block devices: disks are shared storage');
      if (args.resume === true) throw new QmpError('GenericError', 'virtus cannot resume a paused migration');
      await vm.handle({ type: 'migrate', uri: args.uri as string });
      return {};
    },
  },
  'query-migrate': { params: {}, run: async (vm) => migrationInfo(await vm.handle({ type: 'query-migrate' })) },
  'human-monitor-command': { params: { 'command-line': 'string', 'cpu-index?': 'int' }, run: empty },
};

/** The human monitor commands QMP clients pass through (answers are text, as QEMU's). */
export async function hmp(vm: Vm, line: string): Promise<string> {
  try {
    return await hmpCommand(vm, line);
  } catch (e) {
    // The human monitor reports failures in its text, as QEMU's does.
    if (isVirtusError(e)) return `Error: ${e.message}\r\n`;
    throw e;
  }
}

async function hmpCommand(vm: Vm, line: string): Promise<string> {
  const [cmd = '', ...args] = line.split(/\s+/);
  switch (cmd) {
    case '':
      return '';
    case 'savevm':
      if (args.length !== 1) return 'savevm: virtus saves to a file: savevm FILE\r\n';
      await saveVm(vm, args[0]!);
      return '';
    case 'info': {
      if (args[0] === 'status') {
        // QEMU: "running", "paused", or "paused (STATE)" for the other stopped states.
        const s = await vm.handle({ type: 'query-status' });
        const state = runState(s.state, s.running, s.stop?.reason);
        return `VM status: ${s.running ? 'running' : state === 'paused' ? 'paused' : `paused (${state})`}\r\n`;
      }
      if (args[0] === 'migrate') {
        const m = await vm.handle({ type: 'query-migrate' });
        return m.status === 'none' ? '' : `Migration status: ${m.status === 'stop-and-copy' ? 'device' : m.status}\r\n`;
      }
      if (args.length === 0) return 'info status -- show the current VM status (running|paused)\r\ninfo migrate -- show migration status\r\n';
      return `unknown command: 'info ${args.join(' ')}'\r\n`;
    }
    case 'stop':
      if (vm.state !== 'created') await vm.handle({ type: 'pause' });
      return '';
    case 'cont': case 'c':
      await vm.handle({ type: 'resume' });
      return '';
    case 'system_reset':
      await vm.handle({ type: 'reset' });
      return '';
    case 'system_powerdown':
      await vm.handle({ type: 'powerdown' });
      return '';
    default:
      return `unknown command: '${cmd}'\r\n`;
  }
}
