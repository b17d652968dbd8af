// Random system calls with random arguments, from a seed: valid and invalid file descriptors,
// pointers into a buffer, NULL and wild pointers, paths with "..", sizes large and small. The
// monitor must answer every one (or stop with a one-line error), never crash or hang. Calls
// that end or stall the process on purpose (exit, kill, clone, sleeps, unmapping its own
// memory, pipes it would wait on forever) are left out. Its standard streams go to a file in
// the root first.
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t s;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static char buf[1 << 16];

static const long calls[] = {
  17, 23, 24, 25, 29, 34, 35, 36, 37, 45, 46, 48, 49, 50, 52, 53, 54, 56, 57, 61, 62, 63, 64, 65, 66, 67, 68,
  78, 79, 80, 82, 83, 88, 96, 98, 99, 113, 114, 124, 132, 134, 135, 148, 150, 160, 163, 165, 166, 167, 169,
  172, 173, 174, 178, 214, 222, 233, 260, 261, 276, 278, 291, 293, 439, 258, 0, 200, 435, 1000,
};
static const char *paths[] = { "a", "/", "..", "/../x", "sub/file", "", "link", "/proc/self/exe", "sub", "a/b/../../c" };

static long arg(void) {
  switch (rnd() % 10) {
    case 0: return (long)(rnd() % 103) - 2;
    case 1: return rnd() % 12;
    case 2: return (long)(buf + rnd() % (sizeof buf - 512));
    case 3: return 0;
    case 4: return (long)rnd();
    case 5: return -100; // AT_FDCWD
    case 6: { const char *p = paths[rnd() % 10]; char *at = buf + 4096 * (1 + rnd() % 8); strcpy(at, p); return (long)at; }
    case 7: return rnd() % 70000;
    case 8: return (long)(rnd() >> (rnd() % 64));
    default: return (long)(buf + sizeof buf - rnd() % 64);
  }
}

int main(int argc, char **argv) {
  s = argc > 1 ? strtoull(argv[1], 0, 10) * 2654435761u + 1 : 1;
  long n = argc > 2 ? atol(argv[2]) : 1000;
  int out = open("out", O_CREAT | O_WRONLY | O_TRUNC, 0644);
  dup2(out, 0);
  dup2(out, 1);
  dup2(out, 2);
  mkdir("sub", 0755);
  close(open("sub/file", O_CREAT | O_WRONLY, 0644));
  symlink("/../sub/../../link", "link");
  for (long i = 0; i < n; i++) {
    long nr = calls[rnd() % (sizeof calls / sizeof *calls)];
    long a0 = arg(), a1 = arg(), a2 = arg(), a3 = arg(), a4 = arg(), a5 = arg();
    if (nr == 214 && a0 != 0) continue; // brk: moving it could take the program's own heap away
    if (nr == 222 && (a3 & 0x100010)) a3 &= ~0x100010; // mmap: no MAP_FIXED over the program
    if (nr == 233) continue; // madvise: DONTNEED would zero the program's own memory
    if (nr == 134 && (a0 == 11 || a0 == 7 || a0 == 4)) continue; // handlers for faults would be wild
    if (nr == 135) continue; // blocking SIGSEGV makes the next fault fatal: fine, but it ends the run early
    syscall(nr, a0, a1, a2, a3, a4, a5);
  }
  syscall(SYS_exit_group, 0); // not exit(): the calls may have scribbled over stdio's state
  return 0;
}
