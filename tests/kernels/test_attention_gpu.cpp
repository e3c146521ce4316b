// The CUDA dense attention kernel against the float CPU reference (dense_attention_ref), and the
// index-driven kernel with a dense index against the dense fast path.
#include "catch.h"

#if defined(HEADCAL_HAVE_CUDA)
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/index_ref.h"
#include "tests/kernels/gpu_attention_fixture.h"

using namespace hc;
using namespace hc::kernels;
using hc::test::AttentionProblem;
using hc::test::DeviceArray;

namespace {

struct DenseRun {
  std::vector<float> o;    // [N, H, d]
  std::vector<float> lse;  // [H, N]
};

DenseRun run_dense_gpu(const AttentionProblem& pb) {
  const auto& d = pb.dims;
  DeviceArray<uint16_t> o(d.n_tokens * d.n_heads * d.head_dim);
  DeviceArray<float> lse(d.n_heads * d.n_tokens);
  o.fill_bytes(0xff);  // NaN: every element must be written
  lse.fill_bytes(0xff);
  dense_attention_forward(pb.params(o.get(), lse.get()));
  return {test::from_half(o.download(), pb.dtype), lse.download()};
}

DenseRun run_sparse_gpu(const AttentionProblem& pb, const SparseIndex& index) {
  const auto& d = pb.dims;
  test::DeviceIndex di(index);
  DeviceArray<uint16_t> o(d.n_tokens * d.n_heads * d.head_dim);
  DeviceArray<float> lse(d.n_heads * d.n_tokens);
  o.fill_bytes(0xff);
  lse.fill_bytes(0xff);
  sparse_attention_forward(pb.params(o.get(), lse.get()), di.view());
  return {test::from_half(o.download(), pb.dtype), lse.download()};
}

DenseRun run_dense_cpu(const AttentionProblem& pb) {
  const auto& d = pb.dims;
  DenseRun r;
  r.o.resize(d.n_tokens * d.n_heads * d.head_dim);
  r.lse.resize(d.n_heads * d.n_tokens);
  dense_attention_ref(d, pb.q.values.data(), pb.k.values.data(), pb.v.values.data(), r.o.data(),
                      r.lse.data());
  return r;
}

// O is stored in 16 bits and P enters the PV product rounded to 16 bits: bf16 keeps 8 bits of
// mantissa (relative step 2^-8 = 0.004), so outputs of magnitude <= ~3 stay within 0.03.
void check_against_cpu(const DenseRun& gpu, const DenseRun& cpu, AttnDType dtype) {
  const auto eo = test::compare(gpu.o, cpu.o);
  const auto el = test::compare(gpu.lse, cpu.lse);
  const double o_tol = (dtype == AttnDType::kBF16 ? 0.012 : 0.004) * std::max(1.0, eo.max_ref);
  INFO("O max abs err " << eo.max_abs << " mean " << eo.mean_abs << " (max |O| " << eo.max_ref
                        << "); LSE max abs err " << el.max_abs);
  CHECK(eo.finite);
  CHECK(el.finite);
  CHECK(eo.max_abs <= o_tol);
  CHECK(eo.mean_abs <= o_tol / 8);
  CHECK(el.max_abs <= 1e-3 * std::max(1.0, el.max_ref));
}

}  // namespace

TEST_CASE("dense attention kernel matches the CPU reference (odd N, GQA, d 64/128, bf16/fp16)",
          "[gpu][attention]") {
  HC_REQUIRE_GPU();
  for (AttnDType dtype : {AttnDType::kBF16, AttnDType::kFP16}) {
    for (int d : {64, 128}) {
      for (int n : {1, 17, 63, 65, 200, 1000}) {
        DYNAMIC_SECTION(test::dtype_name(dtype) << " d=" << d << " N=" << n << " H=9 Hkv=3") {
          AttentionProblem pb(n, 9, 3, d, dtype, 1000u + n + d);
          check_against_cpu(run_dense_gpu(pb), run_dense_cpu(pb), dtype);
        }
      }
    }
  }
}

TEST_CASE("dense attention kernel: H=32 Hkv=8 and MHA", "[gpu][attention]") {
  HC_REQUIRE_GPU();
  SECTION("GQA 32/8, d=128, N=300") {
    AttentionProblem pb(300, 32, 8, 128, AttnDType::kBF16, 7);
    check_against_cpu(run_dense_gpu(pb), run_dense_cpu(pb), AttnDType::kBF16);
  }
  SECTION("MHA 4/4, d=64, N=129, fp16") {
    AttentionProblem pb(129, 4, 4, 64, AttnDType::kFP16, 8);
    check_against_cpu(run_dense_gpu(pb), run_dense_cpu(pb), AttnDType::kFP16);
  }
  SECTION("peaked softmax (large scores) stays finite and exact") {
    AttentionProblem pb(333, 2, 1, 64, AttnDType::kBF16, 9, 4.0f);
    check_against_cpu(run_dense_gpu(pb), run_dense_cpu(pb), AttnDType::kBF16);
  }
}

TEST_CASE("dense attention kernel: many work tiles through few persistent CTAs", "[gpu][attention]") {
  HC_REQUIRE_GPU();
  // 940 tokens: 8 row tiles (the last 44 rows: its second consumer has none) x 6 heads = 48 work
  // tiles through 1 or 5 CTAs.
  for (int d : {64, 128}) {
    AttentionProblem pb(940, 6, 2, d, AttnDType::kBF16, 60u + d);
    const DenseRun cpu = run_dense_cpu(pb);
    for (int ctas : {1, 5}) {
      DYNAMIC_SECTION("d=" << d << ", " << ctas << " CTA(s)") {
        hc::kernels::detail::ScopedCtaCap cap(ctas);
        check_against_cpu(run_dense_gpu(pb), cpu, AttnDType::kBF16);
      }
    }
  }
}

