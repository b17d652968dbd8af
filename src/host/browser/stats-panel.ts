/**
 * The side panel: what the monitor is doing, live. It renders whatever collectStats()
 * returns, by shape rather than by name, so counters added to the core later (the
 * translator's regions compiled, cache hits, invalidations) appear with no change here:
 *
 *   a number at the top level      a rate chart (instructions → instructions per second)
 *   an object of numbers            a section. The exits into the monitor by reason (SBI
 *                                   calls, device accesses, traps, interrupts) are breakdowns
 *                                   of one total: its rate as a chart, then one row per key
 *                                   with its count, its rate and a bar of its share. Any other
 *                                   section (the translator's) holds counters of different
 *                                   things, so each gets a chart of its own.
 *   an object of objects            sections nested under a heading
 */
import { drawSparkline } from './sparkline.ts';

/** Titles for the sections the core has today; others are titled from their key. */
const TITLES: Record<string, string> = {
  instructions: 'guest instructions per second',
  sbi: 'SBI calls (hypercalls)',
  devices: 'device accesses (MMIO exits)',
  traps: 'traps by cause',
  interrupts: 'interrupts by source',
  jit: 'translator',
};

/** Sections whose counters split one total by reason. */
const BREAKDOWNS = new Set(['sbi', 'devices', 'traps', 'interrupts']);
/** Samples kept per chart: a minute at the worker's 4 samples a second. */
const HISTORY = 240;
/** Rows shown per section (the rest are summed into one). */
const MAX_ROWS = 8;

type Counters = { [key: string]: number | Counters };

function title(key: string): string {
  return TITLES[key] ?? key.replace(/([a-z])([A-Z])/g, (_, a: string, b: string) => `${a} ${b.toLowerCase()}`).replace(/[_-]/g, ' ');
}

/** Formats a rate or count compactly: 45.2M, 3.1k, 12. */
export function compact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(a >= 1e10 ? 0 : 1)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  return a >= 10 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1);
}

/** A chart and its label, for one series of rates. */
class Series {
  readonly values: number[] = [];
  readonly root: HTMLElement;
  private readonly label: HTMLElement;
  private readonly value: HTMLElement;
  private readonly canvas: HTMLCanvasElement;

  constructor(parent: HTMLElement, name: string, private readonly unit: string) {
    this.root = el(parent, 'div', 'series');
    const head = el(this.root, 'div', 'series-head');
    this.label = el(head, 'span', 'series-name');
    this.label.textContent = name;
    this.value = el(head, 'span', 'series-value');
    this.canvas = el(this.root, 'canvas', 'chart') as HTMLCanvasElement;
  }

  push(rate: number, total: number): void {
    this.values.push(rate);
    if (this.values.length > HISTORY) this.values.shift();
    this.value.textContent = `${compact(rate)}${this.unit} · ${compact(total)} total`;
    this.value.title = `${total.toLocaleString()} since power-on`;
    drawSparkline(this.canvas, this.values);
  }
}

/** A section of unrelated counters: one chart each. */
class CounterGroup {
  private readonly series = new Map<string, Series>();
  private readonly box: HTMLElement;

  constructor(parent: HTMLElement, key: string) {
    this.box = el(parent, 'section', 'stats-section');
    this.box.dataset.section = key;
    el(this.box, 'h3', 'group-title').textContent = title(key);
  }

  update(now: Counters, before: Counters | undefined, dt: number): void {
    for (const [k, v] of Object.entries(now)) {
      if (typeof v !== 'number') continue;
      let s = this.series.get(k);
      // A counter that never moved (a device's error count) takes no room until it does.
      if (!s && v === 0) continue;
      if (!s) this.series.set(k, (s = new Series(this.box, title(k), '/s')));
      const old = before?.[k];
      s.push(dt > 0 && typeof old === 'number' ? Math.max(0, v - old) / dt : 0, v);
    }
  }
}

