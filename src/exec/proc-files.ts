/**
 * The files of /proc/self that programs read about themselves, made by the monitor as
 * qemu-riscv64 makes them: the host's /proc describes the monitor, not the guest. `maps`
 * lists the mappings (proc(5) format; the stack and the break named), `cmdline` the arguments.
 */
import { PROT_EXEC, PROT_READ, PROT_WRITE } from './abi.ts';
import { STACK_SIZE, STACK_TOP } from './address-space.ts';
import type { GuestProcess } from './process.ts';

const hex = (n: number, w = 8): string => n.toString(16).padStart(w, '0');

/** The contents of /proc/self/NAME (or /proc/PID/NAME for the process's own pid), or null. */
export function procFile(p: GuestProcess, path: string): Uint8Array | null {
  const m = /^\/proc\/(self|\d+)\/(maps|cmdline)$/.exec(path);
  if (!m || (m[1] !== 'self' && Number(m[1]) !== p.pid)) return null;
  if (m[2] === 'cmdline') return new TextEncoder().encode(p.argv.map((a) => `${a}\0`).join(''));
  const lines = p.as.vmas.map((v) => {
    const perms = `${v.prot & PROT_READ ? 'r' : '-'}${v.prot & PROT_WRITE ? 'w' : '-'}${v.prot & PROT_EXEC ? 'x' : '-'}${v.shared ? 's' : 'p'}`;
    const name = v.start >= STACK_TOP - STACK_SIZE && v.end <= STACK_TOP ? '[stack]'
      : v.start >= p.as.brkStart && v.end <= Math.ceil(p.as.brkEnd / 4096) * 4096 && p.as.brkEnd > p.as.brkStart ? '[heap]' : '';
    return `${hex(v.start)}-${hex(v.end)} ${perms} ${hex(v.shared?.offset ?? 0)} 00:00 0${name ? `          ${name}` : ''}\n`;
  });
  return new TextEncoder().encode(lines.join(''));
}
