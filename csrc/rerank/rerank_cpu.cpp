// CPU kernels of exact sparse k-reciprocal re-ranking (SPEC section 5):
//   rerank_knn              k nearest neighbours of every feature and each row's maximum distance, by
//                           symmetric blocked GEMM (each block of the N x N distances computed once,
//                           updating both its rows' and its columns' neighbour lists);
//   rerank_sparse_v         expanded k-reciprocal sets and V as CSR rows;
//   rerank_query_expansion  V averaged over each row's k2 nearest;
//   rerank_jaccard          final distances of a block of query rows through the inverted index.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/checks.h"
#include "rerank/rerank_math.h"
#include "rerank/rerank_op.h"

namespace ptl_ext {
namespace rerank {
namespace {

// ---------------------------------------------------------------- nearest neighbours

// Inserts (d, j) into the sorted list (dist, idx) of length k; (d, j) must come before its last entry.
inline void knn_insert(float* dist, int64_t* idx, int64_t k, float d, int64_t j) {
  int64_t p = k - 1;
  while (p > 0 && knn_before(d, j, dist[p - 1], idx[p - 1])) {
    dist[p] = dist[p - 1];
    idx[p] = idx[p - 1];
    --p;
  }
  dist[p] = d;
  idx[p] = j;
}

// Running state of the search: per feature the sorted k nearest and the maximum distance so far.
struct KnnState {
  float* dist;
  int64_t* idx;
  float* rowmax;
  int64_t k;
};

// Turns the Gram block g [nr, nc] (rows r0.., columns c0..) into squared distances in place and merges
// each row's distances into the state of features r0 + r.
void merge_rows(float* g, int64_t nr, int64_t nc, const float* norms, int64_t r0, int64_t c0, const KnnState& s) {
  at::parallel_for(0, nr, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = g + r * nc;
      const float nr_r = norms[r0 + r];
      const float* nc_c = norms + c0;
      float mx = s.rowmax[r0 + r];
      for (int64_t c = 0; c < nc; ++c) {
        const float d = squared_distance(nr_r, nc_c[c], row[c]);
        row[c] = d;
        mx = std::max(mx, d);
      }
      s.rowmax[r0 + r] = mx;
      float* bd = s.dist + (r0 + r) * s.k;
      int64_t* bi = s.idx + (r0 + r) * s.k;
      for (int64_t c = 0; c < nc; ++c) {
        if (row[c] <= bd[s.k - 1] && knn_before(row[c], c0 + c, bd[s.k - 1], bi[s.k - 1])) {
          knn_insert(bd, bi, s.k, row[c], c0 + c);
        }
      }
    }
  });
}

// Merges each column of the distance block d [nr, nc] into the state of features c0 + c.
void merge_columns(const float* d, int64_t nr, int64_t nc, int64_t r0, int64_t c0, const KnnState& s) {
  at::parallel_for(0, nc, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> mx(end - begin);
    for (int64_t c = begin; c < end; ++c) {
      mx[c - begin] = s.rowmax[c0 + c];
    }
    for (int64_t r = 0; r < nr; ++r) {
      const float* row = d + r * nc;
      for (int64_t c = begin; c < end; ++c) {
        const float v = row[c];
        mx[c - begin] = std::max(mx[c - begin], v);
        float* bd = s.dist + (c0 + c) * s.k;
        int64_t* bi = s.idx + (c0 + c) * s.k;
        if (v <= bd[s.k - 1] && knn_before(v, r0 + r, bd[s.k - 1], bi[s.k - 1])) {
          knn_insert(bd, bi, s.k, v, r0 + r);
        }
      }
    }
    for (int64_t c = begin; c < end; ++c) {
      s.rowmax[c0 + c] = mx[c - begin];
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> rerank_knn_cpu(const at::Tensor& feats, const at::Tensor& norms,
                                                              int64_t k, int64_t block) {
  constexpr const char* op = "rerank_knn";
  check_rank(feats, 2, op, "feats", "[N, D]");
  check_dtype(feats, {at::kFloat}, op, "feats", "on CPU");
  const int64_t n = feats.size(0);
  check_rank(norms, 1, op, "norms", "[N]");
  check_like(norms, feats, op, "norms", "feats");
  check_sizes(norms, {n}, op, "norms", "[N]");
  TORCH_CHECK_VALUE(k >= 1 && k <= n, op, ": k must be in [1, N] = [1, ", n, "], got ", k);
  TORCH_CHECK_VALUE(block >= 1, op, ": block must be >= 1, got ", block);
  const auto x = feats.contiguous();
  const auto nrm = norms.contiguous();
  auto dist = at::full({n, k}, std::numeric_limits<float>::infinity(), feats.options());
  auto idx = at::full({n, k}, n, feats.options().dtype(at::kLong));  // (inf, n) comes after every candidate
  auto rowmax = at::zeros({n}, feats.options());
  const KnnState s{dist.mutable_data_ptr<float>(), idx.mutable_data_ptr<int64_t>(), rowmax.mutable_data_ptr<float>(),
                   k};
  const int64_t b = std::min(block, n);
  auto buffer = at::empty({b * b}, feats.options());
  for (int64_t r0 = 0; r0 < n; r0 += b) {
    const int64_t nr = std::min(b, n - r0);
    for (int64_t c0 = r0; c0 < n; c0 += b) {
      const int64_t nc = std::min(b, n - c0);
      auto gram = buffer.narrow(0, 0, nr * nc).view({nr, nc});
      at::mm_out(gram, x.narrow(0, r0, nr), x.narrow(0, c0, nc).t());
      float* g = gram.mutable_data_ptr<float>();
      merge_rows(g, nr, nc, nrm.const_data_ptr<float>(), r0, c0, s);
      if (c0 != r0) {
        merge_columns(g, nr, nc, r0, c0, s);
      }
    }
  }
  return {dist, idx, rowmax};
}

// ---------------------------------------------------------------- V

float dot(const float* a, const float* b, int64_t n) {
  constexpr int64_t kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t t = 0; t < kLanes; ++t) {
      acc[t] += a[i + t] * b[i + t];
    }
  }
  float s = 0.0f;
  for (int64_t t = 0; t < kLanes; ++t) {
    s += acc[t];
  }
  for (; i < n; ++i) {
    s += a[i] * b[i];
  }
  return s;
}

// Exclusive prefix sum of counts [n] into ptr [n+1].
at::Tensor csr_ptr(const at::Tensor& counts) {
  auto ptr = at::zeros({counts.numel() + 1}, counts.options());
  ptr.narrow(0, 1, counts.numel()).copy_(counts.cumsum(0));
  return ptr;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> rerank_sparse_v_cpu(const at::Tensor& feats, const at::Tensor& norms,
                                                                   const at::Tensor& rowmax, const at::Tensor& nn_idx,
                                                                   int64_t k1, int64_t k_half) {
  const auto a = check_sparse_v(feats, norms, rowmax, nn_idx, k1, k_half);
  const int64_t cap = expanded_capacity(k1, k_half);
  const int64_t scratch = expanded_scratch(k1, k_half);
  const int64_t* nn = a.nn.const_data_ptr<int64_t>();
  auto counts = at::empty({a.n}, a.nn.options());
  int64_t* cnt = counts.mutable_data_ptr<int64_t>();
  at::parallel_for(0, a.n, 64, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> buf(cap + scratch);
    for (int64_t i = begin; i < end; ++i) {
      cnt[i] = expanded_set(nn, a.K, i, k1, k_half, buf.data(), buf.data() + cap);
    }
  });
  auto ptr = csr_ptr(counts);
  const int64_t nnz = ptr[a.n].item<int64_t>();
  auto col = at::empty({nnz}, a.nn.options());
  auto val = at::empty({nnz}, a.feats.options());
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  int64_t* c = col.mutable_data_ptr<int64_t>();
  float* v = val.mutable_data_ptr<float>();
  const float* x = a.feats.const_data_ptr<float>();
  const float* nrm = a.norms.const_data_ptr<float>();
  const float* mx = a.rowmax.const_data_ptr<float>();
  at::parallel_for(0, a.n, 64, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> buf(cap + scratch);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t m = expanded_set(nn, a.K, i, k1, k_half, buf.data(), buf.data() + cap);
      double sum = 0.0;
      for (int64_t t = 0; t < m; ++t) {
        const int64_t j = buf[t];
        const float d = squared_distance(nrm[i], nrm[j], dot(x + i * a.dim, x + j * a.dim, a.dim));
        const float w = std::exp(-normalised(d, mx[i]));
        c[p[i] + t] = j;
        v[p[i] + t] = w;
        sum += w;
      }
      for (int64_t t = 0; t < m; ++t) {
        v[p[i] + t] = static_cast<float>(v[p[i] + t] / sum);
      }
    }
  });
  return {ptr, col, val};
}

