// CUDA runtime plumbing (see runtime.h): devices, streams, events, the current stream and tensor memory.
#include "core/cuda/check.h"
#include "core/cuda/runtime.h"
#include "core/error.h"

namespace pgolf {

namespace {

cudaStream_t cuda_stream_cast(StreamHandle stream) { return static_cast<cudaStream_t>(stream); }

// One per process, created on first use and deliberately never destroyed: static destructors run after the CUDA
// runtime may have been torn down.
StreamHandle cuda_process_stream() {
    static StreamHandle stream = [] {
        cudaStream_t created = nullptr;
        PGOLF_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
        return static_cast<StreamHandle>(created);
    }();
    return stream;
}

thread_local StreamHandle thread_stream = nullptr;

CachingAllocator& cuda_allocator() {
    static CachingAllocator* allocator = new CachingAllocator(RawDeviceMemory{
        [](std::size_t bytes) -> void* {
            void* pointer = nullptr;
            const cudaError_t status = cudaMalloc(&pointer, bytes);
            if (status == cudaErrorMemoryAllocation) {
                (void)cudaGetLastError();  // clear the sticky-free error so later calls are not blamed for it
                return nullptr;
            }
            PGOLF_CUDA_CHECK(status);
            return pointer;
        },
        [](void* pointer) { PGOLF_CUDA_CHECK(cudaFree(pointer)); }});
    return *allocator;
}

}  // namespace

void cuda_select_device(int index) {
    int count = 0;
    PGOLF_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (index < 0 || index >= count) {
        throw Error("CUDA device " + std::to_string(index) + " does not exist (" + std::to_string(count) + " devices)");
    }
    PGOLF_CUDA_CHECK(cudaSetDevice(index));
}

void cuda_synchronize() { PGOLF_CUDA_CHECK(cudaDeviceSynchronize()); }

CudaStream::CudaStream() {
    cudaStream_t created = nullptr;
    PGOLF_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    stream_ = created;
}

CudaStream::~CudaStream() {
    if (stream_ != nullptr) (void)cudaStreamDestroy(cuda_stream_cast(stream_));
}

void CudaStream::synchronize() const { PGOLF_CUDA_CHECK(cudaStreamSynchronize(cuda_stream_cast(stream_))); }

CudaEvent::CudaEvent() {
    cudaEvent_t created = nullptr;
    PGOLF_CUDA_CHECK(cudaEventCreate(&created));
    event_ = created;
}

CudaEvent::~CudaEvent() {
    if (event_ != nullptr) (void)cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

void CudaEvent::record(StreamHandle stream) {
    PGOLF_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), cuda_stream_cast(stream)));
}

void CudaEvent::synchronize() const { PGOLF_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_))); }

float CudaEvent::elapsed_ms(const CudaEvent& start, const CudaEvent& end) {
    float milliseconds = 0.0f;
    PGOLF_CUDA_CHECK(cudaEventElapsedTime(&milliseconds, static_cast<cudaEvent_t>(start.event_),
                                          static_cast<cudaEvent_t>(end.event_)));
    return milliseconds;
}

StreamHandle cuda_current_stream() { return thread_stream != nullptr ? thread_stream : cuda_process_stream(); }

CudaStreamGuard::CudaStreamGuard(StreamHandle stream) : previous_(thread_stream) { thread_stream = stream; }

CudaStreamGuard::~CudaStreamGuard() { thread_stream = previous_; }

void* cuda_memory_allocate(std::size_t bytes) { return cuda_allocator().allocate(bytes, cuda_current_stream()); }

void cuda_memory_release(void* pointer) { cuda_allocator().release(pointer); }

void cuda_memory_copy(void* destination, const void* source, std::size_t bytes, bool destination_is_host) {
    if (bytes == 0) return;
    const cudaStream_t stream = cuda_stream_cast(cuda_current_stream());
    PGOLF_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDefault, stream));
    if (destination_is_host) PGOLF_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void cuda_memory_zero(void* destination, std::size_t bytes) {
    if (bytes == 0) return;
    PGOLF_CUDA_CHECK(cudaMemsetAsync(destination, 0, bytes, cuda_stream_cast(cuda_current_stream())));
}

CachingAllocatorStats cuda_memory_stats() { return cuda_allocator().stats(); }

void cuda_memory_release_cached() { cuda_allocator().release_cached(); }

}  // namespace pgolf
