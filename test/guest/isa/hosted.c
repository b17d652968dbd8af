/* A hosted program that pulls a large part of the C library into a static executable, for
   the disassembler's comparison with objdump on real compiled code (test/isa/disasm.test.ts):
   stdio with floating-point formatting, string conversion, sorting, allocation, strings,
   and threads. Built with riscv64-linux-gnu-gcc -static; never run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void *worker(void *arg) {
  double *v = arg;
  qsort(v, 64, sizeof *v, cmp);
  return v;
}

int main(int argc, char **argv) {
  double *v = malloc(64 * sizeof *v);
  for (int i = 0; i < 64; i++) v[i] = strtod(argc > i ? argv[i] : "2.5e3", NULL) * i;
  pthread_t t;
  pthread_create(&t, NULL, worker, v);
  pthread_join(t, NULL);
  char buf[256];
  snprintf(buf, sizeof buf, "%g %.17e %Lf %lld %s", v[3], v[7], (long double)v[1], strtoll("42", NULL, 0), argv[0]);
  char *dup = strdup(buf);
  printf("%s %zu %d %ld\n", dup, strlen(dup), strcmp(dup, buf), (long)time(NULL));
  free(dup);
  free(v);
  return atoi(buf);
}
