// Presets and config overrides: compiled-in presets, typed --set, unknown keys refused, digests stable.
#include "model/config.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace pgolf {
namespace {

TEST(Config, BaselinePresetFullAndSmoke) {
    const Config full = config_load_preset("baseline", "full");
    EXPECT_EQ(full.get_int("NUM_LAYERS"), 9);
    EXPECT_EQ(full.get_int("MODEL_DIM"), 512);
    EXPECT_TRUE(full.get_bool("TIE_EMBEDDINGS"));
    EXPECT_DOUBLE_EQ(full.get_double("TIED_EMBED_LR"), 0.05);
    EXPECT_EQ(full.get_string("PRESET"), "baseline");
    const Config smoke = config_load_preset("baseline", "smoke");
    EXPECT_LT(smoke.get_int("MODEL_DIM"), 512);
    EXPECT_EQ(smoke.get_int("VOCAB_SIZE"), 1024);  // the smoke scale keeps the real tokenizer
    EXPECT_NE(full.digest(), smoke.digest());
    EXPECT_EQ(full.digest(), config_load_preset("baseline", "full").digest());
    const Preset preset = config_find_preset("baseline");
    EXPECT_EQ(preset.published_parameters, 17059912);
    EXPECT_EQ(preset.scales.front(), "full");
}

TEST(Config, UnknownPresetAndScale) {
    EXPECT_THROW(config_load_preset("nope", "full"), Error);
    try {
        config_load_preset("baseline", "huge");
        FAIL();
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("smoke"), std::string::npos) << error.what();
    }
}

TEST(Config, OverridesAreTyped) {
    Config config = config_load_preset("baseline", "full");
    config.apply_override("NUM_LAYERS=11");
    config.apply_override("MATRIX_LR=0.025");
    config.apply_override("TIE_EMBEDDINGS=0");
    config.apply_override("MUON_PRECISION=f32");
    EXPECT_EQ(config.get_int("NUM_LAYERS"), 11);
    EXPECT_DOUBLE_EQ(config.get_double("MATRIX_LR"), 0.025);
    EXPECT_FALSE(config.get_bool("TIE_EMBEDDINGS"));
    EXPECT_EQ(config.get_string("MUON_PRECISION"), "f32");
    EXPECT_THROW(config.apply_override("NUM_LAYER=11"), Error);  // typo: unknown key
    EXPECT_THROW(config.apply_override("NUM_LAYERS=eleven"), Error);
    EXPECT_THROW(config.apply_override("NUM_LAYERS=1.5"), Error);
    EXPECT_THROW(config.apply_override("NUM_LAYERS"), Error);
    EXPECT_THROW(config.get_int("MATRIX_LR"), Error);
    EXPECT_THROW(config.get_string("NUM_LAYERS"), Error);
}

}  // namespace
}  // namespace pgolf
