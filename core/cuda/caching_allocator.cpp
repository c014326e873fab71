// The caching allocator's bookkeeping (see caching_allocator.h).
#include "core/cuda/caching_allocator.h"

#include <algorithm>
#include <bit>
#include <sstream>

#include "core/error.h"
#include "core/text_format.h"

namespace pgolf {

CachingAllocator::CachingAllocator(RawDeviceMemory raw) : raw_(std::move(raw)) {}

CachingAllocator::~CachingAllocator() {
    const std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
}

std::size_t CachingAllocator::block_size(std::size_t bytes) {
    constexpr std::size_t kSmallGranularity = 512;
    constexpr std::size_t kSmallLimit = std::size_t{1} << 20;
    const std::size_t request = std::max<std::size_t>(bytes, 1);
    if (request <= kSmallLimit) return (request + kSmallGranularity - 1) / kSmallGranularity * kSmallGranularity;
    const std::size_t granularity = std::bit_floor(request - 1) / 16;
    return (request + granularity - 1) / granularity * granularity;
}

void* CachingAllocator::allocate(std::size_t bytes, StreamHandle stream) {
    const std::size_t size = block_size(bytes);
    const std::lock_guard<std::mutex> lock(mutex_);
    auto& blocks = cached_[stream];
    const auto fit = blocks.lower_bound(size);
    if (fit != blocks.end() && fit->first <= 2 * size) {
        void* pointer = fit->second;
        const std::size_t block = fit->first;
        blocks.erase(fit);
        in_use_.emplace(pointer, Block{block, stream});
        stats_.cached_bytes -= block;
        stats_.in_use_bytes += block;
        stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
        ++stats_.cache_hits;
        return pointer;
    }
    void* pointer = raw_.allocate(size);
    if (pointer == nullptr && stats_.cached_bytes > 0) {
        release_cached_locked();
        pointer = raw_.allocate(size);
    }
    if (pointer == nullptr) {
        throw Error("CUDA out of memory: " + format_count(static_cast<std::int64_t>(size)) + " bytes requested with " +
                    format_count(static_cast<std::int64_t>(stats_.in_use_bytes)) + " bytes in use by pgolf");
    }
    ++stats_.raw_allocations;
    in_use_.emplace(pointer, Block{size, stream});
    stats_.in_use_bytes += size;
    stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.in_use_bytes + stats_.cached_bytes);
    return pointer;
}

void CachingAllocator::release(void* pointer) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto found = in_use_.find(pointer);
    if (found == in_use_.end()) {
        std::ostringstream address;
        address << pointer;
        throw Error("CUDA allocator: release of " + address.str() + ", which it did not hand out");
    }
    const Block block = found->second;
    in_use_.erase(found);
    cached_[block.stream].emplace(block.size, pointer);
    stats_.in_use_bytes -= block.size;
    stats_.cached_bytes += block.size;
}

void CachingAllocator::release_cached() {
    const std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
    for (auto& [stream, blocks] : cached_) {
        for (const auto& [size, pointer] : blocks) {
            raw_.release(pointer);
            ++stats_.raw_releases;
            stats_.cached_bytes -= size;
        }
        blocks.clear();
    }
}

CachingAllocatorStats CachingAllocator::stats() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

}  // namespace pgolf
