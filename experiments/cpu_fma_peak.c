// The machine's float32 FMA peak, the ceiling the CPU GEMM zoo (experiments/cpu_zoo.ts) reports
// against: every thread runs independent fused multiply-adds on 16 registers (enough to cover the
// FMA latency of 4 cycles on 2 ports), 8-wide (AVX2) and 16-wide (AVX-512), and the run prints
// GFLOP/s = threads · iterations · 16 registers · lanes · 2 / seconds for each width.
// Build: gcc -O3 -march=native -pthread experiments/cpu_fma_peak.c -o fma_peak; run: ./fma_peak 2
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERS 50000000L

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static volatile float sink;

#define FMA16(fma, x, y)                                                                      \
  a0 = fma(a0, x, y); a1 = fma(a1, x, y); a2 = fma(a2, x, y); a3 = fma(a3, x, y);             \
  a4 = fma(a4, x, y); a5 = fma(a5, x, y); a6 = fma(a6, x, y); a7 = fma(a7, x, y);             \
  a8 = fma(a8, x, y); a9 = fma(a9, x, y); a10 = fma(a10, x, y); a11 = fma(a11, x, y);         \
  a12 = fma(a12, x, y); a13 = fma(a13, x, y); a14 = fma(a14, x, y); a15 = fma(a15, x, y);

// One thread's loop for a vector type T: 16 independent accumulators, the empty asms keep the
// compiler from folding the loop, the sum into `sink` keeps it from dropping the results. `reg` is
// the asm constraint of T's register file ("+x" for ymm, "+v" for zmm). Every accumulator must be
// in an asm (two: one takes at most 30 operands): the accumulators start equal and take the same
// updates, and gcc merged the eight left out into one chain (9 FMAs ran per iteration where 16 were
// counted, a peak 16/9 too high).
#define FMA_PEAK_THREAD(name, T, set1, fmadd, add, to_float, reg)                             \
  static void *name(void *arg) {                                                              \
    (void)arg;                                                                                \
    T x = set1(0.999999f), y = set1(1e-7f);                                                   \
    T a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x;                         \
    T a8 = x, a9 = x, a10 = x, a11 = x, a12 = x, a13 = x, a14 = x, a15 = x;                   \
    for (long i = 0; i < ITERS; i++) {                                                        \
      FMA16(fmadd, x, y)                                                                      \
      __asm__ volatile("" : reg(a0), reg(a1), reg(a2), reg(a3), reg(a4), reg(a5), reg(a6),    \
                       reg(a7));                                                              \
      __asm__ volatile("" : reg(a8), reg(a9), reg(a10), reg(a11), reg(a12), reg(a13),         \
                       reg(a14), reg(a15));                                                   \
    }                                                                                         \
    T s = add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7)));                  \
    s = add(s, add(add(add(a8, a9), add(a10, a11)), add(add(a12, a13), add(a14, a15))));      \
    sink = to_float(s);                                                                       \
    return NULL;                                                                              \
  }

FMA_PEAK_THREAD(avx2, __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_cvtss_f32,
                "+x")
#ifdef __AVX512F__
FMA_PEAK_THREAD(avx512, __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
                _mm512_reduce_add_ps, "+v")
#endif

static double run(void *(*fn)(void *), int threads, int lanes) {
  pthread_t t[64];
  double t0 = now();
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, fn, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  double s = now() - t0;
  return threads * (double)ITERS * 16 * lanes * 2 / s / 1e9;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1 || threads > 64) threads = 1;
  // best of 3: the machine may be shared, and the peak is a ceiling
  double best2 = 0, best5 = 0;
  for (int r = 0; r < 3; r++) {
    double g = run(avx2, threads, 8);
    if (g > best2) best2 = g;
#ifdef __AVX512F__
    g = run(avx512, threads, 16);
    if (g > best5) best5 = g;
#endif
  }
  printf("{\"threads\": %d, \"avx2_gflops\": %.1f, \"avx512_gflops\": %.1f}\n", threads, best2, best5);
  return 0;
}
