// Compression codecs over zstd, liblzma, brotli and zlib, driven the same way the Python bindings drive them so the
// compressed bytes match; decoders accept exactly one complete stream and never trust sizes claimed by the input.
#include "core/codec.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "core/error.h"

namespace pgolf {
namespace {

constexpr std::string_view valid_specs =
    "valid forms: zstd-N (N 1..22), xz-N or lzma-N (N 0..9, add 'e' for extreme, e.g. xz-9e), brotli-N (N 0..11), "
    "zlib-N (N 0..9)";

struct LevelRange {
    int min;
    int max;
};

LevelRange codec_level_range(CodecKind kind) {
    switch (kind) {
        case CodecKind::zstd:
            return {1, 22};
        case CodecKind::xz:
            return {0, 9};
        case CodecKind::brotli:
            return {0, 11};
        case CodecKind::zlib:
            return {0, 9};
    }
    throw Error("codec: unknown codec kind");
}

// CodecSpec is a plain struct, so a hand-built one may hold anything; check it before any library sees the level.
void codec_check_spec(const CodecSpec& spec) {
    const LevelRange range = codec_level_range(spec.kind);
    const std::string name = codec_kind_name(spec.kind);
    if (spec.level < range.min || spec.level > range.max) {
        throw Error(name + ": level " + std::to_string(spec.level) + " out of range " + std::to_string(range.min) +
                    ".." + std::to_string(range.max));
    }
    if (spec.extreme && spec.kind != CodecKind::xz) throw Error(name + ": extreme mode exists only for xz");
}

// Decoder output that grows on demand and enforces the caller's limit. The decoder is always offered room for at
// least one byte past the limit, so "it wanted to write more" is observed rather than confused with "it finished".
class OutputBuffer {
public:
    OutputBuffer(std::string codec, std::size_t limit, std::size_t size_hint)
        : codec_(std::move(codec)), limit_(limit) {
        bytes_.resize(std::min(std::max<std::size_t>(size_hint, 1), room_cap()));
    }

    std::span<std::uint8_t> space() {
        if (used_ == bytes_.size()) {
            const std::size_t doubled = bytes_.size() > room_cap() / 2 ? room_cap() : bytes_.size() * 2;
            bytes_.resize(std::min(std::max<std::size_t>(doubled, 64 * 1024), room_cap()));
        }
        return std::span<std::uint8_t>(bytes_).subspan(used_);
    }

    void commit(std::size_t written) {
        used_ += written;
        if (used_ > limit_) {
            throw Error(codec_ + ": output exceeds limit of " + std::to_string(limit_) + " bytes");
        }
    }

    std::vector<std::uint8_t> finish() {
        bytes_.resize(used_);
        bytes_.shrink_to_fit();
        return std::move(bytes_);
    }

private:
    std::size_t room_cap() const { return limit_ == std::numeric_limits<std::size_t>::max() ? limit_ : limit_ + 1; }

    std::string codec_;
    std::size_t limit_;
    std::vector<std::uint8_t> bytes_;
    std::size_t used_ = 0;
};

// Initial decode buffer: artifacts typically compress 2-4x and the buffer doubles from there, but a large input need
// not be matched by a zero-filled 4x allocation before a single byte is known to decode.
std::size_t decode_size_hint(std::size_t input_size) {
    constexpr std::size_t generous = std::size_t{256} << 20;
    if (input_size >= generous) return input_size;
    return std::min(input_size * 4, generous);
}

std::string trailing_message(const std::string& codec, std::size_t count) {
    return codec + ": trailing " + std::to_string(count) + " bytes after end of stream";
}

// ---- zstd ----

struct ZstdCCtxDeleter {
    void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
};
struct ZstdDCtxDeleter {
    void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};

void zstd_check(std::size_t result, const char* what) {
    if (ZSTD_isError(result)) throw Error(std::string("zstd: ") + what + ": " + ZSTD_getErrorName(result));
}

std::vector<std::uint8_t> zstd_compress(int level, std::span<const std::uint8_t> input) {
    std::unique_ptr<ZSTD_CCtx, ZstdCCtxDeleter> ctx(ZSTD_createCCtx());
    if (!ctx) throw Error("zstd: out of memory creating compression context");
    // Exactly python-zstandard's ZstdCompressor defaults: content size written, no checksum, dictionary id flag on.
    zstd_check(ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_compressionLevel, level), "setting level");
    zstd_check(ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_contentSizeFlag, 1), "setting content size flag");
    zstd_check(ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_checksumFlag, 0), "setting checksum flag");
    zstd_check(ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_dictIDFlag, 1), "setting dictionary id flag");
    std::vector<std::uint8_t> out(ZSTD_compressBound(input.size()));
    const std::size_t written = ZSTD_compress2(ctx.get(), out.data(), out.size(), input.data(), input.size());
    zstd_check(written, "compression failed");
    out.resize(written);
    return out;
}

