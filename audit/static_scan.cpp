// Static scan of Python submission scripts for the evaluation patterns of COMPLIANCE.md §5, with reachability.
//
// The scanner builds a light model of each script, not an AST:
//   * Lexing: comments are dropped and string contents blanked (a second copy keeps the contents of one-line strings so
//     environment defaults can be read; triple-quoted strings are blanked in both). Bracketed and backslash
//     continuation lines are joined into one logical line that reports its first physical line. Statements are split
//     on top-level ';', and a compound header with an inline body ("if x: return") becomes a header plus a body
//     statement one column deeper.
//   * Blocks: indentation gives each statement its enclosing headers (def, class, for, while, if, with, ...). Every def
//     and class is a node; a statement belongs to its innermost def/class, or to the module.
//   * Call graph: any use of a def/class name (call, attribute call, or a reference passed as a value) outside its own
//     header is an edge from the using node; a class reaches its dunder methods and forward(). A def nested in a
//     function is local to it: only uses inside that function count (so an optimizer's `def step(self, closure=None)`
//     does not reach an eval function's nested `def closure`). Reachability starts at module level (which includes
//     `if __name__ == "__main__": main()`); in a folder scan, a name used in another scanned file also counts as a
//     use. Unreached nodes are "never called".
//   * Flags: `NAME = <...> os.environ.get("ENV", default) <...>` (also os.getenv, class attributes such as
//     Hyperparameters.ngram_eval_order, and one level of aliasing) records ENV and the value the expression takes at
//     the default ("0", "", "false", None count as 0). An `if`/`elif` condition is evaluated three-valued (true, false,
//     unknown) with those defaults; code under a condition that is false by default, or after an early
//     `if <true by default>: return` in its function, runs only when the flag is set: severity "info",
//     reachability "behind ENV (default D)". A call guarded that way makes the whole callee flag-only.
//
// Rules (each finding is reported at one line; duplicates of a rule at the same line are dropped):
//   * Training site: a `.step(` call (receiver not a scheduler, EMA/SWA or profiler) in a function that also calls
//     `.backward(`, whose backward loss depends, through the function's assignments (and those of enclosing
//     functions), on validation tokens: a name `val_tokens`, `val_np`, `val_ids`, or containing both "val" and "tok"; a
//     name assigned from an expression that mentions `val_files`, `val_data`, `val_loader`, `load_validation_tokens` or
//     "fineweb_val" (in code or a string), or from such a name one assignment further (`files = glob(args.val_files)`,
//     then `all_tokens = cat([load(f) for f in files])`); or a parameter that some call site fills with one. Steps of a
//     SLOT optimizer (below) are left to the SLOT rule.
//   * Scoring accumulation: `acc += ...`, `acc = acc + ...`, `acc.append(...)`/`.extend(`/`.add_(` where the
//     accumulator's name (or the added expression) is loss-like (loss, nll, bpb, bits, logp, score, cross_entropy) and
//     the accumulator flows into the function's return value (or the function returns nothing and the name is not a
//     training/logging one: train, tr_, epoch, running, ema, avg). Per-batch logging of a training loss is therefore
//     not a score. A call that passes a plain name (loss_sum, byte_sum, token_count, ...) to a function whose body does
//     `<param> += ...` / `<param>.add_(` is an accumulation into that name at the call line, under the same loss-like
//     test (the name, the parameter or the added expression) and flow test.
//   * L6: the training site's function name contains "prequant" or "adapt", or it has no scoring accumulation at all
//     and the step sits in an epoch loop (a loop header mentioning "epoch", or loop variable ep/_ep).
//   * L5: an epoch loop encloses both the training site and a scoring accumulation that is not guarded to the first
//     epoch (`if epoch == 0`, `if not ep`, `first`): the reported score is a later epoch's. Line = the accumulation.
//   * L1 (legal) / C3 / C4 in a chunk loop: the innermost loop around the step that also holds a scoring accumulation.
//     Accumulations only before the step: score-first, recorded as legal L1 (and L2 when an epoch loop around the
//     step sits inside the chunk loop); the last chunk counts as guarded when an `if` around the step mentions
//     "last" or "- 1", directly or through the assignment of a lone name (`if needs_train:`). Only after the step: C3
//     at the step line. Both, into the same accumulator: C4 at the later accumulation.
//   * L4: the step is in no loop that accumulates a score, and the function accumulates a score after it (train on val,
//     then score), or accumulates none and is not an L6 case (training on val without scoring). Training after all of
//     the function's scoring is not flagged (the scores were already fixed).
//   * C4 (also without training): two scoring accumulations into the same accumulator directly in the same loop, not
//     in exclusive if/elif/else branches, adding the same expression (same text, or the same names); or an
//     accumulation after a training step that adds into an accumulator already fed before that step, without a reset
//     (`acc = 0`) in between (a second scoring pass after adaptation).
//   * L8 / L9: an optimizer built over a parameter list naming delta, logit_bias or slot (e.g.
//     `torch.optim.AdamW([delta], ...)`). Its loss is the assignment of the first backward's loss after it, plus one
//     level of the loss's inputs. When the optimizer's step is given a function (`lbfgs.step(closure)`), the backward
//     and loss are looked for in that function instead, and the loss's inputs also in the enclosing function before
//     the step. A slice starting at a name (`[s:wlen]`, `[s:]`) covers the scored region: L8. A slice ending at the
//     score start (`[:s]`, with s taken from `[s:...]` slices elsewhere in the function, else
//     s/start/ctx_len/prefix_len) and no scored slice: context-only SLOT, L9 with severity "warn" (HOLD pending #1336).
//     No slice but the loss uses the targets (y, tgt, targets, labels): L8 (the whole window). Line = the loss line.
//   * L10: a statement that mentions a target (tgt, target(s), next_tok, label(s), gold, `y[`, `<val/tok name>[pos]`,
//     `[i + 1]`, tgt_*/target_* such as tgt_batch and target_ids; bare y, ys, y_batch only right of the `=`) and
//     combines it with `^`, `bitwise_xor`, `hash(`, `<<`, or `*` by an integer >= 1000 or a PRIME/MULT name, in a
//     key-like statement (assigned name containing key, hash, bucket, idx, slot; or uses `hash(`, `%`, `&`). A hash of
//     context tokens only inside a def/class named *bigram* is recorded as legal "BigramHash".
//   * Wrapper: `exec(... decompress(... b85decode("...") / b64decode("...") ...))` is decoded here (Python's base85
//     alphabet, or base64), decompressed, and the payload scanned as "<file> (decoded payload)". The container named
//     between `exec` and 400 characters after the literal is tried first: FORMAT_RAW (a bare LZMA2 stream, as
//     `filters=[{"id": FILTER_LZMA2}]` writes it), FORMAT_ALONE (legacy .lzma); then the others, xz first. A result
//     with a NUL byte is not Python text and counts as a failed guess. When none decodes, a note says so and the
//     wrapper is scanned as is.
//
// Known limits: no real data flow (names, not values; slices are compared as text), so aliasing through containers,
// attributes or helper functions that build the batch can hide a val dependency or invent one; a ternary guard
// (`f() if FLAG else None`) and flags read outside an assignment to a name are not modelled; `while` conditions are not
// evaluated; imports between folder files are matched by name only; dynamic code (exec of built strings other than the
// wrapper shape, getattr) is invisible. The SLOT rule does not order the fit against the scoring: a delta fit on
// window k's scored slice after it was scored, and applied only to window k+1, is still L8. Findings are triage
// evidence, not verdicts.
#include "audit/static_scan.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "core/codec.h"
#include "core/error.h"
#include "core/file_util.h"

namespace pgolf {

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Text helpers

bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }
bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

std::string trim(std::string_view text) {
    std::size_t begin = 0;
    std::size_t end = text.size();
    while (begin < end && std::isspace(static_cast<unsigned char>(text[begin])) != 0) ++begin;
    while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1])) != 0) --end;
    return std::string(text.substr(begin, end - begin));
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

bool contains_any(std::string_view text, std::initializer_list<std::string_view> parts) {
    return std::any_of(parts.begin(), parts.end(), [&](std::string_view p) { return contains(text, p); });
}

struct Ident {
    std::string name;
    std::size_t pos = 0;
    bool attribute = false;  // preceded by '.'
};

// Identifiers of blanked code (string contents are spaces, so only code names appear). Digits-led words are skipped.
std::vector<Ident> identifiers(std::string_view code) {
    std::vector<Ident> out;
    std::size_t i = 0;
    while (i < code.size()) {
        char c = code[i];
        if (is_ident_start(c)) {
            std::size_t begin = i;
            while (i < code.size() && is_ident_char(code[i])) ++i;
            std::size_t back = begin;
            while (back > 0 && code[back - 1] == ' ') --back;
            bool attribute = back > 0 && code[back - 1] == '.';
            out.push_back({std::string(code.substr(begin, i - begin)), begin, attribute});
        } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
            while (i < code.size() && (is_ident_char(code[i]) || code[i] == '.')) ++i;
        } else {
            ++i;
        }
    }
    return out;
}

std::set<std::string> base_names(std::string_view code) {
    std::set<std::string> out;
    for (const Ident& id : identifiers(code))
        if (!id.attribute) out.insert(id.name);
    return out;
}

bool has_word(std::string_view code, std::string_view word) {
    for (const Ident& id : identifiers(code))
        if (id.name == word) return true;
    return false;
}

// Position of `name(` as a call (after optional spaces), npos when absent.
std::size_t find_call(std::string_view code, std::string_view name, std::size_t from = 0) {
    for (std::size_t pos = code.find(name, from); pos != std::string_view::npos; pos = code.find(name, pos + 1)) {
        if (pos > 0 && is_ident_char(code[pos - 1])) continue;
        std::size_t after = pos + name.size();
        if (after < code.size() && is_ident_char(code[after])) continue;
        while (after < code.size() && code[after] == ' ') ++after;
        if (after < code.size() && code[after] == '(') return pos;
    }
    return std::string_view::npos;
}

// Index of the bracket closing the one at open (same kind not tracked separately), or npos.
std::size_t matching_close(std::string_view code, std::size_t open) {
    int depth = 0;
    for (std::size_t i = open; i < code.size(); ++i) {
        char c = code[i];
        if (c == '(' || c == '[' || c == '{') ++depth;
        if (c == ')' || c == ']' || c == '}') {
            --depth;
            if (depth == 0) return i;
        }
    }
    return std::string_view::npos;
}

// Splits at top-level occurrences of sep (bracket depth 0); positions index code, the pieces come from text (the same
// length as code, e.g. its string-keeping twin).
std::vector<std::string> split_top(std::string_view code, std::string_view text, std::string_view sep) {
    std::vector<std::string> out;
    int depth = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < code.size(); ++i) {
        char c = code[i];
        if (c == '(' || c == '[' || c == '{') ++depth;
        if (c == ')' || c == ']' || c == '}') depth = std::max(0, depth - 1);
        if (depth == 0 && code.substr(i, sep.size()) == sep) {
            out.push_back(std::string(text.substr(start, i - start)));
            start = i + sep.size();
            i = start - 1;
        }
    }
    out.push_back(std::string(text.substr(start)));
    return out;
}

// First top-level position of token in code, npos when absent. For "=" the comparison and augmented forms are skipped.
std::size_t find_top(std::string_view code, std::string_view token) {
    int depth = 0;
    for (std::size_t i = 0; i < code.size(); ++i) {
        char c = code[i];
        if (c == '(' || c == '[' || c == '{') ++depth;
        if (c == ')' || c == ']' || c == '}') depth = std::max(0, depth - 1);
        if (depth != 0 || code.substr(i, token.size()) != token) continue;
        if (token == "=") {
            char before = i > 0 ? code[i - 1] : ' ';
            char after = i + 1 < code.size() ? code[i + 1] : ' ';
            if (after == '=' || std::string_view("=!<>+-*/%&|^@:").find(before) != std::string_view::npos) continue;
        }
        return i;
    }
    return std::string_view::npos;
}

