// documents_read tests on temporary files: JSONL parsing and its line-numbered errors, plain files, format choice.
#include "core/documents.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

// A file in a per-test temporary directory, removed with the directory when the test ends.
class DocumentsTest : public ::testing::Test {
protected:
    std::string write(const std::string& name, const std::string& contents) const {
        const std::string path = folder_.path(name);
        std::ofstream(path, std::ios::binary) << contents;
        return path;
    }

    static std::vector<std::string> read_all(const std::string& path, DocumentFormat format,
                                             std::int64_t* count = nullptr) {
        std::vector<std::string> docs;
        const std::int64_t n = documents_read(path, format, [&](std::string_view text) { docs.emplace_back(text); });
        if (count != nullptr) {
            *count = n;
        }
        return docs;
    }

    // Expects documents_read to throw a one-line pgolf::Error containing `fragment`; returns the message.
    static std::string error_of(const std::string& path, DocumentFormat format, const std::string& fragment) {
        try {
            read_all(path, format);
        } catch (const Error& e) {
            const std::string message = e.what();
            EXPECT_NE(message.find(fragment), std::string::npos) << message;
            EXPECT_EQ(message.find('\n'), std::string::npos) << message;
            return message;
        }
        ADD_FAILURE() << "expected pgolf::Error containing \"" << fragment << "\"";
        return {};
    }

    test::TemporaryFolder folder_;
};

TEST_F(DocumentsTest, JsonlSkipsBlankLinesAndKeepsOrder) {
    const std::string path = write("docs.jsonl",
                                   "{\"text\": \"first\", \"id\": 7}\n"
                                   "\n"
                                   "   \n"
                                   "{\"meta\": {\"a\": [1,2]}, \"text\": \"second line\\nwith newline\"}\r\n"
                                   "{\"text\": \"\"}\n"
                                   "{\"text\": \"last, no trailing newline\"}");
    std::int64_t count = 0;
    const auto docs = read_all(path, DocumentFormat::automatic, &count);
    EXPECT_EQ(count, 4);
    ASSERT_EQ(docs.size(), 4u);
    EXPECT_EQ(docs[0], "first");
    EXPECT_EQ(docs[1], "second line\nwith newline");
    EXPECT_EQ(docs[2], "");
    EXPECT_EQ(docs[3], "last, no trailing newline");
}

TEST_F(DocumentsTest, JsonlUnicodeEscapesAndRawUtf8) {
    const std::string path = write("u.jsonl",
                                   "{\"text\": \"caf\\u00e9 \\ud83d\\ude42 \\t tab\"}\n"
                                   "{\"text\": \"na\xC3\xAFve \xF0\x9F\x99\x82\"}\n");
    const auto docs = read_all(path, DocumentFormat::jsonl);
    ASSERT_EQ(docs.size(), 2u);
    EXPECT_EQ(docs[0], "caf\xC3\xA9 \xF0\x9F\x99\x82 \t tab");
    EXPECT_EQ(docs[1], "na\xC3\xAFve \xF0\x9F\x99\x82");
}

TEST_F(DocumentsTest, JsonlMissingTextNamesLine) {
    const std::string path = write("missing.jsonl", "{\"text\": \"ok\"}\n\n{\"body\": \"no text here\"}\n");
    const std::string message = error_of(path, DocumentFormat::jsonl, path + ":3: missing string field \"text\"");
    EXPECT_FALSE(message.empty());
}

TEST_F(DocumentsTest, JsonlInvalidJsonNamesLine) {
    const std::string path = write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n");
    error_of(path, DocumentFormat::jsonl, path + ":2: invalid JSON");
    const std::string surrogate = write("surrogate.jsonl", "{\"text\": \"\\ud800 lone\"}\n");
    error_of(surrogate, DocumentFormat::jsonl, surrogate + ":1: invalid JSON");
    const std::string bad_utf8 = write("utf8.jsonl", "{\"text\": \"\xC3\x28\"}\n");
    error_of(bad_utf8, DocumentFormat::jsonl, bad_utf8 + ":1: invalid JSON");
    const std::string overflow = write("overflow.jsonl", "{\"text\": \"a\", \"score\": 1e999}\n");
    error_of(overflow, DocumentFormat::jsonl, overflow + ":1: invalid JSON");
    // A huge unterminated string must not end up wholesale in the message.
    const std::string long_line = write("long.jsonl", "{\"text\": \"" + std::string(100000, 'x') + "\n");
    const std::string message = error_of(long_line, DocumentFormat::jsonl, long_line + ":1: invalid JSON at byte");
    EXPECT_LT(message.size(), 400u);
}

