// CPU kernels of exact sparse k-reciprocal re-ranking:
//   squared_euclidean       GEMM, then one pass turning dot products into squared distances;
//   rerank_knn              k nearest neighbours of every feature and each row's maximum distance, by
//                           symmetric blocked GEMM (each block of the N x N distances computed once,
//                           updating both its rows' and its columns' neighbour lists);
//   rerank_screen_select    the smallest and largest entries of each row of screened distances;
//   rerank_refine           exact distances of candidate lists (from a low-precision search), sorted;
//   rerank_sparse_v         expanded k-reciprocal sets and V as CSR rows;
//   rerank_query_expansion  V averaged over each row's k2 nearest;
//   rerank_jaccard          final distances of a block of query rows through the inverted index.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "common/checks.h"
#include "rerank/rerank_math.h"
#include "rerank/rerank_op.h"

namespace ptl_ext {
namespace rerank {
namespace {

// ---------------------------------------------------------------- nearest neighbours

constexpr int64_t kLanes = 16;  // independent accumulators: lets the compiler vectorise without reassociating

// The two hot loops below are compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time
// (GCC function multi-versioning), so no build flag can produce an illegal instruction.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define RR_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RR_MULTIVERSION
#endif

// Squared euclidean distance of two float rows summed in double: float differences are exact in double,
// so the result is accurate to ~1e-15 relative and exactly 0 for identical rows.
RR_MULTIVERSION double pair_distance(const float* a, const float* b, int64_t n) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t t = 0; t < kLanes; ++t) {
      const double d = static_cast<double>(a[i + t]) - static_cast<double>(b[i + t]);
      acc[t] += d * d;
    }
  }
  double s = 0.0;
  for (int64_t t = 0; t < kLanes; ++t) {
    s += acc[t];
  }
  for (; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  return s;
}

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

// Gram values g[0, n) of one row -> squared distances in place (norm_r of the row, norms of the columns);
// returns the largest.
RR_MULTIVERSION float distances_in_place(float* g, int64_t n, float norm_r, const float* norms) {
  float mx[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int64_t t = 0; t < kLanes; ++t) {
      const float d = squared_distance(norm_r, norms[c + t], g[c + t]);
      g[c + t] = d;
      mx[t] = mx[t] < d ? d : mx[t];
    }
  }
  float m = 0.0f;
  for (; c < n; ++c) {
    g[c] = squared_distance(norm_r, norms[c], g[c]);
    m = std::max(m, g[c]);
  }
  for (int64_t t = 0; t < kLanes; ++t) {
    m = std::max(m, mx[t]);
  }
  return m;
}

// Turns the Gram block g [nr, nc] (rows r0.., columns c0..) into squared distances in place and merges
// each row's distances into the state of features r0 + r.
void merge_rows(float* g, int64_t nr, int64_t nc, const float* norms, int64_t r0, int64_t c0, const KnnState& s) {
  at::parallel_for(0, nr, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = g + r * nc;
      const float mx = distances_in_place(row, nc, norms[r0 + r], norms + c0);
      s.rowmax[r0 + r] = std::max(s.rowmax[r0 + r], mx);
      float* bd = s.dist + (r0 + r) * s.k;
      int64_t* bi = s.idx + (r0 + r) * s.k;
      float thr = bd[s.k - 1];
      for (int64_t c = 0; c < nc; c += kLanes) {
        const int64_t len = std::min(kLanes, nc - c);
        bool any = false;
        for (int64_t t = 0; t < len; ++t) {
          any |= row[c + t] <= thr;
        }
        if (!any) {
          continue;
        }
        for (int64_t t = 0; t < len; ++t) {
          if (row[c + t] <= thr && knn_before(row[c + t], c0 + c + t, thr, bi[s.k - 1])) {
            knn_insert(bd, bi, s.k, row[c + t], c0 + c + t);
            thr = bd[s.k - 1];
          }
        }
      }
    }
  });
}

