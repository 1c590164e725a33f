// Per-row logic of exact sparse k-reciprocal re-ranking, written once for the CPU
// kernels (rerank_cpu.cpp) and the CUDA kernels (rerank_cuda.cu). No torch header is included.
//
// Conventions: `nn` is the [N, K] row-major table of nearest-neighbour indices, each row sorted by
// (squared distance, index) ascending, so self comes first unless an exact duplicate has a smaller
// index. V is a CSR matrix (ptr [N+1], col [nnz] sorted ascending within a row, val [nnz]).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RR_HD __host__ __device__ __forceinline__
#else
#define RR_HD inline
#endif

namespace ptl_ext {
namespace rerank {

// Squared distances at or below kZeroTol * (|a|^2 + |b|^2) are within float32 rounding of zero and
// count as exactly zero, so duplicate features tie exactly and their ties break by index.
// ptl_ext/_torch_kernels.py holds the same constant (ZERO_TOL; a test compares them).
constexpr float kZeroTol = 7.62939453125e-06f;  // 2^-17

// The neighbour search keeps k + kKnnExtra candidates from the blocked GEMM, then orders them by
// distances recomputed pair by pair (see rerank_knn). ptl_ext/_torch_kernels.py holds the same (KNN_EXTRA).
constexpr int64_t kKnnExtra = 8;

// Squared euclidean distance from the two squared norms and the dot product.
RR_HD float squared_distance(float norm_a, float norm_b, float dot) {
  const float d = norm_a + norm_b - 2.0f * dot;
  return d <= kZeroTol * (norm_a + norm_b) ? 0.0f : d;
}

// Distance divided by its row's maximum (a row whose maximum is 0 holds only zeros).
RR_HD float normalised(float d, float rowmax) {
  return rowmax > 0.0f ? d / rowmax : 0.0f;
}

// Strict order of neighbours: by distance, then by index.
RR_HD bool knn_before(float da, int64_t ia, float db, int64_t ib) {
  return da < db || (da == db && ia < ib);
}

// Final re-ranked distance from the raw squared distance d, its row maximum and m = sum min(V_q, V_g).
RR_HD float final_distance(float d, float rowmax, float m, float lambda_value) {
  const float jaccard = 1.0f - m / (2.0f - m);
  return (1.0f - lambda_value) * jaccard + lambda_value * normalised(d, rowmax);
}

// Capacity of the expanded-set buffer of expanded_set() and of its scratch buffer.
RR_HD int64_t expanded_capacity(int64_t k1, int64_t k_half) {
  return (k1 + 1) * (k_half + 2);
}
RR_HD int64_t expanded_scratch(int64_t k1, int64_t k_half) {
  return (k1 + 1) + (k_half + 1);
}

// True when `target` is among the first `len` neighbours of `row`.
RR_HD bool in_prefix(const int64_t* nn, int64_t K, int64_t row, int64_t len, int64_t target) {
  const int64_t* r = nn + row * K;
  for (int64_t t = 0; t < len; ++t) {
    if (r[t] == target) {
      return true;
    }
  }
  return false;
}

// R(p, k): the members j of p's k+1 nearest whose own k+1 nearest contain p, in neighbour order.
// Writes them to out (capacity k+1) and returns how many.
RR_HD int64_t reciprocal_set(const int64_t* nn, int64_t K, int64_t p, int64_t k, int64_t* out) {
  int64_t n = 0;
  for (int64_t t = 0; t <= k; ++t) {
    const int64_t j = nn[p * K + t];
    if (in_prefix(nn, K, j, k + 1, p)) {
      out[n++] = j;
    }
  }
  return n;
}

// The expanded k-reciprocal set of p: R(p, k1), plus R(c, k_half) of every c in R(p, k1) whose
// overlap with R(p, k1) exceeds 2/3 of |R(c, k_half)|; sorted ascending without repeats.
// out: capacity expanded_capacity(k1, k_half); scratch: expanded_scratch(k1, k_half) entries.
RR_HD int64_t expanded_set(const int64_t* nn, int64_t K, int64_t p, int64_t k1, int64_t k_half, int64_t* out,
                           int64_t* scratch) {
  int64_t* r = scratch;
  int64_t* rh = scratch + (k1 + 1);
  const int64_t nr = reciprocal_set(nn, K, p, k1, r);
  int64_t n = 0;
  for (int64_t t = 0; t < nr; ++t) {
    out[n++] = r[t];
  }
  for (int64_t t = 0; t < nr; ++t) {
    const int64_t nh = reciprocal_set(nn, K, r[t], k_half, rh);
    int64_t common = 0;
    for (int64_t a = 0; a < nh; ++a) {
      for (int64_t b = 0; b < nr; ++b) {
        if (rh[a] == r[b]) {
          ++common;
          break;
        }
      }
    }
    if (3 * common > 2 * nh) {  // exactly |overlap| > 2/3 |R(c, k_half)| for integer sizes
      for (int64_t a = 0; a < nh; ++a) {
        out[n++] = rh[a];
      }
    }
  }
  for (int64_t a = 1; a < n; ++a) {  // insertion sort: n is at most a few hundred
    const int64_t v = out[a];
    int64_t b = a;
    while (b > 0 && out[b - 1] > v) {
      out[b] = out[b - 1];
      --b;
    }
    out[b] = v;
  }
  int64_t u = 0;
  for (int64_t a = 0; a < n; ++a) {
    if (u == 0 || out[u - 1] != out[a]) {
      out[u++] = out[a];
    }
  }
  return u;
}

// Row of the query-expanded V: the mean of the CSR rows of p's k2 nearest, merged by column.
// cur: scratch of k2 entries. With out_col == nullptr only the number of columns is returned.
RR_HD int64_t expanded_query_row(const int64_t* ptr, const int64_t* col, const float* val, const int64_t* nn, int64_t K,
                                 int64_t p, int64_t k2, int64_t* cur, int64_t* out_col, float* out_val) {
  const int64_t* nbr = nn + p * K;
  for (int64_t t = 0; t < k2; ++t) {
    cur[t] = ptr[nbr[t]];
  }
  int64_t n = 0;
  while (true) {
    int64_t c = -1;
    for (int64_t t = 0; t < k2; ++t) {
      if (cur[t] < ptr[nbr[t] + 1] && (c < 0 || col[cur[t]] < c)) {
        c = col[cur[t]];
      }
    }
    if (c < 0) {
      return n;
    }
    float sum = 0.0f;
    for (int64_t t = 0; t < k2; ++t) {
      if (cur[t] < ptr[nbr[t] + 1] && col[cur[t]] == c) {
        sum += val[cur[t]];
        ++cur[t];
      }
    }
    if (out_col != nullptr) {
      out_col[n] = c;
      out_val[n] = sum / static_cast<float>(k2);
    }
    ++n;
  }
}

}  // namespace rerank
}  // namespace ptl_ext
