/**
 * The QMP commands virtus has, as QEMU 7.2's schema defines them: each command's parameters
 * (checked before it runs) and what it does to the machine, and the human monitor commands
 * that `human-monitor-command` passes through. Answers have QEMU's shapes: StatusInfo
 * (qapi/run-state.json), MigrationInfo (qapi/migration.json), VersionInfo (qapi/control.json).
 */
import { CAPABILITIES, type Capability, type MigrationParameters } from '../../machine/migrate-params.ts';
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

/** query-migrate's answer, as QEMU 7.2 shapes it (MigrationInfo; migration.c fill_source_migration_info). */
export function migrationInfo(m: MigrationInfo, xbzrle: boolean, cacheSize: number): Json {
  switch (m.status) {
    case 'none':
      return {};
    case 'failed':
      return { status: 'failed', ...(m.error ? { 'error-desc': m.error } : {}) };
    case 'cancelled':
      return { status: 'cancelled' };
  }
  // A machine received from another host: the target's view, the status alone as QEMU's
  // destination answers (postcopy-active while pages still come, then completed).
  if (m.target === 'incoming') return { status: m.status, ...(m.socketAddress ? { 'socket-address': [m.socketAddress] } : {}) };
  const ms = m.totalMs ?? 0;
  const sent = (m.normalPages ?? 0) + (m.zeroPages ?? 0) + (m.xbzrlePages ?? 0);
  const ram: Json = {
    total: (m.totalPages ?? 0) * 4096,
    'postcopy-requests': m.postcopyRequests ?? 0,
    'dirty-sync-count': m.rounds ?? 0,
    'multifd-bytes': 0,
    'pages-per-second': ms > 0 ? Math.round((sent / ms) * 1000) : 0,
    'downtime-bytes': m.downtimeBytes ?? 0,
    'page-size': 4096,
    remaining: m.status === 'completed' ? 0 : (m.dirtyPages ?? 0) * 4096,
    'postcopy-bytes': m.postcopyBytes ?? 0,
    mbps: ((m.bandwidth ?? 0) * 8) / 1e6,
    transferred: m.bytes ?? 0,
    'dirty-sync-missed-zero-copy': 0,
    'precopy-bytes': m.precopyBytes ?? 0,
    duplicate: m.zeroPages ?? 0,
    'dirty-pages-rate': m.status === 'completed' ? 0 : m.dirtyRate ?? 0,
    skipped: 0,
    'normal-bytes': (m.normalPages ?? 0) * 4096,
    normal: m.normalPages ?? 0,
  };
  const tried = (m.xbzrlePages ?? 0) + (m.xbzrleCacheMiss ?? 0);
  const cache = xbzrle ? {
    'xbzrle-cache': {
      'cache-size': cacheSize,
      bytes: m.xbzrleBytes ?? 0,
      pages: m.xbzrlePages ?? 0,
      'cache-miss': m.xbzrleCacheMiss ?? 0,
      'cache-miss-rate': tried > 0 ? (m.xbzrleCacheMiss ?? 0) / tried : 0,
      'encoding-rate': m.xbzrleBytes ? ((m.xbzrlePages ?? 0) * 4096) / m.xbzrleBytes : 0,
      overflow: m.xbzrleOverflow ?? 0,
    },
  } : {};
  const status = m.status === 'stop-and-copy' ? 'device' : m.status;
  const times = { 'setup-time': Math.round(m.setupMs ?? 0), 'total-time': Math.round(ms) };
  if (m.status === 'completed') return { status, ...times, downtime: Math.round(m.downtimeMs ?? 0), ram, ...cache };
  return {
    status, ...times, 'expected-downtime': Math.round(m.expectedDowntimeMs ?? 0), ram, ...cache,
    ...(m.throttle ? { 'cpu-throttle-percentage': m.throttle } : {}),
  };
}

/**
 * A command: its parameters (`name?` is optional; the type is a JSON type or `int`; null: the
 * command checks its arguments itself), and its action.
 */
export interface QmpCommand {
  params: QmpParams | null;
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
  'query-migrate': {
    params: {},
    async run(vm) {
      const caps = await vm.handle({ type: 'query-migrate-capabilities' });
      const params = await vm.handle({ type: 'query-migrate-parameters' });
      return migrationInfo(await vm.handle({ type: 'query-migrate' }), caps.xbzrle, params['xbzrle-cache-size']);
    },
  },
  'migrate-set-capabilities': {
    params: { capabilities: 'array' },
    run: async (vm, args) => (await vm.handle({ type: 'migrate-set-capabilities', capabilities: args.capabilities as Array<{ capability: Capability; state: boolean }> }), {}),
  },
  'query-migrate-capabilities': {
    params: {},
    async run(vm) {
      const caps = await vm.handle({ type: 'query-migrate-capabilities' });
      return CAPABILITIES.map((capability) => ({ state: caps[capability], capability }));
    },
  },
  'migrate-set-parameters': {
    params: null,
    run: async (vm, args) => (await vm.handle({ type: 'migrate-set-parameters', parameters: args as Partial<MigrationParameters> }), {}),
  },
  'query-migrate-parameters': { params: {}, run: (vm) => vm.handle({ type: 'query-migrate-parameters' }) },
  migrate_cancel: { params: {}, run: async (vm) => (await vm.handle({ type: 'migrate-cancel' }), {}) },
  'migrate-start-postcopy': { params: {}, run: async (vm) => (await vm.handle({ type: 'migrate-start-postcopy' }), {}) },
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
