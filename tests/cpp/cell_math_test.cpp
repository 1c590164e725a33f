// Host-side test of cell_math.h (and the kernels' index division, index_math.h), built by CMakeLists.txt without torch:
// the backward equals central finite differences of the forward, in double precision, over random inputs, and known
// values hold.
#include <cmath>
#include <cstdio>
#include <random>

#include "cell/cell_math.h"
#include "cell/index_math.h"

using ptl_ext::cell::ScalarAct;

namespace {

int failures = 0;

void expect_near(double got, double want, double tol, const char* what) {
  if (!(std::fabs(got - want) <= tol * (1.0 + std::fabs(want)))) {
    std::printf("FAIL %s: got %.17g, want %.17g\n", what, got, want);
    ++failures;
  }
}

// Loss L = wy*y + wc*c, so dL/dy = wy and dL/dc = wc.
double loss(const double x[5], double wy, double wc) {
  double y, c;
  ptl_ext::cell::forward<ScalarAct>(x[0], x[1], x[2], x[3], x[4], y, c);
  return wy * y + wc * c;
}

void check_gradients(std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 2.0);
  const char* names[5] = {"da_i", "da_f", "da_o", "da_g", "dc_prev"};
  for (int trial = 0; trial < 2000; ++trial) {
    double x[5];
    for (double& v : x) v = normal(rng);
    const double wy = normal(rng), wc = normal(rng);
    double y, c, grad[5];
    ptl_ext::cell::forward<ScalarAct>(x[0], x[1], x[2], x[3], x[4], y, c);
    ptl_ext::cell::backward<ScalarAct>(x[0], x[1], x[2], x[3], x[4], c, wy, wc, grad[0], grad[1], grad[2], grad[3],
                                       grad[4]);
    for (int k = 0; k < 5; ++k) {
      const double h = 1e-6;
      double xp[5], xm[5];
      for (int j = 0; j < 5; ++j) xp[j] = xm[j] = x[j];
      xp[k] += h;
      xm[k] -= h;
      expect_near(grad[k], (loss(xp, wy, wc) - loss(xm, wy, wc)) / (2 * h), 1e-6, names[k]);
    }
  }
}

void check_known_values() {
  double y, c;
  ptl_ext::cell::forward<ScalarAct>(0.0, 0.0, 0.0, 0.0, 1.0, y, c);
  expect_near(c, 0.5, 1e-15, "c at zero gates, c_prev=1");  // f = 1/2, i*g = 0
  expect_near(y, 0.5 * std::tanh(0.5), 1e-15, "y at zero gates, c_prev=1");
  ptl_ext::cell::forward<ScalarAct>(1e4, -1e4, 1e4, 1e4, 3.0, y, c);
  expect_near(c, 1.0, 1e-15, "saturated gates: c = g");
  expect_near(y, std::tanh(1.0), 1e-15, "saturated gates: y = tanh(1)");
  float yf, cf;
  ptl_ext::cell::forward<ScalarAct>(-200.0f, 200.0f, 0.0f, -200.0f, -2.0f, yf, cf);
  expect_near(cf, -2.0, 1e-6, "float: f = 1, i = 0 keeps c_prev");
  expect_near(yf, 0.5 * std::tanh(-2.0), 1e-6, "float: y");
}

}  // namespace

// FastDivider equals integer division for small and large divisors (powers of two and their neighbours
// included) and numerators up to 2^31 - 1.
void check_divider(std::mt19937_64& rng) {
  std::uniform_int_distribution<uint32_t> any(0, 0x7fffffffu);
  for (uint32_t d = 1; d < 3000; ++d) {
    const ptl_ext::cell::FastDivider div(d);
    for (uint32_t n = 0; n < 5000; ++n) expect_near(div.div(n), n / d, 0, "FastDivider small");
    for (int k = 0; k < 200; ++k) {
      const uint32_t n = any(rng);
      expect_near(div.div(n), n / d, 0, "FastDivider large numerator");
    }
  }
  for (int shift = 1; shift < 31; ++shift) {
    for (int delta = -1; delta <= 1; ++delta) {
      const uint32_t d = (1u << shift) + delta;
      const ptl_ext::cell::FastDivider div(d);
      for (uint32_t n : {0u, d - 1, d, d + 1, 0x7fffffffu, 0x7ffffffeu, any(rng), any(rng)}) {
        expect_near(div.div(n), n / d, 0, "FastDivider large divisor");
      }
    }
  }
}

int main() {
  std::mt19937_64 rng(1234);
  check_gradients(rng);
  check_known_values();
  check_divider(rng);
  if (failures != 0) {
    std::printf("%d checks failed\n", failures);
    return 1;
  }
  std::printf("cell_math_test: all checks passed\n");
  return 0;
}
