// The CUDA runtime as the engine uses it: device selection, streams and events (RAII, opaque to plain C++ code), the
// thread's current stream every kernel launches on, and device memory for tensors through the caching allocator.
// Built only with the CUDA backend (PGOLF_WITH_CUDA); headers hold no CUDA types so g++ code can include them.
#pragma once

#include <cstddef>

#include "core/cuda/caching_allocator.h"

namespace pgolf {

// Makes device index current for this thread (cudaSetDevice); throws pgolf::Error naming the index and the count.
void cuda_select_device(int index);
// Waits for all work on the current device.
void cuda_synchronize();

// A non-blocking stream owned by this object.
class CudaStream {
public:
    CudaStream();
    ~CudaStream();
    CudaStream(const CudaStream&) = delete;
    CudaStream& operator=(const CudaStream&) = delete;
    StreamHandle handle() const { return stream_; }
    void synchronize() const;

private:
    StreamHandle stream_ = nullptr;
};

// An event for ordering and timing (cudaEventDefault, so it can time).
class CudaEvent {
public:
    CudaEvent();
    ~CudaEvent();
    CudaEvent(const CudaEvent&) = delete;
    CudaEvent& operator=(const CudaEvent&) = delete;
    void record(StreamHandle stream);
    void synchronize() const;
    // Milliseconds between two recorded events (start before end), after end has completed.
    static float elapsed_ms(const CudaEvent& start, const CudaEvent& end);
    void* handle() const { return event_; }

private:
    void* event_ = nullptr;
};

// The stream this thread's kernels, copies and allocations go to. By default one non-blocking stream per process,
// created on first use (never the legacy default stream, which would serialise with every other stream and cannot
// be captured into a CUDA graph).
StreamHandle cuda_current_stream();
// Sets the current stream for this thread while it lives, then restores the previous one.
class CudaStreamGuard {
public:
    explicit CudaStreamGuard(StreamHandle stream);
    ~CudaStreamGuard();
    CudaStreamGuard(const CudaStreamGuard&) = delete;
    CudaStreamGuard& operator=(const CudaStreamGuard&) = delete;

private:
    StreamHandle previous_;
};

// Device memory for tensors, from one process-wide caching allocator over cudaMalloc/cudaFree, on the current stream.
void* cuda_memory_allocate(std::size_t bytes);
void cuda_memory_release(void* pointer);
// Copies bytes between any two of host and device memory (cudaMemcpyDefault) on the current stream, and waits for
// the copy when the destination is host memory, so the caller can read it at once.
void cuda_memory_copy(void* destination, const void* source, std::size_t bytes, bool destination_is_host);
void cuda_memory_zero(void* destination, std::size_t bytes);
CachingAllocatorStats cuda_memory_stats();
void cuda_memory_release_cached();

}  // namespace pgolf