// ---------------------------------------------------------------------------------------------------------------
// Lexing into statements

struct Stmt {
    std::int64_t line = 0;  // first physical line, 1-based
    int indent = 0;
    std::string code;     // comments dropped, string contents blanked
    std::string lit;      // same length as code, one-line string contents kept
    std::string keyword;  // "def", "class", "if", "elif", "else", "for", "while", "with", "try", ... or ""
    bool header = false;
    std::string head;      // header text between keyword and ':' (blanked)
    std::string head_lit;  // the same with one-line string contents
    int parent = -1;       // enclosing header statement
    int owner = 0;         // node index (0 = module)
};

struct LexResult {
    std::vector<std::string> raw_lines;
    std::vector<Stmt> stmts;
};

int indent_of(std::string_view raw) {
    int width = 0;
    for (char c : raw) {
        if (c == ' ')
            ++width;
        else if (c == '\t')
            width = (width / 8 + 1) * 8;
        else if (c == '\f')
            width = 0;
        else
            break;
    }
    return width;
}

const std::set<std::string>& header_keywords() {
    static const std::set<std::string> words = {"def",   "class", "if",  "elif",   "else",   "for",
                                                "while", "with",  "try", "except", "finally"};
    return words;
}

// Splits one logical statement piece into header + inline body when it is a compound header.
void add_statement(std::vector<Stmt>& out, std::int64_t line, int indent, const std::string& code,
                   const std::string& lit) {
    std::string c = trim(code);
    if (c.empty()) return;
    // Keep code and lit aligned: trim both by the same amounts.
    std::size_t lead = code.find_first_not_of(" \t");
    std::string l = lit.substr(lead, c.size());
    Stmt stmt;
    stmt.line = line;
    stmt.indent = indent;
    std::size_t word_end = 0;
    while (word_end < c.size() && is_ident_char(c[word_end])) ++word_end;
    std::string word = c.substr(0, word_end);
    std::size_t kw_start = 0;
    if (word == "async") {
        std::size_t next = c.find_first_not_of(' ', word_end);
        if (next != std::string::npos) {
            kw_start = next;
            word_end = next;
            while (word_end < c.size() && is_ident_char(c[word_end])) ++word_end;
            word = c.substr(kw_start, word_end - kw_start);
        }
    }
    if (header_keywords().count(word) != 0) {
        std::size_t colon = std::string::npos;
        int depth = 0;
        for (std::size_t i = word_end; i < c.size(); ++i) {
            char ch = c[i];
            if (ch == '(' || ch == '[' || ch == '{') ++depth;
            if (ch == ')' || ch == ']' || ch == '}') depth = std::max(0, depth - 1);
            if (depth == 0 && ch == ':' && (i + 1 >= c.size() || c[i + 1] != '=')) {
                colon = i;
                break;
            }
        }
        if (colon != std::string::npos) {
            stmt.keyword = word;
            stmt.header = true;
            stmt.head = trim(c.substr(word_end, colon - word_end));
            std::size_t head_lead = c.find_first_not_of(' ', word_end);
            if (head_lead == std::string::npos || head_lead > colon) head_lead = colon;
            stmt.head_lit = l.substr(head_lead, stmt.head.size());
            stmt.code = c.substr(0, colon + 1);
            stmt.lit = l.substr(0, colon + 1);
            out.push_back(stmt);
            std::string body = c.substr(colon + 1);
            std::string body_lit = l.substr(colon + 1);
            if (!trim(body).empty()) {
                std::vector<std::string> codes = split_top(body, body, ";");
                std::vector<std::string> lits = split_top(body, body_lit, ";");
                for (std::size_t k = 0; k < codes.size(); ++k) add_statement(out, line, indent + 1, codes[k], lits[k]);
            }
            return;
        }
    }
    stmt.code = c;
    stmt.lit = l;
    out.push_back(stmt);
}

