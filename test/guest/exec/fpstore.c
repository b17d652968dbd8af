// Floating-point loads and stores in a loop (FLD/FSD, FLW/FSW) and nothing else of the FPU,
// for test/exec/translator.test.ts: translated code must make them inline, not through the
// interpreter's slow path.
#include <stdio.h>
#include <stdlib.h>

static double d[512], dv[8] = {0.5, 1.5, -2.25, 3.0, 1e10, -7.125, 0.0, 42.0};
static float f[512], fv[8] = {0.25f, -1.5f, 2.0f, 8.5f, -3.0f, 1e5f, 0.0f, 6.75f};

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  for (long i = 0; i < n; i++) {
    d[i & 511] = dv[(i * 5) & 7];
    f[i & 511] = fv[(i * 3) & 7];
  }
  double sum = 0;
  for (int i = 0; i < 512; i++) sum += d[i] * (i + 1) + f[i];
  printf("%.3f\n", sum);
  return 0;
}
