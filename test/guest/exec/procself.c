// The guest's own /proc/self: cmdline holds its arguments, maps its mappings (the stack
// named, code executable), and pthread_getattr_np finds the main thread's stack through it.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  (void)argc;
  char buf[65536];
  int fd = open("/proc/self/cmdline", O_RDONLY);
  int n = read(fd, buf, sizeof buf);
  close(fd);
  printf("cmdline:");
  for (int i = 0; i < n; i += strlen(buf + i) + 1) printf(" [%s]", buf + i);
  printf("\n");
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int stack = 0, exec = 0, lines = 0;
  unsigned long lo, hi, sp = (unsigned long)&line;
  while (fgets(line, sizeof line, f)) {
    lines++;
    if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= sp && sp < hi) stack = 1;
    if (strstr(line, "r-xp")) exec = 1;
  }
  fclose(f);
  printf("maps: some lines %d, [stack] holds sp %d, code r-xp %d\n", lines > 2, stack, exec);
  pthread_attr_t attr;
  void *addr;
  size_t size;
  int r = pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &addr, &size);
  printf("pthread_getattr_np %d, stack holds sp %d\n", r, (unsigned long)addr <= sp && sp < (unsigned long)addr + size);
  printf("argv[1] %s\n", argv[1]);
  return 0;
}
