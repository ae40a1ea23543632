// Fused edge tensor product on the CPU: gather, radial weight, Clebsch-Gordan coupling and
// scatter in one pass, never materialising per-edge, per-path messages.
//
// The operation is the 4-linear form (mlpot/kernels/coupling.py documents the tables)
//
//   T(x, w, y, o) = sum_e sum_t sum_{q in row t} coeff[q] y[e, sh[q]]
//                   sum_c x[s_e, in_t, c] w[e, path_t, c] o[r_e, out_t, c]
//
// with x [N, D_in, C] node features (read at the sender s_e), w [E, P, C] radial weights,
// y [E, D_sh] edge harmonics and o [N, Q, C] per-path messages (at the receiver r_e). Each entry
// point returns the gradient of T with respect to one operand given the other three: target 3
// is the forward (messages summed onto receivers), targets 0, 1, 2 are the backward, and the
// backward of each of them is again one of these four, so forces and force training need no
// other kernel. Node-valued results (targets 0, 3) must be zero on entry; edge-valued ones
// (targets 1, 2) are overwritten.
//
// Plain C ABI, no libtorch headers: built at install by setuptools and loaded with ctypes, so the
// library does not depend on the torch version it runs beside.

#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MLPOT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MLPOT_CLONES
#endif
#define MLPOT_INLINE inline __attribute__((always_inline))