std::vector<std::uint8_t> zstd_decompress(std::span<const std::uint8_t> input, std::size_t max_output_bytes) {
    if (input.empty()) throw Error("zstd: truncated input (empty)");

    if (input.size() >= 4) {
        const std::uint32_t magic = std::uint32_t{input[0]} | std::uint32_t{input[1]} << 8 |
                                    std::uint32_t{input[2]} << 16 | std::uint32_t{input[3]} << 24;
        if ((magic & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START) {
            throw Error("zstd: corrupt input: skippable frame where a data frame was expected");
        }
    }

    // Walks the block headers only, which is enough to tell truncation and trailing bytes apart from corruption.
    const std::size_t frame_size = ZSTD_findFrameCompressedSize(input.data(), input.size());
    if (ZSTD_isError(frame_size)) {
        if (ZSTD_getErrorCode(frame_size) == ZSTD_error_srcSize_wrong) throw Error("zstd: truncated input");
        throw Error(std::string("zstd: corrupt input: ") + ZSTD_getErrorName(frame_size));
    }
    if (frame_size < input.size()) throw Error(trailing_message("zstd", input.size() - frame_size));

    const unsigned long long content_size = ZSTD_getFrameContentSize(input.data(), input.size());
    if (content_size == ZSTD_CONTENTSIZE_ERROR) throw Error("zstd: corrupt input: bad frame header");
    std::size_t size_hint = decode_size_hint(input.size());
    if (content_size != ZSTD_CONTENTSIZE_UNKNOWN) {
        if (content_size > max_output_bytes) {
            throw Error("zstd: output exceeds limit of " + std::to_string(max_output_bytes) +
                        " bytes (frame declares " + std::to_string(content_size) + ")");
        }
        // Trust the declared size only as far as the input could plausibly back it, so a corrupt header cannot make
        // a tiny input allocate gigabytes up front; a genuine frame beyond the cap just grows the buffer.
        const std::size_t plausible = size_hint > std::numeric_limits<std::size_t>::max() / 16
                                          ? std::numeric_limits<std::size_t>::max()
                                          : size_hint * 16 + (std::size_t{1} << 20);
        size_hint = static_cast<std::size_t>(std::min<unsigned long long>(content_size, plausible));
    }

    std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> ctx(ZSTD_createDCtx());
    if (!ctx) throw Error("zstd: out of memory creating decompression context");
    OutputBuffer output("zstd", max_output_bytes, size_hint);
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    while (true) {
        const std::span<std::uint8_t> room = output.space();
        ZSTD_outBuffer out{room.data(), room.size(), 0};
        const std::size_t result = ZSTD_decompressStream(ctx.get(), &out, &in);
        if (ZSTD_isError(result)) throw Error(std::string("zstd: corrupt input: ") + ZSTD_getErrorName(result));
        output.commit(out.pos);
        if (result == 0) break;  // frame fully decoded and flushed
        if (in.pos == in.size && out.pos < out.size) throw Error("zstd: truncated input");
    }
    return output.finish();
}

// ---- xz ----

class LzmaStream {
public:
    LzmaStream() = default;
    LzmaStream(const LzmaStream&) = delete;
    LzmaStream& operator=(const LzmaStream&) = delete;
    ~LzmaStream() { lzma_end(&stream); }

    lzma_stream stream{};  // all-zero is documented as equivalent to LZMA_STREAM_INIT
};

std::string lzma_problem(lzma_ret ret) {
    switch (ret) {
        case LZMA_MEM_ERROR:
            return "out of memory";
        case LZMA_MEMLIMIT_ERROR:
            return "memory limit reached";
        case LZMA_FORMAT_ERROR:
            return "corrupt input: not in xz format";
        case LZMA_OPTIONS_ERROR:
            return "corrupt input: unsupported options";
        case LZMA_DATA_ERROR:
            return "corrupt input: compressed data is corrupt";
        case LZMA_BUF_ERROR:
            return "truncated input";
        case LZMA_UNSUPPORTED_CHECK:
            return "corrupt input: unsupported integrity check";
        case LZMA_PROG_ERROR:
            return "internal error (programming error in liblzma use)";
        default:
            return "unexpected liblzma status " + std::to_string(static_cast<int>(ret));
    }
}

std::vector<std::uint8_t> xz_compress(int level, bool extreme, std::span<const std::uint8_t> input) {
    // Streaming encoder, as Python's LZMACompressor uses: lzma_easy_buffer_encode would write block headers with
    // sizes in them and so produce different bytes.
    LzmaStream lzma;
    const std::uint32_t preset = static_cast<std::uint32_t>(level) | (extreme ? LZMA_PRESET_EXTREME : 0u);
    const lzma_ret init = lzma_easy_encoder(&lzma.stream, preset, LZMA_CHECK_CRC64);
    if (init != LZMA_OK) throw Error("xz: cannot start encoder: " + lzma_problem(init));

    std::vector<std::uint8_t> out(std::max<std::size_t>(lzma_stream_buffer_bound(input.size()), 64));
    lzma.stream.next_in = input.data();
    lzma.stream.avail_in = input.size();
    while (true) {
        lzma.stream.next_out = out.data() + lzma.stream.total_out;
        lzma.stream.avail_out = out.size() - lzma.stream.total_out;
        const lzma_ret ret = lzma_code(&lzma.stream, LZMA_FINISH);
        if (ret == LZMA_STREAM_END) break;
        if (ret != LZMA_OK) throw Error("xz: compression failed: " + lzma_problem(ret));
        if (lzma.stream.avail_out == 0) out.resize(out.size() * 2);
    }
    out.resize(lzma.stream.total_out);
    return out;
}

// Runs an initialised liblzma decoder over the whole input; name is the format for messages.
std::vector<std::uint8_t> lzma_decode_all(LzmaStream& lzma, const char* name, std::span<const std::uint8_t> input,
                                          std::size_t max_output_bytes) {
    OutputBuffer output(name, max_output_bytes, decode_size_hint(input.size()));
    lzma.stream.next_in = input.data();
    lzma.stream.avail_in = input.size();
    while (true) {
        const std::span<std::uint8_t> room = output.space();
        lzma.stream.next_out = room.data();
        lzma.stream.avail_out = room.size();
        const lzma_ret ret = lzma_code(&lzma.stream, LZMA_FINISH);
        output.commit(room.size() - lzma.stream.avail_out);
        if (ret == LZMA_STREAM_END) break;
        if (ret != LZMA_OK) throw Error(std::string(name) + ": " + lzma_problem(ret));
    }
    if (lzma.stream.avail_in != 0) throw Error(trailing_message(name, lzma.stream.avail_in));
    return output.finish();
}

std::vector<std::uint8_t> xz_decompress(std::span<const std::uint8_t> input, std::size_t max_output_bytes) {
    LzmaStream lzma;
    // No LZMA_CONCATENATED: the decoder stops at the end of the first stream, so anything after it is visible.
    const lzma_ret init = lzma_stream_decoder(&lzma.stream, UINT64_MAX, 0);
    if (init != LZMA_OK) throw Error("xz: cannot start decoder: " + lzma_problem(init));
    return lzma_decode_all(lzma, "xz", input, max_output_bytes);
}

// ---- brotli ----

struct BrotliEncoderDeleter {
    void operator()(BrotliEncoderState* state) const { BrotliEncoderDestroyInstance(state); }
};
struct BrotliDecoderDeleter {
    void operator()(BrotliDecoderState* state) const { BrotliDecoderDestroyInstance(state); }
};

std::vector<std::uint8_t> brotli_compress(int level, std::span<const std::uint8_t> input) {
    // The streaming API with one FINISH call is what Python's brotli.compress does. BrotliEncoderCompress is not a
    // substitute: at quality 10 it takes a separate one-shot path whose bytes differ (seen with brotli 1.0.9).
    std::unique_ptr<BrotliEncoderState, BrotliEncoderDeleter> encoder(
        BrotliEncoderCreateInstance(nullptr, nullptr, nullptr));
    if (!encoder) throw Error("brotli: out of memory creating encoder");
    const bool configured =
        BrotliEncoderSetParameter(encoder.get(), BROTLI_PARAM_MODE, BROTLI_MODE_GENERIC) &&
        BrotliEncoderSetParameter(encoder.get(), BROTLI_PARAM_QUALITY, static_cast<std::uint32_t>(level)) &&
        BrotliEncoderSetParameter(encoder.get(), BROTLI_PARAM_LGWIN, BROTLI_DEFAULT_WINDOW) &&
        BrotliEncoderSetParameter(encoder.get(), BROTLI_PARAM_LGBLOCK, 0);
    if (!configured) throw Error("brotli: encoder rejected parameters for quality " + std::to_string(level));

    std::vector<std::uint8_t> out(std::max<std::size_t>(BrotliEncoderMaxCompressedSize(input.size()), 64));
    std::size_t avail_in = input.size();
    const std::uint8_t* next_in = input.data();
    std::size_t produced = 0;
    while (!BrotliEncoderIsFinished(encoder.get())) {
        if (produced == out.size()) out.resize(out.size() * 2);
        std::size_t avail_out = out.size() - produced;
        std::uint8_t* next_out = out.data() + produced;
        if (!BrotliEncoderCompressStream(encoder.get(), BROTLI_OPERATION_FINISH, &avail_in, &next_in, &avail_out,
                                         &next_out, nullptr)) {
            throw Error("brotli: compression failed");
        }
        produced = out.size() - avail_out;
    }
    out.resize(produced);
    return out;
}

std::vector<std::uint8_t> brotli_decompress(std::span<const std::uint8_t> input, std::size_t max_output_bytes) {
    std::unique_ptr<BrotliDecoderState, BrotliDecoderDeleter> decoder(
        BrotliDecoderCreateInstance(nullptr, nullptr, nullptr));
    if (!decoder) throw Error("brotli: out of memory creating decoder");

    OutputBuffer output("brotli", max_output_bytes, decode_size_hint(input.size()));
    std::size_t avail_in = input.size();
    const std::uint8_t* next_in = input.data();
    while (true) {
        const std::span<std::uint8_t> room = output.space();
        std::size_t avail_out = room.size();
        std::uint8_t* next_out = room.data();
        const BrotliDecoderResult result =
            BrotliDecoderDecompressStream(decoder.get(), &avail_in, &next_in, &avail_out, &next_out, nullptr);
        output.commit(room.size() - avail_out);
        if (result == BROTLI_DECODER_RESULT_SUCCESS) break;
        if (result == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) throw Error("brotli: truncated input");
        if (result == BROTLI_DECODER_RESULT_ERROR) {
            // The library names the failed check only tersely ("CL_SPACE", "DICTIONARY"); it is still worth keeping.
            throw Error(std::string("brotli: corrupt input: ") +
                        BrotliDecoderErrorString(BrotliDecoderGetErrorCode(decoder.get())));
        }
        // BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: loop for more room.
    }
    if (avail_in != 0) throw Error(trailing_message("brotli", avail_in));
    return output.finish();
}

// ---- zlib ----

class InflateStream {
public:
    InflateStream() {
        if (const int ret = inflateInit(&stream); ret != Z_OK) {
            throw Error(std::string("zlib: cannot start decoder: ") + (stream.msg ? stream.msg : zError(ret)));
        }
    }
    InflateStream(const InflateStream&) = delete;
    InflateStream& operator=(const InflateStream&) = delete;
    ~InflateStream() { inflateEnd(&stream); }

    z_stream stream{};
};

class DeflateStream {
public:
    explicit DeflateStream(int level) {
        // windowBits 15 and memLevel 8 are zlib.compress's; the zlib container, not raw deflate or gzip.
        if (const int ret = deflateInit2(&stream, level, Z_DEFLATED, MAX_WBITS, 8, Z_DEFAULT_STRATEGY); ret != Z_OK) {
            throw Error(std::string("zlib: cannot start encoder: ") + (stream.msg ? stream.msg : zError(ret)));
        }
    }
    DeflateStream(const DeflateStream&) = delete;
    DeflateStream& operator=(const DeflateStream&) = delete;
    ~DeflateStream() { deflateEnd(&stream); }

    z_stream stream{};
};

// CPython 3.10+ (checked against 3.11) hands deflate its output in blocks of these sizes (_BlocksOutputBuffer), then
// 256 MiB each. The deflate bitstream does not depend on them, except at level 0, where stored blocks end wherever
// the output block does; replaying the schedule keeps zlib-0 byte-identical too.
std::size_t python_output_block_size(std::size_t index) {
    constexpr std::size_t KiB = 1024;
    constexpr std::size_t MiB = 1024 * KiB;
    constexpr std::size_t sizes[] = {32 * KiB, 64 * KiB, 256 * KiB, 1 * MiB,  4 * MiB,  8 * MiB,  16 * MiB,  16 * MiB,
                                     32 * MiB, 32 * MiB, 32 * MiB,  32 * MiB, 64 * MiB, 64 * MiB, 128 * MiB, 128 * MiB};
    return index < std::size(sizes) ? sizes[index] : 256 * MiB;
}

std::vector<std::uint8_t> zlib_compress(int level, std::span<const std::uint8_t> input) {
    // Mirrors CPython's zlib_compress_impl call for call: input in uInt-sized pieces, Z_FINISH with the last one,
    // deflate repeated while it fills the output block it was given.
    DeflateStream zlib(level);
    std::vector<std::uint8_t> out;
    std::size_t blocks = 0;
    const auto grow = [&] {
        const std::size_t used = out.size();  // only called when every earlier block is full
        const std::size_t block = python_output_block_size(blocks++);
        out.resize(used + block);
        zlib.stream.next_out = out.data() + used;
        zlib.stream.avail_out = static_cast<uInt>(block);
    };

    grow();
    std::span<const std::uint8_t> pending = input;
    zlib.stream.next_in = const_cast<Bytef*>(pending.data());  // zlib's API is not const-correct
    int flush = Z_NO_FLUSH;
    while (flush != Z_FINISH) {
        const std::size_t chunk = std::min<std::size_t>(pending.size(), UINT_MAX);
        zlib.stream.avail_in = static_cast<uInt>(chunk);
        pending = pending.subspan(chunk);
        flush = pending.empty() ? Z_FINISH : Z_NO_FLUSH;
        do {
            if (zlib.stream.avail_out == 0) grow();
            if (const int ret = deflate(&zlib.stream, flush); ret == Z_STREAM_ERROR) {
                throw Error("zlib: compression failed: stream error");
            }
        } while (zlib.stream.avail_out == 0);
    }
    out.resize(out.size() - zlib.stream.avail_out);
    return out;
}

std::vector<std::uint8_t> zlib_decompress(std::span<const std::uint8_t> input, std::size_t max_output_bytes) {
    InflateStream zlib;
    OutputBuffer output("zlib", max_output_bytes, decode_size_hint(input.size()));
    std::span<const std::uint8_t> pending = input;
    constexpr std::size_t max_chunk = UINT_MAX;  // z_stream counts in uInt
    while (true) {
        if (zlib.stream.avail_in == 0 && !pending.empty()) {
            const std::size_t chunk = std::min(pending.size(), max_chunk);
            zlib.stream.next_in = const_cast<Bytef*>(pending.data());  // zlib's API is not const-correct
            zlib.stream.avail_in = static_cast<uInt>(chunk);
            pending = pending.subspan(chunk);
        }
        const std::span<std::uint8_t> room = output.space();
        const uInt offered = static_cast<uInt>(std::min(room.size(), max_chunk));
        zlib.stream.next_out = room.data();
        zlib.stream.avail_out = offered;
        const int ret = inflate(&zlib.stream, Z_NO_FLUSH);
        output.commit(offered - zlib.stream.avail_out);
        if (ret == Z_STREAM_END) break;
        if (ret == Z_OK) continue;
        if (ret == Z_BUF_ERROR) {
            if (zlib.stream.avail_in == 0 && pending.empty()) throw Error("zlib: truncated input");
            if (zlib.stream.avail_out == 0) continue;  // stalled only for room; space() grows the buffer
            throw Error("zlib: decompression made no progress");
        }
        if (ret == Z_NEED_DICT) throw Error("zlib: corrupt input: stream needs a preset dictionary");
        if (ret == Z_DATA_ERROR) {
            throw Error(std::string("zlib: corrupt input: ") + (zlib.stream.msg ? zlib.stream.msg : "invalid data"));
        }
        throw Error(std::string("zlib: decompression failed: ") + zError(ret));
    }
    const std::size_t trailing = zlib.stream.avail_in + pending.size();
    if (trailing != 0) throw Error(trailing_message("zlib", trailing));
    return output.finish();
}

}  // namespace

