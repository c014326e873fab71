// The engine's event sink: scopes install and restore sinks, and every token reader reports its reads to it.
#include "core/events.h"

#include <gtest/gtest.h>

#include <numeric>

#include "core/shard.h"
#include "core/token_stream.h"
#include "tests/core/test_util.h"

namespace pgolf {
namespace {

struct Recorded {
    std::string name;
    nlohmann::json payload;
};

TEST(Events, ScopesNestAndRestoreTheOuterSink) {
    EXPECT_FALSE(events_active());
    events_emit("ignored", {{"x", 1}});  // no sink: nothing happens
    std::vector<Recorded> outer, inner;
    {
        EventScope outer_scope([&](const std::string& name, const nlohmann::json& p) { outer.push_back({name, p}); });
        EXPECT_TRUE(events_active());
        events_emit("a", {{"x", 1}});
        {
            EventScope inner_scope([&](const std::string& name, const nlohmann::json& p) {
                inner.push_back({name, p});
            });
            events_emit("b", {{"x", 2}});
        }
        events_emit("c", {{"x", 3}});
    }
    EXPECT_FALSE(events_active());
    ASSERT_EQ(outer.size(), 2u);
    EXPECT_EQ(outer[0].name, "a");
    EXPECT_EQ(outer[1].name, "c");
    EXPECT_EQ(outer[1].payload["x"], 3);
    ASSERT_EQ(inner.size(), 1u);
    EXPECT_EQ(inner[0].name, "b");
}

TEST(Events, SinkExceptionsReachTheEmitter) {
    EventScope scope([](const std::string&, const nlohmann::json&) { throw std::runtime_error("budget spent"); });
    EXPECT_THROW(events_emit("x", nlohmann::json::object()), std::runtime_error);
}

TEST(Events, TokenReadersReportEveryRead) {
    test::TemporaryFolder folder;
    std::vector<std::uint16_t> tokens(10);
    std::iota(tokens.begin(), tokens.end(), std::uint16_t{100});
    shard_write(folder.path("fineweb_train_000000.bin"), tokens);
    shard_write(folder.path("fineweb_val_000000.bin"), tokens);
    std::vector<Recorded> reads;
    EventScope scope([&](const std::string& name, const nlohmann::json& p) { reads.push_back({name, p}); });

    TrainTokenStream stream({folder.path("fineweb_train_000000.bin")});
    stream.take(7);
    stream.take(5);  // 3 to the end of the shard, then 2 after the wrap
    validation_tokens_load({folder.path("fineweb_val_000000.bin")}, 3);
    ASSERT_EQ(reads.size(), 4u);
    for (const Recorded& read : reads) EXPECT_EQ(read.name, event_names::data_read);
    EXPECT_EQ(reads[0].payload["begin"], 0);
    EXPECT_EQ(reads[0].payload["end"], 7);
    EXPECT_EQ(reads[1].payload["begin"], 7);
    EXPECT_EQ(reads[1].payload["end"], 10);
    EXPECT_EQ(reads[2].payload["begin"], 0);
    EXPECT_EQ(reads[2].payload["end"], 2);
    EXPECT_EQ(reads[3].payload["path"], folder.path("fineweb_val_000000.bin"));
    EXPECT_EQ(reads[3].payload["end"], 10);  // the whole shard is read, then truncated to whole sequences
}

}  // namespace
}  // namespace pgolf
