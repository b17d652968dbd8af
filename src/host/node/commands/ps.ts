/** `virtus ps`: the daemon's machines as a table. */
import { parseFlags, type Command } from '../command.ts';
import { DaemonClient, daemonAddress } from '../daemon/client.ts';
import type { MachineInfo } from '../daemon/machine.ts';

/** An uptime as Docker shows it: 42s, 7m, 3h, 2d. */
export function formatUptime(s: number | null): string {
  if (s === null) return '-';
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function mib(n: number | null): string {
  return n === null ? '-' : n >= 1 << 30 && n % (1 << 30) === 0 ? `${n / (1 << 30)}G` : `${Math.round(n / 1048576)}M`;
}

/** The table `virtus ps` prints. */
export function psTable(machines: MachineInfo[]): string {
  const rows = [['NAME', 'STATE', 'IMAGE', 'MEMORY', 'UPTIME', 'CPU%']];
  for (const m of machines) {
    const state = m.state === 'stopped' && m.stop ? `stopped (${m.stop.reason}${m.stop.code ? ` ${m.stop.code}` : ''})` : m.state;
    rows.push([m.name, state, m.image ?? '-', mib(m.memory), formatUptime(m.uptimeSeconds), m.cpuPercent.toFixed(1)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n');
}

/** `virtus ps`. */
export const psCommand: Command = {
  name: 'ps',
  summary: "list the daemon's machines",
  async run(argv) {
    const { values: v } = parseFlags('ps', argv, { host: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
    if (v.help) {
      console.log('usage: virtus ps [--json] [--host unix:PATH|tcp:HOST:PORT]\n\nLists the machines of the daemon: NAME, STATE, IMAGE, MEMORY, UPTIME, CPU% (of one core, lately).');
      return 0;
    }
    const r = await new DaemonClient(daemonAddress(v.host)).call<{ machines: MachineInfo[] }>('GET', '/vms');
    console.log(v.json ? JSON.stringify(r.machines, null, 2) : psTable(r.machines));
    return 0;
  },
};
