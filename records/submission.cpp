// The canonical submission.json: JSON out, strict JSON in.
#include "records/submission.h"

#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"

namespace pgolf {

namespace {

using Json = nlohmann::ordered_json;

// Field access that names what is wrong in one line.
class Reader {
public:
    Reader(const Json& json, std::string where) : json_(json), where_(std::move(where)) {
        if (!json_.is_object()) fail("is not an object");
    }
    [[noreturn]] void fail(const std::string& problem) const {
        throw Error("submission.json: " + where_ + " " + problem);
    }
    const Json& field(const std::string& key) {
        seen_.insert(key);
        if (!json_.contains(key)) fail("has no field " + json_quote(key));
        return json_.at(key);
    }
    std::string string(const std::string& key) {
        const Json& value = field(key);
        if (!value.is_string()) fail("field " + json_quote(key) + " is not a string");
        return value.get<std::string>();
    }
    double number(const std::string& key) {
        const Json& value = field(key);
        if (!value.is_number()) fail("field " + json_quote(key) + " is not a number");
        return value.get<double>();
    }
    std::int64_t integer(const std::string& key) {
        const Json& value = field(key);
        if (!value.is_number_integer()) fail("field " + json_quote(key) + " is not an integer");
        return value.get<std::int64_t>();
    }
    bool boolean(const std::string& key) {
        const Json& value = field(key);
        if (!value.is_boolean()) fail("field " + json_quote(key) + " is not true or false");
        return value.get<bool>();
    }
    // Every field of the object was read: the schema has no optional extras.
    void finish() const {
        for (const auto& [key, value] : json_.items()) {
            if (seen_.count(key) == 0) fail("has an unknown field " + json_quote(key));
        }
    }

private:
    const Json& json_;
    std::string where_;
    std::set<std::string> seen_;
};

SignificanceTest significance_test_read(const Json& json, const std::string& where) {
    Reader reader(json, where);
    SignificanceTest test;
    test.name = reader.string("name");
    test.t = reader.number("t");
    test.df = reader.number("df");
    test.p = reader.number("p");
    test.margin = reader.number("margin");
    test.alpha = reader.number("alpha");
    test.significant = reader.boolean("significant");
    reader.finish();
    return test;
}

}  // namespace

nlohmann::ordered_json significance_test_to_json(const SignificanceTest& test) {
    return {{"name", test.name},
            {"t", test.t},
            {"df", test.df},
            {"p", test.p},
            {"margin", test.margin},
            {"alpha", test.alpha},
            {"significant", test.significant}};
}

nlohmann::ordered_json submission_to_json(const Submission& s) {
    Json seed_results = Json::object();
    for (const auto& [seed, r] : s.seed_results) {
        seed_results[std::to_string(seed)] = {{"val_bpb", r.val_bpb},
                                              {"val_loss", r.val_loss},
                                              {"artifact_bytes", r.artifact_bytes},
                                              {"model_bytes", r.model_bytes},
                                              {"code_bytes", r.code_bytes},
                                              {"steps", r.steps},
                                              {"step_avg_ms", r.step_avg_ms},
                                              {"train_time_s", r.train_time_s},
                                              {"eval_time_s", r.eval_time_s},
                                              {"audit_verdict", r.audit_verdict}};
    }
    Json significance = nullptr;
    if (s.significance) {
        const SubmissionSignificance& g = *s.significance;
        Json tests = Json::array();
        for (const SignificanceTest& test : g.tests) tests.push_back(significance_test_to_json(test));
        significance = {{"against_name", g.against_name},
                        {"against_folder", g.against_folder},
                        {"against_val_bpb", g.against_val_bpb},
                        {"against_seeds", g.against_seeds},
                        {"tests", tests},
                        {"gate", g.gate},
                        {"passes", g.passes}};
    }
    return {{"schema", submission_schema_id},
            {"name", s.name},
            {"author", s.author},
            {"github_id", s.github_id},
            {"date", s.date},
            {"track", s.track},
            {"blurb", s.blurb},
            {"val_bpb", s.val_bpb},
            {"val_loss", s.val_loss},
            {"val_bpb_std", s.val_bpb_std},
            {"val_loss_std", s.val_loss_std},
            {"seeds", s.seeds},
            {"seed_results", seed_results},
            {"bytes_total", s.bytes_total},
            {"bytes_code", s.bytes_code},
            {"cap_bytes", s.cap_bytes},
            {"margin_bytes", s.margin_bytes},
            {"hardware", s.hardware},
            {"preset", s.preset},
            {"scale", s.scale},
            {"eval_mode", s.eval_mode},
            {"metric_family", s.metric_family},
            {"config_digest", s.config_digest},
            {"engine_version", s.engine_version},
            {"engine_digest", s.engine_digest},
            {"audit_verdict", s.audit_verdict},
            {"significance", significance}};
}

Submission submission_from_json(const nlohmann::ordered_json& json) {
    Reader reader(json, "the document");
    if (reader.string("schema") != submission_schema_id) {
        reader.fail("is not schema " + std::string(submission_schema_id));
    }
    Submission s;
    s.name = reader.string("name");
    s.author = reader.string("author");
    s.github_id = reader.string("github_id");
    s.date = reader.string("date");
    s.track = reader.string("track");
    s.blurb = reader.string("blurb");
    s.val_bpb = reader.number("val_bpb");
    s.val_loss = reader.number("val_loss");
    s.val_bpb_std = reader.number("val_bpb_std");
    s.val_loss_std = reader.number("val_loss_std");
    const Json& seeds = reader.field("seeds");
    if (!seeds.is_array()) reader.fail("field \"seeds\" is not an array");
    for (const Json& seed : seeds) {
        if (!seed.is_number_integer()) reader.fail("field \"seeds\" holds a value that is not an integer");
        s.seeds.push_back(seed.get<std::int64_t>());
    }
    const Json& results = reader.field("seed_results");
    if (!results.is_object()) reader.fail("field \"seed_results\" is not an object");
    for (const auto& [key, value] : results.items()) {
        std::size_t used = 0;
        std::int64_t seed = 0;
        try {
            seed = std::stoll(key, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != key.size() || key.empty()) reader.fail("seed_results key " + json_quote(key) + " is not a seed");
        Reader r(value, "seed_results[" + json_quote(key) + "]");
        SeedResult result;
        result.val_bpb = r.number("val_bpb");
        result.val_loss = r.number("val_loss");
        result.artifact_bytes = r.integer("artifact_bytes");
        result.model_bytes = r.integer("model_bytes");
        result.code_bytes = r.integer("code_bytes");
        result.steps = r.integer("steps");
        result.step_avg_ms = r.number("step_avg_ms");
        result.train_time_s = r.number("train_time_s");
        result.eval_time_s = r.number("eval_time_s");
        result.audit_verdict = r.string("audit_verdict");
        r.finish();
        s.seed_results[seed] = result;
    }
    s.bytes_total = reader.integer("bytes_total");
    s.bytes_code = reader.integer("bytes_code");
    s.cap_bytes = reader.integer("cap_bytes");
    s.margin_bytes = reader.integer("margin_bytes");
    s.hardware = reader.string("hardware");
    s.preset = reader.string("preset");
    s.scale = reader.string("scale");
    s.eval_mode = reader.string("eval_mode");
    s.metric_family = reader.string("metric_family");
    s.config_digest = reader.string("config_digest");
    s.engine_version = reader.string("engine_version");
    s.engine_digest = reader.string("engine_digest");
    s.audit_verdict = reader.string("audit_verdict");
    const Json& significance = reader.field("significance");
    if (!significance.is_null()) {
        Reader g(significance, "significance");
        SubmissionSignificance result;
        result.against_name = g.string("against_name");
        result.against_folder = g.string("against_folder");
        result.against_val_bpb = g.number("against_val_bpb");
        result.against_seeds = g.integer("against_seeds");
        const Json& tests = g.field("tests");
        if (!tests.is_array()) g.fail("field \"tests\" is not an array");
        for (std::size_t i = 0; i < tests.size(); ++i) {
            result.tests.push_back(significance_test_read(tests[i], "significance.tests[" + std::to_string(i) + "]"));
        }
        result.gate = g.string("gate");
        result.passes = g.boolean("passes");
        g.finish();
        s.significance = result;
    }
    reader.finish();
    return s;
}

Submission submission_read(const std::string& path) {
    const std::vector<std::uint8_t> bytes = file_read_bytes(path);
    try {
        return submission_from_json(json_parse_unique_keys(
            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "document"));
    } catch (const Error& error) {
        throw Error(path + ": " + error.what());
    }
}

void submission_write(const std::string& path, const Submission& submission) {
    const std::string text = submission_to_json(submission).dump(2) + "\n";
    file_write_bytes(path, text.data(), text.size());
}

}  // namespace pgolf