namespace {

struct Shape {
  int64_t num_edges, num_nodes, dim_in, num_paths, dim_sh, dim_out, channels;
};

struct Tables {
  int32_t num_triples;
  const int32_t* triples;  // [T, 3]: path, input component, output row
  const int32_t* starts;   // [T + 1]: CSR rows of (sh_index, coeff)
  const int32_t* sh_index; // [nnz]
  const void* coeff;       // [nnz], the data's dtype
};

// a[t] = sum_q coeff[q] y[e, sh[q]]: the coupling of triple t on this edge.
template <typename S>
MLPOT_INLINE void edge_couplings(const S* __restrict y_e, const Tables& tab, S* __restrict a) {
  const S* coeff = static_cast<const S*>(tab.coeff);
  for (int32_t t = 0; t < tab.num_triples; ++t) {
    S sum = 0;
    for (int32_t q = tab.starts[t]; q < tab.starts[t + 1]; ++q) sum += coeff[q] * y_e[tab.sh_index[q]];
    a[t] = sum;
  }
}

// Node-valued targets (0: x, 3: o), accumulated over edges for channels [c0, c1).
// target 3: o[r, k, c] += a_t x[s, i, c] w[e, p, c];  target 0: x[s, i, c] += a_t w[e, p, c] o[r, k, c].
template <typename S, int TARGET>
MLPOT_CLONES void node_target(const S* __restrict x, const S* __restrict w, const S* __restrict y,
                              const S* __restrict o, S* __restrict result, const int64_t* __restrict sender,
                              const int64_t* __restrict receiver, const Shape& sh, const Tables& tab, int64_t c0,
                              int64_t c1) {
  std::vector<S> a(tab.num_triples > 0 ? tab.num_triples : 1);
  const int64_t C = sh.channels;
  for (int64_t e = 0; e < sh.num_edges; ++e) {
    edge_couplings<S>(y + e * sh.dim_sh, tab, a.data());
    const int64_t s = sender[e], r = receiver[e];
    const S* w_e = w + e * sh.num_paths * C;
    for (int32_t t = 0; t < tab.num_triples; ++t) {
      const int32_t p = tab.triples[3 * t], i = tab.triples[3 * t + 1], k = tab.triples[3 * t + 2];
      const S coupling = a[t];
      const S* __restrict wp = w_e + p * C;
      if (TARGET == 3) {
        const S* __restrict xi = x + (s * sh.dim_in + i) * C;
        S* __restrict ok = result + (r * sh.dim_out + k) * C;
        for (int64_t c = c0; c < c1; ++c) ok[c] += coupling * xi[c] * wp[c];
      } else {
        const S* __restrict ok = o + (r * sh.dim_out + k) * C;
        S* __restrict xi = result + (s * sh.dim_in + i) * C;
        for (int64_t c = c0; c < c1; ++c) xi[c] += coupling * wp[c] * ok[c];
      }
    }
  }
}

// Edge-valued targets for edges [e0, e1). target 1: w[e, p, c] += a_t x[s, i, c] o[r, k, c];
// target 2: y[e, j] += coeff_q sum_c x[s, i, c] w[e, p, c] o[r, k, c].
template <typename S, int TARGET>
MLPOT_CLONES void edge_target(const S* __restrict x, const S* __restrict w, const S* __restrict y,
                              const S* __restrict o, S* __restrict result, const int64_t* __restrict sender,
                              const int64_t* __restrict receiver, const Shape& sh, const Tables& tab, int64_t e0,
                              int64_t e1) {
  std::vector<S> a(tab.num_triples > 0 ? tab.num_triples : 1);
  const S* coeff = static_cast<const S*>(tab.coeff);
  const int64_t C = sh.channels;
  for (int64_t e = e0; e < e1; ++e) {
    const int64_t s = sender[e], r = receiver[e];
    // Each edge owns its result row: clear it here rather than have the caller zero [E, ...].
    S* row = (TARGET == 1) ? result + e * sh.num_paths * C : result + e * sh.dim_sh;
    const int64_t row_size = (TARGET == 1) ? sh.num_paths * C : sh.dim_sh;
    for (int64_t j = 0; j < row_size; ++j) row[j] = 0;
    if (TARGET == 1) edge_couplings<S>(y + e * sh.dim_sh, tab, a.data());
    for (int32_t t = 0; t < tab.num_triples; ++t) {
      const int32_t p = tab.triples[3 * t], i = tab.triples[3 * t + 1], k = tab.triples[3 * t + 2];
      const S* __restrict xi = x + (s * sh.dim_in + i) * C;
      const S* __restrict ok = o + (r * sh.dim_out + k) * C;
      if (TARGET == 1) {
        const S coupling = a[t];
        S* __restrict wp = result + (e * sh.num_paths + p) * C;
        for (int64_t c = 0; c < C; ++c) wp[c] += coupling * xi[c] * ok[c];
      } else {
        const S* __restrict wp = w + (e * sh.num_paths + p) * C;
        S dot = 0;
        for (int64_t c = 0; c < C; ++c) dot += xi[c] * wp[c] * ok[c];
        S* y_e = result + e * sh.dim_sh;
        for (int32_t q = tab.starts[t]; q < tab.starts[t + 1]; ++q) y_e[tab.sh_index[q]] += coeff[q] * dot;
      }
    }
  }
}

template <typename S>
MLPOT_INLINE void run(int target, const S* x, const S* w, const S* y, const S* o, S* result, const int64_t* sender,
                      const int64_t* receiver, const Shape& sh, const Tables& tab, int num_threads) {
  if (num_threads < 1) num_threads = 1;
  if (target == 0 || target == 3) {
    // Threads own disjoint channel blocks (a multiple of 16 wide), so scatters never collide.
    int64_t block = (sh.channels + num_threads - 1) / num_threads;
    block = ((block + 15) / 16) * 16;
    const int64_t num_blocks = (sh.channels + block - 1) / block;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_blocks > 1)
    for (int64_t b = 0; b < num_blocks; ++b) {
      const int64_t c0 = b * block, c1 = (c0 + block < sh.channels) ? c0 + block : sh.channels;
      if (target == 3)
        node_target<S, 3>(x, w, y, o, result, sender, receiver, sh, tab, c0, c1);
      else
        node_target<S, 0>(x, w, y, o, result, sender, receiver, sh, tab, c0, c1);
    }
  } else {
    const int64_t chunk = 256;
    const int64_t num_chunks = (sh.num_edges + chunk - 1) / chunk;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_chunks > 1)
    for (int64_t b = 0; b < num_chunks; ++b) {
      const int64_t e0 = b * chunk, e1 = (e0 + chunk < sh.num_edges) ? e0 + chunk : sh.num_edges;
      if (target == 1)
        edge_target<S, 1>(x, w, y, o, result, sender, receiver, sh, tab, e0, e1);
      else
        edge_target<S, 2>(x, w, y, o, result, sender, receiver, sh, tab, e0, e1);
    }
  }
}

}  // namespace

extern "C" {

// Version of this ABI; the Python loader refuses a library with another.
__attribute__((visibility("default"))) int mlpot_edge_tp_abi_version() { return 1; }

#define MLPOT_ENTRY(NAME, S)                                                                                    \
  __attribute__((visibility("default"))) int NAME(int target, const S* x, const S* w, const S* y, const S* o, S* result,                  \
                        const int64_t* sender, const int64_t* receiver, int64_t num_edges, int64_t num_nodes,   \
                        int64_t dim_in, int64_t num_paths, int64_t dim_sh, int64_t dim_out, int64_t channels,   \
                        int32_t num_triples, const int32_t* triples, const int32_t* starts,                     \
                        const int32_t* sh_index, const S* coeff, int num_threads) {                             \
    if (target < 0 || target > 3) return 1;                                                                     \
    const Shape sh{num_edges, num_nodes, dim_in, num_paths, dim_sh, dim_out, channels};                         \
    const Tables tab{num_triples, triples, starts, sh_index, coeff};                                            \
    run<S>(target, x, w, y, o, result, sender, receiver, sh, tab, num_threads);                                 \
    return 0;                                                                                                   \
  }

MLPOT_ENTRY(mlpot_edge_tp_f32, float)
MLPOT_ENTRY(mlpot_edge_tp_f64, double)

}  // extern "C"