LexResult lex_python(const std::string& text) {
    LexResult result;
    {
        std::string line;
        for (char c : text) {
            if (c == '\n') {
                if (!line.empty() && line.back() == '\r') line.pop_back();
                result.raw_lines.push_back(line);
                line.clear();
            } else {
                line.push_back(c);
            }
        }
        if (!line.empty()) result.raw_lines.push_back(line);
    }
    bool in_string = false;
    bool triple = false;
    char quote = '"';
    int depth = 0;
    std::string logical_code;
    std::string logical_lit;
    std::int64_t logical_line = 0;
    int logical_indent = 0;
    bool open = false;
    for (std::size_t n = 0; n < result.raw_lines.size(); ++n) {
        const std::string& raw = result.raw_lines[n];
        std::string code;
        std::string lit;
        bool started_in_string = in_string;
        std::size_t i = 0;
        while (i < raw.size()) {
            char c = raw[i];
            if (in_string) {
                if (c == '\\') {
                    code += ' ';
                    lit += triple ? ' ' : c;
                    if (i + 1 < raw.size()) {
                        code += ' ';
                        lit += triple ? ' ' : raw[i + 1];
                    }
                    i += 2;
                    continue;
                }
                if (c == quote && (!triple || (i + 2 < raw.size() && raw[i + 1] == quote && raw[i + 2] == quote))) {
                    std::size_t width = triple ? 3 : 1;
                    code.append(width, quote);
                    lit.append(width, quote);
                    i += width;
                    in_string = false;
                    continue;
                }
                code += ' ';
                lit += triple ? ' ' : c;
                ++i;
                continue;
            }
            if (c == '#') break;
            if (c == '"' || c == '\'') {
                quote = c;
                triple = i + 2 < raw.size() && raw[i + 1] == c && raw[i + 2] == c;
                std::size_t width = triple ? 3 : 1;
                code.append(width, c);
                lit.append(width, c);
                i += width;
                in_string = true;
                continue;
            }
            if (c == '(' || c == '[' || c == '{') ++depth;
            if (c == ')' || c == ']' || c == '}') depth = std::max(0, depth - 1);
            code += c;
            lit += c;
            ++i;
        }
        bool backslash = false;
        if (in_string && !triple) {
            // A one-line string that runs off the line continues only after a backslash; otherwise close it.
            if (raw.empty() || raw.back() != '\\') in_string = false;
        } else if (!in_string) {
            std::string t = trim(code);
            if (!t.empty() && t.back() == '\\') {
                backslash = true;
                std::size_t last = code.find_last_of('\\');
                code[last] = ' ';
                lit[last] = ' ';
            }
        }
        if (!open) {
            if (trim(code).empty() && !in_string) continue;
            open = true;
            logical_line = static_cast<std::int64_t>(n) + 1;
            logical_indent = started_in_string ? 0 : indent_of(raw);
            logical_code.clear();
            logical_lit.clear();
        } else {
            logical_code += ' ';
            logical_lit += ' ';
        }
        logical_code += code;
        logical_lit += lit;
        if (in_string || depth > 0 || backslash) continue;
        open = false;
        std::vector<std::string> codes = split_top(logical_code, logical_code, ";");
        std::vector<std::string> lits = split_top(logical_code, logical_lit, ";");
        for (std::size_t k = 0; k < codes.size(); ++k)
            add_statement(result.stmts, logical_line, logical_indent, codes[k], lits[k]);
    }
    if (open) add_statement(result.stmts, logical_line, logical_indent, logical_code, logical_lit);
    std::vector<int> stack;
    for (std::size_t i = 0; i < result.stmts.size(); ++i) {
        Stmt& stmt = result.stmts[i];
        while (!stack.empty() && result.stmts[static_cast<std::size_t>(stack.back())].indent >= stmt.indent)
            stack.pop_back();
        stmt.parent = stack.empty() ? -1 : stack.back();
        if (stmt.header) stack.push_back(static_cast<int>(i));
    }
    return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Flags: environment-controlled names and three-valued condition evaluation

struct Flag {
    std::string env;
    std::string default_text;  // as written, quotes dropped ("" shown as "")
    double value = 0.0;        // the value of the assigned expression at the default
};

enum class Tri { yes, no, unknown };

struct Value {
    bool known = false;
    bool is_string = false;
    double number = 0.0;
    std::string text;
    std::string flag_env;  // the env var this value came from, if any
    std::string flag_default;
};

double string_number(const std::string& text) {
    std::string t = lower(trim(text));
    if (t.empty() || t == "false" || t == "none" || t == "no" || t == "off") return 0.0;
    if (t == "true" || t == "yes" || t == "on") return 1.0;
    char* end = nullptr;
    double v = std::strtod(t.c_str(), &end);
    if (end != nullptr && *end == '\0') return v;
    return 1.0;  // a non-empty string is truthy
}

// A literal operand: number, quoted string, True/False/None.
std::optional<Value> parse_literal(const std::string& text) {
    std::string t = trim(text);
    if (t.empty()) return std::nullopt;
    Value v;
    v.known = true;
    if (t == "True" || t == "False" || t == "None") {
        v.number = t == "True" ? 1.0 : 0.0;
        return v;
    }
    if ((t.front() == '"' || t.front() == '\'') && t.size() >= 2 && t.back() == t.front()) {
        v.is_string = true;
        v.text = t.substr(1, t.size() - 2);
        v.number = string_number(v.text);
        return v;
    }
    char* end = nullptr;
    double number = std::strtod(t.c_str(), &end);
    if (end != nullptr && *end == '\0' &&
        (std::isdigit(static_cast<unsigned char>(t[0])) != 0 || t[0] == '-' || t[0] == '.' || t[0] == '+')) {
        v.number = number;
        return v;
    }
    return std::nullopt;
}

std::string strip_parens(std::string text) {
    text = trim(text);
    while (text.size() >= 2 && text.front() == '(' && matching_close(text, 0) == text.size() - 1)
        text = trim(text.substr(1, text.size() - 2));
    return text;
}

// Strips conversion wrappers: int(x), float(x), bool(x), str(x).
std::string strip_casts(std::string text) {
    text = strip_parens(text);
    for (bool changed = true; changed;) {
        changed = false;
        for (const char* cast : {"int", "float", "bool", "str"}) {
            std::string prefix = std::string(cast) + "(";
            if (starts_with(text, prefix) && matching_close(text, prefix.size() - 1) == text.size() - 1) {
                text = strip_parens(text.substr(prefix.size(), text.size() - prefix.size() - 1));
                changed = true;
            }
        }
    }
    return text;
}

// An env read `os.environ.get("NAME", default)` / `os.getenv(...)` inside text (with string contents): name, default.
std::optional<std::pair<std::string, std::string>> find_env_read(const std::string& lit) {
    std::size_t at = lit.find("environ.get(");
    std::size_t open = std::string::npos;
    if (at != std::string::npos) open = at + std::string("environ.get").size();
    if (open == std::string::npos) {
        at = lit.find("getenv(");
        if (at != std::string::npos) open = at + std::string("getenv").size();
    }
    if (open == std::string::npos) return std::nullopt;
    std::size_t close = matching_close(lit, open);
    if (close == std::string::npos) return std::nullopt;
    std::string args = lit.substr(open + 1, close - open - 1);
    std::vector<std::string> parts = split_top(args, args, ",");
    std::optional<Value> name = parse_literal(parts[0]);
    if (!name || !name->is_string) return std::nullopt;
    std::string def = parts.size() > 1 ? trim(parts[1]) : "None";
    return std::make_pair(name->text, def);
}

class FlagTable {
public:
    // Records assignments of env reads (and aliases of them) over all statements.
    void build(const std::vector<Stmt>& stmts) {
        for (const Stmt& stmt : stmts) {
            if (stmt.header) continue;
            std::size_t eq = find_top(stmt.code, "=");
            if (eq == std::string::npos) continue;
            std::string lhs = trim(stmt.code.substr(0, eq));
            std::string rhs_lit = stmt.lit.substr(eq + 1);
            std::string name = assigned_name(lhs);
            if (name.empty()) continue;
            auto env = find_env_read(rhs_lit);
            if (!env) continue;
            Flag flag;
            flag.env = env->first;
            std::optional<Value> def = parse_literal(env->second);
            flag.default_text = def ? (def->is_string ? def->text : trim(env->second)) : trim(env->second);
            if (def && def->is_string && def->text.empty()) flag.default_text = "\"\"";
            flag.value = evaluate_env_expression(rhs_lit, def);
            flags_[name] = flag;
        }
        for (int pass = 0; pass < 2; ++pass) {
            for (const Stmt& stmt : stmts) {
                if (stmt.header) continue;
                std::size_t eq = find_top(stmt.code, "=");
                if (eq == std::string::npos) continue;
                std::string name = assigned_name(trim(stmt.code.substr(0, eq)));
                if (name.empty() || flags_.count(name) != 0) continue;
                std::string rhs = strip_casts(stmt.code.substr(eq + 1));
                std::string last = reference_name(rhs);
                if (!last.empty() && flags_.count(last) != 0) flags_[name] = flags_[last];
            }
        }
    }

    // Three-valued truth of a condition at the flags' defaults; env names a flag that made it false (or true).
    Tri evaluate(const std::string& code, const std::string& lit, std::string* env, std::string* def) const {
        std::vector<std::string> ors_code = split_top(code, code, " or ");
        std::vector<std::string> ors_lit = split_top(code, lit, " or ");
        bool any_unknown = false;
        for (std::size_t i = 0; i < ors_code.size(); ++i) {
            std::vector<std::string> ands_code = split_top(ors_code[i], ors_code[i], " and ");
            std::vector<std::string> ands_lit = split_top(ors_code[i], ors_lit[i], " and ");
            Tri part = Tri::yes;
            for (std::size_t k = 0; k < ands_code.size(); ++k) {
                Tri atom = evaluate_atom(ands_code[k], ands_lit[k], env, def);
                if (atom == Tri::no) {
                    part = Tri::no;
                    break;
                }
                if (atom == Tri::unknown) part = Tri::unknown;
            }
            if (part == Tri::yes) return Tri::yes;
            if (part == Tri::unknown) any_unknown = true;
        }
        return any_unknown ? Tri::unknown : Tri::no;
    }

private:
    static std::string assigned_name(const std::string& lhs) {
        std::string t = lhs;
        std::size_t colon = find_top(t, ":");
        if (colon != std::string::npos) t = trim(t.substr(0, colon));
        if (t.empty() || contains(t, ",") || contains(t, "[")) return "";
        std::vector<Ident> ids = identifiers(t);
        if (ids.empty()) return "";
        return ids.back().name;
    }

    // `a.b.name` or `name` as the whole text: name; otherwise "".
    static std::string reference_name(const std::string& text) {
        std::string t = trim(text);
        if (t.empty()) return "";
        for (char c : t)
            if (!is_ident_char(c) && c != '.') return "";
        std::vector<Ident> ids = identifiers(t);
        return ids.empty() ? "" : ids.back().name;
    }

    // Value of the env-reading expression at the default: comparisons with a literal are evaluated.
    static double evaluate_env_expression(const std::string& rhs_lit, const std::optional<Value>& def) {
        double base = def ? def->number : 0.0;
        for (const char* op : {"==", "!="}) {
            std::size_t at = find_top(rhs_lit, op);
            if (at == std::string::npos) continue;
            std::optional<Value> other = parse_literal(rhs_lit.substr(at + 2));
            if (!other) continue;
            bool equal = def && def->is_string && other->is_string ? def->text == other->text : base == other->number;
            return (std::string(op) == "==") == equal ? 1.0 : 0.0;
        }
        std::size_t in = find_top(rhs_lit, " in ");
        if (in != std::string::npos && def && def->is_string) {
            std::string set = rhs_lit.substr(in + 4);
            return contains(set, "\"" + def->text + "\"") || contains(set, "'" + def->text + "'") ? 1.0 : 0.0;
        }
        return base;
    }

    std::optional<Value> operand(const std::string& code, const std::string& lit) const {
        std::string c = strip_casts(code);
        std::string l = strip_casts(lit);
        if (auto literal = parse_literal(l)) return literal;
        if (auto env = find_env_read(l)) {
            Value v;
            v.known = true;
            std::optional<Value> def = parse_literal(env->second);
            v.number = def ? def->number : 0.0;
            v.flag_env = env->first;
            v.flag_default = def ? (def->is_string ? def->text : trim(env->second)) : trim(env->second);
            return v;
        }
        std::string name = reference_name(c);
        auto it = flags_.find(name);
        if (name.empty() || it == flags_.end()) return std::nullopt;
        Value v;
        v.known = true;
        v.number = it->second.value;
        v.flag_env = it->second.env;
        v.flag_default = it->second.default_text;
        return v;
    }

    Tri evaluate_atom(const std::string& code_in, const std::string& lit_in, std::string* env, std::string* def) const {
        std::string code = trim(code_in);
        std::string lit = trim(lit_in);
        // Keep code and lit aligned after stripping parentheses.
        while (code.size() >= 2 && code.front() == '(' && matching_close(code, 0) == code.size() - 1) {
            code = trim(code.substr(1, code.size() - 2));
            lit = trim(lit.substr(1, lit.size() - 2));
        }
        if (starts_with(code, "not ")) {
            Tri inner = evaluate_atom(code.substr(4), lit.substr(4), env, def);
            return inner == Tri::yes ? Tri::no : inner == Tri::no ? Tri::yes : Tri::unknown;
        }
        for (const char* op : {"==", "!=", ">=", "<=", ">", "<"}) {
            std::size_t at = find_top(code, op);
            if (at == std::string::npos) continue;
            std::size_t width = std::string(op).size();
            auto left = operand(code.substr(0, at), lit.substr(0, at));
            auto right = operand(code.substr(at + width), lit.substr(at + width));
            if (!left || !right) return Tri::unknown;
            if (left->flag_env.empty() && right->flag_env.empty()) return Tri::unknown;
            double a = left->number;
            double b = right->number;
            bool result = false;
            std::string o = op;
            if (left->is_string && right->is_string && (o == "==" || o == "!="))
                result = (left->text == right->text) == (o == "==");
            else if (o == "==")
                result = a == b;
            else if (o == "!=")
                result = a != b;
            else if (o == ">=")
                result = a >= b;
            else if (o == "<=")
                result = a <= b;
            else if (o == ">")
                result = a > b;
            else
                result = a < b;
            const Value& flag = left->flag_env.empty() ? *right : *left;
            *env = flag.flag_env;
            *def = flag.flag_default;
            return result ? Tri::yes : Tri::no;
        }
        auto value = operand(code, lit);
        if (!value || value->flag_env.empty()) return Tri::unknown;
        *env = value->flag_env;
        *def = value->flag_default;
        return value->number != 0.0 ? Tri::yes : Tri::no;
    }

    std::map<std::string, Flag> flags_;
};

// ---------------------------------------------------------------------------------------------------------------
// The light model: nodes (module, defs, classes), call edges, reachability

struct Node {
    std::string name;
    bool is_class = false;
    int header = -1;  // statement index of the def/class line
    int parent = 0;   // enclosing node
    std::vector<std::string> params;
    bool no_grad = false;  // decorated @torch.no_grad() / @torch.inference_mode()
    std::set<std::string> val_params;
    std::set<std::string> val_names;                // names it assigns from validation data (val_files, ...)
    std::map<std::string, std::string> acc_params;  // parameters its body accumulates into (`p += e`): p -> e
};

struct Guard {
    std::string env;
    std::string def;
};

struct Edge {
    int from = 0;
    int to = 0;
    std::optional<Guard> guard;
};

struct Reach {
    int state = 0;  // 0 never, 1 unconditional, 2 flag only
    int parent = -1;
    Guard flag;
};

struct Model {
    LexResult lex;
    std::vector<Node> nodes;
    std::vector<Edge> edges;
    std::vector<Reach> reach;
    FlagTable flags;
    std::map<std::string, std::vector<int>> by_name;
};

bool is_val_name(const std::string& name) {
    if (name == "val_tokens" || name == "val_np" || name == "val_ids") return true;
    std::string l = lower(name);
    return contains(l, "val") && contains(l, "tok");
}

std::vector<std::string> parse_params(const std::string& head) {
    std::vector<std::string> out;
    std::size_t open = head.find('(');
    if (open == std::string::npos) return out;
    std::size_t close = matching_close(head, open);
    if (close == std::string::npos) return out;
    std::string inner = head.substr(open + 1, close - open - 1);
    for (std::string p : split_top(inner, inner, ",")) {
        p = trim(p);
        while (!p.empty() && p.front() == '*') p.erase(p.begin());
        std::size_t cut = p.find_first_of(":=");
        if (cut != std::string::npos) p = trim(p.substr(0, cut));
        if (!p.empty() && p != "/") out.push_back(p);
    }
    return out;
}

// Ancestors of statement i (innermost first), stopping before the header of node owner_header (-1: all).
std::vector<int> ancestors(const Model& m, int i, int stop_at) {
    std::vector<int> out;
    for (int p = m.lex.stmts[static_cast<std::size_t>(i)].parent; p >= 0 && p != stop_at;
         p = m.lex.stmts[static_cast<std::size_t>(p)].parent)
        out.push_back(p);
    return out;
}

int owner_header(const Model& m, int i) {
    int owner = m.lex.stmts[static_cast<std::size_t>(i)].owner;
    return owner == 0 ? -1 : m.nodes[static_cast<std::size_t>(owner)].header;
}

// The flag (if any) that keeps statement i from running by default inside its own node.
std::optional<Guard> local_guard(const Model& m, int i) {
    const auto& stmts = m.lex.stmts;
    int stop = owner_header(m, i);
    std::vector<int> chain = ancestors(m, i, stop);
    for (int h : chain) {
        const Stmt& head = stmts[static_cast<std::size_t>(h)];
        if (head.keyword != "if" && head.keyword != "elif") continue;
        Guard g;
        if (m.flags.evaluate(head.head, head.head_lit, &g.env, &g.def) == Tri::no) return g;
    }
    // Early return at the top level of the node: `if <true by default>: return` before the statement.
    int top = chain.empty() ? i : chain.back();
    for (int j = stop + 1; j < top; ++j) {
        const Stmt& s = stmts[static_cast<std::size_t>(j)];
        if (s.parent != stop || s.keyword != "if") continue;
        std::size_t body = static_cast<std::size_t>(j) + 1;
        if (body >= stmts.size() || stmts[body].parent != j || !starts_with(stmts[body].code, "return")) continue;
        Guard g;
        if (m.flags.evaluate(s.head, s.head_lit, &g.env, &g.def) == Tri::yes) return g;
    }
    return std::nullopt;
}

void build_nodes(Model& m) {
    auto& stmts = m.lex.stmts;
    m.nodes.push_back(Node{});
    m.nodes[0].name = "<module>";
    for (std::size_t i = 0; i < stmts.size(); ++i) {
        Stmt& s = stmts[i];
        // Owner: innermost def/class ancestor.
        s.owner = 0;
        for (int p = s.parent; p >= 0; p = stmts[static_cast<std::size_t>(p)].parent) {
            const Stmt& h = stmts[static_cast<std::size_t>(p)];
            if (h.keyword == "def" || h.keyword == "class") {
                for (std::size_t n = 1; n < m.nodes.size(); ++n)
                    if (m.nodes[n].header == p) s.owner = static_cast<int>(n);
                break;
            }
        }
        if (s.keyword != "def" && s.keyword != "class") continue;
        Node node;
        std::vector<Ident> ids = identifiers(s.head);
        if (ids.empty()) continue;
        node.name = ids.front().name;
        node.is_class = s.keyword == "class";
        node.header = static_cast<int>(i);
        node.parent = s.owner;
        if (!node.is_class) node.params = parse_params(s.head);
        for (std::size_t k = i; k > 0; --k) {
            const Stmt& d = stmts[k - 1];
            if (d.indent != s.indent || d.code.empty() || d.code[0] != '@') break;
            if (contains(d.code, "no_grad") || contains(d.code, "inference_mode")) node.no_grad = true;
        }
        m.by_name[node.name].push_back(static_cast<int>(m.nodes.size()));
        m.nodes.push_back(node);
    }
}

struct Assignment {
    int stmt = 0;
    std::set<std::string> lhs;
    std::string rhs;  // code text
};

// Assignments (plain, augmented, for targets, with-as targets) made by statement i.
std::optional<Assignment> assignment_of(const Stmt& s, int i) {
    Assignment a;
    a.stmt = i;
    if (s.keyword == "for") {
        std::size_t in = find_top(s.head, " in ");
        if (in == std::string::npos) return std::nullopt;
        a.lhs = base_names(s.head.substr(0, in));
        a.rhs = s.head.substr(in + 4);
        return a;
    }
    if (s.keyword == "with") {
        std::size_t as = find_top(s.head, " as ");
        if (as == std::string::npos) return std::nullopt;
        a.lhs = base_names(s.head.substr(as + 4));
        a.rhs = s.head.substr(0, as);
        return a;
    }
    if (s.header) return std::nullopt;
    for (const char* op : {"+=", "-=", "*=", "/=", "|=", "&=", "^="}) {
        std::size_t at = find_top(s.code, op);
        if (at == std::string::npos) continue;
        std::vector<Ident> ids = identifiers(s.code.substr(0, at));
        if (ids.empty()) return std::nullopt;
        a.lhs.insert(ids.front().name);
        a.rhs = s.code.substr(0, at) + " " + s.code.substr(at + 2);
        return a;
    }
    std::size_t eq = find_top(s.code, "=");
    if (eq == std::string::npos) return std::nullopt;
    std::string lhs = s.code.substr(0, eq);
    std::size_t colon = find_top(lhs, ":");
    if (colon != std::string::npos) lhs = lhs.substr(0, colon);
    // Subscript targets (x[i] = ...) assign to x; attribute targets (self.x = ...) to the attribute name.
    for (const Ident& id : identifiers(lhs)) a.lhs.insert(id.name);
    a.rhs = s.code.substr(eq + 1);
    return a;
}

// An expression that loads validation data without a val/tok name: the val shard pattern, a loader of it.
bool mentions_val_source(const Stmt& s, const std::string& code) {
    for (const Ident& id : identifiers(code)) {
        std::string l = lower(id.name);
        if (l == "val_files" || l == "val_data" || l == "val_loader" || l == "load_validation_tokens" ||
            contains(l, "fineweb_val"))
            return true;
    }
    return contains(s.lit, "fineweb_val");
}

// Per node: the names assigned from validation data (directly, or through one more assignment, as in
// `files = glob(args.val_files)` then `all_tokens = cat([load(f) for f in files])`), and the parameters its body
// accumulates into.
void find_val_names_and_accumulators(Model& m) {
    const auto& stmts = m.lex.stmts;
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < stmts.size(); ++i) {
            const Stmt& s = stmts[i];
            std::optional<Assignment> a = assignment_of(s, static_cast<int>(i));
            if (!a) continue;
            Node& node = m.nodes[static_cast<std::size_t>(s.owner)];
            bool val = round == 0 ? mentions_val_source(s, a->rhs) : false;
            if (round == 1)
                for (const std::string& n : base_names(a->rhs))
                    if (node.val_names.count(n) != 0) val = true;
            if (val) node.val_names.insert(a->lhs.begin(), a->lhs.end());
        }
    }
    for (std::size_t i = 0; i < stmts.size(); ++i) {
        const Stmt& s = stmts[i];
        Node& node = m.nodes[static_cast<std::size_t>(s.owner)];
        if (s.owner == 0 || node.is_class || s.header) continue;
        std::string name;
        std::string added;
        if (std::size_t at = find_top(s.code, "+="); at != std::string::npos) {
            name = trim(s.code.substr(0, at));
            added = trim(s.code.substr(at + 2));
        } else if (std::size_t add = s.code.find(".add_("); add != std::string::npos) {
            name = trim(s.code.substr(0, add));
            added = s.code.substr(add);
        }
        if (!name.empty() && std::find(node.params.begin(), node.params.end(), name) != node.params.end())
            node.acc_params.emplace(name, added);
    }
}

