// CUDA implementation of ptl_ext::rerank_sparse_v, rerank_query_expansion and rerank_jaccard (and its
// unchecked variant for the later query blocks of one re-ranking): checks,
// then the launchers of rerank_cuda.cu on the current stream. Compiled only in a CUDA build. (On CUDA
// the neighbour search and the ranking statistics are torch ops; see ptl_ext/ops.py.) The argument
// checks, which also compare devices, run before the device guard: a CPU tensor among CUDA ones gets a
// ValueError naming it, not the guard's complaint about a non-CUDA device.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "rerank/rerank_cuda.h"
#include "rerank/rerank_math.h"
#include "rerank/rerank_op.h"

namespace ptl_ext {
namespace rerank {
namespace {

constexpr int64_t kWorkspaceRows = 32768;  // rows of set-building scratch per launch chunk

std::tuple<at::Tensor, at::Tensor, at::Tensor> rerank_sparse_v_cuda(const at::Tensor& feats, const at::Tensor& rowmax,
                                                                    const at::Tensor& nn_idx, int64_t k1,
                                                                    int64_t k_half) {
  const auto a = check_sparse_v(feats, rowmax, nn_idx, k1, k_half);
  const c10::cuda::CUDAGuard guard(feats.device());
  const auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t ws_rows = std::max<int64_t>(1, std::min(a.n, kWorkspaceRows));
  auto workspace =
      at::empty({ws_rows * (expanded_capacity(k1, k_half) + expanded_scratch(k1, k_half))}, a.nn.options());
  auto counts = at::empty({a.n}, a.nn.options());
  C10_CUDA_CHECK(cuda::launch_expanded_counts(a.nn.const_data_ptr<int64_t>(), a.n, a.K, k1, k_half,
                                              counts.mutable_data_ptr<int64_t>(), workspace.mutable_data_ptr<int64_t>(),
                                              ws_rows, stream));
  auto [ptr, nnz] = csr_ptr(counts);
  auto col = at::empty({nnz}, a.nn.options());
  auto val = at::empty({nnz}, a.feats.options());
  C10_CUDA_CHECK(cuda::launch_sparse_v_fill(
      a.nn.const_data_ptr<int64_t>(), a.n, a.K, k1, k_half, a.feats.const_data_ptr<float>(), a.dim,
      a.rowmax.const_data_ptr<float>(), ptr.const_data_ptr<int64_t>(), col.mutable_data_ptr<int64_t>(),
      val.mutable_data_ptr<float>(), workspace.mutable_data_ptr<int64_t>(), ws_rows, stream));
  return {ptr, col, val};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> rerank_query_expansion_cuda(const at::Tensor& ptr, const at::Tensor& col,
                                                                           const at::Tensor& val,
                                                                           const at::Tensor& nn_idx, int64_t k2) {
  const auto a = check_query_expansion(ptr, col, val, nn_idx, k2);
  const c10::cuda::CUDAGuard guard(nn_idx.device());
  const auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t n = a.v.rows;
  auto cursors = at::empty({n * k2}, a.nn.options());
  auto counts = at::empty({n}, a.nn.options());
  C10_CUDA_CHECK(cuda::launch_query_expansion_counts(
      a.v.ptr.const_data_ptr<int64_t>(), a.v.col.const_data_ptr<int64_t>(), a.v.val.const_data_ptr<float>(),
      a.nn.const_data_ptr<int64_t>(), n, a.K, k2, counts.mutable_data_ptr<int64_t>(),
      cursors.mutable_data_ptr<int64_t>(), stream));
  auto [out_ptr, nnz] = csr_ptr(counts);
  auto out_col = at::empty({nnz}, a.nn.options());
  auto out_val = at::empty({nnz}, a.v.val.options());
  C10_CUDA_CHECK(cuda::launch_query_expansion_fill(
      a.v.ptr.const_data_ptr<int64_t>(), a.v.col.const_data_ptr<int64_t>(), a.v.val.const_data_ptr<float>(),
      a.nn.const_data_ptr<int64_t>(), n, a.K, k2, out_ptr.const_data_ptr<int64_t>(),
      out_col.mutable_data_ptr<int64_t>(), out_val.mutable_data_ptr<float>(), cursors.mutable_data_ptr<int64_t>(),
      stream));
  return {out_ptr, out_col, out_val};
}

at::Tensor jaccard_cuda(const JaccardArgs& a, int64_t row_start, double lambda_value) {
  const c10::cuda::CUDAGuard guard(a.dist.device());
  auto acc = at::zeros({a.rows, a.gallery}, a.dist.options().dtype(at::kDouble));
  auto out = at::empty({a.rows, a.gallery}, a.dist.options());
  C10_CUDA_CHECK(cuda::launch_jaccard(a.dist.const_data_ptr<float>(), a.rowmax.const_data_ptr<float>(),
                                      a.v.ptr.const_data_ptr<int64_t>(), a.v.col.const_data_ptr<int64_t>(),
                                      a.v.val.const_data_ptr<float>(), row_start, a.inv.ptr.const_data_ptr<int64_t>(),
                                      a.inv.col.const_data_ptr<int64_t>(), a.inv.val.const_data_ptr<float>(), a.rows,
                                      a.gallery, static_cast<float>(lambda_value), acc.mutable_data_ptr<double>(),
                                      out.mutable_data_ptr<float>(), at::cuda::getCurrentCUDAStream()));
  return out;
}

at::Tensor rerank_jaccard_cuda(const at::Tensor& dist, const at::Tensor& rowmax, const at::Tensor& ptr,
                               const at::Tensor& col, const at::Tensor& val, int64_t row_start,
                               const at::Tensor& inv_ptr, const at::Tensor& inv_row, const at::Tensor& inv_val,
                               double lambda_value) {
  const auto a = check_jaccard(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value);
  return jaccard_cuda(a, row_start, lambda_value);
}

// rerank_jaccard for CSR matrices checked by an earlier call: no O(nnz) checks, no host synchronisation.
at::Tensor rerank_jaccard_unchecked_cuda(const at::Tensor& dist, const at::Tensor& rowmax, const at::Tensor& ptr,
                                         const at::Tensor& col, const at::Tensor& val, int64_t row_start,
                                         const at::Tensor& inv_ptr, const at::Tensor& inv_row,
                                         const at::Tensor& inv_val, double lambda_value) {
  const auto a = check_jaccard(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value,
                               /*check_contents=*/false);
  return jaccard_cuda(a, row_start, lambda_value);
}

}  // namespace
}  // namespace rerank
}  // namespace ptl_ext

TORCH_LIBRARY_IMPL(ptl_ext, CUDA, m) {
  m.impl("rerank_sparse_v", &ptl_ext::rerank::rerank_sparse_v_cuda);
  m.impl("rerank_query_expansion", &ptl_ext::rerank::rerank_query_expansion_cuda);
  m.impl("rerank_jaccard", &ptl_ext::rerank::rerank_jaccard_cuda);
  m.impl("rerank_jaccard_unchecked", &ptl_ext::rerank::rerank_jaccard_unchecked_cuda);
}
