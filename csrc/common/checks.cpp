#include "common/checks.h"

#include <sstream>

namespace ptl_ext {

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < sizes.size(); ++i) {
    out << (i == 0 ? "" : ", ") << sizes[i];
  }
  out << ']';
  return out.str();
}

void check_rank(const at::Tensor& t, int64_t dim, const char* op, const char* arg, const char* layout) {
  if (t.dim() == dim) {
    return;
  }
  const std::string got = shape_string(t.sizes());
  TORCH_CHECK_VALUE(false, op, ": ", arg, " must be a ", dim, "-D tensor ", layout, ", got a ", t.dim(),
                    "-D tensor of shape ", got);
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

void check_sizes(const at::Tensor& t, const std::vector<int64_t>& sizes, const char* op, const char* arg,
                 const char* what) {
  if (t.sizes() == at::IntArrayRef(sizes)) {
    return;
  }
  const std::string want = shape_string(sizes);
  const std::string got = shape_string(t.sizes());
  TORCH_CHECK_VALUE(false, op, ": ", arg, " must have shape ", what, " = ", want, ", got ", got);
}

void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* arg, const char* ref_arg) {
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": ", arg, " must be on the device of ", ref_arg, " (",
                    ref.device(), "), got ", t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": ", arg, " must have the dtype of ", ref_arg, " (",
                   ref.scalar_type(), "), got ", t.scalar_type());
}

}  // namespace ptl_ext
