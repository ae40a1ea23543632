// Fused symmetric contraction on the CPU: MACE's product basis evaluated per node and channel
// without materialising the [n, monomials, C] tensors.
//
// For node n of element z and channel c, with x = features[n, :, c] (D components),
//
//   y[k] = sum_m sum_{q in pairs(m), k_q = k} B[z, q, c] v_m(x),   v_m = x_a, x_a x_b or x_a x_b x_d,
//
// where the (k, m) pairs with a structurally non-zero coupling are listed once
// (mlpot/kernels/symmetric.py builds the tables and B from the module's weights and basis).
// Modes, each the derivative another mode's autograd needs (see symmetric.py):
//   0 VALUE       y  [N, K, C]          from x, B
//   1 VJP_X       gx [N, D, C]          = sum_m u_m grad v_m,    u_m = sum_q G[k_q] B[q]
//   2 GRAD_B      gB [Z, nnz, C]       += G[k_q] v_m
//   3 JVP         t  [N, K, C]         += B[q] (grad v_m . H)
//   4 JVP_GRAD_B  gB [Z, nnz, C]       += G[k_q] (grad v_m . H)
//   5 HVP         gx [N, D, C]          = sum_m u_m (hess v_m) H
// Plain C ABI (no libtorch), loaded with ctypes; results must be zero on entry.

#include <cstdint>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MLPOT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MLPOT_CLONES
#endif
#define MLPOT_EXPORT __attribute__((visibility("default")))