// ---------------------------------------------------------------- query expansion

std::tuple<at::Tensor, at::Tensor, at::Tensor> rerank_query_expansion_cpu(const at::Tensor& ptr, const at::Tensor& col,
                                                                          const at::Tensor& val,
                                                                          const at::Tensor& nn_idx, int64_t k2) {
  const auto a = check_query_expansion(ptr, col, val, nn_idx, k2);
  const int64_t n = a.v.rows;
  const int64_t* p = a.v.ptr.const_data_ptr<int64_t>();
  const int64_t* c = a.v.col.const_data_ptr<int64_t>();
  const float* v = a.v.val.const_data_ptr<float>();
  const int64_t* nn = a.nn.const_data_ptr<int64_t>();
  auto counts = at::empty({n}, a.nn.options());
  int64_t* cnt = counts.mutable_data_ptr<int64_t>();
  at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> cur(k2);
    for (int64_t i = begin; i < end; ++i) {
      cnt[i] = expanded_query_row(p, c, v, nn, a.K, i, k2, cur.data(), nullptr, nullptr);
    }
  });
  auto out_ptr = csr_ptr(counts);
  const int64_t nnz = out_ptr[n].item<int64_t>();
  auto out_col = at::empty({nnz}, a.nn.options());
  auto out_val = at::empty({nnz}, a.v.val.options());
  const int64_t* op = out_ptr.const_data_ptr<int64_t>();
  int64_t* oc = out_col.mutable_data_ptr<int64_t>();
  float* ov = out_val.mutable_data_ptr<float>();
  at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> cur(k2);
    for (int64_t i = begin; i < end; ++i) {
      expanded_query_row(p, c, v, nn, a.K, i, k2, cur.data(), oc + op[i], ov + op[i]);
    }
  });
  return {out_ptr, out_col, out_val};
}

