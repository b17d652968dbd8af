/* CPU-bound Linux program for the benchmark (bench/linux.bench.ts): the sieve, quicksort and
   FNV hash of test/guest/bench/sieve.c, as an ordinary hosted C program. Integer-, memory- and
   branch-heavy. Built for rv64gc with Debian's riscv64-linux-gnu-gcc (static) to run inside
   the guest, and with the host's compiler to run natively. Prints a checksum so every run can
   be compared: "cpu checksum=0x...". Usage: cpu [REPS] (default 20). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N 200000
static uint8_t composite[N];
static uint32_t arr[20000];

static uint64_t sieve(void) {
  for (int i = 0; i < N; i++) composite[i] = 0;
  uint64_t count = 0;
  for (uint64_t i = 2; i < N; i++) {
    if (composite[i]) continue;
    count++;
    for (uint64_t j = i * i; j < N; j += i) composite[j] = 1;
  }
  return count;
}

static void qsort_(uint32_t *a, long lo, long hi) {
  while (lo < hi) {
    uint32_t p = a[(lo + hi) / 2];
    long i = lo, j = hi;
    while (i <= j) {
      while (a[i] < p) i++;
      while (a[j] > p) j--;
      if (i <= j) { uint32_t t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
    }
    if (j - lo < hi - i) { qsort_(a, lo, j); lo = i; } else { qsort_(a, i, hi); hi = j; }
  }
}

static uint64_t sort(uint64_t seed) {
  for (int i = 0; i < 20000; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    arr[i] = (uint32_t)(seed >> 33);
  }
  qsort_(arr, 0, 19999);
  uint64_t h = 0;
  for (int i = 0; i < 20000; i += 97) h = h * 31 + arr[i];
  return h;
}

static uint64_t fnv(int rounds) {
  uint64_t h = 14695981039346656037ull;
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < 4096; i++) h = (h ^ (uint8_t)(i * r)) * 1099511628211ull;
  return h;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 20;
  uint64_t sum = 0;
  for (int rep = 0; rep < reps; rep++) sum += sieve() + sort(rep) + fnv(8);
  printf("cpu checksum=0x%016llx\n", (unsigned long long)sum);
  return 0;
}