// Arguments of the call whose name starts at pos in code: positional texts and keyword texts.
void call_arguments(const std::string& code, std::size_t pos, std::vector<std::string>& positional,
                    std::map<std::string, std::string>& keyword) {
    std::size_t open = code.find('(', pos);
    if (open == std::string::npos) return;
    std::size_t close = matching_close(code, open);
    if (close == std::string::npos) return;
    std::string inner = code.substr(open + 1, close - open - 1);
    if (trim(inner).empty()) return;
    for (const std::string& arg : split_top(inner, inner, ",")) {
        std::size_t eq = find_top(arg, "=");
        if (eq != std::string::npos && !contains(arg.substr(0, eq), "*")) {
            keyword[trim(arg.substr(0, eq))] = arg.substr(eq + 1);
        } else {
            positional.push_back(arg);
        }
    }
}

// A call in a statement of a def the model knows, with its arguments bound to the callee's parameters (positional in
// order, after self/cls for an attribute call; keywords by name, when the callee has that parameter).
struct BoundCall {
    int callee = 0;
    std::size_t pos = 0;                                         // where the called name starts in the statement
    std::vector<std::pair<std::string, std::string>> arguments;  // argument text, parameter name
};

std::vector<BoundCall> bound_calls(const std::string& code, const Model& m) {
    std::vector<BoundCall> calls;
    for (const Ident& id : identifiers(code)) {
        auto it = m.by_name.find(id.name);
        if (it == m.by_name.end()) continue;
        std::size_t after = id.pos + id.name.size();
        while (after < code.size() && code[after] == ' ') ++after;
        if (after >= code.size() || code[after] != '(') continue;
        std::vector<std::string> positional;
        std::map<std::string, std::string> keyword;
        call_arguments(code, id.pos, positional, keyword);
        for (int target : it->second) {
            const Node& callee = m.nodes[static_cast<std::size_t>(target)];
            if (callee.is_class) continue;
            const std::size_t shift =
                id.attribute && !callee.params.empty() && (callee.params[0] == "self" || callee.params[0] == "cls") ? 1
                                                                                                                    : 0;
            BoundCall call{target, id.pos, {}};
            for (std::size_t k = 0; k < positional.size() && k + shift < callee.params.size(); ++k)
                call.arguments.emplace_back(positional[k], callee.params[k + shift]);
            for (const auto& [name, text] : keyword)
                if (std::find(callee.params.begin(), callee.params.end(), name) != callee.params.end())
                    call.arguments.emplace_back(text, name);
            calls.push_back(std::move(call));
        }
    }
    return calls;
}

bool text_has_val(const std::string& code, const std::set<std::string>& extra) {
    for (const Ident& id : identifiers(code))
        if (is_val_name(id.name) || (!id.attribute && extra.count(id.name) != 0)) return true;
    return false;
}

// A def nested in a function is a local name of that function: only code inside it (or nested in it) can use it. So
// `closure` passed to `lbfgs.step(closure)` is not reached from an optimizer's `def step(self, closure=None)`.
bool visible_from(const Model& m, int target, int user) {
    int parent = m.nodes[static_cast<std::size_t>(target)].parent;
    if (parent == 0 || m.nodes[static_cast<std::size_t>(parent)].is_class) return true;
    for (int n = user; n > 0; n = m.nodes[static_cast<std::size_t>(n)].parent)
        if (n == parent) return true;
    return false;
}

void build_edges(Model& m, const std::set<std::string>& external_names) {
    const auto& stmts = m.lex.stmts;
    for (std::size_t i = 0; i < stmts.size(); ++i) {
        const Stmt& s = stmts[i];
        std::optional<Guard> guard = local_guard(m, static_cast<int>(i));
        for (const Ident& id : identifiers(s.code)) {
            auto it = m.by_name.find(id.name);
            if (it == m.by_name.end()) continue;
            for (int target : it->second) {
                if (m.nodes[static_cast<std::size_t>(target)].header == static_cast<int>(i)) continue;
                if (target == s.owner) continue;
                if (!visible_from(m, target, s.owner)) continue;
                m.edges.push_back({s.owner, target, guard});
            }
        }
    }
    // A class reaches its constructor, dunders and forward().
    for (std::size_t n = 1; n < m.nodes.size(); ++n) {
        const Node& node = m.nodes[n];
        if (node.is_class || node.parent == 0 || !m.nodes[static_cast<std::size_t>(node.parent)].is_class) continue;
        if (node.name == "forward" || starts_with(node.name, "__"))
            m.edges.push_back({node.parent, static_cast<int>(n), std::nullopt});
    }
    // Parameters filled with validation tokens at some call site (a few rounds, so it passes through wrappers).
    for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < stmts.size(); ++i) {
            const Stmt& s = stmts[i];
            const Node& caller = m.nodes[static_cast<std::size_t>(s.owner)];
            std::set<std::string> caller_params = caller.val_params;
            caller_params.insert(caller.val_names.begin(), caller.val_names.end());
            for (const BoundCall& call : bound_calls(s.code, m)) {
                Node& callee = m.nodes[static_cast<std::size_t>(call.callee)];
                for (const auto& [text, param] : call.arguments)
                    if (text_has_val(text, caller_params)) callee.val_params.insert(param);
            }
        }
    }
    // Reachability: unconditional first, then through flag-guarded calls.
    m.reach.assign(m.nodes.size(), Reach{});
    std::deque<int> queue;
    auto spread = [&]() {
        while (!queue.empty()) {
            int u = queue.front();
            queue.pop_front();
            for (const Edge& e : m.edges) {
                if (e.from != u || e.guard || m.reach[static_cast<std::size_t>(e.to)].state != 0) continue;
                m.reach[static_cast<std::size_t>(e.to)].state = 1;
                m.reach[static_cast<std::size_t>(e.to)].parent = u;
                queue.push_back(e.to);
            }
        }
    };
    m.reach[0].state = 1;
    queue.push_back(0);
    spread();
    // Top-level defs and classes that a script importing this one uses, when this file does not reach them itself.
    for (std::size_t n = 1; n < m.nodes.size(); ++n) {
        if (m.reach[n].state == 0 && m.nodes[n].parent == 0 && external_names.count(m.nodes[n].name) != 0) {
            m.reach[n].state = 1;
            m.reach[n].parent = -2;
            queue.push_back(static_cast<int>(n));
        }
    }
    spread();
    for (std::size_t n = 0; n < m.nodes.size(); ++n)
        if (m.reach[n].state == 1) queue.push_back(static_cast<int>(n));
    while (!queue.empty()) {
        int u = queue.front();
        queue.pop_front();
        for (const Edge& e : m.edges) {
            if (e.from != u || m.reach[static_cast<std::size_t>(e.to)].state != 0) continue;
            Reach& r = m.reach[static_cast<std::size_t>(e.to)];
            r.state = 2;
            r.parent = u;
            r.flag = e.guard ? *e.guard : m.reach[static_cast<std::size_t>(u)].flag;
            queue.push_back(e.to);
        }
    }
}

struct Reachability {
    bool reachable = true;
    std::string text;
};

Reachability reachability_of(const Model& m, int stmt) {
    int owner = m.lex.stmts[static_cast<std::size_t>(stmt)].owner;
    const Reach& r = m.reach[static_cast<std::size_t>(owner)];
    if (r.state == 0) return {false, "never called"};
    if (r.state == 2) return {false, "behind " + r.flag.env + " (default " + r.flag.def + ")"};
    if (auto g = local_guard(m, stmt)) return {false, "behind " + g->env + " (default " + g->def + ")"};
    if (owner == 0) return {true, "module level"};
    std::vector<std::string> path;
    bool external = false;
    for (int n = owner; n > 0;) {
        path.push_back(m.nodes[static_cast<std::size_t>(n)].name);
        int p = m.reach[static_cast<std::size_t>(n)].parent;
        if (p == -2) external = true;
        n = p;
    }
    std::reverse(path.begin(), path.end());
    if (external && path.size() == 1) return {true, "used from another scanned file"};
    if (path.size() == 1) return {true, "called at module level"};
    std::string text = "called from " + path.front() + (external ? " (used from another scanned file)" : "");
    if (path.size() > 2) {
        text += " via ";
        for (std::size_t k = 1; k + 1 < path.size(); ++k) text += (k > 1 ? " -> " : "") + path[k];
    }
    return {true, text};
}