// ---------------------------------------------------------------- Jaccard and final distances

at::Tensor rerank_jaccard_cpu(const at::Tensor& dist, const at::Tensor& rowmax, const at::Tensor& ptr,
                              const at::Tensor& col, const at::Tensor& val, int64_t row_start,
                              const at::Tensor& inv_ptr, const at::Tensor& inv_row, const at::Tensor& inv_val,
                              double lambda_value) {
  const auto a = check_jaccard(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value);
  auto out = at::empty({a.rows, a.gallery}, a.dist.options());
  const int64_t g_count = a.gallery;
  const float* d = a.dist.const_data_ptr<float>();
  const float* mx = a.rowmax.const_data_ptr<float>();
  const int64_t* vp = a.v.ptr.const_data_ptr<int64_t>();
  const int64_t* vc = a.v.col.const_data_ptr<int64_t>();
  const float* vv = a.v.val.const_data_ptr<float>();
  const int64_t* ip = a.inv.ptr.const_data_ptr<int64_t>();
  const int64_t* ir = a.inv.col.const_data_ptr<int64_t>();
  const float* iv = a.inv.val.const_data_ptr<float>();
  float* o = out.mutable_data_ptr<float>();
  const float lambda = static_cast<float>(lambda_value);
  at::parallel_for(0, a.rows, 4, [&](int64_t begin, int64_t end) {
    std::vector<double> m(g_count, 0.0);
    for (int64_t q = begin; q < end; ++q) {
      const int64_t row = row_start + q;
      for (int64_t t = vp[row]; t < vp[row + 1]; ++t) {
        const float vq = vv[t];
        for (int64_t s = ip[vc[t]]; s < ip[vc[t] + 1]; ++s) {
          m[ir[s]] += std::min(vq, iv[s]);
        }
      }
      for (int64_t g = 0; g < g_count; ++g) {
        o[q * g_count + g] = final_distance(d[q * g_count + g], mx[q], static_cast<float>(m[g]), lambda);
      }
      for (int64_t t = vp[row]; t < vp[row + 1]; ++t) {
        for (int64_t s = ip[vc[t]]; s < ip[vc[t] + 1]; ++s) {
          m[ir[s]] = 0.0;
        }
      }
    }
  });
  return out;
}

}  // namespace
}  // namespace rerank
}  // namespace ptl_ext

TORCH_LIBRARY_IMPL(ptl_ext, CPU, m) {
  m.impl("rerank_knn", &ptl_ext::rerank::rerank_knn_cpu);
  m.impl("rerank_sparse_v", &ptl_ext::rerank::rerank_sparse_v_cpu);
  m.impl("rerank_query_expansion", &ptl_ext::rerank::rerank_query_expansion_cpu);
  m.impl("rerank_jaccard", &ptl_ext::rerank::rerank_jaccard_cpu);
}
