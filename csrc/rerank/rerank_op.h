// Argument checks of the re-ranking ops shared by their CPU and CUDA implementations: each failure
// names the op, the argument and what was expected; the returned tensors are contiguous.
#pragma once

#include <ATen/ATen.h>

namespace ptl_ext {
namespace rerank {

// A CSR matrix with N rows: ptr [N+1] int64, col [nnz] int64, val [nnz] float32.
struct Csr {
  at::Tensor ptr, col, val;
  int64_t rows = 0;
};

struct SparseVArgs {
  at::Tensor feats, rowmax, nn;  // [N, D] float32, [N] float32, [N, K] int64
  int64_t n = 0, dim = 0, K = 0;
};

struct QueryExpansionArgs {
  Csr v;
  at::Tensor nn;  // [N, K] int64
  int64_t K = 0;
};

struct JaccardArgs {
  at::Tensor dist, rowmax;  // [Qb, G] float32, [Qb] float32
  Csr v;                    // query-expanded V over all N rows
  Csr inv;                  // gallery inverted index: N columns, each listing (gallery row, value)
  int64_t rows = 0, gallery = 0;
};

SparseVArgs check_sparse_v(const at::Tensor& feats, const at::Tensor& rowmax, const at::Tensor& nn_idx, int64_t k1,
                           int64_t k_half);

QueryExpansionArgs check_query_expansion(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& val,
                                         const at::Tensor& nn_idx, int64_t k2);

// With check_contents (the public rerank_jaccard) the entries of both CSR matrices are checked: O(nnz) work
// and host synchronisations. Without (rerank_jaccard_unchecked, for the later query blocks of one re-ranking
// whose V and inverted index were checked by the first block) only shapes, dtypes, devices, row_start and
// lambda_value are, which needs no synchronisation.
JaccardArgs check_jaccard(const at::Tensor& dist, const at::Tensor& rowmax, const at::Tensor& ptr,
                          const at::Tensor& col, const at::Tensor& val, int64_t row_start, const at::Tensor& inv_ptr,
                          const at::Tensor& inv_row, const at::Tensor& inv_val, double lambda_value,
                          bool check_contents = true);

// CSR row pointers [n + 1] from per-row counts [n], and the number of entries (synchronises).
std::pair<at::Tensor, int64_t> csr_ptr(const at::Tensor& counts);

}  // namespace rerank
}  // namespace ptl_ext
