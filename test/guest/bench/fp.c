/* FP-heavy benchmark: an n-body simulation (the five outer-planet bodies, double precision,
   sqrt in every pair interaction), a dense matrix multiply (fused multiply-adds), and a
   single-precision normalisation pass. Prints the results' bit patterns so runs on virtus and
   QEMU can be compared exactly. -DREPS=n scales the work. */
#include "test.h"

#ifndef REPS
#define REPS 4
#endif

static inline double sqrt_d(double x) {
  double r;
  asm("fsqrt.d %0, %1" : "=f"(r) : "f"(x));
  return r;
}
static inline float sqrt_s(float x) {
  float r;
  asm("fsqrt.s %0, %1" : "=f"(r) : "f"(x));
  return r;
}
static uint64_t bits_d(double x) {
  union { double d; uint64_t u; } v = { .d = x };
  return v.u;
}

#define PI 3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS_PER_YEAR 365.24

struct body { double x, y, z, vx, vy, vz, mass; };
static struct body bodies[5];

static void nbody_init(void) {
  static const struct body init[5] = {
    { 0, 0, 0, 0, 0, 0, SOLAR_MASS },
    { 4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01, 1.66007664274403694e-03 * DAYS_PER_YEAR,
      7.69901118419740425e-03 * DAYS_PER_YEAR, -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS },
    { 8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01, -2.76742510726862411e-03 * DAYS_PER_YEAR,
      4.99852801234917238e-03 * DAYS_PER_YEAR, 2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS },
    { 1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01, 2.96460137564761618e-03 * DAYS_PER_YEAR,
      2.37847173959480950e-03 * DAYS_PER_YEAR, -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS },
    { 1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01, 2.68067772490389322e-03 * DAYS_PER_YEAR,
      1.62824170038242295e-03 * DAYS_PER_YEAR, -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS },
  };
  double px = 0, py = 0, pz = 0;
  for (int i = 0; i < 5; i++) {
    bodies[i] = init[i];
    px += init[i].vx * init[i].mass;
    py += init[i].vy * init[i].mass;
    pz += init[i].vz * init[i].mass;
  }
  bodies[0].vx = -px / SOLAR_MASS;
  bodies[0].vy = -py / SOLAR_MASS;
  bodies[0].vz = -pz / SOLAR_MASS;
}

static void advance(double dt) {
  for (int i = 0; i < 5; i++) {
    struct body *a = &bodies[i];
    for (int j = i + 1; j < 5; j++) {
      struct body *b = &bodies[j];
      double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
      double d2 = dx * dx + dy * dy + dz * dz;
      double mag = dt / (d2 * sqrt_d(d2));
      a->vx -= dx * b->mass * mag;
      a->vy -= dy * b->mass * mag;
      a->vz -= dz * b->mass * mag;
      b->vx += dx * a->mass * mag;
      b->vy += dy * a->mass * mag;
      b->vz += dz * a->mass * mag;
    }
  }
  for (int i = 0; i < 5; i++) {
    bodies[i].x += dt * bodies[i].vx;
    bodies[i].y += dt * bodies[i].vy;
    bodies[i].z += dt * bodies[i].vz;
  }
}

static double energy(void) {
  double e = 0;
  for (int i = 0; i < 5; i++) {
    struct body *a = &bodies[i];
    e += 0.5 * a->mass * (a->vx * a->vx + a->vy * a->vy + a->vz * a->vz);
    for (int j = i + 1; j < 5; j++) {
      struct body *b = &bodies[j];
      double dx = a->x - b->x, dy = a->y - b->y, dz = a->z - b->z;
      e -= a->mass * b->mass / sqrt_d(dx * dx + dy * dy + dz * dz);
    }
  }
  return e;
}

#define N 40
static double A[N][N], B[N][N], C[N][N];

static double matmul(uint64_t seed) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      A[i][j] = (double)(int64_t)(seed >> 20) * 0x1p-43;
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      B[i][j] = (double)(int64_t)(seed >> 20) * 0x1p-43 - 0.5;
    }
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < N; k++) s += A[i][k] * B[k][j];
      C[i][j] = s;
    }
  double t = 0;
  for (int i = 0; i < N; i++) t += C[i][(i * 7) % N] / (1.0 + C[i][i] * C[i][i]);
  return t;
}

#define NV 512
static float vx[NV], vy[NV], vz[NV];

static float normalise(uint32_t seed) {
  for (int i = 0; i < NV; i++) {
    seed = seed * 1664525u + 1013904223u;
    vx[i] = (float)(int32_t)seed * 0x1p-31f;
    seed = seed * 1664525u + 1013904223u;
    vy[i] = (float)(int32_t)seed * 0x1p-31f;
    seed = seed * 1664525u + 1013904223u;
    vz[i] = (float)(int32_t)seed * 0x1p-31f + 0.25f;
  }
  float acc = 0;
  for (int r = 0; r < 8; r++)
    for (int i = 0; i < NV; i++) {
      float n = sqrt_s(vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i]);
      vx[i] /= n;
      vy[i] /= n;
      vz[i] /= n;
      acc += vx[i] * vy[(i + 1) % NV] - vz[i];
    }
  return acc;
}

int main(void) {
  nbody_init();
  report("nbody-e0", bits_d(energy()));
  for (int i = 0; i < 20000 * REPS; i++) advance(0.01);
  report("nbody-e1", bits_d(energy()));
  double m = 0;
  for (int r = 0; r < REPS; r++) m += matmul(0x1234 + r);
  report("matmul", bits_d(m));
  float s = 0;
  for (int r = 0; r < REPS; r++) s += normalise(77 + r);
  union { float f; uint32_t u; } sv = { .f = s };
  report("normalise", sv.u);
  report("fflags", read_csr(fflags));
  return 0;
}
