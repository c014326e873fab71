// Real-world submission.json variants: alias lists and the five per-seed shapes, resolved with provenance.
#include "records/submission_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_util.h"

namespace pgolf {

namespace {

using Json = nlohmann::ordered_json;

// The loss aliases. The 10L_Int5MLP rule needs to know whether any loss key other than val_loss is present.
constexpr std::initializer_list<const char*> loss_aliases = {"val_loss",      "mean_val_loss",    "mean_val_loss_nats",
                                                             "val_loss_nats", "val_loss_sliding", "val_loss_roundtrip"};
constexpr std::initializer_list<const char*> bpb_aliases = {"val_bpb", "mean_val_bpb", "mean_bpb"};
// Below this a "loss" in nats is implausible for these models (bpb ~1.1 is ~1.9 nats), so it is a bpb.
constexpr double misfiled_loss_limit = 1.6;

// A value of the wrong type is not fatal (the file is someone's hand-written report); it is ignored with a note. Null
// means "not reported" and is ignored silently.
template <class T>
std::optional<T> convert(const Json& value, const std::string& key, std::vector<std::string>& notes) {
    if (value.is_null()) return std::nullopt;
    if constexpr (std::is_same_v<T, double>) {
        if (value.is_number()) return value.get<double>();
        notes.push_back(key + " is " + value.type_name() + ", not a number: ignored");
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
        if (value.is_number_unsigned() &&
            value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            notes.push_back(key + " " + value.dump() + " is out of range: ignored");
            return std::nullopt;
        }
        if (value.is_number_integer()) return value.get<std::int64_t>();
        // 1.59e7 or 15900000.0 are still a byte count.
        if (value.is_number_float()) {
            const double d = value.get<double>();
            if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) return static_cast<std::int64_t>(d);
        }
        notes.push_back(key + " " + value.dump() + " is not an integer: ignored");
    } else {
        if (value.is_string()) return value.get<std::string>();
        notes.push_back(key + " is " + value.type_name() + ", not a string: ignored");
    }
    return std::nullopt;
}

struct Context {
    std::string file;
    std::vector<std::string>& notes;
};

// The first alias with a usable value; prefix makes the key path of a nested object ("seed_results.42.").
template <class T>
Sourced<T> first_of(const Json& object, std::initializer_list<const char*> aliases, const std::string& prefix,
                    Context& context) {
    for (const char* alias : aliases) {
        const auto it = object.find(alias);
        if (it == object.end()) continue;
        std::optional<T> value = convert<T>(*it, prefix + alias, context.notes);
        if (value) return {value, {context.file, prefix + alias}};
    }
    return {};
}

// Milliseconds under ms_key become seconds, used only when the seconds key gives nothing.
Sourced<double> seconds_or_ms(const Json& object, const char* seconds_key, const char* ms_key,
                              const std::string& prefix, Context& context) {
    Sourced<double> seconds = first_of<double>(object, {seconds_key}, prefix, context);
    if (seconds.value) return seconds;
    Sourced<double> ms = first_of<double>(object, {ms_key}, prefix, context);
    if (ms.value) *ms.value /= 1000.0;
    return ms;
}

bool present(const Json& object, const char* key) {
    const auto it = object.find(key);
    return it != object.end() && !it->is_null();
}

std::optional<std::int64_t> parse_seed(const std::string& label) {
    std::int64_t seed = 0;
    const char* end = label.data() + label.size();
    const auto [ptr, error] = std::from_chars(label.data(), end, seed);
    if (error != std::errc() || ptr != end || label.empty()) return std::nullopt;
    return seed;
}

SubmissionSeed make_seed(const std::string& label) {
    SubmissionSeed seed;
    seed.label = label;
    seed.seed = parse_seed(label);
    return seed;
}

// An entry of a seeds list: seeds are ints in real files, but a string label is kept as written.
std::string seed_label(const Json& entry, const std::string& key, std::vector<std::string>& notes) {
    if (entry.is_string()) return entry.get<std::string>();
    if (!entry.is_number_integer()) notes.push_back(key + " " + entry.dump() + " is not an integer seed");
    return entry.dump();
}

// One per-seed object (seed_results or seeds dict entry); a bare number is the seed's bpb.
SubmissionSeed read_seed_entry(const std::string& label, const Json& entry, const std::string& where,
                               Context& context) {
    SubmissionSeed seed = make_seed(label);
    if (!entry.is_object()) {
        std::optional<double> bpb = convert<double>(entry, where, context.notes);
        if (bpb) seed.val_bpb = {bpb, {context.file, where}};
        return seed;
    }
    const std::string prefix = where + ".";
    seed.val_bpb = first_of<double>(entry, {"val_bpb", "val_var_bpb"}, prefix, context);  // val_var_bpb: MDLM
    seed.val_loss = first_of<double>(entry, {"val_loss"}, prefix, context);
    seed.artifact_bytes =
        first_of<std::int64_t>(entry, {"artifact_bytes", "bytes_total", "artifact_size_bytes"}, prefix, context);
    seed.steps = first_of<std::int64_t>(entry, {"steps"}, prefix, context);
    seed.step_avg_ms = first_of<double>(entry, {"step_avg_ms"}, prefix, context);
    seed.train_time_s = seconds_or_ms(entry, "train_time_s", "train_time_ms", prefix, context);
    seed.eval_time_s = seconds_or_ms(entry, "eval_time_s", "eval_time_ms", prefix, context);
    return seed;
}

void read_seeds(const Json& top, SubmissionFile& file, Context& context) {
    const auto seeds_it = top.find("seeds");
    const auto results_it = top.find("seed_results");
    const bool seeds_list = seeds_it != top.end() && seeds_it->is_array();
    const bool seeds_dict = seeds_it != top.end() && seeds_it->is_object();
    const bool results = results_it != top.end() && results_it->is_object();
    if (results_it != top.end() && !results_it->is_null() && !results) {
        context.notes.push_back(std::string("seed_results is ") + results_it->type_name() + ", not an object: ignored");
    }

    std::vector<std::string> list_labels;  // the seeds list, when there is one
    if (seeds_list) {
        for (std::size_t i = 0; i < seeds_it->size(); ++i) {
            list_labels.push_back(seed_label((*seeds_it)[i], "seeds[" + std::to_string(i) + "]", context.notes));
        }
    }

    if (results) {
        file.seed_shape = seeds_list ? "seeds+seed_results" : "seed_results";
        for (const auto& [label, entry] : results_it->items()) {
            file.seeds.push_back(read_seed_entry(label, entry, "seed_results." + label, context));
        }
        // The list and the dict should name the same seeds; a listed seed without results is still a seed run.
        for (const std::string& label : list_labels) {
            if (results_it->contains(label)) continue;
            context.notes.push_back("seed " + label + " is in seeds but has no seed_results entry");
            file.seeds.push_back(make_seed(label));
        }
        if (seeds_list) {
            for (const auto& [label, entry] : results_it->items()) {
                if (std::find(list_labels.begin(), list_labels.end(), label) == list_labels.end()) {
                    context.notes.push_back("seed_results." + label + " is not in the seeds list");
                }
            }
        }
        if (seeds_dict) context.notes.push_back("seeds is a dict beside seed_results: ignored");
    } else if (seeds_dict) {
        file.seed_shape = "seeds_dict";
        for (const auto& [label, entry] : seeds_it->items()) {
            file.seeds.push_back(read_seed_entry(label, entry, "seeds." + label, context));
        }
    } else if (seeds_list) {
        const auto scores_it = top.find("seed_scores");
        const bool scores = scores_it != top.end() && scores_it->is_array();
        file.seed_shape = scores ? "seeds+seed_scores" : "seeds_only";
        for (const std::string& label : list_labels) file.seeds.push_back(make_seed(label));
        if (scores) {
            const std::size_t n = std::min(scores_it->size(), file.seeds.size());
            for (std::size_t i = 0; i < n; ++i) {
                const std::string key = "seed_scores[" + std::to_string(i) + "]";
                std::optional<double> bpb = convert<double>((*scores_it)[i], key, context.notes);
                if (bpb) file.seeds[i].val_bpb = {bpb, {context.file, key}};
            }
            if (scores_it->size() != file.seeds.size()) {
                context.notes.push_back("seed_scores has " + std::to_string(scores_it->size()) + " values for " +
                                        std::to_string(file.seeds.size()) + " seeds");
            }
        }
    } else if (present(top, "seed")) {
        file.seed_shape = "single_seed";
        file.seeds.push_back(make_seed(seed_label(top.at("seed"), "seed", context.notes)));
    } else {
        file.seed_shape = "none";
    }

    // eval_time_seconds: a list parallel to the seeds list (dexhunter 04-03); it fills only what per-seed objects left.
    const auto eval_it = top.find("eval_time_seconds");
    if (seeds_list && eval_it != top.end() && eval_it->is_array()) {
        const std::size_t n = std::min(eval_it->size(), list_labels.size());
        for (std::size_t i = 0; i < n; ++i) {
            auto seed = std::find_if(file.seeds.begin(), file.seeds.end(),
                                     [&](const SubmissionSeed& s) { return s.label == list_labels[i]; });
            if (seed == file.seeds.end() || seed->eval_time_s.value) continue;
            const std::string key = "eval_time_seconds[" + std::to_string(i) + "]";
            std::optional<double> seconds = convert<double>((*eval_it)[i], key, context.notes);
            if (seconds) seed->eval_time_s = {seconds, {context.file, key}};
        }
        if (eval_it->size() != list_labels.size()) {
            context.notes.push_back("eval_time_seconds has " + std::to_string(eval_it->size()) + " values for " +
                                    std::to_string(list_labels.size()) + " seeds");
        }
    }

    const auto n_seeds_it = top.find("n_seeds");
    if (n_seeds_it != top.end() && n_seeds_it->is_number_integer() && !file.seeds.empty() &&
        n_seeds_it->get<std::int64_t>() != static_cast<std::int64_t>(file.seeds.size())) {
        context.notes.push_back("n_seeds " + n_seeds_it->dump() + " but " + std::to_string(file.seeds.size()) +
                                " seeds are listed");
    }
}

void read_headline(const Json& top, SubmissionFile& file, Context& context) {
    file.val_bpb = first_of<double>(top, bpb_aliases, "", context);
    file.val_loss = first_of<double>(top, loss_aliases, "", context);

    // 10L_Int5MLP: no bpb key at all and a "val_loss" too small for nats: it is the mean bpb, filed under val_loss.
    const bool any_bpb_key =
        std::any_of(bpb_aliases.begin(), bpb_aliases.end(), [&](const char* key) { return present(top, key); });
    const bool other_loss_key =
        std::any_of(loss_aliases.begin() + 1, loss_aliases.end(), [&](const char* key) { return present(top, key); });
    if (!any_bpb_key && !other_loss_key && file.val_loss.value && file.val_loss.from.key == "val_loss" &&
        *file.val_loss.value < misfiled_loss_limit) {
        context.notes.push_back("mean val_bpb stored under val_loss (10L_Int5MLP): val_loss " +
                                top.at("val_loss").dump() + " is below 1.6 and there is no bpb key");
        file.val_bpb = file.val_loss;
        file.val_loss = {};
    }

    // Competing headline scores: the chosen one is kept, the other is reported so the importer can pick by family.
    if (file.val_bpb.value && file.val_bpb.from.key != "val_loss") {
        for (const char* other : {"val_bpb", "mean_val_bpb", "mean_bpb", "sliding_val_bpb"}) {
            if (file.val_bpb.from.key == other) continue;
            const auto it = top.find(other);
            if (it == top.end() || !it->is_number() || it->get<double>() == *file.val_bpb.value) continue;
            context.notes.push_back(std::string(other) + " " + it->dump() + " beside " + file.val_bpb.from.key + " " +
                                    top.at(file.val_bpb.from.key).dump());
        }
    }
}

}  // namespace

