// The CPU's f32 multiply-add peak: a loop of 12 independent FMA chains per thread (enough to
// hide the FMA latency on current x86 cores), AVX2 (256-bit) and AVX-512 (512-bit), on one and
// two threads. The roofline for the GFLOP/s columns of bench/model (README.md).
//
//   gcc -O3 -mavx512f -mfma -pthread bench/model/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
//
// A CPU without AVX-512 stops at the AVX-512 rows with SIGILL after printing the AVX2 ones.
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define CHAINS 12
#define STEPS 200000000L

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *avx2(void *out) {
  __m256 acc[CHAINS];
  __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-9f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
  for (long s = 0; s < STEPS; s++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  float sum = 0, lanes[8];
  for (int i = 0; i < CHAINS; i++) {
    _mm256_storeu_ps(lanes, acc[i]);
    sum += lanes[0];
  }
  *(float *)out = sum;  // keeps the loop alive
  return NULL;
}

static void *avx512(void *out) {
  __m512 acc[CHAINS];
  __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-9f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
  for (long s = 0; s < STEPS; s++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  float sum = 0, lanes[16];
  for (int i = 0; i < CHAINS; i++) {
    _mm512_storeu_ps(lanes, acc[i]);
    sum += lanes[0];
  }
  *(float *)out = sum;
  return NULL;
}

int main(void) {
  void *(*kernels[2])(void *) = {avx2, avx512};
  const char *names[2] = {"avx2", "avx512"};
  const int lanes[2] = {8, 16};
  float sink[2];
  for (int k = 0; k < 2; k++) {
    for (int threads = 1; threads <= 2; threads++) {
      pthread_t t[2];
      double start = now();
      for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, kernels[k], &sink[i]);
      for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
      double flop = 2.0 * CHAINS * lanes[k] * (double)STEPS * threads;
      printf("%s, %d thread%s: %.1f GFLOP/s\n", names[k], threads, threads > 1 ? "s" : "",
             flop / (now() - start) / 1e9);
      fflush(stdout);
    }
  }
  return 0;
}
