/**
 * QEMU's spellings on virtus's command line: `-kernel Image -m 1G -drive file=d.img` runs as
 * it does under qemu-system-riscv64 -M virt. QEMU writes long options with one dash (and
 * accepts two); virtus writes them with two. toVirtusArgs() rewrites the one-dash spellings of
 * the options virtus shares with QEMU, and names precisely the QEMU options it does not have.
 */
import { VirtusError } from '../../util/errors.ts';

/** QEMU options virtus has, by QEMU's name: the virtus option each one becomes. */
const SHARED: Record<string, string> = {
  kernel: 'kernel', initrd: 'initrd', append: 'append', bios: 'bios', smp: 'smp', drive: 'drive',
  machine: 'machine', nographic: 'nographic', serial: 'serial', display: 'display', snapshot: 'snapshot',
  'no-reboot': 'no-reboot', device: 'device', netdev: 'netdev', nic: 'nic', virtfs: 'virtfs', fsdev: 'fsdev',
  cpu: 'cpu', name: 'name', qmp: 'qmp', incoming: 'incoming', loadvm: 'loadvm',
};

/** QEMU options virtus does not have, with what to do instead. */
const MISSING: Record<string, string> = {
  'enable-kvm': 'virtus emulates the hart in software; there is no KVM for a RISC-V guest on this host',
  accel: 'virtus has one accelerator, its translator (--engine jit|interp)',
  dtb: 'virtus generates the device tree from its devices (--dtb-dump FILE writes it out)',
  monitor: "the human monitor is Ctrl-A C and --monitor unix:PATH; QMP is --qmp unix:PATH",
  chardev: 'the console is the terminal (--console serial|virtio); QMP takes --qmp unix:PATH',
  vga: 'the virt board has no display; the console is the terminal',
  usb: 'the virt board has no USB',
  gdb: 'virtus has no gdb stub yet',
  object: 'virtus has no QOM objects',
  global: 'virtus has no QOM properties',
  rtc: 'the RTC follows the host clock, or the instruction count with --deterministic',
  icount: 'use --deterministic: time from the instruction count',
  L: 'virtus needs no firmware directory (--bios opensbi is the default guest\'s OpenSBI)',
  'no-shutdown': 'a guest that powers off ends virtus (its exit code is the guest\'s)',
  nodefaults: "virtus's virt board always has its UART and a virtio-rng",
};

/** -cpu properties naming what virtus's hart has (QEMU's rv64 cpu has them too): off is refused. */
const CPU_HAS = new Set(['i', 'm', 'a', 'f', 'd', 'c', 'g', 's', 'u', 'zicsr', 'zifencei', 'zicntr', 'sstc', 'mmu', 'pmp']);

/** One-letter QEMU options: those virtus shares, and what the others would have done. */
const SHORT_SHARED = new Set(['m', 'M', 'S']);
const SHORT_MISSING: Record<string, string> = {
  s: 'virtus has no gdb stub yet',
  d: 'virtus has --trace (every instruction) and --stats (every exit) instead of QEMU\'s -d log items',
  D: 'virtus logs to stderr',
  k: 'the console is the terminal; there is no keyboard map',
};

/** A command's options, as node:util's parseArgs takes them. */
export type OptionTable = Readonly<Record<string, { type: 'string' | 'boolean'; short?: string }>>;

function missing(cmd: string, opt: string, why: string): VirtusError {
  return new VirtusError('BAD_FLAG', `${cmd}: virtus does not have QEMU's ${opt}: ${why}`, { exitCode: 2 });
}

/**
 * Rewrites QEMU's one-dash long options into virtus's two-dash ones, for a command with
 * `options` (the value of an option that takes one is never rewritten).
 */
