#!/usr/bin/python3
# Independent reference for the C++ tokenizer tests: byte tables, known-answer encodings and shard byte counts,
# computed with the Python sentencepiece bindings from the challenge's val_bpb rule (not from the C++ code).
"""Write reference values for one SentencePiece model as JSON.

Usage:
  /usr/bin/python3 tests/tools/sp_reference.py --model M --out FILE.json [--shard S] [--jsonl J] [--model-vocab-size V]

Byte-table rule (challenge definition of val_bpb):
  table size = max(sp vocab size, model vocab size); every entry starts as 0 bytes, no leading space, boundary.
  For each sp id: control / unknown / unused ids stay as they are. Otherwise the id is not a boundary; a byte
  piece <0xNN> is 1 byte; any other piece loses one leading U+2581 (which sets has_leading_space) and counts the
  UTF-8 bytes of what remains.
  bytes(target | previous) = base_bytes[target] + (has_leading_space[target] and not is_boundary[previous]).
"""

import argparse
import json
import os
import struct
import sys

import sentencepiece as spm

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_INTS = 256
SPACE_MARKER = "\u2581"

# Strings whose encodings the C++ test must reproduce id for id.
KNOWN_ANSWER_TEXTS = [
    "Hello world, the year 2024 was great.",
    "\U0001F642 na\u00efve caf\u00e9",
    "",
    " ",
    "   leading spaces",
    "trailing spaces   ",
    "tabs\tand\nnewlines\r\nmixed",
    "digits 0123456789 and 3.14159e-10",
    "\ufb01nancial \ufb02ow",  # "ﬁ", "ﬂ" ligatures: NFKC expands them
    "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff11\uff12\uff13",  # full-width letters and digits
    "\u2460 \u00bd \u2126 \u212b",  # circled one, one half, ohm, angstrom: NFKC-affected
    "e\u0301 vs \u00e9",  # combining accent vs precomposed
    "emoji \U0001F600\U0001F680\U0001F44D\U0001F3FD family \U0001F468\u200D\U0001F469\u200D\U0001F467",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587 \ud55c\uad6d\uc5b4",  # CJK
    "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435 \u0645\u0631\u062d\u0628\u0627",
    "\u2581 literal lower one eighth block \u2581\u2581",
    "<s> </s> <unk> <pad> <0x41>",
    "a\u00a0non-breaking\u2009thin space",
    "x",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
]


def build_tables(sp, model_vocab_size):
    sp_vocab = sp.get_piece_size()
    size = max(sp_vocab, model_vocab_size)
    base_bytes = [0] * size
    has_leading_space = [0] * size
    is_boundary = [1] * size
    for token_id in range(sp_vocab):
        if sp.is_control(token_id) or sp.is_unknown(token_id) or sp.is_unused(token_id):
            continue
        is_boundary[token_id] = 0
        if sp.is_byte(token_id):
            base_bytes[token_id] = 1
            continue
        piece = sp.id_to_piece(token_id)
        if piece.startswith(SPACE_MARKER):
            has_leading_space[token_id] = 1
            piece = piece[len(SPACE_MARKER):]
        base_bytes[token_id] = len(piece.encode("utf-8"))
    return base_bytes, has_leading_space, is_boundary


def target_bytes(tables, tokens):
    """Bytes of tokens[1:], each against its predecessor."""
    base_bytes, has_leading_space, is_boundary = tables
    total = 0
    for previous, target in zip(tokens, tokens[1:]):
        total += base_bytes[target] + (1 if has_leading_space[target] and not is_boundary[previous] else 0)
    return total


def read_shard(path):
    with open(path, "rb") as f:
        data = f.read()
    header_bytes = SHARD_HEADER_INTS * 4
    if len(data) < header_bytes:
        sys.exit(f"{path}: shorter than the {header_bytes}-byte header")
    header = struct.unpack(f"<{SHARD_HEADER_INTS}i", data[:header_bytes])
    if header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
        sys.exit(f"{path}: bad shard header (magic {header[0]}, version {header[1]})")
    n_tokens = header[2]
    if len(data) != header_bytes + 2 * n_tokens:
        sys.exit(f"{path}: header says {n_tokens} tokens but file has {len(data) - header_bytes} payload bytes")
    return list(struct.unpack(f"<{n_tokens}H", data[header_bytes:]))


def shard_summary(path, tables, bos_id):
    tokens = read_shard(path)
    n_bytes = target_bytes(tables, tokens)
    return {
        "path": path,
        "n_tokens": len(tokens),
        "n_bos": sum(1 for t in tokens if t == bos_id),
        "target_bytes": n_bytes,
        "tokens_per_byte": (len(tokens) - 1) / n_bytes if n_bytes else None,
    }


def jsonl_summary(path, sp, tables, bos_id):
    text_bytes = []
    encoded_target_bytes = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            text = json.loads(line)["text"]
            text_bytes.append(len(text.encode("utf-8")))
            # A document as it sits in a shard: BOS then its ids; BOS is the predecessor of the first target.
            encoded_target_bytes.append(target_bytes(tables, [bos_id] + sp.encode(text)))
    return {
        "path": path,
        "n_docs": len(text_bytes),
        "text_bytes": text_bytes,
        "text_bytes_total": sum(text_bytes),
        "encoded_target_bytes": encoded_target_bytes,
        "encoded_target_bytes_total": sum(encoded_target_bytes),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="SentencePiece .model file")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--shard", help="token shard (.bin) to count target bytes over")
    parser.add_argument("--jsonl", help="JSONL documents with a \"text\" field")
    parser.add_argument("--model-vocab-size", type=int, default=0, help="model vocab size (pads the tables)")
    args = parser.parse_args()

    sp = spm.SentencePieceProcessor()
    try:
        sp.load(args.model)
    except (OSError, RuntimeError) as e:
        sys.exit(f"{args.model}: cannot load SentencePiece model ({e})")
    tables = build_tables(sp, args.model_vocab_size)
    bos_id = sp.bos_id()

    reference = {
        "model": args.model,
        "sentencepiece_version": spm.__version__,
        "vocab_size": sp.get_piece_size(),
        "model_vocab_size": args.model_vocab_size,
        "bos_id": bos_id,
        "eos_id": sp.eos_id(),
        "unk_id": sp.unk_id(),
        "pad_id": sp.pad_id(),
        "base_bytes": tables[0],
        "has_leading_space": tables[1],
        "is_boundary": tables[2],
        "encodings": [{"text": text, "ids": sp.encode(text)} for text in KNOWN_ANSWER_TEXTS],
    }
    if args.shard:
        reference["shard"] = shard_summary(args.shard, tables, bos_id)
    if args.jsonl:
        reference["jsonl"] = jsonl_summary(args.jsonl, sp, tables, bos_id)

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
