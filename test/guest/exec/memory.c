// Memory system calls: brk through malloc, large allocations through mmap, anonymous and file
// mappings, MAP_FIXED, munmap, mprotect, and reading what each left in memory.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SHOW(what, expr) do { long r_ = (long)(expr); printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(errno) : ""); } while (0)

int main(void) {
  // The break moves before anything is printed: printf's buffer comes from malloc, whose heap
  // a shrinking break would take away (Linux unmaps it; qemu-riscv64 happens not to).
  void *b0 = sbrk(0);
  int grew = sbrk(1 << 20) == b0;
  memset(b0, 0x5a, 1 << 20);
  long top = (char *)sbrk(0) - (char *)b0;
  int shrank = sbrk(-(1 << 19)) != (void *)-1;
  SHOW("sbrk grows", grew);
  SHOW("sbrk top", top);
  SHOW("sbrk shrink", shrank);
  unsigned long sum = 0;
  for (int round = 0; round < 50; round++) {
    size_t n = 1000 + round * 37000;
    unsigned char *p = malloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7 + round);
    for (size_t i = 0; i < n; i += 97) sum += p[i];
    if (round % 3) free(p);
  }
  printf("malloc sum %lu\n", sum);
  char *big = malloc(64 << 20);
  SHOW("malloc 64M", big != NULL);
  big[0] = 1;
  big[(64 << 20) - 1] = 2;
  printf("ends %d %d\n", big[0], big[(64 << 20) - 1]);
  free(big);
  char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  SHOW("mmap anon", m != MAP_FAILED);
  SHOW("zeroed", m[0] == 0 && m[3 * 4096 - 1] == 0);
  strcpy(m + 4096, "second page");
  char *f = mmap(m + 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  SHOW("map fixed", f == m + 4096);
  SHOW("fixed is fresh", f[0] == 0);
  SHOW("munmap middle", munmap(m + 4096, 4096));
  SHOW("mprotect hole", mprotect(m, 3 * 4096, PROT_READ));
  SHOW("mprotect first", mprotect(m, 4096, PROT_READ));
  SHOW("munmap unaligned", munmap(m + 1, 4096));
  SHOW("mmap len 0", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -errno : 0);
  SHOW("madvise dontneed", ({ m[2 * 4096] = 9; madvise(m + 2 * 4096, 4096, MADV_DONTNEED); }));
  SHOW("reads zero after", m[2 * 4096]);
  int fd = open("mapped.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
  for (int i = 0; i < 2000; i++) dprintf(fd, "line %04d\n", i);
  char *fm = mmap(NULL, 20000, PROT_READ, MAP_PRIVATE, fd, 0);
  SHOW("mmap file", fm != MAP_FAILED);
  printf("file at 0: %.9s, at 10000: %.9s, past eof: %d\n", fm, fm + 10000, fm[20000 - 1]);
  char *fo = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 8192);
  printf("offset 8192: %.9s\n", fo);
  SHOW("mmap unaligned offset", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED ? -errno : 0);
  SHOW("mmap bad fd", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 77, 0) == MAP_FAILED ? -errno : 0);
  return 0;
}
