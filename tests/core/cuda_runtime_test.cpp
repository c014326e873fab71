// The CUDA backend's host-side parts, which run everywhere: the caching allocator's bookkeeping over a counting fake
// backend, the error-message format, device names and availability, and tensors refusing host access on cuda.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <vector>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/error_text.h"
#include "core/device.h"
#include "core/error.h"
#include "core/tensor.h"

namespace pgolf {
namespace {

// A raw backend over malloc with a byte budget, counting live blocks.
struct FakeDeviceMemory {
    std::size_t budget = 1 << 30;
    std::size_t live_bytes = 0;
    std::map<void*, std::size_t> live;

    RawDeviceMemory raw() {
        return RawDeviceMemory{[this](std::size_t bytes) -> void* {
                                   if (live_bytes + bytes > budget) return nullptr;
                                   void* pointer = std::malloc(bytes);
                                   live[pointer] = bytes;
                                   live_bytes += bytes;
                                   return pointer;
                               },
                               [this](void* pointer) {
                                   live_bytes -= live.at(pointer);
                                   live.erase(pointer);
                                   std::free(pointer);
                               }};
    }
};

StreamHandle stream_a() { return reinterpret_cast<StreamHandle>(0x10); }
StreamHandle stream_b() { return reinterpret_cast<StreamHandle>(0x20); }

TEST(CachingAllocator, BlockSizesRoundUpBoundedly) {
    EXPECT_EQ(CachingAllocator::block_size(0), 512u);
    EXPECT_EQ(CachingAllocator::block_size(1), 512u);
    EXPECT_EQ(CachingAllocator::block_size(512), 512u);
    EXPECT_EQ(CachingAllocator::block_size(513), 1024u);
    EXPECT_EQ(CachingAllocator::block_size(1 << 20), std::size_t{1} << 20);
    // Above 1 MiB: multiples of 1/16 of the power-of-two bucket below the request.
    EXPECT_EQ(CachingAllocator::block_size((1 << 20) + 1), (std::size_t{1} << 20) + (1 << 16));
    for (std::size_t bytes : {std::size_t{3'000'001}, std::size_t{50'331'649}, std::size_t{1'000'000'007}}) {
        const std::size_t block = CachingAllocator::block_size(bytes);
        EXPECT_GE(block, bytes);
        EXPECT_LE(static_cast<double>(block), static_cast<double>(bytes) * 1.0625 + 1.0) << bytes;
    }
}

TEST(CachingAllocator, ReusesReleasedBlocksOnTheSameStreamOnly) {
    FakeDeviceMemory fake;
    CachingAllocator allocator(fake.raw());
    void* first = allocator.allocate(1000, stream_a());
    allocator.release(first);
    EXPECT_EQ(allocator.allocate(900, stream_a()), first);  // same rounded size (1024): the cached block
    void* other = allocator.allocate(900, stream_b());      // another stream never gets stream a's block
    EXPECT_NE(other, first);
    const CachingAllocatorStats stats = allocator.stats();
    EXPECT_EQ(stats.raw_allocations, 2);
    EXPECT_EQ(stats.cache_hits, 1);
    EXPECT_EQ(stats.in_use_bytes, 2048u);
    EXPECT_EQ(stats.cached_bytes, 0u);
    allocator.release(first);
    allocator.release(other);
}

TEST(CachingAllocator, BestFitNeverPinsABlockMoreThanTwiceTheRequest) {
    FakeDeviceMemory fake;
    CachingAllocator allocator(fake.raw());
    void* big = allocator.allocate(8192, stream_a());
    void* medium = allocator.allocate(2048, stream_a());
    allocator.release(big);
    allocator.release(medium);
    EXPECT_EQ(allocator.allocate(1536, stream_a()), medium);  // 2048 ≤ 2·1536: reused
    void* small = allocator.allocate(512, stream_a());        // 8192 > 2·512: a fresh block
    EXPECT_NE(small, big);
    EXPECT_EQ(allocator.allocate(5000, stream_a()), big);
    EXPECT_EQ(allocator.stats().raw_allocations, 3);
}

TEST(CachingAllocator, OutOfMemoryReleasesTheCacheThenFailsWithOneLine) {
    FakeDeviceMemory fake;
    fake.budget = 4096;
    CachingAllocator allocator(fake.raw());
    void* a = allocator.allocate(2048, stream_a());
    allocator.release(a);                            // cached, still held from the backend
    void* b = allocator.allocate(4096, stream_a());  // only fits once the cached 2048 go back
    EXPECT_EQ(allocator.stats().raw_releases, 1);
    EXPECT_EQ(fake.live_bytes, 4096u);
    try {
        allocator.allocate(512, stream_a());
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()),
                  "CUDA out of memory: 512 bytes requested with 4,096 bytes in use by pgolf");
    }
    allocator.release(b);
}

TEST(CachingAllocator, PeaksAndReleaseCached) {
    FakeDeviceMemory fake;
    {
        CachingAllocator allocator(fake.raw());
        std::vector<void*> blocks;
        for (int i = 0; i < 4; ++i) blocks.push_back(allocator.allocate(1024, stream_a()));
        for (void* block : blocks) allocator.release(block);
        CachingAllocatorStats stats = allocator.stats();
        EXPECT_EQ(stats.peak_in_use_bytes, 4096u);
        EXPECT_EQ(stats.peak_reserved_bytes, 4096u);
        EXPECT_EQ(stats.cached_bytes, 4096u);
        EXPECT_EQ(fake.live_bytes, 4096u);
        allocator.release_cached();
        EXPECT_EQ(fake.live_bytes, 0u);
        EXPECT_EQ(allocator.stats().cached_bytes, 0u);
        allocator.release(allocator.allocate(100, stream_a()));
    }
    EXPECT_EQ(fake.live_bytes, 0u);  // the destructor returned the cache
}

TEST(CachingAllocator, UnknownPointerIsAnError) {
    FakeDeviceMemory fake;
    CachingAllocator allocator(fake.raw());
    int local = 0;
    EXPECT_THROW(allocator.release(&local), Error);
}

TEST(CudaErrorText, NamesLibraryStatusCallAndPlace) {
    EXPECT_EQ(cuda_error_message("CUDA", "out of memory", "cudaMalloc(&pointer, bytes)",
                                 "/home/someone/pgolf/core/cuda/runtime.cu", 42),
              "CUDA error: out of memory in cudaMalloc(&pointer, bytes) at core/cuda/runtime.cu:42");
    EXPECT_EQ(cuda_error_message("cuBLAS", "the requested functionality is not supported", "cublasLtMatmul(...)",
                                 "gemm.cu", 7),
              "cuBLAS error: the requested functionality is not supported in cublasLtMatmul(...) at gemm.cu:7");
    EXPECT_THROW(cuda_throw_error("NCCL", "unhandled system error", "ncclAllReduce(...)", "x.cu", 1), Error);
}

TEST(Device, ParsesNamesAndRefusesOthers) {
    EXPECT_EQ(device_parse("cpu"), Device::cpu);
    EXPECT_EQ(device_parse("cuda"), Device::cuda);
    EXPECT_EQ(device_name(Device::cuda), "cuda");
    try {
        device_parse("gpu");
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()), "unknown device 'gpu' (expected cpu or cuda)");
    }
    EXPECT_EQ(device_unavailable_reason(Device::cpu), "");
    EXPECT_NO_THROW(device_require(Device::cpu));
}

