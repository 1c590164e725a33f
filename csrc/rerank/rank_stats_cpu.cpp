// CPU kernel of ptl_ext::reid_rank_stats: per query, the ranks of its matches among the gallery items
// the Market/Duke/MSMT17 protocol keeps, without sorting the gallery. Items with the query's pid and
// camera are dropped; the matches (same pid, other camera) are sorted by (distance, index); every kept
// non-match is binary-searched among them, and a histogram of those positions gives each match's rank.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "common/checks.h"

namespace ptl_ext {
namespace rerank {
namespace {

constexpr const char* kOp = "reid_rank_stats";

template <typename T>
bool item_before(const std::pair<T, int64_t>& a, const std::pair<T, int64_t>& b) {
  return a.first < b.first || (a.first == b.first && a.second < b.second);
}

template <typename T>
void rank_stats_rows(const at::Tensor& dist, const int64_t* q_pids, const int64_t* q_cams, const int64_t* g_pids,
                     const int64_t* g_cams, int64_t* first, double* ap, double* inp) {
  const int64_t gallery = dist.size(1);
  const T* d = dist.const_data_ptr<T>();
  // Gallery indices grouped by pid, so that a query's matches are found without a scan.
  std::vector<std::pair<int64_t, int64_t>> by_pid(gallery);
  for (int64_t g = 0; g < gallery; ++g) {
    by_pid[g] = {g_pids[g], g};
  }
  std::sort(by_pid.begin(), by_pid.end());
  at::parallel_for(0, dist.size(0), 16, [&](int64_t begin, int64_t end) {
    std::vector<std::pair<T, int64_t>> pos;
    std::vector<int64_t> hist;
    for (int64_t q = begin; q < end; ++q) {
      const T* row = d + q * gallery;
      pos.clear();
      auto it = std::lower_bound(by_pid.begin(), by_pid.end(), std::make_pair(q_pids[q], int64_t(0)));
      for (; it != by_pid.end() && it->first == q_pids[q]; ++it) {
        if (g_cams[it->second] != q_cams[q]) {
          pos.emplace_back(row[it->second], it->second);
        }
      }
      first[q] = 0;
      ap[q] = 0.0;
      inp[q] = 0.0;
      if (pos.empty()) {
        continue;
      }
      std::sort(pos.begin(), pos.end(), item_before<T>);
      const int64_t matches = static_cast<int64_t>(pos.size());
      hist.assign(matches, 0);  // hist[j]: kept non-matches ranked after j matches (and before match j)
      const auto last = pos.back();
      for (int64_t g = 0; g < gallery; ++g) {
        if (row[g] > last.first) {
          continue;  // after every match: the common case, decided by one comparison
        }
        const std::pair<T, int64_t> item(row[g], g);
        if (g_pids[g] == q_pids[q] || !item_before(item, last)) {
          continue;  // a match, a same-camera item the protocol drops, or after the last match
        }
        hist[std::lower_bound(pos.begin(), pos.end(), item, item_before<T>) - pos.begin()]++;
      }
      int64_t before = 0;
      double precision_sum = 0.0;
      for (int64_t j = 0; j < matches; ++j) {
        before += hist[j];
        const int64_t rank = j + 1 + before;
        precision_sum += static_cast<double>(j + 1) / static_cast<double>(rank);
        if (j == 0) {
          first[q] = rank;
        }
        if (j == matches - 1) {
          inp[q] = static_cast<double>(matches) / static_cast<double>(rank);
        }
      }
      ap[q] = precision_sum / static_cast<double>(matches);
    }
  });
}

at::Tensor checked_ids(const at::Tensor& t, int64_t n, const char* arg, const char* what) {
  check_rank(t, 1, kOp, arg, what);
  check_dtype(t, {at::kLong}, kOp, arg, "on CPU");
  check_sizes(t, {n}, kOp, arg, what);
  return t.contiguous();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> reid_rank_stats_cpu(const at::Tensor& distmat, const at::Tensor& q_pids,
                                                                   const at::Tensor& g_pids, const at::Tensor& q_camids,
                                                                   const at::Tensor& g_camids) {
  check_rank(distmat, 2, kOp, "distmat", "[Q, G]");
  check_dtype(distmat, {at::kFloat, at::kDouble}, kOp, "distmat", "on CPU");
  const int64_t q = distmat.size(0);
  const int64_t g = distmat.size(1);
  const auto qp = checked_ids(q_pids, q, "q_pids", "[Q]");
  const auto gp = checked_ids(g_pids, g, "g_pids", "[G]");
  const auto qc = checked_ids(q_camids, q, "q_camids", "[Q]");
  const auto gc = checked_ids(g_camids, g, "g_camids", "[G]");
  const auto dist = distmat.contiguous();
  auto first = at::empty({q}, qp.options());
  auto ap = at::empty({q}, distmat.options().dtype(at::kDouble));
  auto inp = at::empty({q}, distmat.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(dist.scalar_type(), kOp, [&] {
    rank_stats_rows<scalar_t>(dist, qp.const_data_ptr<int64_t>(), qc.const_data_ptr<int64_t>(),
                              gp.const_data_ptr<int64_t>(), gc.const_data_ptr<int64_t>(),
                              first.mutable_data_ptr<int64_t>(), ap.mutable_data_ptr<double>(),
                              inp.mutable_data_ptr<double>());
  });
  return {first, ap, inp};
}

}  // namespace
}  // namespace rerank
}  // namespace ptl_ext

TORCH_LIBRARY_IMPL(ptl_ext, CPU, m) {
  m.impl("reid_rank_stats", &ptl_ext::rerank::reid_rank_stats_cpu);
}
