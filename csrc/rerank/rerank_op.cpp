#include "rerank/rerank_op.h"

#include "common/checks.h"

namespace ptl_ext {
namespace rerank {
namespace {

const char* device_desc(const at::Tensor& t) {
  return t.is_cuda() ? "on CUDA" : "on CPU";
}

at::Tensor checked_vector(const at::Tensor& t, int64_t n, at::ScalarType dtype, const at::Tensor& ref, const char* op,
                          const char* arg, const char* what) {
  check_rank(t, 1, op, arg, what);
  check_dtype(t, {dtype}, op, arg, device_desc(t));
  check_sizes(t, {n}, op, arg, what);
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": ", arg, " must be on ", ref.device(), ", got ", t.device());
  return t.contiguous();
}

// Throws unless every entry of the int64 tensor t lies in [0, bound).
void check_range(const at::Tensor& t, int64_t bound, const char* op, const char* arg) {
  if (t.numel() == 0) {
    return;
  }
  const auto [lo, hi] = at::aminmax(t);
  const int64_t lo_v = lo.item<int64_t>();
  const int64_t hi_v = hi.item<int64_t>();
  TORCH_CHECK_VALUE(lo_v >= 0 && hi_v < bound, op, ": entries of ", arg, " must lie in [0, ", bound, "), got [", lo_v,
                    ", ", hi_v, "]");
}

// CSR with `rows` rows whose column indices lie in [0, col_bound). With check_contents the entries are
// checked too (ptr starts at 0, ends at nnz and never decreases; every column index in range): two O(nnz)
// scans and a few host synchronisations. Without, only shapes, dtypes and devices are checked.
Csr checked_csr(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& val, int64_t rows, int64_t col_bound,
                const at::Tensor& ref, const char* op, const char* ptr_arg, const char* col_arg, const char* val_arg,
                bool check_contents = true) {
  Csr m;
  m.rows = rows;
  m.ptr = checked_vector(ptr, rows + 1, at::kLong, ref, op, ptr_arg, "[rows + 1]");
  m.col = checked_vector(col, col.numel(), at::kLong, ref, op, col_arg, "[nnz]");
  m.val = checked_vector(val, col.numel(), at::kFloat, ref, op, val_arg, "[nnz] (as many as the column indices)");
  if (!check_contents) {
    return m;
  }
  const auto ends = at::stack({m.ptr[0], m.ptr[rows]}).cpu();
  TORCH_CHECK_VALUE(ends[0].item<int64_t>() == 0 && ends[1].item<int64_t>() == col.numel(), op, ": ", ptr_arg,
                    " must start at 0 and end at nnz = ", col.numel());
  TORCH_CHECK_VALUE(rows == 0 || (m.ptr.diff() >= 0).all().item<bool>(), op, ": ", ptr_arg, " must be non-decreasing");
  check_range(m.col, col_bound, op, col_arg);
  return m;
}

at::Tensor checked_nn(const at::Tensor& nn_idx, int64_t n, int64_t min_k, const at::Tensor& ref, const char* op,
                      const char* why) {
  check_rank(nn_idx, 2, op, "nn_idx", "[N, K]");
  check_dtype(nn_idx, {at::kLong}, op, "nn_idx", device_desc(nn_idx));
  TORCH_CHECK_VALUE(nn_idx.size(0) == n, op, ": nn_idx must have ", n, " rows, got ", nn_idx.size(0));
  TORCH_CHECK_VALUE(nn_idx.size(1) >= min_k, op, ": nn_idx must have at least ", min_k, " columns (", why, "), got ",
                    nn_idx.size(1));
  TORCH_CHECK_VALUE(nn_idx.device() == ref.device(), op, ": nn_idx must be on ", ref.device(), ", got ",
                    nn_idx.device());
  check_range(nn_idx, n, op, "nn_idx");
  return nn_idx.contiguous();
}

}  // namespace

SparseVArgs check_sparse_v(const at::Tensor& feats, const at::Tensor& rowmax, const at::Tensor& nn_idx, int64_t k1,
                           int64_t k_half) {
  constexpr const char* op = "rerank_sparse_v";
  check_rank(feats, 2, op, "feats", "[N, D]");
  check_dtype(feats, {at::kFloat}, op, "feats", device_desc(feats));
  TORCH_CHECK_VALUE(k1 >= 1, op, ": k1 must be >= 1, got ", k1);
  TORCH_CHECK_VALUE(k_half >= 0 && k_half <= k1, op, ": k_half must be in [0, k1], got ", k_half);
  SparseVArgs a;
  a.n = feats.size(0);
  a.dim = feats.size(1);
  a.feats = feats.contiguous();
  a.rowmax = checked_vector(rowmax, a.n, at::kFloat, feats, op, "rowmax", "[N]");
  a.nn = checked_nn(nn_idx, a.n, k1 + 1, feats, op, "k1 + 1");
  a.K = a.nn.size(1);
  return a;
}

QueryExpansionArgs check_query_expansion(const at::Tensor& ptr, const at::Tensor& col, const at::Tensor& val,
                                         const at::Tensor& nn_idx, int64_t k2) {
  constexpr const char* op = "rerank_query_expansion";
  check_rank(nn_idx, 2, op, "nn_idx", "[N, K]");
  TORCH_CHECK_VALUE(k2 >= 1, op, ": k2 must be >= 1, got ", k2);
  QueryExpansionArgs a;
  a.v = checked_csr(ptr, col, val, nn_idx.size(0), nn_idx.size(0), nn_idx, op, "ptr", "col", "val");
  a.nn = checked_nn(nn_idx, nn_idx.size(0), k2, nn_idx, op, "k2");
  a.K = a.nn.size(1);
  return a;
}

JaccardArgs check_jaccard(const at::Tensor& dist, const at::Tensor& rowmax, const at::Tensor& ptr,
                          const at::Tensor& col, const at::Tensor& val, int64_t row_start, const at::Tensor& inv_ptr,
                          const at::Tensor& inv_row, const at::Tensor& inv_val, double lambda_value,
                          bool check_contents) {
  const char* op = check_contents ? "rerank_jaccard" : "rerank_jaccard_unchecked";
  check_rank(dist, 2, op, "dist", "[Qb, G]");
  check_dtype(dist, {at::kFloat}, op, "dist", device_desc(dist));
  TORCH_CHECK_VALUE(lambda_value >= 0.0 && lambda_value <= 1.0, op, ": lambda_value must be in [0, 1], got ",
                    lambda_value);
  JaccardArgs a;
  a.rows = dist.size(0);
  a.gallery = dist.size(1);
  a.dist = dist.contiguous();
  a.rowmax = checked_vector(rowmax, a.rows, at::kFloat, dist, op, "rowmax", "[Qb]");
  check_rank(ptr, 1, op, "ptr", "[N + 1]");
  const int64_t n = ptr.numel() - 1;
  TORCH_CHECK_VALUE(n >= 0, op, ": ptr must have N + 1 >= 1 entries");
  TORCH_CHECK_VALUE(row_start >= 0 && row_start + a.rows <= n, op, ": rows [row_start, row_start + Qb) = [", row_start,
                    ", ", row_start + a.rows, ") must lie within the ", n, " rows of V");
  a.v = checked_csr(ptr, col, val, n, n, dist, op, "ptr", "col", "val", check_contents);
  a.inv =
      checked_csr(inv_ptr, inv_row, inv_val, n, a.gallery, dist, op, "inv_ptr", "inv_row", "inv_val", check_contents);
  return a;
}

std::pair<at::Tensor, int64_t> csr_ptr(const at::Tensor& counts) {
  auto ptr = at::zeros({counts.numel() + 1}, counts.options());
  ptr.narrow(0, 1, counts.numel()).copy_(counts.cumsum(0));
  return {ptr, ptr[counts.numel()].item<int64_t>()};
}

}  // namespace rerank
}  // namespace ptl_ext
