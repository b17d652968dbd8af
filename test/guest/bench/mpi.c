/* Multiprecision benchmark: modular exponentiation of 2048-bit numbers by Montgomery
   multiplication over 64-bit limbs (the loops of an RSA signature check, as the kernel's
   mpihelp_addmul_1 and the ECC code's vli_mult run them when Linux verifies a module), with
   the 64 x 64 -> 128-bit products GCC makes of unsigned __int128 (MUL and MULHU), plus signed
   and mixed-sign high products (MULH, MULHSU). Prints a checksum so runs can be compared. */
#include "test.h"

#ifndef REPS
#define REPS 4
#endif
#define LIMBS 32 /* 2048 bits */
#define EXP_BITS 192

typedef unsigned __int128 u128;
typedef __int128 s128;

static uint64_t seed = 0x243f6a8885a308d3ull;
static uint64_t next(void) {
  seed = seed * 6364136223846793005ull + 1442695040888963407ull;
  return seed ^ (seed >> 29);
}

/* r = a * b * 2^-2048 mod n (CIOS), with n odd and ninv = -n^-1 mod 2^64. */
static void montmul(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *n, uint64_t ninv) {
  uint64_t t[LIMBS + 2];
  for (int i = 0; i < LIMBS + 2; i++) t[i] = 0;
  for (int i = 0; i < LIMBS; i++) {
    uint64_t carry = 0;
    for (int j = 0; j < LIMBS; j++) {
      u128 p = (u128)a[j] * b[i] + t[j] + carry;
      t[j] = (uint64_t)p;
      carry = (uint64_t)(p >> 64);
    }
    u128 s = (u128)t[LIMBS] + carry;
    t[LIMBS] = (uint64_t)s;
    t[LIMBS + 1] = (uint64_t)(s >> 64);
    uint64_t m = t[0] * ninv;
    u128 p = (u128)m * n[0] + t[0];
    carry = (uint64_t)(p >> 64);
    for (int j = 1; j < LIMBS; j++) {
      p = (u128)m * n[j] + t[j] + carry;
      t[j - 1] = (uint64_t)p;
      carry = (uint64_t)(p >> 64);
    }
    s = (u128)t[LIMBS] + carry;
    t[LIMBS - 1] = (uint64_t)s;
    t[LIMBS] = t[LIMBS + 1] + (uint64_t)(s >> 64);
  }
  /* Subtract n once if t >= n. */
  int ge = t[LIMBS] != 0;
  if (!ge) {
    ge = 1;
    for (int j = LIMBS - 1; j >= 0; j--) {
      if (t[j] != n[j]) { ge = t[j] > n[j]; break; }
    }
  }
  uint64_t borrow = 0;
  for (int j = 0; j < LIMBS; j++) {
    uint64_t d = t[j] - (ge ? n[j] : 0);
    uint64_t b2 = t[j] < (ge ? n[j] : 0);
    r[j] = d - borrow;
    borrow = b2 | (d < borrow);
  }
}

/* Signed and mixed-sign high products over the limbs: MULH and MULHSU. */
static uint64_t signed_products(const uint64_t *a, const uint64_t *b) {
  uint64_t h = 0;
  for (int j = 0; j < LIMBS; j++) {
    s128 p = (s128)(int64_t)a[j] * (int64_t)b[j];
    s128 q = (s128)(int64_t)a[j] * (s128)(u128)b[LIMBS - 1 - j];
    h = h * 31 + (uint64_t)(p >> 64) + (uint64_t)(q >> 64);
  }
  return h;
}

int main(void) {
  uint64_t n[LIMBS], x[LIMBS], r[LIMBS], acc[LIMBS], e[EXP_BITS / 64];
  uint64_t sum = 0;
  for (int rep = 0; rep < REPS; rep++) {
    for (int j = 0; j < LIMBS; j++) { n[j] = next(); x[j] = next(); }
    n[0] |= 1;
    n[LIMBS - 1] |= 1ull << 63;
    x[LIMBS - 1] &= ~(1ull << 63);
    for (int j = 0; j < EXP_BITS / 64; j++) e[j] = next();
    /* -n^-1 mod 2^64 by Newton's iteration (each step doubles the correct bits). */
    uint64_t inv = 1;
    for (int k = 0; k < 6; k++) inv *= 2 - n[0] * inv;
    uint64_t ninv = -inv;
    /* acc = x^e in the Montgomery domain (x taken as already there: the checksum only compares runs). */
    for (int j = 0; j < LIMBS; j++) acc[j] = x[j];
    for (int bit = EXP_BITS - 2; bit >= 0; bit--) {
      montmul(r, acc, acc, n, ninv);
      if ((e[bit / 64] >> (bit % 64)) & 1) montmul(acc, r, x, n, ninv);
      else for (int j = 0; j < LIMBS; j++) acc[j] = r[j];
    }
    for (int j = 0; j < LIMBS; j++) sum = sum * 1099511628211ull + acc[j];
    sum += signed_products(acc, n);
  }
  report("checksum", sum);
  return 0;
}
