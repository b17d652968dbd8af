/* CPU-bound benchmark: sieve of Eratosthenes, insertion-free quicksort and an FNV hash loop,
   repeated. Integer-, memory- and branch-heavy. Prints a checksum so runs can be compared. */
#include "test.h"

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

int main(void) {
  uint64_t sum = 0;
  for (int rep = 0; rep < REPS; rep++) sum += sieve() + sort(rep) + fnv(8);
  report("checksum", sum);
  return 0;
}