// ---------------------------------------------------------------------------------------------------------------
// Per-function analysis helpers

struct Accumulation {
    int stmt = 0;
    std::string acc;
    std::string rhs;
};

bool loss_like(const std::string& text) {
    std::string l = lower(text);
    return contains_any(l, {"loss", "nll", "bpb", "bits", "logp", "log_prob", "score", "cross_entropy"});
}

std::optional<Accumulation> accumulation_of(const Stmt& s, int i) {
    if (s.header) return std::nullopt;
    Accumulation a;
    a.stmt = i;
    std::size_t at = find_top(s.code, "+=");
    if (at != std::string::npos) {
        std::vector<Ident> ids = identifiers(s.code.substr(0, at));
        if (ids.empty()) return std::nullopt;
        a.acc = ids.front().name;
        a.rhs = trim(s.code.substr(at + 2));
    } else if (std::size_t eq = find_top(s.code, "="); eq != std::string::npos) {
        std::string lhs = trim(s.code.substr(0, eq));
        std::string rhs = trim(s.code.substr(eq + 1));
        if (lhs.empty() || !std::all_of(lhs.begin(), lhs.end(), is_ident_char)) return std::nullopt;
        if (!starts_with(rhs, lhs + " +") && !starts_with(rhs, lhs + "+")) return std::nullopt;
        a.acc = lhs;
        a.rhs = trim(rhs.substr(rhs.find('+') + 1));
    } else {
        std::size_t call = std::string::npos;
        for (const char* method : {".append(", ".extend(", ".add_("}) {
            call = s.code.find(method);
            if (call != std::string::npos) break;
        }
        if (call == std::string::npos) return std::nullopt;
        std::vector<Ident> ids = identifiers(s.code.substr(0, call));
        if (ids.empty() || ids.front().pos != 0) return std::nullopt;
        a.acc = ids.front().name;
        a.rhs = s.code.substr(call);
    }
    std::string acc = lower(a.acc);
    bool counting = contains_any(acc, {"count", "cnt", "tok", "byte", "num"}) || starts_with(acc, "n_");
    if (!loss_like(a.acc) && !(loss_like(a.rhs) && !counting)) return std::nullopt;
    return a;
}

bool training_name(const std::string& name) {
    std::string l = lower(name);
    return contains_any(l, {"train", "epoch", "running", "ema", "avg"}) || starts_with(l, "tr_");
}

bool is_loop(const Stmt& s) { return s.keyword == "for" || s.keyword == "while"; }

std::string loop_variable(const Stmt& s) {
    std::vector<Ident> ids = identifiers(s.head);
    return ids.empty() ? "" : ids.front().name;
}

bool is_epoch_loop(const Stmt& s) {
    if (!is_loop(s)) return false;
    std::string var = loop_variable(s);
    return contains(lower(s.head), "epoch") || var == "ep" || var == "_ep";
}

bool is_step_call(const Stmt& s, std::size_t* receiver_end = nullptr) {
    std::size_t at = s.code.find(".step(");
    while (at != std::string::npos) {
        std::size_t begin = at;
        while (begin > 0 && (is_ident_char(s.code[begin - 1]) || s.code[begin - 1] == '.')) --begin;
        std::string receiver = lower(s.code.substr(begin, at - begin));
        bool other = contains_any(receiver, {"sched", "lr_", "ema", "swa", "prof"});
        if (!other) {
            if (receiver_end != nullptr) *receiver_end = at;
            return true;
        }
        at = s.code.find(".step(", at + 1);
    }
    return false;
}

bool is_backward_call(const Stmt& s) { return s.code.find(".backward(") != std::string::npos; }

class FunctionView {
public:
    FunctionView(const Model& m, int node) : m_(m), node_(node) {
        const auto& stmts = m.lex.stmts;
        header_ = m.nodes[static_cast<std::size_t>(node)].header;
        for (std::size_t i = 0; i < stmts.size(); ++i) {
            if (stmts[i].owner != node) continue;
            own_.push_back(static_cast<int>(i));
            if (auto a = assignment_of(stmts[i], static_cast<int>(i))) assigns_.push_back(*a);
        }
        // Closures see the enclosing functions' assignments.
        for (int p = m.nodes[static_cast<std::size_t>(node)].parent; p > 0;
             p = m.nodes[static_cast<std::size_t>(p)].parent) {
            for (std::size_t i = 0; i < stmts.size(); ++i)
                if (stmts[i].owner == p)
                    if (auto a = assignment_of(stmts[i], static_cast<int>(i))) outer_assigns_.push_back(*a);
            for (const std::string& v : m.nodes[static_cast<std::size_t>(p)].val_params) seeds_.insert(v);
            for (const std::string& v : m.nodes[static_cast<std::size_t>(p)].val_names) seeds_.insert(v);
        }
        for (const std::string& v : m.nodes[static_cast<std::size_t>(node)].val_params) seeds_.insert(v);
        for (const std::string& v : m.nodes[static_cast<std::size_t>(node)].val_names) seeds_.insert(v);
        compute_return_flow();
    }

    const std::vector<int>& own() const { return own_; }
    const Stmt& stmt(int i) const { return m_.lex.stmts[static_cast<std::size_t>(i)]; }
    const Node& node() const { return m_.nodes[static_cast<std::size_t>(node_)]; }

    bool is_seed(const std::string& name) const { return is_val_name(name) || seeds_.count(name) != 0; }

    bool uses_val() const {
        for (int i : own_)
            for (const Ident& id : identifiers(stmt(i).code))
                if (is_val_name(id.name) || seeds_.count(id.name) != 0) return true;
        for (const std::string& p : node().params)
            if (is_seed(p)) return true;
        return false;
    }

    // Whether the names in code depend (through assignments) on validation tokens.
    bool depends_on_val(const std::string& code) const {
        std::set<std::string> seen;
        std::vector<std::string> work;
        for (const Ident& id : identifiers(code)) {
            if (is_val_name(id.name)) return true;
            if (!id.attribute) work.push_back(id.name);
        }
        while (!work.empty()) {
            std::string v = work.back();
            work.pop_back();
            if (!seen.insert(v).second) continue;
            if (is_seed(v)) return true;
            for (const auto* list : {&assigns_, &outer_assigns_}) {
                for (const Assignment& a : *list) {
                    if (a.lhs.count(v) == 0) continue;
                    for (const Ident& id : identifiers(a.rhs)) {
                        if (is_val_name(id.name)) return true;
                        if (!id.attribute) work.push_back(id.name);
                    }
                }
            }
        }
        return false;
    }

    // Loops enclosing statement i inside this function, innermost first.
    std::vector<int> loops(int i) const {
        std::vector<int> out;
        for (int a : ancestors(m_, i, header_))
            if (is_loop(stmt(a))) out.push_back(a);
        return out;
    }

    bool encloses(int header, int i) const {
        for (int a : ancestors(m_, i, header_))
            if (a == header) return true;
        return false;
    }

    bool under_no_grad(int i) const {
        if (node().no_grad) return true;
        for (int a : ancestors(m_, i, header_)) {
            const Stmt& h = stmt(a);
            if (h.keyword == "with" && (contains(h.head, "no_grad") || contains(h.head, "inference_mode"))) return true;
        }
        return false;
    }

    // Scoring accumulations (see the file comment).
    std::vector<Accumulation> scoring() const {
        std::vector<Accumulation> out;
        for (int i : own_) {
            auto a = accumulation_of(stmt(i), i);
            if (!a) a = call_accumulation(i);
            if (!a) continue;
            bool flows = returns_.count(a->acc) != 0;
            if (!flows && !(has_return_value_ == false && !training_name(a->acc))) continue;
            out.push_back(*a);
        }
        return out;
    }

    // A call at statement i that passes an accumulator (a plain name such as loss_sum, nll_sum, byte_sum, token_count)
    // to a function whose body accumulates into that parameter (`loss_sum += lbl.sum()`): the caller's accumulator is
    // fed at the call line. Loss-like as for a direct accumulation (the name, the parameter or the added expression).
    std::optional<Accumulation> call_accumulation(int i) const {
        const Stmt& s = stmt(i);
        if (s.header) return std::nullopt;
        for (const BoundCall& call : bound_calls(s.code, m_)) {
            const Node& callee = m_.nodes[static_cast<std::size_t>(call.callee)];
            if (call.callee == node_ || callee.acc_params.empty()) continue;
            for (const auto& [text, param] : call.arguments) {
                const std::string arg = trim(text);
                auto acc = callee.acc_params.find(param);
                if (acc == callee.acc_params.end() || arg.empty() || !is_ident_start(arg[0]) ||
                    !std::all_of(arg.begin(), arg.end(), is_ident_char))
                    continue;
                std::string l = lower(arg);
                bool counting = contains_any(l, {"count", "cnt", "tok", "byte", "num"}) || starts_with(l, "n_");
                if (!loss_like(arg) && !loss_like(param) && !(loss_like(acc->second) && !counting)) continue;
                Accumulation a;
                a.stmt = i;
                a.acc = arg;
                a.rhs = s.code.substr(call.pos);
                return a;
            }
        }
        return std::nullopt;
    }

    // Statement k assigns name plainly (a reset such as `acc = 0`).
    bool resets(int k, const std::string& name) const {
        const Stmt& s = stmt(k);
        if (s.header) return false;
        std::size_t eq = find_top(s.code, "=");
        if (eq == std::string::npos || find_top(s.code, "+=") != std::string::npos) return false;
        return trim(s.code.substr(0, eq)) == name && !has_word(s.code.substr(eq + 1), name);
    }

    // Two statements in different branches of one if/elif/else chain.
    bool exclusive(int a, int b) const {
        std::vector<int> pa = ancestors(m_, a, header_);
        std::vector<int> pb = ancestors(m_, b, header_);
        pa.insert(pa.begin(), a);
        pb.insert(pb.begin(), b);
        for (std::size_t x = 0; x < pa.size(); ++x) {
            for (std::size_t y = 0; y < pb.size(); ++y) {
                const Stmt& ha = stmt(pa[x]);
                const Stmt& hb = stmt(pb[y]);
                if (pa[x] == pb[y]) return false;
                if (ha.parent != hb.parent || ha.indent != hb.indent) continue;
                int first = std::min(pa[x], pb[y]);
                int second = std::max(pa[x], pb[y]);
                const Stmt& hs = stmt(second);
                const Stmt& hf = stmt(first);
                if ((hf.keyword != "if" && hf.keyword != "elif") || (hs.keyword != "elif" && hs.keyword != "else"))
                    return false;
                for (int k = first + 1; k < second; ++k) {
                    const Stmt& mid = stmt(k);
                    if (mid.parent == hf.parent && mid.indent == hf.indent && mid.keyword != "elif") return false;
                }
                return true;
            }
        }
        return false;
    }

    // Nearest assignment to name before statement i (own statements), or -1.
    int nearest_assignment(const std::string& name, int i) const {
        int best = -1;
        for (const Assignment& a : assigns_)
            if (a.stmt < i && a.lhs.count(name) != 0) best = std::max(best, a.stmt);
        return best;
    }

private:
    void compute_return_flow() {
        for (int i : own_) {
            const Stmt& s = stmt(i);
            if (!starts_with(s.code, "return")) continue;
            std::string rest = trim(s.code.substr(6));
            if (rest.empty() || rest == "None") continue;
            has_return_value_ = true;
            for (const std::string& n : base_names(rest)) returns_.insert(n);
        }
        for (bool changed = true; changed;) {
            changed = false;
            for (const Assignment& a : assigns_) {
                bool hit = std::any_of(a.lhs.begin(), a.lhs.end(),
                                       [&](const std::string& n) { return returns_.count(n) != 0; });
                if (!hit) continue;
                for (const std::string& n : base_names(a.rhs))
                    if (returns_.insert(n).second) changed = true;
            }
        }
    }

