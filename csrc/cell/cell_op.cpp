#include "cell/cell_op.h"

#include "common/checks.h"

namespace ptl_ext {
namespace cell {
namespace {

constexpr const char* kForward = "bconv_cell_update";
constexpr const char* kBackward = "bconv_cell_update_backward";

// The CUDA kernels also take float16; the CPU ones do not.
std::vector<int64_t> state_sizes(const at::Tensor& gates, const char* op) {
  check_rank(gates, 4, op, "gates", "[B, 4K, H, W]");
  if (gates.is_cuda()) {
    check_dtype(gates, {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}, op, "gates", "on CUDA");
  } else {
    check_dtype(gates, {at::kFloat, at::kDouble, at::kBFloat16}, op, "gates", "on CPU");
  }
  TORCH_CHECK_VALUE(gates.size(1) % 4 == 0, op, ": gates channels (", gates.size(1),
                    ") must be divisible by 4 (chunks i, f, o, g)");
  return {gates.size(0), gates.size(1) / 4, gates.size(2), gates.size(3)};
}

at::Tensor checked_state(const at::Tensor& t, const at::Tensor& gates, const std::vector<int64_t>& sizes,
                         const char* op, const char* arg) {
  check_rank(t, 4, op, arg, "[B, K, H, W]");
  check_sizes(t, sizes, op, arg, "[B, K, H, W] of gates [B, 4K, H, W]");
  check_like(t, gates, op, arg, "gates");
  return t.contiguous();
}

at::Tensor checked_optional_state(const c10::optional<at::Tensor>& t, const at::Tensor& gates,
                                  const std::vector<int64_t>& sizes, const char* op, const char* arg) {
  if (!t.has_value() || !t->defined()) {
    return at::Tensor();
  }
  return checked_state(*t, gates, sizes, op, arg);
}

}  // namespace

ForwardTensors prepare_forward(const at::Tensor& gates, const c10::optional<at::Tensor>& c_prev) {
  const auto sizes = state_sizes(gates, kForward);
  ForwardTensors t;
  t.gates = gates.contiguous();
  t.c_prev = checked_optional_state(c_prev, gates, sizes, kForward, "c_prev");
  t.y = at::empty(sizes, t.gates.options());
  t.c = at::empty(sizes, t.gates.options());
  t.batch = sizes[0];
  t.khw = sizes[1] * sizes[2] * sizes[3];
  return t;
}

BackwardTensors prepare_backward(const at::Tensor& gates, const c10::optional<at::Tensor>& c_prev, const at::Tensor& c,
                                 const c10::optional<at::Tensor>& grad_y, const c10::optional<at::Tensor>& grad_c,
                                 bool need_grad_c_prev) {
  const auto sizes = state_sizes(gates, kBackward);
  BackwardTensors t;
  t.gates = gates.contiguous();
  t.c_prev = checked_optional_state(c_prev, gates, sizes, kBackward, "c_prev");
  t.c = checked_state(c, gates, sizes, kBackward, "c");
  t.dy = checked_optional_state(grad_y, gates, sizes, kBackward, "grad_y");
  t.dc = checked_optional_state(grad_c, gates, sizes, kBackward, "grad_c");
  t.dgates = at::empty(gates.sizes(), t.gates.options());
  t.dc_prev = need_grad_c_prev ? at::empty(sizes, t.gates.options()) : at::empty({0}, t.gates.options());
  t.batch = sizes[0];
  t.khw = sizes[1] * sizes[2] * sizes[3];
  return t;
}

}  // namespace cell
}  // namespace ptl_ext
