/**
 * /metrics: the daemon's counters in the Prometheus text exposition format (version 0.0.4):
 * per machine the instructions retired, the exits into the monitor by kind (SBI calls, MMIO
 * accesses, traps, interrupts) and by call/device/cause, virtio requests and bytes per device,
 * the translator's counters, CPU, memory, uptime, restarts and migration figures; and host
 * totals. Each machine's counters come from its thread (query-stats); a machine that does not
 * answer within a second is left out of that scrape.
 */
import type { MachineStats } from '../../../machine/stats.ts';
import type { Daemon } from './daemon.ts';
import type { DaemonMachine } from './machine.ts';

/** A label value with `\`, `"` and newlines escaped (exposition format). */
function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Collects samples by metric, so each metric's HELP and TYPE come once, before its samples. */
class Exposition {
  private readonly metrics = new Map<string, { help: string; type: 'counter' | 'gauge'; samples: string[] }>();

  add(name: string, type: 'counter' | 'gauge', help: string, l: Record<string, string>, value: number): void {
    let m = this.metrics.get(name);
    if (!m) this.metrics.set(name, (m = { help, type, samples: [] }));
    m.samples.push(`${name}${labels(l)} ${Number.isFinite(value) ? value : 0}`);
  }

  text(): string {
    const out: string[] = [];
    for (const [name, m] of this.metrics) out.push(`# HELP ${name} ${m.help}`, `# TYPE ${name} ${m.type}`, ...m.samples);
    return out.join('\n') + '\n';
  }
}

async function statsOf(m: DaemonMachine): Promise<MachineStats | null> {
  if (!m.live || m.state === 'starting' || m.state === 'incoming') return null;
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), 1000).unref());
  return Promise.race([m.action({ type: 'query-stats' }).catch(() => null), timeout]);
}

/** virtio counter names ("virtio-blk0 bytes read") as a device and a counter. */
function splitVirtio(key: string): { device: string; counter: string } {
  const i = key.indexOf(' ');
  return i < 0 ? { device: key, counter: 'count' } : { device: key.slice(0, i), counter: key.slice(i + 1).replace(/\s+/g, '_') };
}

/** The metrics page. */
export async function metricsText(d: Daemon): Promise<string> {
  const e = new Exposition();
  const machines = d.list();
  const stats = await Promise.all(machines.map(statsOf));
  const byState = new Map<string, number>();
  for (const m of machines) byState.set(m.state, (byState.get(m.state) ?? 0) + 1);
  for (const [state, n] of byState) e.add('virtus_machines', 'gauge', 'Machines defined, by state.', { state }, n);
  e.add('virtus_memory_limit_bytes', 'gauge', 'Guest RAM all running machines may hold (--max-memory).', {}, d.o.maxMemory);
  e.add('virtus_memory_used_bytes', 'gauge', 'Guest RAM held by running machines.', {}, d.usedMemory());
  const mem = process.memoryUsage();
  e.add('virtus_process_resident_memory_bytes', 'gauge', "The daemon process's resident memory (all machines' threads).", {}, mem.rss);
  const cpu = process.cpuUsage();
  e.add('virtus_process_cpu_seconds_total', 'counter', 'CPU time of the daemon process (all threads).', {}, (cpu.user + cpu.system) / 1e6);
  let instructions = 0;
  machines.forEach((m, i) => {
    const info = m.info();
    const l = { machine: m.name, id: m.id };
    e.add('virtus_machine_up', 'gauge', '1 while the machine has a thread (runs, is paused or migrates).', l, m.live ? 1 : 0);
    e.add('virtus_machine_memory_bytes', 'gauge', 'Guest RAM of the machine.', l, info.memory ?? 0);
    e.add('virtus_machine_cpu_ratio', 'gauge', "Share of one core the machine's thread used lately.", l, info.cpuPercent / 100);
    e.add('virtus_machine_uptime_seconds', 'gauge', 'Seconds since the machine last started.', l, info.uptimeSeconds ?? 0);
    e.add('virtus_machine_restarts_total', 'counter', 'Restarts by the restart policy.', l, info.restarts);
    if (info.migration && info.migration.status !== 'none') {
      const g = info.migration;
      e.add('virtus_machine_migration_bytes', 'gauge', 'Bytes sent by the last migration.', l, g.bytes ?? 0);
      e.add('virtus_machine_migration_rounds', 'gauge', 'Pre-copy rounds of the last migration.', l, g.rounds ?? 0);
      if (g.downtimeMs !== undefined) e.add('virtus_machine_migration_downtime_seconds', 'gauge', 'Downtime of the last migration.', l, g.downtimeMs / 1000);
      if (g.totalMs !== undefined) e.add('virtus_machine_migration_total_seconds', 'gauge', 'Duration of the last migration.', l, g.totalMs / 1000);
    }
    const s = stats[i];
    if (!s) return;
    instructions += s.instructions;
    e.add('virtus_machine_instructions_total', 'counter', 'Instructions retired since the machine started.', l, s.instructions);
    // Per hart ("hart1 instructions"): what each hart retired, trapped and was interrupted.
    for (const [k, n] of Object.entries(s.harts)) {
      const h = /^hart(\d+) (instructions|traps|interrupts)$/.exec(k);
      if (h) e.add(`virtus_machine_hart_${h[2]}_total`, 'counter', `${h[2][0]!.toUpperCase()}${h[2].slice(1)} per hart.`, { ...l, hart: h[1]! }, n);
    }
    const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
    const kinds: Array<[string, Record<string, number>, string, string, string]> = [
      ['sbi', s.sbi, 'virtus_machine_sbi_calls_total', 'call', 'SBI calls (hypercalls), by extension and function.'],
      ['mmio', s.devices, 'virtus_machine_mmio_accesses_total', 'device', 'Device register accesses (MMIO exits), by device.'],
      ['trap', s.traps, 'virtus_machine_traps_total', 'cause', 'Traps taken, by cause.'],
      ['interrupt', s.interrupts, 'virtus_machine_interrupts_total', 'source', 'Interrupts taken, by source.'],
    ];
    for (const [kind, r, name, label, help] of kinds) {
      e.add('virtus_machine_exits_total', 'counter', 'Exits into the monitor, by kind.', { ...l, kind }, sum(r));
      for (const [k, n] of Object.entries(r)) e.add(name, 'counter', help, { ...l, [label]: k }, n);
    }
    for (const [k, n] of Object.entries(s.virtio)) {
      const v = splitVirtio(k);
      e.add('virtus_machine_virtio_total', 'counter', 'virtio requests, bytes and notifications, by device and counter.', { ...l, device: v.device, counter: v.counter }, n);
    }
    for (const [k, n] of Object.entries(s.jit ?? {})) e.add('virtus_machine_translator', 'gauge', "The translator's counters (regions, compiles, bytes, time).", { ...l, counter: k }, n);
  });
  e.add('virtus_instructions_total', 'counter', 'Instructions retired by every running machine.', {}, instructions);
  return e.text();
}
