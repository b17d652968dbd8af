/**
 * The physical address space outside RAM: devices mapped at non-overlapping windows. The bus
 * refuses overlapping ranges and hands devices offsets within their windows.
 */
import type { Device } from '../devices/device.ts';
import type { PhysBus } from '../cpu/hart.ts';
import { VirtusError } from '../util/errors.ts';

export interface Mapping {
  readonly base: number;
  readonly device: Device;
}

export class Bus implements PhysBus {
  private readonly maps: Mapping[] = [];
  /** Accesses per device name (for --stats: each is an exit into the monitor). */
  readonly accessCounts = new Map<string, number>();
  private lastHit: Mapping | null = null;

  /** Maps `device` at guest physical `base`. Throws when the window overlaps another. */
  map(base: number, device: Device): void {
    const end = base + device.size;
    for (const m of this.maps) {
      if (base < m.base + m.device.size && m.base < end) {
        throw new VirtusError(
          'BUS_OVERLAP',
          `${device.name} at 0x${base.toString(16)} overlaps ${m.device.name} at 0x${m.base.toString(16)}`,
        );
      }
    }
    this.maps.push({ base, device });
    this.maps.sort((a, b) => a.base - b.base);
  }

  /** Every mapping, by address. */
  mappings(): readonly Mapping[] {
    return this.maps;
  }

  find(pa: number): Mapping | null {
    const l = this.lastHit;
    if (l && pa >= l.base && pa < l.base + l.device.size) return l;
    for (const m of this.maps) {
      if (pa >= m.base && pa < m.base + m.device.size) {
        this.lastHit = m;
        return m;
      }
    }
    return null;
  }

  read(pa: number, size: 1 | 2 | 4): number {
    const m = this.find(pa);
    if (!m || pa + size > m.base + m.device.size) return NaN;
    this.count(m.device.name);
    return m.device.read(pa - m.base, size);
  }

  write(pa: number, size: 1 | 2 | 4, value: number): boolean {
    const m = this.find(pa);
    if (!m || pa + size > m.base + m.device.size) return false;
    this.count(m.device.name);
    m.device.write(pa - m.base, size, value);
    return true;
  }

  private count(name: string): void {
    this.accessCounts.set(name, (this.accessCounts.get(name) ?? 0) + 1);
  }
}