std::optional<std::string> submission_find(const std::string& folder) {
    namespace fs = std::filesystem;
    std::error_code error;
    fs::directory_iterator it(folder, error);
    if (error) return std::nullopt;
    std::vector<std::string> others;
    bool plain = false;
    for (; it != fs::directory_iterator(); it.increment(error)) {
        if (error) break;
        std::error_code type_error;
        if (!it->is_regular_file(type_error)) continue;
        const std::string name = it->path().filename().string();
        if (name == "submission.json") {
            plain = true;
        } else if (name.starts_with("submission_") && name.ends_with(".json")) {
            others.push_back(name);
        }
    }
    if (plain) return folder + "/submission.json";
    if (others.empty()) return std::nullopt;
    // Directory order is arbitrary; the name order makes the choice reproducible.
    std::sort(others.begin(), others.end());
    return folder + "/" + others.front();
}

SubmissionFile submission_read_variant(const std::string& path) {
    const std::vector<std::uint8_t> bytes = file_read_bytes(path);
    Json top;
    try {
        top = json_parse_unique_keys(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                     "document");
    } catch (const Error& error) {
        throw Error(path + ": " + error.what());
    }
    if (!top.is_object()) throw Error(path + ": top level is " + top.type_name() + ", expected an object");

    SubmissionFile file;
    file.path = path;
    Context context{path, file.notes};

    file.name = first_of<std::string>(top, {"name", "run_name"}, "", context);
    file.author = first_of<std::string>(top, {"author"}, "", context);
    file.github_id = first_of<std::string>(top, {"github_id"}, "", context);
    file.date = first_of<std::string>(top, {"date"}, "", context);
    file.track = first_of<std::string>(top, {"track"}, "", context);
    file.blurb = first_of<std::string>(top, {"blurb", "description"}, "", context);

    read_headline(top, file, context);
    file.val_bpb_std = first_of<double>(top, {"val_bpb_std", "std_bpb"}, "", context);

    file.bytes_total =
        first_of<std::int64_t>(top, {"bytes_total", "artifact_bytes", "artifact_size_bytes"}, "", context);
    file.bytes_code = first_of<std::int64_t>(top, {"bytes_code", "code_bytes"}, "", context);
    file.bytes_model = first_of<std::int64_t>(
        top, {"bytes_model_int8_zlib", "bytes_model_int6_zstd", "bytes_model_compressed"}, "", context);
    file.artifact_bytes_max = first_of<std::int64_t>(top, {"artifact_bytes_max"}, "", context);
    file.artifact_bytes_mean = first_of<std::int64_t>(top, {"artifact_bytes_mean"}, "", context);

    read_seeds(top, file, context);

    if (const auto it = top.find("p_value"); it != top.end()) {
        if (it->is_string()) {
            file.p_value_text = it->get<std::string>();
        } else {
            file.p_value = convert<double>(*it, "p_value", file.notes);
        }
    }
    if (const auto it = top.find("t_statistic"); it != top.end()) {
        file.t_statistic = convert<double>(*it, "t_statistic", file.notes);
    }
    if (const auto it = top.find("welch_df"); it != top.end()) {
        file.welch_df = convert<double>(*it, "welch_df", file.notes);
    }

    if (const auto it = top.find("compliance"); it != top.end()) {
        if (it->is_object()) {
            for (const auto& [key, value] : it->items()) file.compliance.emplace(key, nlohmann::json(value));
            const auto rerun = it->find("compliance_rerun");
            if (rerun != it->end() && rerun->is_object()) file.has_nested_compliance_rerun = true;
        } else if (!it->is_null()) {
            file.notes.push_back(std::string("compliance is ") + it->type_name() + ", not an object: ignored");
        }
    }
    // 04-29: the rerun has its own seed_results; they describe other runs, so they are flagged, never merged.
    if (const auto it = top.find("compliance_rerun"); it != top.end() && it->is_object()) {
        file.has_nested_compliance_rerun = true;
    }
    return file;
}

}  // namespace pgolf
