#include "common/checks.h"

#include <sstream>

namespace ptl_ext {

void check_rank(const at::Tensor& t, int64_t dim, const char* op, const char* arg, const char* layout) {
  TORCH_CHECK_VALUE(t.dim() == dim, op, ": ", arg, " must be a ", dim, "-D tensor ", layout, ", got a ", t.dim(),
                    "-D tensor of shape ", t.sizes());
}

void check_dtype(const at::Tensor& t, std::initializer_list<at::ScalarType> dtypes, const char* op, const char* arg,
                 const char* device_desc) {
  for (const auto dtype : dtypes) {
    if (t.scalar_type() == dtype) {
      return;
    }
  }
  std::ostringstream allowed;
  const char* sep = "";
  for (const auto dtype : dtypes) {
    allowed << sep << c10::toString(dtype);
    sep = ", ";
  }
  TORCH_CHECK_TYPE(false, op, ": ", arg, " must have dtype ", allowed.str(), " ", device_desc, ", got ",
                   t.scalar_type());
}

void check_sizes(const at::Tensor& t, at::IntArrayRef sizes, const char* op, const char* arg, const char* what) {
  TORCH_CHECK_VALUE(t.sizes() == sizes, op, ": ", arg, " must have shape ", what, " = ", sizes, ", got ", t.sizes());
}

void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* arg, const char* ref_arg) {
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": ", arg, " must be on the device of ", ref_arg, " (",
                    ref.device(), "), got ", t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": ", arg, " must have the dtype of ", ref_arg, " (",
                   ref.scalar_type(), "), got ", t.scalar_type());
}

}  // namespace ptl_ext