    const Model& m_;
    int node_;
    int header_ = -1;
    std::vector<int> own_;
    std::vector<Assignment> assigns_;
    std::vector<Assignment> outer_assigns_;
    std::set<std::string> seeds_;
    std::set<std::string> returns_;
    bool has_return_value_ = false;
};

// ---------------------------------------------------------------------------------------------------------------
// Rules

struct Scan {
    const Model& m;
    std::string file;
    ScanReport& report;

    void add(const std::string& rule, int stmt_index, const std::string& message) {
        const Stmt& s = m.lex.stmts[static_cast<std::size_t>(stmt_index)];
        for (const ScanFinding& f : report.findings)
            if (f.rule == rule && f.file == file && f.line == s.line) return;
        ScanFinding f;
        f.rule = rule;
        f.file = file;
        f.line = s.line;
        f.message = message;
        f.evidence = trim(m.lex.raw_lines[static_cast<std::size_t>(s.line - 1)]);
        Reachability r = reachability_of(m, stmt_index);
        f.reachable = r.reachable;
        f.reachability = r.text;
        f.severity = !r.reachable ? "info" : rule == "L9" ? "warn" : "fail";
        report.findings.push_back(f);
    }

    void legal(const std::string& rule, int stmt_index, const std::string& message) {
        const Stmt& s = m.lex.stmts[static_cast<std::size_t>(stmt_index)];
        for (const ScanLegalPattern& p : report.legal)
            if (p.rule == rule && p.file == file && p.line == s.line) return;
        report.legal.push_back({rule, file, s.line, message});
    }

    std::string line_ref(int stmt_index) const {
        return "line " + std::to_string(m.lex.stmts[static_cast<std::size_t>(stmt_index)].line);
    }

    void run() {
        for (std::size_t n = 1; n < m.nodes.size(); ++n) {
            if (m.nodes[n].is_class) continue;
            FunctionView f(m, static_cast<int>(n));
            std::set<std::string> slot_optimizers = scan_slot(f);
            scan_training(f, slot_optimizers);
            scan_double_accumulation(f);
        }
        scan_target_keys();
    }

    // L8 / L9.
    std::set<std::string> scan_slot(const FunctionView& f) {
        std::set<std::string> optimizers;
        const std::vector<int>& own = f.own();
        for (int i : own) {
            const Stmt& s = f.stmt(i);
            if (s.header) continue;
            std::size_t ctor = std::string::npos;
            for (const char* name : {"AdamW", "Adam", "SGD", "RMSprop", "Adagrad", "LBFGS"}) {
                ctor = find_call(s.code, name);
                if (ctor != std::string::npos) break;
            }
            if (ctor == std::string::npos) continue;
            std::size_t open = s.code.find('(', ctor);
            std::size_t close = matching_close(s.code, open);
            std::string args = s.code.substr(open, close == std::string::npos ? std::string::npos : close - open);
            bool slot = false;
            for (const Ident& id : identifiers(args)) {
                std::string l = lower(id.name);
                if (contains(l, "delta") || contains(l, "logit_bias") || contains(l, "slot")) slot = true;
            }
            if (!slot) continue;
            std::set<std::string> names;
            std::size_t eq = find_top(s.code, "=");
            if (eq != std::string::npos) names = base_names(s.code.substr(0, eq));
            optimizers.insert(names.begin(), names.end());
            // A closure passed to the optimizer's step (`lbfgs.step(closure)`) holds the loss and its backward.
            int step_stmt = -1;
            int closure = closure_of_step(f, i, names, &step_stmt);
            std::optional<FunctionView> closure_view;
            if (closure > 0) closure_view.emplace(m, closure);
            const FunctionView& lv = closure_view ? *closure_view : f;
            // The first backward after the construction (in the closure, if any) and the assignment of its loss.
            int backward = -1;
            for (int k : lv.own())
                if ((closure > 0 || k > i) && is_backward_call(lv.stmt(k))) {
                    backward = k;
                    break;
                }
            if (backward < 0) continue;
            std::string bcode = lv.stmt(backward).code;
            std::string loss_name;
            for (const Ident& id : identifiers(bcode.substr(0, bcode.find(".backward(")))) {
                if (id.attribute || id.name == "scaler" || id.name == "scale") continue;
                loss_name = id.name;
                break;
            }
            int loss_stmt = loss_name.empty() ? -1 : lv.nearest_assignment(loss_name, backward);
            if (loss_stmt < 0) loss_stmt = backward;
            std::string loss_text = lv.stmt(loss_stmt).code;
            // Slices come from the loss line and its inputs (a closure's inputs may be assigned in the enclosing
            // function before the step), except the lines that cut the window out of the validation tokens (their
            // slices are window bounds, not the optimized region).
            std::string text = loss_text;
            std::size_t eq_loss = find_top(loss_text, "=");
            std::string loss_rhs = eq_loss == std::string::npos ? loss_text : loss_text.substr(eq_loss + 1);
            for (const std::string& dep : base_names(loss_rhs)) {
                int d = lv.nearest_assignment(dep, loss_stmt);
                if (d < 0 && closure > 0) d = f.nearest_assignment(dep, step_stmt);
                if (d >= 0 && !text_has_val(f.stmt(d).code, {})) text += " ; " + f.stmt(d).code;
            }
            std::set<std::string> starts = scored_starts(f);
            bool scored = false;
            bool context = false;
            std::string scored_slice;
            std::string context_slice;
            for (const auto& [lo, hi] : slices(text)) {
                bool lo_name = !lo.empty() && is_ident_start(lo[0]);
                bool hi_name = !hi.empty() && is_ident_start(hi[0]);
                if (lo_name && lo != "None") {
                    scored = true;
                    if (scored_slice.empty()) scored_slice = "[" + lo + ":" + hi + "]";
                } else if ((lo.empty() || lo == "0") && hi_name && starts.count(hi) != 0) {
                    context = true;
                    if (context_slice.empty()) context_slice = "[:" + hi + "]";
                }
            }
            bool targets = false;
            for (const Ident& id : identifiers(text)) {
                std::string l = lower(id.name);
                if (l == "y" || l == "yb" || l == "tgt" || l == "tgts" || l == "target" || l == "targets" ||
                    l == "labels" || starts_with(l, "y_") || starts_with(l, "tgt_") || starts_with(l, "target_"))
                    targets = true;
            }
            std::string fn = f.node().name;
            std::string opt_ref = "the SLOT optimizer built at " + line_ref(i);
            if (scored) {
                add("L8", loss_stmt,
                    "Scored-region SLOT in " + fn + ": " + opt_ref + " is fit on the scored positions " + scored_slice +
                        " that are then scored.");
            } else if (context) {
                add("L9", loss_stmt,
                    "Context-only SLOT in " + fn + ": " + opt_ref + " is fit on the already-scored context " +
                        context_slice + "; undecided, HOLD pending #1336.");
            } else if (targets) {
                add("L8", loss_stmt,
                    "Scored-region SLOT in " + fn + ": " + opt_ref +
                        " is fit against the window's targets, scored positions included.");
            }
        }
        return optimizers;
    }

    // The def passed to a step of the optimizer named in names, after its construction at ctor (`opt.step(closure)`,
    // `opt.step(closure=fn)`): its node (a def nested in f preferred), or -1. *step gets the step statement.
    int closure_of_step(const FunctionView& f, int ctor, const std::set<std::string>& names, int* step) const {
        for (int k : f.own()) {
            if (k <= ctor) continue;
            const std::string& code = f.stmt(k).code;
            for (std::size_t at = code.find(".step("); at != std::string::npos; at = code.find(".step(", at + 1)) {
                std::size_t begin = at;
                while (begin > 0 && is_ident_char(code[begin - 1])) --begin;
                if (names.count(code.substr(begin, at - begin)) == 0) continue;
                std::vector<std::string> positional;
                std::map<std::string, std::string> keyword;
                call_arguments(code, at + 1, positional, keyword);
                std::string arg = !positional.empty()             ? trim(positional[0])
                                  : keyword.count("closure") != 0 ? trim(keyword["closure"])
                                                                  : "";
                auto it = m.by_name.find(arg);
                if (arg.empty() || it == m.by_name.end()) continue;
                int best = -1;
                for (int n : it->second) {
                    const Node& node = m.nodes[static_cast<std::size_t>(n)];
                    if (node.is_class) continue;
                    if (best < 0 || (node.parent == m.lex.stmts[static_cast<std::size_t>(k)].owner &&
                                     m.nodes[static_cast<std::size_t>(best)].parent != node.parent))
                        best = n;
                }
                if (best > 0) {
                    *step = k;
                    return best;
                }
            }
        }
        return -1;
    }

    // Names that start a scored slice in the function ([s:wlen] in the scoring code), else the usual ones.
    static std::set<std::string> scored_starts(const FunctionView& f) {
        std::set<std::string> out;
        for (int i : f.own())
            if (accumulation_of(f.stmt(i), i) || contains(lower(f.stmt(i).code), "nll") ||
                contains(lower(f.stmt(i).code), "scored"))
                for (const auto& [lo, hi] : slices(f.stmt(i).code))
                    if (!lo.empty() && is_ident_start(lo[0]) && lo != "None") out.insert(lo);
        if (out.empty()) out = {"s", "start", "score_start", "ctx_len", "prefix_len", "n_ctx", "context_len"};
        return out;
    }