// Merges each column of the distance block d [nr, nc] into the state of features c0 + c.
void merge_columns(const float* d, int64_t nr, int64_t nc, int64_t r0, int64_t c0, const KnnState& s) {
  at::parallel_for(0, nc, 256, [&](int64_t begin, int64_t end) {
    const int64_t w = end - begin;
    std::vector<float> mx(w), thr(w);
    for (int64_t c = 0; c < w; ++c) {
      mx[c] = s.rowmax[c0 + begin + c];
      thr[c] = s.dist[(c0 + begin + c) * s.k + s.k - 1];
    }
    for (int64_t r = 0; r < nr; ++r) {
      const float* row = d + r * nc + begin;
      for (int64_t c = 0; c < w; c += kLanes) {
        const int64_t len = std::min(kLanes, w - c);
        bool any = false;
        for (int64_t t = 0; t < len; ++t) {
          mx[c + t] = mx[c + t] < row[c + t] ? row[c + t] : mx[c + t];
          any |= row[c + t] <= thr[c + t];
        }
        if (!any) {
          continue;
        }
        for (int64_t t = 0; t < len; ++t) {
          float* bd = s.dist + (c0 + begin + c + t) * s.k;
          int64_t* bi = s.idx + (c0 + begin + c + t) * s.k;
          if (row[c + t] <= thr[c + t] && knn_before(row[c + t], r0 + r, thr[c + t], bi[s.k - 1])) {
            knn_insert(bd, bi, s.k, row[c + t], r0 + r);
            thr[c + t] = bd[s.k - 1];
          }
        }
      }
    }
    for (int64_t c = 0; c < w; ++c) {
      s.rowmax[c0 + begin + c] = mx[c];
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
  const int64_t kc = std::min(n, k + kKnnExtra);  // candidates of the blocked search
  auto cand_dist = at::full({n, kc}, std::numeric_limits<float>::infinity(), feats.options());
  auto cand = at::full({n, kc}, n, feats.options().dtype(at::kLong));  // (inf, n) comes after every candidate
  auto rowmax = at::zeros({n}, feats.options());
  const KnnState s{cand_dist.mutable_data_ptr<float>(), cand.mutable_data_ptr<int64_t>(),
                   rowmax.mutable_data_ptr<float>(), kc};
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
  // GEMM distances lose ~1e-6 of |a|^2 + |b|^2 to cancellation and tiles round identical features
  // differently: order the candidates by accurate pairwise distances (duplicates tie exactly at 0) and
  // keep the k first by (distance, index).
  auto dist = at::empty({n, k}, feats.options());
  auto idx = at::empty({n, k}, cand.options());
  const float* xp = x.const_data_ptr<float>();
  const int64_t dim = x.size(1);
  float* out_d = dist.mutable_data_ptr<float>();
  int64_t* out_i = idx.mutable_data_ptr<int64_t>();
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    std::vector<std::pair<double, int64_t>> row(kc);
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t t = 0; t < kc; ++t) {
        const int64_t j = s.idx[i * kc + t];
        row[t] = {pair_distance(xp + i * dim, xp + j * dim, dim), j};
      }
      std::sort(row.begin(), row.end());  // by (distance, index)
      for (int64_t t = 0; t < k; ++t) {
        out_d[i * k + t] = static_cast<float>(row[t].first);
        out_i[i * k + t] = row[t].second;
      }
    }
  });
  return {dist, idx, rowmax};
}

// Bounded heap of (value, index) pairs keeping the `cap` best; `Worse(a, b)` is true when a ranks below b,
// so the root is the worst kept pair and a new pair enters when it beats the root.
template <typename Worse>
struct BoundedHeap {
  std::vector<std::pair<float, int64_t>> items;
  int64_t cap;
  Worse worse;
  float threshold() const { return items[0].first; }
  bool full() const { return static_cast<int64_t>(items.size()) == cap; }
  void offer(float v, int64_t j) {
    if (!full()) {
      items.emplace_back(v, j);
      std::push_heap(items.begin(), items.end(), worse_first());
    } else if (worse({items[0].first, items[0].second}, {v, j})) {
      std::pop_heap(items.begin(), items.end(), worse_first());
      items.back() = {v, j};
      std::push_heap(items.begin(), items.end(), worse_first());
    }
  }
  auto worse_first() const {
    // std heaps keep the largest under `less` at the root: "largest" = worst here
    return [w = worse](const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) { return w(b, a); };
  }
};

struct Larger {  // for the smallest values: a larger value (then a larger index) ranks below
  bool operator()(const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) const {
    return a.first > b.first || (a.first == b.first && a.second > b.second);
  }
};
struct Smaller {  // for the largest values: a smaller value (then a larger index) ranks below
  bool operator()(const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) const {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  }
};