export function toVirtusArgs(cmd: string, argv: string[], options: OptionTable): string[] {
  const takesValue = (name: string): boolean => options[name]?.type === 'string';
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^-{1,2}([A-Za-z][\w.-]*)$/.exec(a);
    if (!m) {
      out.push(a);
      continue;
    }
    const name = m[1]!;
    const single = !a.startsWith('--');
    if (single && name.length === 1) {
      if (SHORT_MISSING[name]) throw missing(cmd, a, SHORT_MISSING[name]!);
      if (name === 'M' && options.machine && i + 1 < argv.length) {
        out.push(...machineArgs(cmd, argv[++i]!, options));
        continue;
      }
      out.push(a);
      const long = Object.entries(options).find(([, o]) => o.short === name);
      if ((SHORT_SHARED.has(name) || long) && long?.[1].type === 'string' && i + 1 < argv.length) out.push(argv[++i]!);
      continue;
    }
    let long = name;
    if (name === 'accel' && !options.accel) {
      // virtus's translator is its TCG: -accel tcg[,thread=...] asks for what it does.
      const value = argv[++i] ?? '';
      if (splitOptions(value, 'accel')[0]![1] !== 'tcg') throw missing(cmd, `${a} ${value}`, MISSING.accel!);
      continue;
    }
    if (single && name === 'monitor' && argv[i + 1] === 'none') {
      // No monitor asked for: the Ctrl-A C prompt on the terminal is all virtus has there.
      i++;
      continue;
    }
    if (single) {
      if (MISSING[name]) throw missing(cmd, a, MISSING[name]!);
      const to = SHARED[name];
      if (!to || !options[to]) throw new VirtusError('BAD_FLAG', `${cmd}: unknown option ${a} (try 'virtus ${cmd} --help')`, { exitCode: 2 });
      long = to;
    } else if (MISSING[name] && !options[name]) throw missing(cmd, a, MISSING[name]!);
    if (long === 'machine' && i + 1 < argv.length) {
      out.push(...machineArgs(cmd, argv[++i]!, options));
      continue;
    }
    if (long === 'cpu' && i + 1 < argv.length) {
      out.push('--cpu', cpuModel(cmd, argv[++i]!));
      continue;
    }
    out.push(`--${long}`);
    if (takesValue(long) && i + 1 < argv.length) out.push(argv[++i]!);
  }
  return out;
}

/**
 * `-M virt[,KEY=VALUE...]` as virtus's flags: the board type for --machine, `dumpdtb=FILE` as
 * --dtb-dump FILE, and the board options that only confirm what virtus does (QEMU 7.2's
 * defaults); any other board option is refused by name rather than ignored.
 */
function machineArgs(cmd: string, value: string, options: OptionTable): string[] {
  let type = '';
  const out: string[] = [];
  const refuse = (why: string): VirtusError => new VirtusError('BAD_FLAG', `${cmd}: -M ${value}: ${why}`, { exitCode: 2 });
  for (const [k, v] of splitOptions(value, 'type')) {
    switch (k) {
      case 'type':
        type = v;
        break;
      case 'accel':
        if (v !== 'tcg') throw refuse(`virtus has one accelerator, its translator (accel=tcg)`);
        break;
      case 'dumpdtb':
        if (!options['dtb-dump']) throw refuse(`virtus ${cmd} does not write the device tree out`);
        if (!v) throw refuse('dumpdtb= needs a file name');
        out.push('--dtb-dump', v);
        break;
      case 'aclint':
        if (onOff(v, `${cmd}: -M virt,aclint`)) throw refuse('virtus has the CLINT, not the ACLINT (aclint=off)');
        break;
      case 'aia':
        if (v !== 'none') throw refuse('virtus has the PLIC, not the AIA (aia=none)');
        break;
      default:
        throw refuse(`virtus's virt board has no option '${k}'`);
    }
  }
  return type ? ['--machine', type, ...out] : out;
}

/**
 * The model of `-cpu MODEL[,PROP=on|off...]`: properties that ask for what the hart is are
 * accepted, any other is refused by name (the model itself is checked with the other flags).
 */
function cpuModel(cmd: string, value: string): string {
  const [[, model = ''], ...props] = splitOptions(value, 'model');
  for (const [k, v] of props) {
    const refuse = (why: string): VirtusError => new VirtusError('BAD_FLAG', `${cmd}: -cpu ${value}: ${why}`, { exitCode: 2 });
    const on = ['on', 'yes', 'true', ''].includes(v) ? true : ['off', 'no', 'false'].includes(v) ? false : null;
    if (on === null) throw refuse(`virtus's hart has no property '${k}'`);
    if (CPU_HAS.has(k) && !on) throw refuse(`virtus's hart always has ${k}`);
    if (!CPU_HAS.has(k) && on) throw refuse(`virtus's hart has no ${k}`);
  }
  return model;
}

/** Splits QEMU's `key=value,key=value` (",," is a literal comma); a first item without "=" is `first`. */
export function splitOptions(text: string, first?: string): Array<[string, string]> {
  const items = text.replace(/,,/g, '\0').split(',').map((p) => p.replace(/\0/g, ','));
  return items.map((item, i): [string, string] => {
    const eq = item.indexOf('=');
    if (eq < 0) return i === 0 && first ? [first, item] : [item, ''];
    return [item.slice(0, eq), item.slice(eq + 1)];
  });
}

/** QEMU's on/off (also yes/no, true/false); `what` names it in errors. */
export function onOff(value: string, what: string): boolean {
  if (['on', 'yes', 'true', ''].includes(value)) return true;
  if (['off', 'no', 'false'].includes(value)) return false;
  throw new VirtusError('BAD_FLAG', `${what}: expected on or off, got '${value}'`, { exitCode: 2 });
}
