// A CPU-bound program for `npm run bench -- exec`: a sieve of Eratosthenes, an integer hash
// loop and a small floating-point kernel; prints a checksum so the work cannot be skipped.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000000;
  char *composite = calloc(n + 1, 1);
  long primes = 0;
  for (long i = 2; i <= n; i++) {
    if (composite[i]) continue;
    primes++;
    for (long j = i * i; j <= n; j += i) composite[j] = 1;
  }
  unsigned long h = 1469598103934665603ul;
  for (long i = 0; i < n * 4; i++) h = (h ^ (unsigned long)i) * 1099511628211ul;
  double x = 0;
  for (long i = 1; i < n / 4; i++) x += 1.0 / ((double)i * i);
  printf("%ld primes, hash %016lx, zeta(2) ~ %.9f\n", primes, h, x);
  return 0;
}