// True when some of v[0, len) is at or below lo or at or above hi.
template <typename T>
bool any_outside(const T* v, int64_t len, float lo, float hi) {
  bool any = false;
  for (int64_t t = 0; t < len; ++t) {
    const float x = static_cast<float>(v[t]);
    any |= (x <= lo) | (x >= hi);
  }
  return any;
}

template <typename T>
void screen_select_rows(const T* ep, int64_t rows, int64_t n, int64_t width, int64_t far_width, float* sp, int64_t* si,
                        float* lp, int64_t* li) {
  at::parallel_for(0, rows, 4, [&](int64_t begin, int64_t end) {
    BoundedHeap<Larger> lo{{}, width, Larger{}};
    BoundedHeap<Smaller> hi{{}, far_width, Smaller{}};
    lo.items.reserve(width);
    hi.items.reserve(far_width);
    for (int64_t r = begin; r < end; ++r) {
      const T* row = ep + r * n;
      lo.items.clear();
      hi.items.clear();
      const int64_t warm = std::max(width, far_width);
      for (int64_t j = 0; j < warm; ++j) {
        lo.offer(static_cast<float>(row[j]), j);
        hi.offer(static_cast<float>(row[j]), j);
      }
      for (int64_t c = warm; c < n; c += kLanes) {
        const int64_t len = std::min(kLanes, n - c);
        if (!any_outside(row + c, len, lo.threshold(), hi.threshold())) {
          continue;
        }
        for (int64_t t = 0; t < len; ++t) {
          lo.offer(static_cast<float>(row[c + t]), c + t);
          hi.offer(static_cast<float>(row[c + t]), c + t);
        }
      }
      std::sort(lo.items.begin(), lo.items.end(), [](const auto& a, const auto& b) { return Larger{}(b, a); });
      std::sort(hi.items.begin(), hi.items.end(), [](const auto& a, const auto& b) { return Smaller{}(b, a); });
      for (int64_t t = 0; t < width; ++t) {
        sp[r * width + t] = lo.items[t].first;
        si[r * width + t] = lo.items[t].second;
      }
      for (int64_t t = 0; t < far_width; ++t) {
        lp[r * far_width + t] = hi.items[t].first;
        li[r * far_width + t] = hi.items[t].second;
      }
    }
  });
}

// Per row of est [R, N] (float32, bfloat16 or float16): the `width` smallest values ascending and the
// `far_width` largest descending (as float32, exact), with their column indices (ties by index), by one pass
// with two bounded heaps.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rerank_screen_select_cpu(const at::Tensor& est,
                                                                                    int64_t width, int64_t far_width) {
  constexpr const char* op = "rerank_screen_select";
  check_rank(est, 2, op, "est", "[R, N]");
  check_dtype(est, {at::kFloat, at::kBFloat16, at::kHalf}, op, "est", "on CPU");
  const int64_t rows = est.size(0), n = est.size(1);
  TORCH_CHECK_VALUE(width >= 1 && width <= n, op, ": width must be in [1, N] = [1, ", n, "], got ", width);
  TORCH_CHECK_VALUE(far_width >= 1 && far_width <= n, op, ": far_width must be in [1, N] = [1, ", n, "], got ",
                    far_width);
  const auto e = est.contiguous();
  const auto f32 = est.options().dtype(at::kFloat);
  auto small = at::empty({rows, width}, f32);
  auto small_idx = at::empty({rows, width}, est.options().dtype(at::kLong));
  auto large = at::empty({rows, far_width}, f32);
  auto large_idx = at::empty({rows, far_width}, est.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, e.scalar_type(), op, [&] {
    screen_select_rows<scalar_t>(e.const_data_ptr<scalar_t>(), rows, n, width, far_width,
                                 small.mutable_data_ptr<float>(), small_idx.mutable_data_ptr<int64_t>(),
                                 large.mutable_data_ptr<float>(), large_idx.mutable_data_ptr<int64_t>());
  });
  return {small, small_idx, large, large_idx};
}

