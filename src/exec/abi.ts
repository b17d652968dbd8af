/**
 * The Linux riscv64 user ABI the process VM speaks: system call numbers (the asm-generic table,
 * include/uapi/asm-generic/unistd.h), errno values (asm-generic/errno-base.h, errno.h) and the
 * flag values of the calls it serves. riscv64 has no legacy calls (no open, stat, fork).
 */

/** System call numbers (asm-generic/unistd.h), by the name the kernel gives them. */
export const SYS = {
  getcwd: 17, dup: 23, dup3: 24, fcntl: 25, ioctl: 29, mkdirat: 34, unlinkat: 35, symlinkat: 36, linkat: 37,
  truncate: 45, ftruncate: 46, faccessat: 48, chdir: 49, fchdir: 50, fchmod: 52, fchmodat: 53, fchownat: 54,
  fchown: 55, openat: 56, close: 57, pipe2: 59, getdents64: 61, lseek: 62, read: 63, write: 64, readv: 65,
  writev: 66, pread64: 67, pwrite64: 68, sendfile: 71, ppoll: 73, readlinkat: 78, newfstatat: 79, fstat: 80,
  sync: 81, fsync: 82, fdatasync: 83, utimensat: 88, exit: 93, exit_group: 94, set_tid_address: 96, futex: 98,
  set_robust_list: 99, nanosleep: 101, getitimer: 102, setitimer: 103, clock_gettime: 113, clock_getres: 114, clock_nanosleep: 115,
  sched_yield: 124, kill: 129, tkill: 130, tgkill: 131, sigaltstack: 132, rt_sigaction: 134,
  rt_sigprocmask: 135, rt_sigreturn: 139, getresuid: 148, getresgid: 150, times: 153, setpgid: 154,
  getpgid: 155, getsid: 156, setsid: 157, getgroups: 158, uname: 160, getrlimit: 163, setrlimit: 164,
  getrusage: 165, umask: 166, prctl: 167, gettimeofday: 169, getpid: 172, getppid: 173, getuid: 174,
  geteuid: 175, getgid: 176, getegid: 177, gettid: 178, sysinfo: 179, brk: 214, munmap: 215, mremap: 216,
  clone: 220, waitid: 95, execve: 221, mmap: 222, fadvise64: 223, mprotect: 226, msync: 227, madvise: 233, wait4: 260,
  prlimit64: 261, renameat2: 276, getrandom: 278, membarrier: 283, statx: 291, rseq: 293, faccessat2: 439,
  riscv_hwprobe: 258, socket: 198, bind: 200, listen: 201, accept: 202, connect: 203, getsockname: 204,
  getpeername: 205, sendto: 206, recvfrom: 207, setsockopt: 208, getsockopt: 209, shutdown: 210, sendmsg: 211, recvmsg: 212, accept4: 242,
  riscv_flush_icache: 259, statfs: 43, fstatfs: 44,
} as const;

/** The name of a system call number, for --stats. */
export function syscallName(n: number): string {
  for (const [k, v] of Object.entries(SYS)) if (v === n) return k;
  return `syscall ${n}`;
}

/** errno values (asm-generic/errno-base.h and errno.h). */
export const E = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9, ECHILD: 10,
  EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19, ENOTDIR: 20,
  EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25, ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29,
  EROFS: 30, EMLINK: 31, EPIPE: 32, ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENOTSOCK: 88, EMSGSIZE: 90,
  ELIBBAD: 80, ETIMEDOUT: 110, EOPNOTSUPP: 95, EAFNOSUPPORT: 97, EINPROGRESS: 115, ENOTSUP: 95,
} as const;
export type Errno = keyof typeof E;

/** openat flags (asm-generic/fcntl.h). */
export const O = {
  ACCMODE: 3, WRONLY: 1, RDWR: 2, CREAT: 0o100, EXCL: 0o200, NOCTTY: 0o400, TRUNC: 0o1000, APPEND: 0o2000,
  NONBLOCK: 0o4000, DIRECTORY: 0o200000, NOFOLLOW: 0o400000, CLOEXEC: 0o2000000, PATH: 0o10000000,
} as const;

/** The *at calls' special directory and flags (uapi/linux/fcntl.h). */
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;

/** mmap protections and flags (asm-generic/mman-common.h, mman.h). */
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_FIXED_NOREPLACE = 0x100000;

/** File type bits of st_mode (uapi/linux/stat.h). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;

/** Auxiliary vector tags (uapi/linux/auxvec.h). */
export const AT = {
  NULL: 0, PHDR: 3, PHENT: 4, PHNUM: 5, PAGESZ: 6, BASE: 7, FLAGS: 8, ENTRY: 9, UID: 11, EUID: 12, GID: 13,
  EGID: 14, PLATFORM: 15, HWCAP: 16, CLKTCK: 17, SECURE: 23, RANDOM: 25, EXECFN: 31,
} as const;

/** Signals (asm-generic/signal.h). */
export const SIGABRT = 6;
export const SIGBUS = 7;
export const SIGKILL = 9;
export const SIGSEGV = 11;
export const SIGILL = 4;

/** Lowest address above the Sv39 user half (2^38): user mappings lie below. */
export const TASK_SIZE = 0x40_0000_0000;

/** A system call result meaning: not now, make the call again once other processes have run. */
export const BLOCK = -0x1_0000_0000;
/** A system call result meaning: the call has set the registers and pc itself (rt_sigreturn, execve). */
export const KEEP = -0x2_0000_0000;