    // Every slice component lo:hi inside [...] of text (trimmed; the step part dropped).
    static std::vector<std::pair<std::string, std::string>> slices(const std::string& text) {
        std::vector<std::pair<std::string, std::string>> out;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] != '[') continue;
            std::size_t close = matching_close(text, i);
            if (close == std::string::npos) continue;
            std::string inner = text.substr(i + 1, close - i - 1);
            for (const std::string& part : split_top(inner, inner, ",")) {
                std::size_t colon = find_top(part, ":");
                if (colon == std::string::npos) continue;
                std::string lo = trim(part.substr(0, colon));
                std::string hi = part.substr(colon + 1);
                std::size_t second = find_top(hi, ":");
                if (second != std::string::npos) hi = hi.substr(0, second);
                out.emplace_back(lo, trim(hi));
            }
        }
        return out;
    }

    // L4, L5, L6, C3, C4 (rescoring) and legal L1/L2 around each training step on validation tokens.
    void scan_training(const FunctionView& f, const std::set<std::string>& slot_optimizers) {
        const std::vector<int>& own = f.own();
        std::string fn = f.node().name;
        std::string lname = lower(fn);
        std::vector<Accumulation> scoring = f.scoring();
        std::set<std::string> done;
        for (int s_idx : own) {
            const Stmt& s = f.stmt(s_idx);
            if (!is_step_call(s)) continue;
            bool slot = false;
            for (const Ident& id : identifiers(s.code))
                if (slot_optimizers.count(id.name) != 0) slot = true;
            if (slot) continue;
            // The backward paired with this step: the nearest one before it (else any) in the function.
            int backward = -1;
            for (int k : own)
                if (is_backward_call(f.stmt(k)) && (k <= s_idx || backward < 0)) backward = k;
            if (backward < 0) continue;
            const std::string& bcode = f.stmt(backward).code;
            if (!f.depends_on_val(bcode.substr(0, bcode.find(".backward(")))) continue;
            std::vector<int> loops = f.loops(s_idx);

            if (contains(lname, "prequant") || contains(lname, "adapt")) {
                if (done.insert("L6").second)
                    add("L6", s_idx,
                        "Pre-quant/whole-model TTT: " + fn +
                            " trains on validation tokens (backward + optimizer step) before they are scored.");
                continue;
            }
            // L5: an epoch loop around both the step and a scoring accumulation.
            bool reported = false;
            for (int e : loops) {
                if (!is_epoch_loop(f.stmt(e))) continue;
                std::string var = loop_variable(f.stmt(e));
                for (const Accumulation& a : scoring) {
                    if (!f.encloses(e, a.stmt) || first_epoch_only(f, a.stmt, e, var)) continue;
                    if (done.insert("L5").second)
                        add("L5", a.stmt,
                            "Multi-epoch re-scoring in " + fn + ": " + a.acc +
                                " is accumulated in every epoch of the loop at " + line_ref(e) +
                                " that also trains on the same validation tokens.");
                    reported = true;
                    break;
                }
                if (reported) break;
            }
            if (reported) continue;
            // Chunk loop: the innermost loop around the step that also accumulates a score.
            int chunk = -1;
            for (int l : loops) {
                for (const Accumulation& a : scoring)
                    if (f.encloses(l, a.stmt)) chunk = l;
                if (chunk >= 0) break;
            }
            std::vector<Accumulation> pre;
            std::vector<Accumulation> post;
            for (const Accumulation& a : scoring) {
                if (chunk >= 0 && !f.encloses(chunk, a.stmt)) continue;
                bool in_step_loop = !loops.empty() && chunk < 0 && f.encloses(loops.back(), a.stmt);
                if (in_step_loop) continue;
                (a.stmt < s_idx ? pre : post).push_back(a);
            }
            if (chunk >= 0) {
                if (post.empty()) {
                    bool guarded = false;
                    for (int anc : ancestors(m, s_idx, chunk)) {
                        std::string h = lower(f.stmt(anc).head);
                        // `if needs_train:` with `needs_train = any(ci < nc - 1 for ...)` guards through the name.
                        std::vector<Ident> ids = identifiers(h);
                        if (ids.size() == 1 && trim(h) == ids[0].name) {
                            int d = f.nearest_assignment(ids[0].name, anc);
                            if (d >= 0) h += " " + lower(f.stmt(d).code);
                        }
                        if (contains(h, "last") || contains(h, "- 1") || contains(h, "-1")) guarded = true;
                    }
                    if (done.insert("L1").second) {
                        legal("L1", s_idx,
                              "Score-first TTT in " + fn + ": each chunk is scored (" + line_ref(pre.front().stmt) +
                                  ") before the optimizer step on it" +
                                  (guarded ? ", and the last chunk is not trained on." : "."));
                        for (int e : loops)
                            if (e != chunk && f.encloses(chunk, e) && is_epoch_loop(f.stmt(e)))
                                legal("L2", e, "Several epochs of training on the already-scored chunk in " + fn + ".");
                    }
                    continue;
                }
                const Accumulation* twice = nullptr;
                for (const Accumulation& a : post)
                    for (const Accumulation& b : pre)
                        if (a.acc == b.acc && twice == nullptr) twice = &a;
                if (twice != nullptr) {
                    if (done.insert("C4").second)
                        add("C4", twice->stmt,
                            "Double accumulation in " + fn + ": " + twice->acc +
                                " gets the chunk's loss before and again after the optimizer step at " +
                                line_ref(s_idx) + ".");
                } else if (done.insert("C3").second) {
                    add("C3", s_idx,
                        "Score-after-update in " + fn +
                            ": the optimizer step comes before the chunk's loss is "
                            "accumulated into " +
                            post.front().acc + " (" + line_ref(post.front().stmt) + ").");
                }
                continue;
            }
            // No loop around the step scores: a separate training phase.
            const Accumulation* twice = nullptr;
            for (const Accumulation& a : post) {
                for (const Accumulation& b : pre) {
                    if (a.acc != b.acc || twice != nullptr) continue;
                    bool reset = false;
                    for (int k = b.stmt + 1; k < a.stmt; ++k)
                        if (f.stmt(k).owner == f.stmt(a.stmt).owner && f.resets(k, a.acc)) reset = true;
                    if (!reset) twice = &a;
                }
            }
            if (twice != nullptr) {
                if (done.insert("C4").second)
                    add("C4", twice->stmt,
                        "Double accumulation in " + fn + ": a second scoring pass after the adaptation at " +
                            line_ref(s_idx) + " adds into " + twice->acc + " again.");
            } else if (!post.empty()) {
                if (done.insert("L4").second)
                    add("L4", s_idx,
                        "Train-then-score TTT in " + fn +
                            ": the model is trained on validation tokens (backward + optimizer step) before they "
                            "are scored (" +
                            line_ref(post.front().stmt) + ").");
            } else if (pre.empty()) {
                bool epochs = std::any_of(loops.begin(), loops.end(), [&](int l) { return is_epoch_loop(f.stmt(l)); });
                std::string rule = epochs ? "L6" : "L4";
                if (done.insert(rule).second)
                    add(rule, s_idx,
                        epochs ? "Pre-quant/whole-model TTT: " + fn +
                                     " trains on validation tokens for several epochs with no scoring pass."
                               : "Training on validation tokens without scoring them first in " + fn + ".");
            }
        }
    }

    bool first_epoch_only(const FunctionView& f, int a, int epoch_loop, const std::string& var) const {
        for (int anc : ancestors(m, a, epoch_loop)) {
            const Stmt& h = f.stmt(anc);
            if (h.keyword != "if" && h.keyword != "elif") continue;
            std::string head = h.head;
            if (contains(lower(head), "first")) return true;
            if (!var.empty() && has_word(head, var) &&
                (contains(head, "== 0") || contains(head, "<= 0") || contains(head, "< 1") ||
                 starts_with(head, "not ")))
                return true;
        }
        return false;
    }

    // C4 within one loop body: two accumulations of the same thing into the same accumulator.
    void scan_double_accumulation(const FunctionView& f) {
        if (!f.uses_val()) return;
        std::vector<Accumulation> scoring = f.scoring();
        for (std::size_t x = 0; x < scoring.size(); ++x) {
            for (std::size_t y = x + 1; y < scoring.size(); ++y) {
                const Accumulation& a = scoring[x];
                const Accumulation& b = scoring[y];
                if (a.acc != b.acc) continue;
                std::vector<int> la = f.loops(a.stmt);
                std::vector<int> lb = f.loops(b.stmt);
                if (la.empty() || lb.empty() || la.front() != lb.front()) continue;
                if (f.exclusive(a.stmt, b.stmt)) continue;
                std::string ra = normalized(a.rhs);
                std::string rb = normalized(b.rhs);
                if (ra != rb && base_names(a.rhs) != base_names(b.rhs)) continue;
                add("C4", b.stmt,
                    "Double accumulation in " + f.node().name + ": " + b.acc +
                        " gets the same loss twice in one "
                        "iteration of the loop at " +
                        line_ref(la.front()) + " (first at " + line_ref(a.stmt) + ").");
            }
        }
    }

    static std::string normalized(const std::string& text) {
        std::string out;
        for (char c : text)
            if (c != ' ') out += c;
        return out;
    }

    // L10 and the BigramHash whitelist.
    void scan_target_keys() {
        const auto& stmts = m.lex.stmts;
        std::set<int> flagged_owner;
        std::set<int> bigram_owner;
        for (std::size_t i = 0; i < stmts.size(); ++i) {
            const Stmt& s = stmts[i];
            if (s.keyword == "def" || s.keyword == "class") continue;
            std::string code = s.code;
            bool op = contains(code, "^") || contains(code, "bitwise_xor") ||
                      find_call(code, "hash") != std::string::npos || contains(code, "<<") || multiplies_by_prime(code);
            if (!op) continue;
            bool target = has_target(code);
            std::string owner_name = s.owner == 0 ? "module level" : m.nodes[static_cast<std::size_t>(s.owner)].name;
            if (!target) {
                bool bigram = false;
                for (int n = s.owner; n > 0; n = m.nodes[static_cast<std::size_t>(n)].parent)
                    if (contains(lower(m.nodes[static_cast<std::size_t>(n)].name), "bigram")) bigram = true;
                if (bigram && bigram_owner.insert(s.owner).second)
                    legal("BigramHash", static_cast<int>(i),
                          "Context-only BigramHash in " + owner_name +
                              ": the key hashes context tokens only "
                              "(whitelisted).");
                continue;
            }
            std::string lhs;
            std::size_t eq = find_top(code, "=");
            if (eq != std::string::npos) lhs = lower(code.substr(0, eq));
            bool keyish = contains_any(lhs, {"key", "hash", "bucket", "idx", "slot"}) ||
                          find_call(code, "hash") != std::string::npos || contains(code, "%") || contains(code, "&");
            if (!keyish) continue;
            if (!flagged_owner.insert(s.owner).second) continue;
            add("L10", static_cast<int>(i),
                "Target-in-key n-gram hash in " + owner_name +
                    ": the lookup key combines the target token, so only the gold token's bucket is read.");
        }
    }

    static bool multiplies_by_prime(const std::string& code) {
        for (std::size_t at = code.find('*'); at != std::string::npos; at = code.find('*', at + 1)) {
            if (at + 1 < code.size() && code[at + 1] == '*') {
                ++at;
                continue;
            }
            auto number_at = [&](std::size_t p, int dir) {
                std::string digits;
                while (p < code.size() && code[p] == ' ') p += static_cast<std::size_t>(dir);
                while (p < code.size() && (is_ident_char(code[p]))) {
                    digits += code[p];
                    if (p == 0 && dir < 0) break;
                    p += static_cast<std::size_t>(dir);
                }
                if (dir < 0) std::reverse(digits.begin(), digits.end());
                return digits;
            };
            std::string right = at + 1 < code.size() ? number_at(at + 1, 1) : "";
            std::string left = at > 0 ? number_at(at - 1, -1) : "";
            for (const std::string& w : {left, right}) {
                if (w.empty()) continue;
                if (std::all_of(w.begin(), w.end(),
                                [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_'; }) &&
                    w.size() >= 4)
                    return true;
                std::string l = lower(w);
                if (contains(l, "prime") || contains(l, "mult")) return true;
            }
        }
        return false;
    }

    static bool has_target(const std::string& code) {
        std::vector<Ident> ids = identifiers(code);
        // Bare target batches (`y * self.primes[cw]` with `y = y_batch.long()`) count on the right-hand side only, so
        // `y = (h ^ k) & mask` assigning a name y is not a target use.
        std::size_t eq = find_top(code, "=");
        std::size_t rhs = eq == std::string::npos ? 0 : eq + 1;
        for (const Ident& id : ids) {
            std::string l = lower(id.name);
            if (!id.attribute && id.pos >= rhs && (l == "y" || l == "ys" || l == "y_batch")) return true;
            if (l == "tgt" || l == "tgts" || l == "target" || l == "targets" || l == "next_tok" || l == "next_token" ||
                l == "next_id" || l == "gold" || l == "gold_tok" || l == "label" || l == "labels" ||
                starts_with(l, "tgt_") || starts_with(l, "target_") || starts_with(l, "next_tok"))
                return true;
            std::size_t after = id.pos + id.name.size();
            if (after < code.size() && code[after] == '[') {
                if (l == "y" || l == "yb" || l == "y_batch") return true;
                if (is_val_name(id.name) || contains(l, "tok") || contains(l, "val")) {
                    std::size_t close = matching_close(code, after);
                    if (close == std::string::npos) continue;
                    std::string index = normalized(code.substr(after + 1, close - after - 1));
                    if (index == "pos" || index == "i+1" || index == "t+1" || index == "pos+1" || index == "j+1")
                        return true;
                }
            }
        }
        return false;
    }
};

// ---------------------------------------------------------------------------------------------------------------
// The lzma exec wrapper

std::optional<std::vector<std::uint8_t>> decode_base85(const std::string& text) {
    static const std::string alphabet =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
    int table[256];
    std::fill(std::begin(table), std::end(table), -1);
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        table[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);
    std::vector<int> digits;
    for (char c : text) {
        if (std::isspace(static_cast<unsigned char>(c)) != 0) continue;
        int d = table[static_cast<unsigned char>(c)];
        if (d < 0) return std::nullopt;
        digits.push_back(d);
    }
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < digits.size(); i += 5) {
        std::size_t n = std::min<std::size_t>(5, digits.size() - i);
        if (n == 1) return std::nullopt;
        std::uint64_t value = 0;
        for (std::size_t k = 0; k < 5; ++k) value = value * 85 + static_cast<std::uint64_t>(k < n ? digits[i + k] : 84);
        if (value > 0xFFFFFFFFull) return std::nullopt;
        for (std::size_t k = 0; k < n - 1; ++k) out.push_back(static_cast<std::uint8_t>(value >> (24 - 8 * k)));
    }
    return out;
}