// Exact distances of candidate lists: for each r, the first count[r] candidates cand[r, :] of feature rows[r]
// ordered by (pair_distance, index); returns the k first (distance rounded to float, index) and the largest
// pair distance among the candidates. The candidate lists come from a low-precision search whose error bound
// guarantees that they hold every true neighbour (ptl_ext/reid/knn.py, docs/rerank_bound.md).
std::tuple<at::Tensor, at::Tensor, at::Tensor> rerank_refine_cpu(const at::Tensor& feats, const at::Tensor& rows,
                                                                 const at::Tensor& cand, const at::Tensor& count,
                                                                 int64_t k) {
  constexpr const char* op = "rerank_refine";
  check_rank(feats, 2, op, "feats", "[N, D]");
  check_dtype(feats, {at::kFloat}, op, "feats", "on CPU");
  check_rank(rows, 1, op, "rows", "[R]");
  check_dtype(rows, {at::kLong}, op, "rows", "on CPU");
  check_rank(cand, 2, op, "cand", "[R, C]");
  check_dtype(cand, {at::kLong}, op, "cand", "on CPU");
  check_rank(count, 1, op, "count", "[R]");
  check_dtype(count, {at::kLong}, op, "count", "on CPU");
  const int64_t n = feats.size(0), r_count = rows.size(0), c = cand.size(1);
  check_sizes(cand, {r_count, c}, op, "cand", "[R, C]");
  check_sizes(count, {r_count}, op, "count", "[R]");
  TORCH_CHECK_VALUE(k >= 1 && k <= c, op, ": k must be in [1, C] = [1, ", c, "], got ", k);
  const auto x = feats.contiguous();
  const auto rw = rows.contiguous();
  const auto cd = cand.contiguous();
  const auto ct = count.contiguous();
  const int64_t* rp = rw.const_data_ptr<int64_t>();
  const int64_t* cp = cd.const_data_ptr<int64_t>();
  const int64_t* np = ct.const_data_ptr<int64_t>();
  for (int64_t r = 0; r < r_count; ++r) {
    TORCH_CHECK_VALUE(rp[r] >= 0 && rp[r] < n, op, ": rows must lie in [0, N) = [0, ", n, "), got ", rp[r]);
    TORCH_CHECK_VALUE(np[r] >= k && np[r] <= c, op, ": count must lie in [k, C] = [", k, ", ", c, "], got ", np[r]);
    for (int64_t t = 0; t < np[r]; ++t) {
      TORCH_CHECK_VALUE(cp[r * c + t] >= 0 && cp[r * c + t] < n, op, ": cand must lie in [0, N) = [0, ", n, "), got ",
                        cp[r * c + t]);
    }
  }
  auto dist = at::empty({r_count, k}, feats.options());
  auto idx = at::empty({r_count, k}, cand.options());
  auto far = at::empty({r_count}, feats.options());
  const float* xp = x.const_data_ptr<float>();
  const int64_t dim = x.size(1);
  float* out_d = dist.mutable_data_ptr<float>();
  int64_t* out_i = idx.mutable_data_ptr<int64_t>();
  float* out_f = far.mutable_data_ptr<float>();
  at::parallel_for(0, r_count, 16, [&](int64_t begin, int64_t end) {
    std::vector<std::pair<double, int64_t>> row(c);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t m = np[r];
      for (int64_t t = 0; t < m; ++t) {
        const int64_t j = cp[r * c + t];
        row[t] = {pair_distance(xp + rp[r] * dim, xp + j * dim, dim), j};
      }
      std::partial_sort(row.begin(), row.begin() + k, row.begin() + m);  // by (distance, index)
      double mx = 0.0;
      for (int64_t t = 0; t < m; ++t) {
        mx = std::max(mx, row[t].first);
      }
      for (int64_t t = 0; t < k; ++t) {
        out_d[r * k + t] = static_cast<float>(row[t].first);
        out_i[r * k + t] = row[t].second;
      }
      out_f[r] = static_cast<float>(mx);
    }
  });
  return {dist, idx, far};
}