TEST_CASE("index-driven kernel with a dense index equals the dense fast path", "[gpu][attention]") {
  HC_REQUIRE_GPU();
  for (int d : {64, 128}) {
    for (int n : {1, 65, 1000, 4100}) {
      DYNAMIC_SECTION("d=" << d << " N=" << n) {
        AttentionProblem pb(n, 6, 2, d, AttnDType::kBF16, 50u + n);
        const DenseRun dense = run_dense_gpu(pb);
        const DenseRun sparse = run_sparse_gpu(pb, build_dense_index(n, 6));
        // The dense path walks 128-key tiles, the index-driven one 64-key tiles: the online
        // softmax rescales at different points, so they agree to rounding (and both match the
        // CPU reference).
        const auto eo = test::compare(sparse.o, dense.o);
        const auto el = test::compare(sparse.lse, dense.lse);
        INFO("O max abs diff " << eo.max_abs << ", LSE max abs diff " << el.max_abs);
        CHECK(eo.finite);
        CHECK(el.finite);
        CHECK(eo.max_abs <= 0.012 * std::max(1.0, eo.max_ref));
        CHECK(el.max_abs <= 1e-3 * std::max(1.0, el.max_ref));
        check_against_cpu(sparse, run_dense_cpu(pb), AttnDType::kBF16);
      }
    }
  }
}

TEST_CASE("attention kernels: O with a row stride, O alone, LSE alone", "[gpu][attention]") {
  HC_REQUIRE_GPU();
  // The epilogue writes O row pieces (at d = 128 through shared memory) and the LSE separately;
  // each output must come out the same whatever else is asked for, and a padded O row stride must
  // leave the padding untouched. Dense and index-driven kernels, N = 300 (the last row tile part
  // full), GQA 6/2.
  const int n = 300, heads = 6;
  for (int d : {64, 128}) {
    AttentionProblem pb(n, heads, 2, d, AttnDType::kBF16, 90u + d);
    const test::DeviceIndex di(build_a_shape_index(n, heads, 4, 100));
    for (bool dense : {true, false}) {
      DYNAMIC_SECTION((dense ? "dense" : "index-driven") << " d=" << d) {
        auto launch = [&](const AttentionParams& p) {
          if (dense) dense_attention_forward(p);
          else sparse_attention_forward(p, di.view());
        };
        const int64_t row = int64_t(heads) * d, padded = row + 8;
        DeviceArray<uint16_t> o(n * row), o_padded(n * padded), o_alone(n * row);
        DeviceArray<float> lse(heads * n), lse_alone(heads * n);
        o.fill_bytes(0xff);
        o_padded.fill_bytes(0x5a);
        o_alone.fill_bytes(0xff);
        lse.fill_bytes(0xff);
        lse_alone.fill_bytes(0xff);
        launch(pb.params(o.get(), lse.get()));
        AttentionParams strided = pb.params(o_padded.get(), nullptr);
        strided.o_row_stride = padded;
        launch(strided);
        launch(pb.params(o_alone.get(), nullptr));
        launch(pb.params(nullptr, lse_alone.get()));
        const std::vector<uint16_t> full = o.download(), with_pad = o_padded.download();
        CHECK(o_alone.download() == full);
        CHECK(lse_alone.download() == lse.download());
        bool rows_equal = true, padding_kept = true;
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t c = 0; c < row; ++c) rows_equal &= with_pad[i * padded + c] == full[i * row + c];
          for (int64_t c = row; c < padded; ++c) padding_kept &= with_pad[i * padded + c] == 0x5a5a;
        }
        CHECK(rows_equal);
        CHECK(padding_kept);
      }
    }
  }
}

TEST_CASE("attention launchers reject unsupported shapes", "[attention]") {
  AttentionParams p;
  alignas(16) int dummy[8] = {};
  p.q = p.k = p.v = dummy;
  p.n_tokens = 10;
  p.n_heads = 4;
  p.n_kv_heads = 2;
  p.head_dim = 96;
  CHECK_THROWS_AS(dense_attention_forward(p), hc::InputError);
  p.head_dim = 64;
  p.n_kv_heads = 3;
  CHECK_THROWS_AS(dense_attention_forward(p), hc::InputError);
  p.n_kv_heads = 2;
  p.n_tokens = 0;
  CHECK_THROWS_AS(dense_attention_forward(p), hc::InputError);
  p.n_tokens = 10;
  p.q_row_stride = 12;  // not a multiple of 8 elements
  CHECK_THROWS_AS(dense_attention_forward(p), hc::InputError);
  p.q_row_stride = 0;
  p.o = dummy + 1;  // 4 bytes past a 16-byte boundary: the O copy-out writes 16-byte pieces
  CHECK(hc::test::throws_input_error_containing([&]() { dense_attention_forward(p); }, "16-byte aligned"));
  p.o = nullptr;
  SparseIndexView wrong;
  wrong.n_heads = 3;
  wrong.n_tokens = 10;
  CHECK_THROWS_AS(sparse_attention_forward(p, wrong), hc::InputError);
}

#else
TEST_CASE("attention GPU tests need CUDA", "[gpu][attention]") { HC_REQUIRE_GPU(); }
#endif
