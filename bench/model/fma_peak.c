// The CPU's f32 multiply-add peak: a loop of 12 independent FMA chains per thread (enough to
// hide the FMA latency on current x86 cores), AVX2 (256-bit) and AVX-512 (512-bit), on one and
// two threads. The roofline for the GFLOP/s columns of bench/model (README.md).
//
//   gcc -O3 -pthread bench/model/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
//
// (Each kernel carries its own target attribute, so the rest of the program stays baseline x86-64.)
//
// The AVX-512 rows are skipped on a CPU without AVX-512F.
//
// `fma_peak --probe THREADS` prints only the AVX2 rate on THREADS threads, from a loop a quarter
// as long (about 70 ms): run.sh's host probe before and after each timed process. On a virtual
// machine the second vCPU can share a physical core with another guest's busy thread: the
// two-thread rate then fell from 165-180 to 122 GFLOP/s on a Zen 3 guest, with no steal and an
// idle load average (docs/performance.md).
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12
#define MAX_THREADS 64

static long steps = 200000000L;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx2,fma"))) static void *avx2(void *out) {
  __m256 acc[CHAINS];
  __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-9f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
  for (long s = 0; s < steps; s++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  float sum = 0, lanes[8];
  for (int i = 0; i < CHAINS; i++) {
    _mm256_storeu_ps(lanes, acc[i]);
    sum += lanes[0];
  }
  *(float *)out = sum;  // keeps the loop alive
  return NULL;
}

__attribute__((target("avx512f"))) static void *avx512(void *out) {
  __m512 acc[CHAINS];
  __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-9f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
  for (long s = 0; s < steps; s++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  float sum = 0, lanes[16];
  for (int i = 0; i < CHAINS; i++) {
    _mm512_storeu_ps(lanes, acc[i]);
    sum += lanes[0];
  }
  *(float *)out = sum;
  return NULL;
}

/* Rate of `kernel` (`lanes` f32 per vector) on `threads` threads, in GFLOP/s. */
static double rate(void *(*kernel)(void *), int lanes, int threads) {
  pthread_t t[MAX_THREADS];
  float sink[MAX_THREADS];
  double start = now();
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, kernel, &sink[i]);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  double flop = 2.0 * CHAINS * lanes * (double)steps * threads;
  return flop / (now() - start) / 1e9;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--probe") == 0) {
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > MAX_THREADS) {
      fprintf(stderr, "--probe takes 1 to %d threads\n", MAX_THREADS);
      return 2;
    }
    steps /= 4;
    printf("%.1f\n", rate(avx2, 8, threads));
    return 0;
  }
  void *(*kernels[2])(void *) = {avx2, avx512};
  const char *names[2] = {"avx2", "avx512"};
  const int lanes[2] = {8, 16};
  int kinds = __builtin_cpu_supports("avx512f") ? 2 : 1;
  for (int k = 0; k < kinds; k++) {
    for (int threads = 1; threads <= 2; threads++) {
      printf("%s, %d thread%s: %.1f GFLOP/s\n", names[k], threads, threads > 1 ? "s" : "",
             rate(kernels[k], lanes[k], threads));
      fflush(stdout);
    }
  }
  return 0;
}
