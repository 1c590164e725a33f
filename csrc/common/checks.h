// Input checks shared by every op: each failure names the op, the argument and what was expected.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace ptl_ext {

// Throws unless `t` is a tensor of rank `dim`; `layout` describes the expected shape, e.g. "[B, 4K, H, W]".
void check_rank(const at::Tensor& t, int64_t dim, const char* op, const char* arg, const char* layout);

// Throws unless `t` has one of `dtypes`; `device_desc` names where, e.g. "on CPU".
void check_dtype(const at::Tensor& t, std::initializer_list<at::ScalarType> dtypes, const char* op, const char* arg,
                 const char* device_desc);

// "[2, 3, 4]": sizes formatted here rather than streamed into a check's message as an IntArrayRef (a
// build against torch 2.11 crashed while streaming the IntArrayRef of a braced list into a failing check).
std::string shape_string(at::IntArrayRef sizes);

// Throws unless `t` has the sizes `sizes` (a vector: call sites may pass a braced list safely); `what`
// describes them, e.g. "[B, K, H, W] of gates".
void check_sizes(const at::Tensor& t, const std::vector<int64_t>& sizes, const char* op, const char* arg,
                 const char* what);

// Throws unless `t` has the device and dtype of `ref` (named `ref_arg`).
void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* arg, const char* ref_arg);

}  // namespace ptl_ext
