// pgolf bench kernels: the acceptance judgement over measured rows (GEMMs against the vendor GEMM, memory-bound ops
// against the copy), and the CPU cases running end to end on a tiny size.
#include "core/kernel_bench.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgolf {
namespace {

KernelBenchRow row(const std::string& op, double seconds, double reference_seconds, double flops,
                   const std::string& reference) {
    KernelBenchRow result;
    result.op = op;
    result.seconds = seconds;
    result.reference_seconds = reference_seconds;
    result.flops = flops;
    result.bytes = 1e6;
    result.reference_name = reference;
    return result;
}

TEST(KernelBench, ShortfallsJudgeEachRowAgainstItsOwnShare) {
    const std::vector<KernelBenchRow> rows = {
        row("copy", 1.0, 1.0, 0, "copy"),
        row("rmsnorm forward", 1.0, 0.6, 0, "copy"),        // exactly 60%: meets it
        row("relu_squared forward", 1.0, 0.59, 0, "copy"),  // 59%: short
        row("linear q/out 512", 1.0, 0.8, 1e9, "cublasGemmEx"),
        row("linear head 512->1024", 1.0, 0.7, 1e9, "cublasGemmEx"),  // 70% of a GEMM: short
        row("no reference", 1.0, 0.0, 0, ""),                         // not judged
    };
    const std::vector<std::string> shortfalls =
        kernel_bench_shortfalls(rows, kKernelBenchGemmShareRequired, kKernelBenchMemoryShareRequired);
    ASSERT_EQ(shortfalls.size(), 2u);
    EXPECT_EQ(shortfalls[0], "relu_squared forward: 59.0% of copy, needs 60%");
    EXPECT_EQ(shortfalls[1], "linear head 512->1024: 70.0% of cublasGemmEx, needs 80%");
    EXPECT_TRUE(kernel_bench_shortfalls(rows, 0.7, 0.59).empty());
}

TEST(KernelBench, CpuCasesRunWithTheirReferences) {
    KernelBenchOptions options;
    options.tokens = 1024;
    options.min_seconds = 0.0;
    options.min_iterations = 1;
    options.filter = "kv 512";
    const std::vector<KernelBenchRow> rows = kernel_bench_run(options);
    ASSERT_EQ(rows.size(), 2u);  // the copy always runs: it is the memory-bound reference
    EXPECT_EQ(rows[0].op, "copy");
    EXPECT_EQ(rows[1].op, "linear kv 512->256");
    EXPECT_EQ(rows[1].reference_name, "sgemm");
    EXPECT_DOUBLE_EQ(rows[1].flops, 2.0 * 1024 * 512 * 256);
    EXPECT_GT(rows[1].seconds, 0.0);
    EXPECT_GT(rows[1].reference_seconds, 0.0);
    EXPECT_NE(kernel_bench_table(rows, Device::cpu).find("% sgemm"), std::string::npos);
}

}  // namespace
}  // namespace pgolf
