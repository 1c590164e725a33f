// CUDA kernels of the sparse re-ranking steps: rerank_math.h per row (one thread per row for the set
// logic and the merges), one warp per row for the dot products of V, one block per query row for the
// Jaccard accumulation through the inverted index.
#include <cstdint>

#include "rerank/rerank_cuda.h"
#include "rerank/rerank_math.h"

namespace ptl_ext {
namespace rerank {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

int64_t blocks_for(int64_t work, int64_t per_block) {
  return (work + per_block - 1) / per_block;
}

__global__ void expanded_counts_kernel(const int64_t* nn, int64_t row0, int64_t rows, int64_t K, int64_t k1,
                                       int64_t k_half, int64_t* counts, int64_t* workspace) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) {
    return;
  }
  const int64_t cap = expanded_capacity(k1, k_half);
  int64_t* buf = workspace + r * (cap + expanded_scratch(k1, k_half));
  counts[row0 + r] = expanded_set(nn, K, row0 + r, k1, k_half, buf, buf + cap);
}

__global__ void expanded_fill_kernel(const int64_t* nn, int64_t row0, int64_t rows, int64_t K, int64_t k1,
                                     int64_t k_half, const int64_t* ptr, int64_t* col, int64_t* workspace) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) {
    return;
  }
  const int64_t cap = expanded_capacity(k1, k_half);
  int64_t* buf = workspace + r * (cap + expanded_scratch(k1, k_half));
  const int64_t m = expanded_set(nn, K, row0 + r, k1, k_half, buf, buf + cap);
  for (int64_t t = 0; t < m; ++t) {
    col[ptr[row0 + r] + t] = buf[t];
  }
}

// One warp per row: squared distances summed in double (exactly 0 for identical rows), then the row's
// weights normalised to sum 1.
__global__ void v_weights_kernel(const float* feats, int64_t n, int64_t dim, const float* rowmax, const int64_t* ptr,
                                 const int64_t* col, float* val) {
  const int64_t i = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (i >= n) {
    return;
  }
  const float* xi = feats + i * dim;
  double sum = 0.0;  // in double, as the CPU kernel and the reference
  for (int64_t t = ptr[i]; t < ptr[i + 1]; ++t) {
    const int64_t j = col[t];
    const float* xj = feats + j * dim;
    double part = 0.0;
    for (int64_t e = lane; e < dim; e += kWarp) {
      const double d = static_cast<double>(xi[e]) - static_cast<double>(xj[e]);
      part += d * d;
    }
    for (int offset = kWarp / 2; offset > 0; offset /= 2) {
      part += __shfl_down_sync(0xffffffffu, part, offset);
    }
    if (lane == 0) {
      const float w = expf(-normalised(static_cast<float>(part), rowmax[i]));
      val[t] = w;
      sum += w;
    }
  }
  if (lane == 0) {
    for (int64_t t = ptr[i]; t < ptr[i + 1]; ++t) {
      val[t] = static_cast<float>(val[t] / sum);
    }
  }
}

__global__ void query_expansion_kernel(const int64_t* ptr, const int64_t* col, const float* val, const int64_t* nn,
                                       int64_t n, int64_t K, int64_t k2, int64_t* counts, const int64_t* out_ptr,
                                       int64_t* out_col, float* out_val, int64_t* cursors) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) {
    return;
  }
  int64_t* cur = cursors + i * k2;
  if (counts != nullptr) {
    counts[i] = expanded_query_row(ptr, col, val, nn, K, i, k2, cur, nullptr, nullptr);
  } else {
    expanded_query_row(ptr, col, val, nn, K, i, k2, cur, out_col + out_ptr[i], out_val + out_ptr[i]);
  }
}