std::string codec_kind_name(CodecKind kind) {
    switch (kind) {
        case CodecKind::zstd:
            return "zstd";
        case CodecKind::xz:
            return "xz";
        case CodecKind::brotli:
            return "brotli";
        case CodecKind::zlib:
            return "zlib";
    }
    throw Error("codec: unknown codec kind " + std::to_string(static_cast<int>(kind)));
}

std::string CodecSpec::name() const {
    return codec_kind_name(kind) + "-" + std::to_string(level) + (extreme ? "e" : "");
}

CodecSpec codec_parse_spec(std::string_view text) {
    const auto invalid = [&](const std::string& why) {
        return Error("codec: invalid spec '" + std::string(text) + "' (" + why + "); " + std::string(valid_specs));
    };

    const std::size_t dash = text.find('-');
    if (dash == std::string_view::npos) throw invalid("missing '-level'");
    const std::string_view family = text.substr(0, dash);
    std::string_view level_text = text.substr(dash + 1);

    CodecSpec spec{};
    if (family == "zstd") {
        spec.kind = CodecKind::zstd;
    } else if (family == "xz" || family == "lzma") {
        spec.kind = CodecKind::xz;
        if (level_text.ends_with('e')) {
            spec.extreme = true;
            level_text.remove_suffix(1);
        }
    } else if (family == "brotli") {
        spec.kind = CodecKind::brotli;
    } else if (family == "zlib") {
        spec.kind = CodecKind::zlib;
    } else {
        throw invalid("unknown codec '" + std::string(family) + "'");
    }

    // Digits only: from_chars alone would also take a sign, and "zlib--1" must not slip through.
    const bool all_digits =
        !level_text.empty() && level_text.size() <= 2 &&
        std::all_of(level_text.begin(), level_text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!all_digits) throw invalid("level must be a number");
    std::from_chars(level_text.data(), level_text.data() + level_text.size(), spec.level);

    const LevelRange range = codec_level_range(spec.kind);
    if (spec.level < range.min || spec.level > range.max) throw invalid("level out of range");
    return spec;
}

