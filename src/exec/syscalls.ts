/**
 * The system call table: riscv64 Linux call numbers (abi.ts `SYS`) to their handlers, by
 * family. A handler returns the value for a0 (a negative errno on failure); a number without a
 * handler is answered -ENOSYS and counted (--stats).
 */
import type { GuestProcess } from './process.ts';
import { DIR_CALLS } from './sys-dir.ts';
import { FILE_CALLS } from './sys-file.ts';
import { MEM_CALLS } from './sys-mem.ts';
import { MORE_CALLS } from './sys-more.ts';
import { NET_CALLS } from './sys-net.ts';
import { PROC_CALLS } from './sys-proc.ts';
import { SIGNAL_CALLS } from './signals.ts';
import { TASK_CALLS } from './sys-task.ts';

/** The arguments a0-a5 of a system call. */
export interface SyscallArgs {
  /** Argument `i` as a 32-bit signed integer (an int, a file descriptor, flags). */
  int(i: number): number;
  /** Argument `i` as an unsigned Number (addresses, sizes; exact below 2^53). */
  num(i: number): number;
  /** Argument `i` as a signed 64-bit Number (offsets). */
  i64(i: number): number;
}

/** A system call handler. */
export type Syscall = (p: GuestProcess, a: SyscallArgs) => number;

/** Handlers by call number. */
export const SYSCALLS: Record<number, Syscall> = {
  ...FILE_CALLS,
  ...DIR_CALLS,
  ...MEM_CALLS,
  ...PROC_CALLS,
  ...SIGNAL_CALLS,
  ...TASK_CALLS,
  ...MORE_CALLS,
  ...NET_CALLS,
};