std::optional<std::vector<std::uint8_t>> decode_base64(const std::string& text) {
    std::vector<std::uint8_t> out;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        int v = -1;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else if (c == '=' || std::isspace(static_cast<unsigned char>(c)) != 0)
            continue;
        else
            return std::nullopt;
        buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>((buffer >> bits) & 0xFF));
        }
    }
    return out;
}

// The string literal(s) starting at pos (adjacent literals concatenated), or nullopt; *end gets the position after
// the last literal.
std::optional<std::string> literal_at(const std::string& text, std::size_t pos, std::size_t* end_out = nullptr) {
    std::string out;
    bool any = false;
    while (true) {
        while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos])) != 0) ++pos;
        std::size_t prefix = pos;
        while (prefix < text.size() && std::string_view("bBrRuU").find(text[prefix]) != std::string_view::npos)
            ++prefix;
        if (prefix >= text.size() || (text[prefix] != '"' && text[prefix] != '\'')) break;
        pos = prefix;
        char q = text[pos];
        bool tri = pos + 2 < text.size() && text[pos + 1] == q && text[pos + 2] == q;
        std::string closer = tri ? std::string(3, q) : std::string(1, q);
        std::size_t begin = pos + closer.size();
        std::size_t end = text.find(closer, begin);
        if (end == std::string::npos) return std::nullopt;
        out += text.substr(begin, end - begin);
        any = true;
        pos = end + closer.size();
    }
    if (!any) return std::nullopt;
    if (end_out != nullptr) *end_out = pos;
    return out;
}

enum class LzmaContainer { xz, alone, lzma2_raw };

std::string container_name(LzmaContainer c) {
    return c == LzmaContainer::xz ? "xz" : c == LzmaContainer::alone ? "legacy .lzma" : "raw LZMA2";
}

struct Unwrapped {
    bool wrapper = false;
    bool decoded = false;
    std::string payload;
    std::string how;        // "lzma+base85", "lzma+base64"
    std::string container;  // "xz", "legacy .lzma", "raw LZMA2" once decoded
};

Unwrapped unwrap(const std::string& text) {
    Unwrapped u;
    std::size_t exec_at = find_call(text, "exec");
    if (exec_at == std::string::npos || !contains(text, "decompress(")) return u;
    std::size_t at = find_call(text, "b85decode");
    bool base85 = at != std::string::npos;
    if (!base85) at = find_call(text, "b64decode");
    if (at == std::string::npos) return u;
    u.wrapper = true;
    u.how = base85 ? "lzma+base85" : "lzma+base64";
    std::size_t open = text.find('(', at);
    std::size_t literal_end = open;
    std::optional<std::string> literal = literal_at(text, open + 1, &literal_end);
    if (!literal) return u;
    std::optional<std::vector<std::uint8_t>> bytes = base85 ? decode_base85(*literal) : decode_base64(*literal);
    if (!bytes) return u;
    // The container the wrapper names around the call (lzma.decompress(..., format=FORMAT_RAW, filters=[...])) is
    // tried first; the others follow, since the format may be passed through a variable.
    std::size_t from = std::min(exec_at, at);
    std::string around = text.substr(from, at - from) + text.substr(literal_end, 400);
    std::vector<LzmaContainer> order = {LzmaContainer::xz, LzmaContainer::alone, LzmaContainer::lzma2_raw};
    if (contains(around, "FORMAT_RAW"))
        order = {LzmaContainer::lzma2_raw, LzmaContainer::xz, LzmaContainer::alone};
    else if (contains(around, "FORMAT_ALONE"))
        order = {LzmaContainer::alone, LzmaContainer::xz, LzmaContainer::lzma2_raw};
    constexpr std::size_t limit = std::size_t{1} << 28;
    for (LzmaContainer c : order) {
        try {
            std::vector<std::uint8_t> plain = c == LzmaContainer::xz ? codec_decompress(CodecKind::xz, *bytes, limit)
                                              : c == LzmaContainer::alone ? codec_decompress_lzma_alone(*bytes, limit)
                                                                          : codec_decompress_lzma2_raw(*bytes, limit);
            // A Python payload is text: a stream that decodes to NUL bytes was the wrong guess.
            if (std::find(plain.begin(), plain.end(), std::uint8_t{0}) != plain.end()) continue;
            u.payload.assign(plain.begin(), plain.end());
            u.decoded = true;
            u.container = container_name(c);
            return u;
        } catch (const std::exception&) {
        }
    }
    return u;
}

std::int64_t count_lines(const std::string& text) {
    if (text.empty()) return 0;
    std::int64_t n = std::count(text.begin(), text.end(), '\n');
    return text.back() == '\n' ? n : n + 1;
}

// The scan of one text (recursing into a decoded wrapper payload).
void scan_text(const std::string& text, const std::string& file, const std::set<std::string>& external_names,
               ScanReport& report, int depth) {
    ScannedFile scanned{file, count_lines(text), false, 0};
    Unwrapped u = depth < 3 ? unwrap(text) : Unwrapped{};
    if (u.wrapper) {
        if (u.decoded) {
            scanned.decoded_wrapper = true;
            scanned.payload_lines = count_lines(u.payload);
            report.notes.push_back(file + ": an " + u.how + " exec wrapper (" + u.container +
                                   "), its payload was scanned as \"" + file + " (decoded payload)\" (" +
                                   std::to_string(scanned.payload_lines) + " lines)");
        } else {
            report.notes.push_back(file + ": an " + u.how +
                                   " exec wrapper whose payload could not be decoded as xz, legacy .lzma or raw LZMA2 "
                                   "(corrupt data or another codec); the wrapper was scanned as is");
        }
    }
    if (depth == 0) report.files.push_back(scanned);
    Model m;
    m.lex = lex_python(text);
    build_nodes(m);
    find_val_names_and_accumulators(m);
    m.flags.build(m.lex.stmts);
    build_edges(m, external_names);
    Scan scan{m, file, report};
    scan.run();
    if (u.wrapper && u.decoded) scan_text(u.payload, file + " (decoded payload)", external_names, report, depth + 1);
}

void sort_report(ScanReport& report) {
    std::stable_sort(report.findings.begin(), report.findings.end(), [](const ScanFinding& a, const ScanFinding& b) {
        if (a.file != b.file) return a.file < b.file;
        if (a.line != b.line) return a.line < b.line;
        return a.rule < b.rule;
    });
    std::stable_sort(report.legal.begin(), report.legal.end(),
                     [](const ScanLegalPattern& a, const ScanLegalPattern& b) {
                         if (a.file != b.file) return a.file < b.file;
                         if (a.line != b.line) return a.line < b.line;
                         return a.rule < b.rule;
                     });
}

// What a folder scan needs to know about each script (and its decoded payload): the names it uses, and the
// statements (with string contents) in which it may import or exec another script.
struct SourceSummary {
    std::set<std::string> names;
    std::vector<std::string> statements;
};

void summarize_source(const std::string& text, SourceSummary& out, int depth) {
    LexResult lex = lex_python(text);
    for (const Stmt& s : lex.stmts) {
        out.statements.push_back(s.lit);
        if (s.keyword == "def" || s.keyword == "class") {
            std::vector<Ident> ids = identifiers(s.head);
            for (std::size_t k = 1; k < ids.size(); ++k) out.names.insert(ids[k].name);
            continue;
        }
        for (const Ident& id : identifiers(s.code)) out.names.insert(id.name);
    }
    Unwrapped u = depth < 3 ? unwrap(text) : Unwrapped{};
    if (u.decoded) summarize_source(u.payload, out, depth + 1);
}

// Whether a script imports (`import stem`, `from stem import`, `from .stem import`, `from pkg.stem import`) or names
// ("stem.py" in a string, as an exec(open(...)) stub does) the module stem.
bool summary_loads(const SourceSummary& summary, const std::string& stem) {
    for (const std::string& lit : summary.statements) {
        if (contains(lit, stem + ".py")) return true;
        std::string t = trim(lit);
        if (!starts_with(t, "import ") && !starts_with(t, "from ")) continue;
        std::string module = t;
        if (starts_with(t, "from ")) {
            std::size_t imp = t.find(" import ");
            module = t.substr(5, imp == std::string::npos ? std::string::npos : imp - 5);
        }
        for (const Ident& id : identifiers(module))
            if (id.name == stem) return true;
    }
    return false;
}

}  // namespace

ScanReport static_scan_source(const std::string& text, const std::string& file) {
    ScanReport report;
    scan_text(text, file, {}, report, 0);
    sort_report(report);
    return report;
}

ScanReport static_scan_folder(const std::string& folder) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) throw Error("static scan: cannot read folder " + folder + ": not a folder");
    std::vector<std::string> relative;
    fs::recursive_directory_iterator it(folder, ec);
    if (ec) throw Error("static scan: cannot read folder " + folder + ": " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) throw Error("static scan: cannot read folder " + folder + ": " + ec.message());
        const fs::path& path = it->path();
        std::string name = path.filename().string();
        std::error_code type_ec;
        if (it->is_directory(type_ec)) {
            if (name.empty() || name[0] == '.' || name == "__pycache__") it.disable_recursion_pending();
            continue;
        }
        if (!it->is_regular_file(type_ec) || path.extension() != ".py") continue;
        relative.push_back(fs::relative(path, folder, ec).generic_string());
        if (ec) throw Error("static scan: cannot read folder " + folder + ": " + ec.message());
    }
    if (ec) throw Error("static scan: cannot read folder " + folder + ": " + ec.message());
    std::sort(relative.begin(), relative.end());
    std::vector<std::string> texts;
    std::vector<SourceSummary> summaries(relative.size());
    for (std::size_t i = 0; i < relative.size(); ++i) {
        texts.push_back(file_read_text((fs::path(folder) / relative[i]).string()));
        summarize_source(texts.back(), summaries[i], 0);
    }
    ScanReport report;
    for (std::size_t i = 0; i < relative.size(); ++i) {
        // Names used by the scripts that import (or exec) this one count as uses of its functions.
        std::string stem = fs::path(relative[i]).stem().string();
        std::set<std::string> external;
        for (std::size_t k = 0; k < relative.size(); ++k)
            if (k != i && summary_loads(summaries[k], stem))
                external.insert(summaries[k].names.begin(), summaries[k].names.end());
        scan_text(texts[i], relative[i], external, report, 0);
    }
    sort_report(report);
    return report;
}

std::int64_t static_scan_count_failures(const ScanReport& report) {
    return std::count_if(report.findings.begin(), report.findings.end(),
                         [](const ScanFinding& f) { return f.severity == "fail"; });
}

std::string static_scan_report_text(const ScanReport& report) {
    std::string out;
    for (const ScanFinding& f : report.findings)
        out += f.severity + " " + f.rule + " " + f.file + ":" + std::to_string(f.line) + " " + f.message + " [" +
               f.reachability + "] | " + f.evidence + "\n";
    for (const ScanLegalPattern& p : report.legal)
        out += "legal " + p.rule + " " + p.file + ":" + std::to_string(p.line) + " " + p.message + "\n";
    for (const std::string& note : report.notes) out += "note " + note + "\n";
    return out;
}

}  // namespace pgolf