TEST_F(DocumentsTest, JsonlNonStringTextNamesLine) {
    const std::string path = write("nonstring.jsonl", "{\"text\": 42}\n");
    error_of(path, DocumentFormat::jsonl, path + ":1: field \"text\" is number");
    const std::string null_text = write("null.jsonl", "{\"text\": \"a\"}\n{\"text\": null}\n");
    error_of(null_text, DocumentFormat::jsonl, null_text + ":2: field \"text\" is null");
}

TEST_F(DocumentsTest, JsonlNonObjectNamesLine) {
    const std::string path = write("array.jsonl", "[\"text\", \"x\"]\n");
    error_of(path, DocumentFormat::jsonl, path + ":1: expected a JSON object");
    const std::string bare = write("string.jsonl", "\"just a string\"\n");
    error_of(bare, DocumentFormat::jsonl, bare + ":1: expected a JSON object");
}

TEST_F(DocumentsTest, PlainFileIsOneDocument) {
    const std::string contents = "line one\n\n{\"text\": \"not parsed\"}\n\xF0\x9F\x99\x82 end";
    const std::string path = write("notes.txt", contents);
    std::int64_t count = 0;
    const auto docs = read_all(path, DocumentFormat::automatic, &count);
    EXPECT_EQ(count, 1);
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0], contents);

    // An explicit format overrides the extension.
    const auto forced = read_all(write("forced.jsonl", contents), DocumentFormat::plain);
    ASSERT_EQ(forced.size(), 1u);
    EXPECT_EQ(forced[0], contents);

    const auto empty = read_all(write("empty.txt", ""), DocumentFormat::plain);
    ASSERT_EQ(empty.size(), 1u);
    EXPECT_EQ(empty[0], "");
}

TEST_F(DocumentsTest, PlainFileMustBeValidUtf8) {
    // A stray Latin-1 byte, a truncated sequence, an overlong encoding and a UTF-16 surrogate, each at byte 3.
    for (const std::string& bad : {std::string("abc\xE9 cafe"), std::string("abc\xE2\x82"), std::string("abc\xC0\xAF"),
                                   std::string("abc\xED\xA0\x80")}) {
        const std::string message = error_of(write("bad.txt", bad), DocumentFormat::plain, "not valid UTF-8 at byte 3");
        EXPECT_FALSE(message.empty());
    }
    EXPECT_EQ(read_all(write("ok.txt", "\xF4\x8F\xBF\xBF \xE2\x96\x81"), DocumentFormat::plain).size(), 1u);
}

TEST_F(DocumentsTest, ResolveFormat) {
    EXPECT_EQ(documents_resolve_format("a/b.jsonl", DocumentFormat::automatic), DocumentFormat::jsonl);
    EXPECT_EQ(documents_resolve_format("a/b.NDJSON", DocumentFormat::automatic), DocumentFormat::jsonl);
    EXPECT_EQ(documents_resolve_format("a/b.txt", DocumentFormat::automatic), DocumentFormat::plain);
    EXPECT_EQ(documents_resolve_format("a/jsonl", DocumentFormat::automatic), DocumentFormat::plain);
    EXPECT_EQ(documents_resolve_format("a/b.txt", DocumentFormat::jsonl), DocumentFormat::jsonl);
    EXPECT_EQ(documents_resolve_format("a/b.jsonl", DocumentFormat::plain), DocumentFormat::plain);
}

TEST_F(DocumentsTest, MissingFileAndDirectoryNamePath) {
    const std::string missing = folder_.path("nope.jsonl");
    error_of(missing, DocumentFormat::automatic, missing + ": cannot open");
    const std::string missing_txt = folder_.path("nope.txt");
    error_of(missing_txt, DocumentFormat::automatic, missing_txt + ": cannot open");
    error_of(folder_.root(), DocumentFormat::jsonl, folder_.root() + ": is a directory");
}

TEST_F(DocumentsTest, CallbackExceptionsPropagate) {
    const std::string path = write("docs.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
    int calls = 0;
    EXPECT_THROW(documents_read(path, DocumentFormat::automatic,
                                [&](std::string_view) {
                                    ++calls;
                                    throw Error("stop");
                                }),
                 Error);
    EXPECT_EQ(calls, 1);
}

TEST(Documents, MiniValJsonl) {
    const std::string path = test::test_source_path("data/text/fineweb_mini_val_docs.jsonl");
    std::int64_t bytes = 0;
    const std::int64_t count =
        documents_read(path, DocumentFormat::automatic, [&](std::string_view text) { bytes += std::ssize(text); });
    EXPECT_EQ(count, 233);
    EXPECT_EQ(bytes, 636461);
}

}  // namespace
}  // namespace pgolf