std::vector<std::uint8_t> codec_compress(const CodecSpec& spec, std::span<const std::uint8_t> input) {
    codec_check_spec(spec);
    switch (spec.kind) {
        case CodecKind::zstd:
            return zstd_compress(spec.level, input);
        case CodecKind::xz:
            return xz_compress(spec.level, spec.extreme, input);
        case CodecKind::brotli:
            return brotli_compress(spec.level, input);
        case CodecKind::zlib:
            return zlib_compress(spec.level, input);
    }
    throw Error("codec: unknown codec kind " + std::to_string(static_cast<int>(spec.kind)));
}

std::vector<std::uint8_t> codec_decompress(CodecKind kind, std::span<const std::uint8_t> input,
                                           std::size_t max_output_bytes) {
    switch (kind) {
        case CodecKind::zstd:
            return zstd_decompress(input, max_output_bytes);
        case CodecKind::xz:
            return xz_decompress(input, max_output_bytes);
        case CodecKind::brotli:
            return brotli_decompress(input, max_output_bytes);
        case CodecKind::zlib:
            return zlib_decompress(input, max_output_bytes);
    }
    throw Error("codec: unknown codec kind " + std::to_string(static_cast<int>(kind)));
}

std::vector<std::uint8_t> codec_decompress_lzma2_raw(std::span<const std::uint8_t> input,
                                                     std::size_t max_output_bytes) {
    lzma_options_lzma options;
    if (lzma_lzma_preset(&options, 6) != 0) throw Error("lzma2 raw: cannot read preset 6");
    options.dict_size = 64u << 20;
    const lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &options}, {LZMA_VLI_UNKNOWN, nullptr}};
    LzmaStream lzma;
    const lzma_ret init = lzma_raw_decoder(&lzma.stream, filters);
    if (init != LZMA_OK) throw Error("lzma2 raw: cannot start decoder: " + lzma_problem(init));
    return lzma_decode_all(lzma, "lzma2 raw", input, max_output_bytes);
}