TEST(Device, CudaIsUsableOrSaysWhy) {
    const std::string reason = device_unavailable_reason(Device::cuda);
#ifndef PGOLF_WITH_CUDA
    EXPECT_EQ(reason, "pgolf was built without CUDA (PGOLF_CUDA=OFF, or no nvcc when it was configured)");
#endif
    if (reason.empty()) {
        EXPECT_NO_THROW(device_require(Device::cuda));
    } else {
        EXPECT_EQ(reason.find('\n'), std::string::npos);
        EXPECT_THROW(device_require(Device::cuda), Error);
    }
}

TEST(DeviceTensor, RoundTripsThroughTheGpuWhenThereIsOne) {
    const std::string reason = device_unavailable_reason(Device::cuda);
    if (!reason.empty()) {
        EXPECT_THROW(Tensor::empty({2}, DType::f32, Device::cuda), Error);
        GTEST_SKIP() << reason;
    }
    const Tensor host = Tensor::from_values(std::vector<double>{1, -2, 3.5, 4, 5, 6}, {2, 3});
    Tensor device = host.to_device(Device::cuda);
    EXPECT_EQ(device.device(), Device::cuda);
    EXPECT_EQ(device.shape(), host.shape());
    EXPECT_EQ(device.to_device(Device::cpu).to_doubles(), host.to_doubles());
    // Views share device storage; clone and copy_from stay on the device.
    const Tensor second_row = device.rows(1, 2).to_device(Device::cpu);
    EXPECT_EQ(second_row.to_doubles(), (std::vector<double>{4, 5, 6}));
    Tensor copy = device.clone();
    EXPECT_EQ(copy.device(), Device::cuda);
    copy.zero();
    EXPECT_EQ(copy.to_device(Device::cpu).to_doubles(), std::vector<double>(6, 0.0));
    copy.copy_from(host);
    EXPECT_EQ(copy.to_device(Device::cpu).to_doubles(), host.to_doubles());
    // Host element access is refused with a message that says what to do.
    try {
        (void)device.item(0);
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()), "item: the tensor is on cuda; copy it to the cpu first (to_device)");
    }
    // fill and dtype conversion run on the device (f32 and bf16), rounding as the host does.
    const Tensor halves = device.to(DType::bf16);
    EXPECT_EQ(halves.device(), Device::cuda);
    EXPECT_EQ(halves.to_device(Device::cpu).to_doubles(), host.to(DType::bf16).to_doubles());
    copy.fill(0.75);
    EXPECT_EQ(copy.to_device(Device::cpu).to_doubles(), std::vector<double>(6, 0.75));
    EXPECT_THROW(device.to(DType::i32), Error);
}

TEST(DeviceTensor, CpuOpsRefuseCudaTensorsByName) {
    Tensor host = Tensor::zeros({2}, DType::f32);
    EXPECT_NO_THROW(tensor_check_floating(host, "op", "x"));
    EXPECT_NO_THROW(tensor_check_device(host, Device::cpu, "op", "x"));
    try {
        tensor_check_device(host, Device::cuda, "cuda_rmsnorm_forward", "x");
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()), "cuda_rmsnorm_forward: x is on cpu, expected cuda");
    }
}

}  // namespace
}  // namespace pgolf
