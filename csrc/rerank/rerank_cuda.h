// CUDA launchers of the sparse re-ranking steps over raw pointers and a stream. No torch header: this
// file and rerank_cuda.cu compile with nvcc alone (see CMakeLists.txt); rerank_cuda_glue.cpp calls them.
//
// Layouts as in rerank_math.h: nn [n, K] int64 neighbour table; CSR matrices as ptr [rows + 1],
// col [nnz] int64, val [nnz] float. Every launcher enqueues its kernels on `stream` and returns the
// launch status; results are ready when the stream reaches them.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace ptl_ext {
namespace rerank {
namespace cuda {

// counts[i] = size of the expanded k-reciprocal set of row i. workspace: workspace_rows *
// (expanded_capacity + expanded_scratch) int64 entries; rows are processed in chunks of workspace_rows.
cudaError_t launch_expanded_counts(const int64_t* nn, int64_t n, int64_t K, int64_t k1, int64_t k_half, int64_t* counts,
                                   int64_t* workspace, int64_t workspace_rows, cudaStream_t stream);

// Writes each row's expanded set (ascending) to col[ptr[i] ..], then val = exp(-d/rowmax) normalised
// per row, with d the squared distance of the rows of feats [n, dim] float, summed in double.
cudaError_t launch_sparse_v_fill(const int64_t* nn, int64_t n, int64_t K, int64_t k1, int64_t k_half,
                                 const float* feats, int64_t dim, const float* rowmax, const int64_t* ptr, int64_t* col,
                                 float* val, int64_t* workspace, int64_t workspace_rows, cudaStream_t stream);

// Query expansion: counts[i] = number of columns of row i of the mean of V's rows nn[i, :k2];
// cursors: n * k2 int64 entries of workspace.
cudaError_t launch_query_expansion_counts(const int64_t* ptr, const int64_t* col, const float* val, const int64_t* nn,
                                          int64_t n, int64_t K, int64_t k2, int64_t* counts, int64_t* cursors,
                                          cudaStream_t stream);

// Query expansion: writes the rows into out_col/out_val at out_ptr.
cudaError_t launch_query_expansion_fill(const int64_t* ptr, const int64_t* col, const float* val, const int64_t* nn,
                                        int64_t n, int64_t K, int64_t k2, const int64_t* out_ptr, int64_t* out_col,
                                        float* out_val, int64_t* cursors, cudaStream_t stream);

// Final distances of `rows` query rows (V rows row_start ..) to `gallery` items:
// out [rows, gallery] = (1 - lambda)·(1 - m/(2 - m)) + lambda·dist/rowmax with m = sum min(V_q, V_g)
// through the inverted index (inv_ptr over V's columns, inv_row gallery indices, inv_val values).
// acc [rows, gallery] double must be zero on entry: m is summed there, in double as on the CPU.
cudaError_t launch_jaccard(const float* dist, const float* rowmax, const int64_t* ptr, const int64_t* col,
                           const float* val, int64_t row_start, const int64_t* inv_ptr, const int64_t* inv_row,
                           const float* inv_val, int64_t rows, int64_t gallery, float lambda_value, double* acc,
                           float* out, cudaStream_t stream);

}  // namespace cuda
}  // namespace rerank
}  // namespace ptl_ext
