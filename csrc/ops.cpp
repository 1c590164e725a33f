// Every TORCH_LIBRARY schema of ptl_ext, in one place, and the Python module stub for `ptl_ext._C`.
// Importing `ptl_ext._C` loads this library, which runs the registrations below.
#include <Python.h>
#include <torch/library.h>

#include <string>

#include "common/cpu_isa.h"

PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", "ptl_ext compiled ops", -1, nullptr};
  return PyModule_Create(&module_def);
}

TORCH_LIBRARY(ptl_ext, m) {
  // Fused BConv-Cell gate/state update.
  m.def("bconv_cell_update(Tensor gates, Tensor? c_prev) -> (Tensor, Tensor)");
  m.def(
      "bconv_cell_update_backward(Tensor gates, Tensor? c_prev, Tensor c, Tensor? grad_y, Tensor? grad_c, "
      "bool need_grad_c_prev) -> (Tensor, Tensor)");
  // Name of the SIMD kernel family the CPU update runs with on this machine: "default", "avx2" or "avx512".
  m.def("cpu_kernel_isa() -> str", []() { return std::string(ptl_ext::cpu_isa_name(ptl_ext::cpu_isa())); });
  // k-reciprocal re-ranking
  m.def("squared_euclidean(Tensor a, Tensor b, Tensor norm_a, Tensor norm_b) -> Tensor");
  m.def("rerank_knn(Tensor feats, Tensor norms, int k, int block) -> (Tensor, Tensor, Tensor)");
  m.def("rerank_screen_select(Tensor est, int width, int far_width) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("rerank_refine(Tensor feats, Tensor rows, Tensor cand, Tensor count, int k) -> (Tensor, Tensor, Tensor)");
  m.def(
      "rerank_sparse_v(Tensor feats, Tensor rowmax, Tensor nn_idx, int k1, int k_half) "
      "-> (Tensor, Tensor, Tensor)");
  m.def(
      "rerank_query_expansion(Tensor ptr, Tensor col, Tensor val, Tensor nn_idx, int k2) -> (Tensor, Tensor, Tensor)");
  m.def(
      "rerank_jaccard(Tensor dist, Tensor rowmax, Tensor ptr, Tensor col, Tensor val, int row_start, "
      "Tensor inv_ptr, Tensor inv_row, Tensor inv_val, float lambda_value) -> Tensor");
  // rerank_jaccard trusting the entries of V and its inverted index (checked by an earlier rerank_jaccard call).
  m.def(
      "rerank_jaccard_unchecked(Tensor dist, Tensor rowmax, Tensor ptr, Tensor col, Tensor val, int row_start, "
      "Tensor inv_ptr, Tensor inv_row, Tensor inv_val, float lambda_value) -> Tensor");
  m.def(
      "reid_rank_stats(Tensor distmat, Tensor q_pids, Tensor g_pids, Tensor q_camids, Tensor g_camids) "
      "-> (Tensor, Tensor, Tensor)");
}