std::vector<std::uint8_t> codec_decompress_lzma_alone(std::span<const std::uint8_t> input,
                                                      std::size_t max_output_bytes) {
    LzmaStream lzma;
    const lzma_ret init = lzma_alone_decoder(&lzma.stream, UINT64_MAX);
    if (init != LZMA_OK) throw Error("lzma alone: cannot start decoder: " + lzma_problem(init));
    return lzma_decode_all(lzma, "lzma alone", input, max_output_bytes);
}

std::optional<CodecKind> codec_detect(std::span<const std::uint8_t> input) {
    constexpr std::uint8_t zstd_magic[] = {0x28, 0xB5, 0x2F, 0xFD};
    constexpr std::uint8_t xz_magic[] = {0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00};
    const auto starts_with = [&](std::span<const std::uint8_t> magic) {
        return input.size() >= magic.size() && std::equal(magic.begin(), magic.end(), input.begin());
    };
    if (starts_with(zstd_magic)) return CodecKind::zstd;
    if (starts_with(xz_magic)) return CodecKind::xz;
    // RFC 1950 header: deflate method, window at most 32 KiB, and a check value making CMF:FLG a multiple of 31.
    // Only two bytes of evidence: about 1 in 1000 random inputs (brotli streams included) pass as well.
    if (input.size() >= 2) {
        const unsigned cmf = input[0];
        const unsigned flg = input[1];
        if ((cmf & 0x0F) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0) return CodecKind::zlib;
    }
    return std::nullopt;
}

}  // namespace pgolf