/** One section (an object of counters). */
class Section {
  private readonly series: Series;
  private readonly rows: HTMLElement;
  private readonly children = new Map<string, Section>();

  constructor(parent: HTMLElement, readonly key: string) {
    const box = el(parent, 'section', 'stats-section');
    box.dataset.section = key;
    this.series = new Series(box, title(key), '/s');
    this.rows = el(box, 'table', 'rows');
  }

  update(now: Counters, before: Counters | undefined, dt: number): void {
    const leaves = Object.entries(now).filter((e): e is [string, number] => typeof e[1] === 'number');
    const nested = Object.entries(now).filter((e): e is [string, Counters] => typeof e[1] === 'object' && e[1] !== null);
    const total = leaves.reduce((a, [, n]) => a + n, 0);
    const prevTotal = before ? Object.values(before).reduce<number>((a, n) => a + (typeof n === 'number' ? n : 0), 0) : total;
    this.series.push(dt > 0 ? Math.max(0, total - prevTotal) / dt : 0, total);
    leaves.sort((a, b) => b[1] - a[1]);
    const shown = leaves.slice(0, MAX_ROWS);
    const rest = leaves.slice(MAX_ROWS);
    if (rest.length > 0) shown.push([`${rest.length} more`, rest.reduce((a, [, n]) => a + n, 0)]);
    this.rows.replaceChildren(
      ...shown.map(([k, n]) => {
        const old = before?.[k];
        const rate = dt > 0 && typeof old === 'number' ? Math.max(0, n - old) / dt : 0;
        const tr = document.createElement('tr');
        tr.innerHTML = '<td class="k"></td><td class="n"></td><td class="r"></td><td class="bar"><i></i></td>';
        const [tk, tn, tr2, tb] = tr.children as unknown as HTMLElement[];
        tk!.textContent = k;
        tk!.title = k;
        tn!.textContent = compact(n);
        tn!.title = n.toLocaleString();
        tr2!.textContent = rate > 0 ? `${compact(rate)}/s` : '';
        (tb!.firstElementChild as HTMLElement).style.width = `${total > 0 ? (100 * n) / total : 0}%`;
        return tr;
      }),
    );
    for (const [k, sub] of nested) {
      let s = this.children.get(k);
      if (!s) this.children.set(k, (s = new Section(this.rows.parentElement!, k)));
      s.update(sub, before?.[k] as Counters | undefined, dt);
    }
  }
}

/** The panel. `update` takes each sample as the worker sends it. */
export class StatsPanel {
  private readonly top = new Map<string, Series>();
  private readonly sections = new Map<string, Section | CounterGroup>();
  private last: { time: number; stats: Counters } | null = null;

  constructor(private readonly root: HTMLElement) {}

  update(time: number, stats: object): void {
    const now = stats as Counters;
    const dt = this.last ? (time - this.last.time) / 1000 : 0;
    const before = this.last?.stats;
    for (const [k, v] of Object.entries(now)) {
      if (typeof v === 'number') {
        let s = this.top.get(k);
        if (!s) this.top.set(k, (s = new Series(this.root, title(k), k === 'instructions' ? ' IPS' : '/s')));
        const old = before?.[k];
        s.push(dt > 0 && typeof old === 'number' ? Math.max(0, v - old) / dt : 0, v);
      } else if (typeof v === 'object' && v !== null) {
        let s = this.sections.get(k);
        if (!s) this.sections.set(k, (s = BREAKDOWNS.has(k) ? new Section(this.root, k) : new CounterGroup(this.root, k)));
        s.update(v, before?.[k] as Counters | undefined, dt);
      }
    }
    this.last = { time, stats: now };
  }

  /** Forgets the history (a new machine). */
  reset(): void {
    this.root.replaceChildren();
    this.top.clear();
    this.sections.clear();
    this.last = null;
  }
}

function el(parent: HTMLElement, tag: string, cls: string): HTMLElement {
  const e = document.createElement(tag);
  e.className = cls;
  parent.appendChild(e);
  return e;
}
