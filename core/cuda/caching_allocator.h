// A caching allocator for device memory: freed blocks stay reserved and are handed out again to requests of about
// their size on the same stream, so a training loop that allocates the same shapes every step stops calling
// cudaMalloc/cudaFree (which synchronise the device) after its first step. The bookkeeping is plain C++ over a raw
// backend (cudaMalloc/cudaFree on the GPU, a counting fake in tests), so it is built and tested on every machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace pgolf {

struct RawDeviceMemory {
    std::function<void*(std::size_t bytes)> allocate;  // nullptr when out of memory
    std::function<void(void* pointer)> release;
};

struct CachingAllocatorStats {
    std::size_t in_use_bytes = 0;         // handed out and not yet released (rounded sizes)
    std::size_t cached_bytes = 0;         // released by their users, kept for reuse
    std::size_t peak_in_use_bytes = 0;    // high-water mark of in_use_bytes
    std::size_t peak_reserved_bytes = 0;  // high-water mark of in_use + cached
    std::int64_t raw_allocations = 0;     // calls to the backend's allocate that succeeded
    std::int64_t raw_releases = 0;
    std::int64_t cache_hits = 0;  // requests served from the cache
};

// Streams are opaque handles (cudaStream_t); a block is only reused on the stream it was allocated for, because work
// still queued on that stream may use it, and stream order makes reuse on the same stream safe without an event.
using StreamHandle = void*;

class CachingAllocator {
public:
    explicit CachingAllocator(RawDeviceMemory raw);
    ~CachingAllocator();  // returns cached blocks to the backend; blocks still in use are the owners' to release
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    // A block of at least bytes (rounded by block_size) for work on stream. Zero bytes still returns a distinct
    // block. When the backend is out of memory the cache is released and the request retried once; then it throws
    // pgolf::Error with the request and the allocator's totals.
    void* allocate(std::size_t bytes, StreamHandle stream);
    // Returns a block from allocate() to the cache of its stream; an unknown pointer throws pgolf::Error.
    void release(void* pointer);
    // Hands every cached block back to the backend (torch's empty_cache).
    void release_cached();
    CachingAllocatorStats stats() const;

    // Rounding that keeps waste small and sizes repeatable: multiples of 512 bytes up to 1 MiB, then multiples of
    // 1/16 of the request's power-of-two bucket (at most 6.25% over).
    static std::size_t block_size(std::size_t bytes);

private:
    struct Block {
        std::size_t size;
        StreamHandle stream;
    };
    void release_cached_locked();

    RawDeviceMemory raw_;
    mutable std::mutex mutex_;
    std::unordered_map<void*, Block> in_use_;
    // Per stream, cached blocks by size (best fit: the smallest block that is large enough and not more than twice
    // the request, so a small tensor never pins a large block).
    std::map<StreamHandle, std::multimap<std::size_t, void*>> cached_;
    CachingAllocatorStats stats_;
};

}  // namespace pgolf
