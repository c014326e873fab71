// Argument parsing and printing for the data commands; the work is done by core/dataset.
#include "cli/data_commands.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/text_format.h"
#include "core/dataset.h"
#include "core/error.h"
#include "core/tokenizer.h"

namespace pgolf {

namespace {

struct InspectArguments {
    std::vector<std::string> files;
    int bos_id = 1;
    int vocab_size = 0;
    bool json = false;
};

struct VerifyArguments {
    std::string directory;
    std::string tokenizer;
    std::int64_t seq_len = 1024;
    bool digests = false;
    bool json = false;
};

struct EncodeArguments {
    std::string tokenizer;
    std::string output;
    std::vector<std::string> inputs;
    std::string format = "auto";
    std::string val_documents = "0";
    std::int64_t shard_tokens = 100'000'000;
    bool force = false;
};

nlohmann::json data_summary_json(const ShardSummary& shard) {
    return {{"path", shard.path},
            {"file_bytes", shard.file_bytes},
            {"tokens", shard.tokens},
            {"documents", shard.documents},
            {"starts_with_bos", shard.starts_with_bos},
            {"min_id", shard.min_id},
            {"max_id", shard.max_id},
            {"sha256", shard.sha256}};
}

void data_run_inspect(const InspectArguments& args) {
    nlohmann::json all = nlohmann::json::array();
    for (const std::string& path : args.files) {
        const ShardSummary shard = dataset_summarize_shard(path, args.bos_id, true);
        if (args.vocab_size > 0 && shard.max_id >= args.vocab_size) {
            throw Error(path + ": token id " + std::to_string(shard.max_id) + " is outside the vocabulary (size " +
                        std::to_string(args.vocab_size) + ")");
        }
        if (args.json) {
            all.push_back(data_summary_json(shard));
            continue;
        }
        std::cout << shard.path << "\n"
                  << "  tokens       " << format_count(shard.tokens) << "\n"
                  << "  file bytes   " << format_count(shard.file_bytes) << "\n"
                  << "  documents    " << format_count(shard.documents)
                  << (shard.tokens == 0       ? ""
                      : shard.starts_with_bos ? " (starts at a document boundary)"
                                              : " (+1 cut document at the start)")
                  << "\n"
                  << "  vocab range  "
                  << (shard.tokens == 0 ? std::string("(no tokens)")
                                        : std::to_string(shard.min_id) + ".." + std::to_string(shard.max_id))
                  << "\n"
                  << "  sha256       " << shard.sha256 << "\n";
    }
    if (args.json) std::cout << all.dump(2) << "\n";
}

std::string data_split_line(const DatasetSplit& split) {
    return std::to_string(split.shards.size()) + (split.shards.size() == 1 ? " shard, " : " shards, ") +
           format_count(split.tokens) + " tokens, " + format_count(split.documents) + " documents, max id " +
           std::to_string(split.max_id);
}

int data_run_verify(const VerifyArguments& args) {
    const Tokenizer tokenizer = Tokenizer::load(args.tokenizer);
    const DatasetVerifyReport report = dataset_verify(args.directory, tokenizer, args.seq_len, args.digests);
    if (!report.ok()) {
        for (const std::string& problem : report.problems) std::cerr << "pgolf: error: " << problem << "\n";
        return 1;
    }
    for (const std::string& warning : report.warnings) std::cerr << "pgolf: warning: " << warning << "\n";
    if (args.json) {
        nlohmann::json out = {{"directory", report.directory},
                              {"tokenizer", args.tokenizer},
                              {"vocab_size", report.vocab_size},
                              {"seq_len", report.seq_len},
                              {"val_tokens", report.val.tokens},
                              {"val_scored_targets", report.val_scored_targets},
                              {"val_target_bytes", report.val_target_bytes},
                              {"val_tokens_per_byte", report.val_tokens_per_byte},
                              {"train_tokens", report.train.tokens},
                              {"warnings", report.warnings},
                              {"shards", nlohmann::json::array()}};
        for (const DatasetSplit* split : {&report.train, &report.val}) {
            for (const ShardSummary& shard : split->shards) out["shards"].push_back(data_summary_json(shard));
        }
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    std::cout << "dataset      " << report.directory << "\n"
              << "tokenizer    " << args.tokenizer << " (vocab " << report.vocab_size << ")\n"
              << "train        " << data_split_line(report.train) << "\n"
              << "val          " << data_split_line(report.val) << "\n"
              << "val tokens   " << format_count(report.val.tokens) << "\n"
              << "val targets  " << format_count(report.val_scored_targets) << " scored at T=" << report.seq_len
              << " (truncated to whole sequences)\n"
              << "val bytes    " << format_count(report.val_target_bytes) << " (UTF-8 bytes of the scored targets)\n"
              << "tokens/byte  " << format_fixed(report.val_tokens_per_byte, 6) << "\n";
    if (args.digests) {
        for (const DatasetSplit* split : {&report.train, &report.val}) {
            for (const ShardSummary& shard : split->shards) std::cout << shard.sha256 << "  " << shard.path << "\n";
        }
    }
    std::cout << "OK: every shard is valid\n";
    return 0;
}

DocumentFormat data_parse_format(const std::string& text) {
    if (text == "auto") return DocumentFormat::automatic;
    if (text == "plain") return DocumentFormat::plain;
    if (text == "jsonl") return DocumentFormat::jsonl;
    throw Error("--format must be auto, plain or jsonl, not '" + text + "'");
}

std::int64_t data_parse_val_documents(const std::string& text) {
    if (text == "all") return -1;
    std::size_t used = 0;
    long long value = -1;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != text.size() || value < 0) throw Error("--val-docs must be a count >= 0 or 'all', not '" + text + "'");
    return value;
}

void data_run_encode(const EncodeArguments& args) {
    const Tokenizer tokenizer = Tokenizer::load(args.tokenizer);
    DatasetEncodeOptions options;
    options.output_directory = args.output;
    options.inputs = args.inputs;
    options.format = data_parse_format(args.format);
    options.val_documents = data_parse_val_documents(args.val_documents);
    options.shard_tokens = args.shard_tokens;
    options.overwrite = args.force;
    const DatasetEncodeReport report = dataset_encode(tokenizer, options);
    std::cout << "val          " << format_count(report.val_documents) << " documents, "
              << format_count(report.val_tokens) << " tokens\n"
              << "train        " << format_count(report.train_documents) << " documents, "
              << format_count(report.train_tokens) << " tokens\n";
    for (const std::string& file : report.files) std::cout << "wrote        " << file << "\n";
}

}  // namespace

void data_commands_register(CLI::App& app) {
    CLI::App* data = app.add_subcommand("data", "Token shards: inspect, verify, encode");
    data->require_subcommand(1);

    auto inspect = std::make_shared<InspectArguments>();
    CLI::App* inspect_command =
        data->add_subcommand("inspect", "Validate shards and print tokens, documents, vocab range and sha256 of each");
    inspect_command->add_option("files", inspect->files, "Shard files (.bin)")->required();
    inspect_command->add_option("--bos-id", inspect->bos_id, "Token id that starts every document")
        ->capture_default_str();
    inspect_command->add_option("--vocab-size", inspect->vocab_size, "Fail when an id is >= this (0: no check)");
    inspect_command->add_flag("--json", inspect->json, "Print JSON instead of text");
    inspect_command->callback([inspect] { data_run_inspect(*inspect); });

    auto verify = std::make_shared<VerifyArguments>();
    CLI::App* verify_command = data->add_subcommand(
        "verify", "Check every fineweb_{train,val}_*.bin in DIR and the val split's tokens per byte");
    verify_command->add_option("directory", verify->directory, "Dataset folder")->required();
    verify_command->add_option("--tokenizer", verify->tokenizer, "SentencePiece .model file")->required();
    verify_command->add_option("--seq-len", verify->seq_len, "Sequence length T for the val truncation")
        ->capture_default_str();
    verify_command->add_flag("--digests", verify->digests, "Also print the sha256 of every shard");
    verify_command->add_flag("--json", verify->json, "Print JSON instead of text");
    verify_command->callback([verify] {
        const int status = data_run_verify(*verify);
        if (status != 0) throw CLI::RuntimeError(status);
    });

    auto encode = std::make_shared<EncodeArguments>();
    CLI::App* encode_command = data->add_subcommand(
        "encode", "Encode text (plain or JSONL with a \"text\" field) into shards: [BOS] + ids per document");
    encode_command
        ->add_option("inputs", encode->inputs,
                     "Text files: .jsonl/.ndjson (one document per line) or "
                     "plain text (one document per file)")
        ->required();
    encode_command->add_option("--tokenizer", encode->tokenizer, "SentencePiece .model file")->required();
    encode_command->add_option("--out", encode->output, "Output folder for fineweb_{val,train}_NNNNNN.bin")->required();
    encode_command->add_option("--format", encode->format, "auto, plain or jsonl")->capture_default_str();
    encode_command
        ->add_option("--val-docs", encode->val_documents,
                     "The first N documents go to val, the rest to train ('all': every document)")
        ->capture_default_str();
    encode_command->add_option("--shard-tokens", encode->shard_tokens, "Tokens per shard")->capture_default_str();
    encode_command->add_flag("--force", encode->force, "Replace shards already in the output folder");
    encode_command->callback([encode] { data_run_encode(*encode); });
}

}  // namespace pgolf
