/**
 * A learning Ethernet switch (IEEE 802.1D §8.7 without spanning tree): each frame's source
 * MAC is learned on the port it came in on; a frame to a learned unicast MAC goes out that
 * port only, everything else (broadcast, multicast, unknown destinations) is flooded to every
 * other port. Entries age out after AGE_MS, and a MAC seen on a new port moves at once (a
 * migrated machine's gratuitous ARP relearns it). Ports are whatever can take a frame: a
 * machine's stream connection, another switch, the user NAT. There is no loop detection:
 * linking switches in a ring floods forever.
 */

/** A port of the switch. */
export interface SwitchPort {
  readonly name: string;
  /** A frame that entered the switch through this port. */
  input(frame: Uint8Array): void;
  /** Unplugs the port (its MACs are forgotten). */
  remove(): void;
}

export const AGE_MS = 300_000;
/** MACs the switch remembers; beyond it the oldest entries go. */
const MAX_ENTRIES = 8192;

interface Port {
  name: string;
  out: (frame: Uint8Array) => void;
  frames: number;
}

const macKey = (f: Uint8Array, at: number) => f[at]! * 2 ** 40 + f[at + 1]! * 2 ** 32 + (((f[at + 2]! << 24) | (f[at + 3]! << 16) | (f[at + 4]! << 8) | f[at + 5]!) >>> 0);

export class LearningSwitch {
  private readonly ports = new Set<Port>();
  private readonly table = new Map<number, { port: Port; seen: number }>();
  private readonly stats = { frames: 0, flooded: 0, runts: 0 };

  constructor(private readonly now: () => number) {}

  /** Plugs in a port whose frames out go to `out`. */
  addPort(name: string, out: (frame: Uint8Array) => void): SwitchPort {
    const p: Port = { name, out, frames: 0 };
    this.ports.add(p);
    return {
      name,
      input: (f) => this.forward(p, f),
      remove: () => {
        this.ports.delete(p);
        for (const [k, e] of this.table) if (e.port === p) this.table.delete(k);
      },
    };
  }

  /** Counters: frames switched, flooded, refused; ports and learned MACs. */
  counters(): Record<string, number> {
    return { ...this.stats, ports: this.ports.size, macs: this.table.size };
  }

  private forward(from: Port, f: Uint8Array): void {
    if (!this.ports.has(from)) return;
    if (f.length < 14) {
      this.stats.runts++;
      return;
    }
    this.stats.frames++;
    from.frames++;
    const now = this.now();
    if (!(f[6]! & 1)) {
      const src = macKey(f, 6);
      const e = this.table.get(src);
      if (e) {
        e.port = from;
        e.seen = now;
      } else {
        if (this.table.size >= MAX_ENTRIES) this.table.delete(this.table.keys().next().value!);
        this.table.set(src, { port: from, seen: now });
      }
    }
    if (!(f[0]! & 1)) {
      const e = this.table.get(macKey(f, 0));
      if (e && now - e.seen < AGE_MS && this.ports.has(e.port)) {
        if (e.port !== from) e.port.out(f);
        return;
      }
    }
    this.stats.flooded++;
    for (const p of this.ports) if (p !== from) p.out(f);
  }
}