// One block per query row: warps take the row's V entries, lanes their postings, and add the minima into
// the row's double accumulators (zero on entry; double, as the CPU kernel, so the order in which the
// atomics land changes the sum by ~1e-16 relative, not by float rounding); then the block writes the
// row's final distances.
__global__ void jaccard_kernel(const float* dist, const float* rowmax, const int64_t* ptr, const int64_t* col,
                               const float* val, int64_t row_start, const int64_t* inv_ptr, const int64_t* inv_row,
                               const float* inv_val, int64_t gallery, float lambda_value, double* acc, float* out) {
  const int64_t q = blockIdx.x;
  const int64_t row = row_start + q;
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int warps = blockDim.x / kWarp;
  double* m = acc + q * gallery;
  for (int64_t t = ptr[row] + warp; t < ptr[row + 1]; t += warps) {
    const int64_t c = col[t];
    const float vq = val[t];
    for (int64_t s = inv_ptr[c] + lane; s < inv_ptr[c + 1]; s += kWarp) {
      atomicAdd(m + inv_row[s], static_cast<double>(fminf(vq, inv_val[s])));
    }
  }
  __syncthreads();
  const float mx = rowmax[q];
  for (int64_t g = threadIdx.x; g < gallery; g += blockDim.x) {
    out[q * gallery + g] = final_distance(dist[q * gallery + g], mx, static_cast<float>(m[g]), lambda_value);
  }
}

}  // namespace

cudaError_t launch_expanded_counts(const int64_t* nn, int64_t n, int64_t K, int64_t k1, int64_t k_half, int64_t* counts,
                                   int64_t* workspace, int64_t workspace_rows, cudaStream_t stream) {
  for (int64_t r0 = 0; r0 < n; r0 += workspace_rows) {
    const int64_t rows = n - r0 < workspace_rows ? n - r0 : workspace_rows;
    expanded_counts_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream>>>(nn, r0, rows, K, k1, k_half, counts,
                                                                                workspace);
  }
  return cudaGetLastError();
}

cudaError_t launch_sparse_v_fill(const int64_t* nn, int64_t n, int64_t K, int64_t k1, int64_t k_half,
                                 const float* feats, int64_t dim, const float* rowmax, const int64_t* ptr, int64_t* col,
                                 float* val, int64_t* workspace, int64_t workspace_rows, cudaStream_t stream) {
  for (int64_t r0 = 0; r0 < n; r0 += workspace_rows) {
    const int64_t rows = n - r0 < workspace_rows ? n - r0 : workspace_rows;
    expanded_fill_kernel<<<blocks_for(rows, kThreads), kThreads, 0, stream>>>(nn, r0, rows, K, k1, k_half, ptr, col,
                                                                              workspace);
  }
  if (n > 0) {
    v_weights_kernel<<<blocks_for(n * kWarp, kThreads), kThreads, 0, stream>>>(feats, n, dim, rowmax, ptr, col, val);
  }
  return cudaGetLastError();
}

cudaError_t launch_query_expansion_counts(const int64_t* ptr, const int64_t* col, const float* val, const int64_t* nn,
                                          int64_t n, int64_t K, int64_t k2, int64_t* counts, int64_t* cursors,
                                          cudaStream_t stream) {
  if (n > 0) {
    query_expansion_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(ptr, col, val, nn, n, K, k2, counts,
                                                                             nullptr, nullptr, nullptr, cursors);
  }
  return cudaGetLastError();
}

cudaError_t launch_query_expansion_fill(const int64_t* ptr, const int64_t* col, const float* val, const int64_t* nn,
                                        int64_t n, int64_t K, int64_t k2, const int64_t* out_ptr, int64_t* out_col,
                                        float* out_val, int64_t* cursors, cudaStream_t stream) {
  if (n > 0) {
    query_expansion_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(ptr, col, val, nn, n, K, k2, nullptr,
                                                                             out_ptr, out_col, out_val, cursors);
  }
  return cudaGetLastError();
}

cudaError_t launch_jaccard(const float* dist, const float* rowmax, const int64_t* ptr, const int64_t* col,
                           const float* val, int64_t row_start, const int64_t* inv_ptr, const int64_t* inv_row,
                           const float* inv_val, int64_t rows, int64_t gallery, float lambda_value, double* acc,
                           float* out, cudaStream_t stream) {
  if (rows > 0 && gallery > 0) {
    jaccard_kernel<<<rows, kThreads, 0, stream>>>(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val,
                                                  gallery, lambda_value, acc, out);
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace rerank
}  // namespace ptl_ext
