// Output size and padding of sliding-window ops (Conv, pools), normalised to
// three spatial dims (leading dims of size 1) so kernels need one code path.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/attrs.h"
#include "runtime/tensor.h"

namespace infopt {

struct WindowAttrs {
  std::vector<int64_t> kernel_shape, strides, dilations, pads;
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;
  bool count_include_pad = false;  // AveragePool only

  // MaxPool's (storage_order only shapes an Indices output; accepted) or AveragePool's attributes.
  void parse_pool(const Attrs& a, bool is_max) {
    if (is_max) {
      a.allow({"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
    } else {
      a.allow({"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"});
      count_include_pad = a.get_int("count_include_pad", 0) != 0;
    }
    parse(a, true);
  }

  void parse(const Attrs& a, bool pool) {
    kernel_shape = a.get_ints("kernel_shape");
    strides = a.get_ints("strides");
    dilations = a.get_ints("dilations");
    pads = a.get_ints("pads");
    auto_pad = a.get_str("auto_pad", "NOTSET");
    if (auto_pad.empty()) auto_pad = "NOTSET";
    if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && auto_pad != "VALID") {
      a.fail("auto_pad", "has unsupported value '" + auto_pad + "'");
    }
    ceil_mode = pool && a.get_int("ceil_mode", 0) != 0;
    for (int64_t s : strides) if (s < 1) a.fail("strides", "must be positive");
    for (int64_t d : dilations) if (d < 1) a.fail("dilations", "must be positive");
    for (int64_t p : pads) if (p < 0) a.fail("pads", "must be non-negative");
    if (pool && kernel_shape.empty()) a.fail("kernel_shape", "is required");
  }
};

struct Geometry {
  int nd = 0;  // real spatial dims (1..3)
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t k_size() const { return k[0] * k[1] * k[2]; }
};

inline Geometry make_geometry(const WindowAttrs& w, const Shape& in_spatial, const std::vector<int64_t>& kernel,
                              const char* op) {
  const int nd = static_cast<int>(in_spatial.size());
  if (nd < 1 || nd > 3) throw std::invalid_argument(std::string(op) + ": only 1 to 3 spatial dims are supported");
  if (static_cast<int>(kernel.size()) != nd) throw std::invalid_argument(std::string(op) + ": kernel rank does not match input");
  auto chk = [&](const std::vector<int64_t>& v, size_t n, const char* name) {
    if (!v.empty() && v.size() != n) {
      throw std::invalid_argument(std::string(op) + ": attribute '" + name + "' has " + std::to_string(v.size()) +
                                  " values, expected " + std::to_string(n));
    }
  };
  chk(w.strides, static_cast<size_t>(nd), "strides");
  chk(w.dilations, static_cast<size_t>(nd), "dilations");
  chk(w.pads, static_cast<size_t>(2 * nd), "pads");
  Geometry g;
  g.nd = nd;
  const int off = 3 - nd;
  for (int i = 0; i < 3; ++i) g.in[i] = g.out[i] = g.k[i] = g.s[i] = g.d[i] = 1, g.pb[i] = g.pe[i] = 0;
  for (int i = 0; i < nd; ++i) {
    const int j = off + i;
    const int64_t in = in_spatial[static_cast<size_t>(i)], k = kernel[static_cast<size_t>(i)];
    const int64_t s = w.strides.empty() ? 1 : w.strides[static_cast<size_t>(i)];
    const int64_t d = w.dilations.empty() ? 1 : w.dilations[static_cast<size_t>(i)];
    const int64_t dk = (k - 1) * d + 1;
    int64_t pb = 0, pe = 0, out;
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + dk - in);
      const int64_t small = total / 2, big = total - small;
      pb = w.auto_pad == "SAME_UPPER" ? small : big;
      pe = total - pb;
    } else {
      if (w.auto_pad == "NOTSET" && !w.pads.empty()) pb = w.pads[static_cast<size_t>(i)], pe = w.pads[static_cast<size_t>(i + nd)];
      const int64_t span = in + pb + pe - dk;
      if (span < 0) {
        throw std::invalid_argument(std::string(op) + ": kernel " + std::to_string(dk) + " (dilated) larger than padded input " +
                                    std::to_string(in + pb + pe) + " on spatial axis " + std::to_string(i));
      }
      out = w.ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
      // A window that would start inside the right padding is dropped.
      if (w.ceil_mode && (out - 1) * s >= in + pb) --out;
    }
    g.in[j] = in, g.out[j] = out, g.k[j] = k, g.s[j] = s, g.d[j] = d, g.pb[j] = pb, g.pe[j] = pe;
  }
  return g;
}

// First and one-past-last output index o with 0 <= o*s + off < in.
inline void valid_range(int64_t out, int64_t s, int64_t off, int64_t in, int64_t& lo, int64_t& hi) {
  // o >= ceil(-off / s), o <= floor((in - 1 - off) / s)
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  const int64_t top = in - 1 - off;
  hi = top < 0 ? 0 : top / s + 1;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

}  // namespace infopt