at::Tensor squared_euclidean_cpu(const at::Tensor& a, const at::Tensor& b, const at::Tensor& norm_a,
                                 const at::Tensor& norm_b) {
  constexpr const char* op = "squared_euclidean";
  check_rank(a, 2, op, "a", "[A, D]");
  check_dtype(a, {at::kFloat}, op, "a", "on CPU");
  check_rank(b, 2, op, "b", "[B, D]");
  check_like(b, a, op, "b", "a");
  TORCH_CHECK_VALUE(b.size(1) == a.size(1), op, ": b must have D = ", a.size(1), " columns like a, got ", b.size(1));
  check_rank(norm_a, 1, op, "norm_a", "[A]");
  check_like(norm_a, a, op, "norm_a", "a");
  check_sizes(norm_a, {a.size(0)}, op, "norm_a", "[A]");
  check_rank(norm_b, 1, op, "norm_b", "[B]");
  check_like(norm_b, a, op, "norm_b", "a");
  check_sizes(norm_b, {b.size(0)}, op, "norm_b", "[B]");
  auto out = at::mm(a, b.t());
  const auto na = norm_a.contiguous();
  const auto nb = norm_b.contiguous();
  const float* pa = na.const_data_ptr<float>();
  const float* pb = nb.const_data_ptr<float>();
  float* o = out.mutable_data_ptr<float>();
  const int64_t cols = b.size(0);
  at::parallel_for(0, a.size(0), 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      distances_in_place(o + r * cols, cols, pa[r], pb);
    }
  });
  return out;
}

// ---------------------------------------------------------------- V

std::tuple<at::Tensor, at::Tensor, at::Tensor> rerank_sparse_v_cpu(const at::Tensor& feats, const at::Tensor& rowmax,
                                                                   const at::Tensor& nn_idx, int64_t k1,
                                                                   int64_t k_half) {
  const auto a = check_sparse_v(feats, rowmax, nn_idx, k1, k_half);
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
  auto [ptr, nnz] = csr_ptr(counts);
  auto col = at::empty({nnz}, a.nn.options());
  auto val = at::empty({nnz}, a.feats.options());
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  int64_t* c = col.mutable_data_ptr<int64_t>();
  float* v = val.mutable_data_ptr<float>();
  const float* x = a.feats.const_data_ptr<float>();
  const float* mx = a.rowmax.const_data_ptr<float>();
  at::parallel_for(0, a.n, 64, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> buf(cap + scratch);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t m = expanded_set(nn, a.K, i, k1, k_half, buf.data(), buf.data() + cap);
      double sum = 0.0;
      for (int64_t t = 0; t < m; ++t) {
        const int64_t j = buf[t];
        const float d = static_cast<float>(pair_distance(x + i * a.dim, x + j * a.dim, a.dim));
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
  auto [out_ptr, nnz] = csr_ptr(counts);
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

// Final distances of the checked block `a` (query rows row_start ..) through the inverted index.
at::Tensor jaccard_cpu(const JaccardArgs& a, int64_t row_start, double lambda_value) {
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

at::Tensor rerank_jaccard_cpu(const at::Tensor& dist, const at::Tensor& rowmax, const at::Tensor& ptr,
                              const at::Tensor& col, const at::Tensor& val, int64_t row_start,
                              const at::Tensor& inv_ptr, const at::Tensor& inv_row, const at::Tensor& inv_val,
                              double lambda_value) {
  const auto a = check_jaccard(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value);
  return jaccard_cpu(a, row_start, lambda_value);
}

// rerank_jaccard for CSR matrices checked by an earlier call: no O(nnz) checks, no host synchronisation.
at::Tensor rerank_jaccard_unchecked_cpu(const at::Tensor& dist, const at::Tensor& rowmax, const at::Tensor& ptr,
                                        const at::Tensor& col, const at::Tensor& val, int64_t row_start,
                                        const at::Tensor& inv_ptr, const at::Tensor& inv_row, const at::Tensor& inv_val,
                                        double lambda_value) {
  const auto a = check_jaccard(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value,
                               /*check_contents=*/false);
  return jaccard_cpu(a, row_start, lambda_value);
}

}  // namespace
}  // namespace rerank
}  // namespace ptl_ext

TORCH_LIBRARY_IMPL(ptl_ext, CPU, m) {
  m.impl("squared_euclidean", &ptl_ext::rerank::squared_euclidean_cpu);
  m.impl("rerank_knn", &ptl_ext::rerank::rerank_knn_cpu);
  m.impl("rerank_refine", &ptl_ext::rerank::rerank_refine_cpu);
  m.impl("rerank_screen_select", &ptl_ext::rerank::rerank_screen_select_cpu);
  m.impl("rerank_sparse_v", &ptl_ext::rerank::rerank_sparse_v_cpu);
  m.impl("rerank_query_expansion", &ptl_ext::rerank::rerank_query_expansion_cpu);
  m.impl("rerank_jaccard", &ptl_ext::rerank::rerank_jaccard_cpu);
  m.impl("rerank_jaccard_unchecked", &ptl_ext::rerank::rerank_jaccard_unchecked_cpu);
}