namespace {

struct Problem {
  int64_t num_nodes, dim_in, dim_out, num_pairs, channels;
  int32_t num_monomials;
  const int32_t* monomials;  // [M, 3] component indices, -1 where the degree is lower
  const int32_t* starts;     // [M + 1] CSR into pair_k
  const int32_t* pair_k;     // [nnz] output component of each (k, m) pair
  const int64_t* element;    // [N]
};

template <typename S, int MODE>
MLPOT_CLONES void contract(const S* __restrict x, const S* __restrict B, const S* __restrict G,
                           const S* __restrict H, S* __restrict out, const Problem& pr, int64_t c0, int64_t c1) {
  const int64_t C = pr.channels, D = pr.dim_in, K = pr.dim_out;
  const int64_t W = c1 - c0;
  std::vector<S> value(W), direction(W), u(W);
  for (int64_t n = 0; n < pr.num_nodes; ++n) {
    const int64_t z = pr.element[n];
    const S* xn = x + n * D * C;
    const S* Hn = (MODE >= 3) ? H + n * D * C : nullptr;
    const S* Gn = (MODE == 1 || MODE == 2 || MODE == 4 || MODE == 5) ? G + n * K * C : nullptr;
    const S* Bz = (MODE == 0 || MODE == 1 || MODE == 3 || MODE == 5) ? B + z * pr.num_pairs * C : nullptr;
    S* node_out = (MODE == 0 || MODE == 3) ? out + n * K * C : (MODE == 1 || MODE == 5) ? out + n * D * C : nullptr;
    S* gBz = (MODE == 2 || MODE == 4) ? out + z * pr.num_pairs * C : nullptr;
    for (int32_t m = 0; m < pr.num_monomials; ++m) {
      const int32_t a = pr.monomials[3 * m], b = pr.monomials[3 * m + 1], d = pr.monomials[3 * m + 2];
      const S* xa = xn + a * C;
      const S* xb = b >= 0 ? xn + b * C : nullptr;
      const S* xd = d >= 0 ? xn + d * C : nullptr;
      const int32_t q0 = pr.starts[m], q1 = pr.starts[m + 1];
      // value (modes 0, 2) or directional derivative grad v . H (modes 3, 4)
      if (MODE == 0 || MODE == 2) {
        for (int64_t i = 0; i < W; ++i) {
          const int64_t c = c0 + i;
          S v = xa[c];
          if (xb) v *= xb[c];
          if (xd) v *= xd[c];
          value[i] = v;
        }
      }
      if (MODE == 3 || MODE == 4) {
        const S* Ha = Hn + a * C;
        const S* Hb = b >= 0 ? Hn + b * C : nullptr;
        const S* Hd = d >= 0 ? Hn + d * C : nullptr;
        for (int64_t i = 0; i < W; ++i) {
          const int64_t c = c0 + i;
          S s;
          if (!xb) s = Ha[c];
          else if (!xd) s = Ha[c] * xb[c] + xa[c] * Hb[c];
          else s = Ha[c] * xb[c] * xd[c] + xa[c] * Hb[c] * xd[c] + xa[c] * xb[c] * Hd[c];
          direction[i] = s;
        }
      }
      if (MODE == 0 || MODE == 3) {
        const S* src = (MODE == 0) ? value.data() : direction.data();
        for (int32_t q = q0; q < q1; ++q) {
          const S* Bq = Bz + q * C;
          S* yk = node_out + pr.pair_k[q] * C;
          for (int64_t i = 0; i < W; ++i) yk[c0 + i] += Bq[c0 + i] * src[i];
        }
      } else if (MODE == 2 || MODE == 4) {
        const S* src = (MODE == 2) ? value.data() : direction.data();
        for (int32_t q = q0; q < q1; ++q) {
          const S* Gk = Gn + pr.pair_k[q] * C;
          S* gq = gBz + q * C;
          for (int64_t i = 0; i < W; ++i) gq[c0 + i] += Gk[c0 + i] * src[i];
        }
      } else {  // MODE 1 or 5: u_m = sum_q G[k_q] B[q]
        if (q0 == q1) continue;
        for (int64_t i = 0; i < W; ++i) u[i] = 0;
        for (int32_t q = q0; q < q1; ++q) {
          const S* Bq = Bz + q * C;
          const S* Gk = Gn + pr.pair_k[q] * C;
          for (int64_t i = 0; i < W; ++i) u[i] += Gk[c0 + i] * Bq[c0 + i];
        }
        S* ga = node_out + a * C;
        S* gb = b >= 0 ? node_out + b * C : nullptr;
        S* gd = d >= 0 ? node_out + d * C : nullptr;
        if (MODE == 1) {
          for (int64_t i = 0; i < W; ++i) {
            const int64_t c = c0 + i;
            if (!xb) {
              ga[c] += u[i];
            } else if (!xd) {
              ga[c] += u[i] * xb[c];
              gb[c] += u[i] * xa[c];
            } else {
              ga[c] += u[i] * xb[c] * xd[c];
              gb[c] += u[i] * xa[c] * xd[c];
              gd[c] += u[i] * xa[c] * xb[c];
            }
          }
        } else {  // HVP: degree 1 has none
          if (!xb) continue;
          const S* Ha = Hn + a * C;
          const S* Hb = Hn + b * C;
          const S* Hd = d >= 0 ? Hn + d * C : nullptr;
          for (int64_t i = 0; i < W; ++i) {
            const int64_t c = c0 + i;
            if (!xd) {
              ga[c] += u[i] * Hb[c];
              gb[c] += u[i] * Ha[c];
            } else {
              ga[c] += u[i] * (Hb[c] * xd[c] + xb[c] * Hd[c]);
              gb[c] += u[i] * (Ha[c] * xd[c] + xa[c] * Hd[c]);
              gd[c] += u[i] * (Ha[c] * xb[c] + xa[c] * Hb[c]);
            }
          }
        }
      }
    }
  }
}

template <typename S>
int run(int mode, const S* x, const S* B, const S* G, const S* H, S* out, const Problem& pr, int num_threads) {
  if (num_threads < 1) num_threads = 1;
  int64_t block = (pr.channels + num_threads - 1) / num_threads;
  block = ((block + 15) / 16) * 16;
  const int64_t num_blocks = (pr.channels + block - 1) / block;
  // Threads own disjoint channel blocks, so no two ever write the same element.
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_blocks > 1)
  for (int64_t blk = 0; blk < num_blocks; ++blk) {
    const int64_t c0 = blk * block, c1 = (c0 + block < pr.channels) ? c0 + block : pr.channels;
    switch (mode) {
      case 0: contract<S, 0>(x, B, G, H, out, pr, c0, c1); break;
      case 1: contract<S, 1>(x, B, G, H, out, pr, c0, c1); break;
      case 2: contract<S, 2>(x, B, G, H, out, pr, c0, c1); break;
      case 3: contract<S, 3>(x, B, G, H, out, pr, c0, c1); break;
      case 4: contract<S, 4>(x, B, G, H, out, pr, c0, c1); break;
      case 5: contract<S, 5>(x, B, G, H, out, pr, c0, c1); break;
    }
  }
  return 0;
}

}  // namespace

extern "C" {

MLPOT_EXPORT int mlpot_symmetric_abi_version() { return 1; }

#define MLPOT_SYMMETRIC_ENTRY(NAME, S)                                                                            \
  MLPOT_EXPORT int NAME(int mode, const S* x, const S* B, const S* G, const S* H, S* out, int64_t num_nodes,     \
                        int64_t dim_in, int64_t dim_out, int64_t num_pairs, int64_t channels,                     \
                        int32_t num_monomials, const int32_t* monomials, const int32_t* starts,                   \
                        const int32_t* pair_k, const int64_t* element, int num_threads) {                         \
    if (mode < 0 || mode > 5) return 1;                                                                           \
    const Problem pr{num_nodes, dim_in, dim_out, num_pairs, channels, num_monomials, monomials, starts, pair_k,   \
                     element};                                                                                    \
    return run<S>(mode, x, B, G, H, out, pr, num_threads);                                                        \
  }

MLPOT_SYMMETRIC_ENTRY(mlpot_symmetric_f32, float)
MLPOT_SYMMETRIC_ENTRY(mlpot_symmetric_f64, double)

}  // extern "C"
