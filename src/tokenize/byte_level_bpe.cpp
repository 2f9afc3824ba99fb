#include "corl/tokenize/byte_level_bpe.h"

#include <oniguruma.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>

#include "corl/util/error.h"
#include "corl/util/fs.h"  // defines: read_file

namespace corl::tokenize {
namespace {

using json = nlohmann::json;

// Ids at or above this are refused: the id -> token table has one entry per id, and no real
// vocabulary comes near it (DeepSeek-LLM's has 102,400).
constexpr int64_t kMaxTokenId = int64_t{1} << 24;

// A token id of tokenizer.json: an integer in [0, kMaxTokenId).
int vocab_id(const json& value, const std::string& path, const std::string& token) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() >= kMaxTokenId) {
    throw DataError(path + ": token '" + token + "' has id " + value.dump() +
                    ", not an integer in [0, " + std::to_string(kMaxTokenId) + ")");
  }
  return static_cast<int>(value.get<int64_t>());
}

// GPT-2's pattern, which ByteLevel applies when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// A compiled Oniguruma pattern over UTF-8, with the syntax `tokenizers` compiles its patterns in.
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    static std::once_flag once;
    std::call_once(once, [] {
      OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
      onig_initialize(encodings, 1);
    });
    OnigErrorInfo info;
    const auto* begin = reinterpret_cast<const OnigUChar*>(pattern.data());
    const int status = onig_new(&regex_, begin, begin + pattern.size(), ONIG_OPTION_NONE,
                                ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT, &info);
    if (status != ONIG_NORMAL) {
      OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
      onig_error_code_to_str(message, status, &info);
      throw DataError(where + ": pattern '" + pattern +
                      "' does not compile: " + reinterpret_cast<char*>(message));
    }
  }
  ~Regex() { onig_free(regex_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges [begin, end) of the successive non-overlapping matches; after an empty match the
  // search moves on by one character, as the onig crate's find_iter does.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const {
    std::vector<std::pair<size_t, size_t>> out;
    const auto* str = reinterpret_cast<const OnigUChar*>(text.data());
    const auto* end = str + text.size();
    OnigRegion* region = onig_region_new();
    size_t start = 0;
    while (start <= text.size()) {
      const int at = onig_search(regex_, str, end, str + start, end, region, ONIG_OPTION_NONE);
      if (at < 0) break;
      const size_t match_end = static_cast<size_t>(region->end[0]);
      out.emplace_back(static_cast<size_t>(at), match_end);
      if (match_end > static_cast<size_t>(at)) {
        start = match_end;
      } else {
        if (match_end >= text.size()) break;
        start = match_end + utf8_length(static_cast<unsigned char>(text[match_end]));
      }
    }
    onig_region_free(region, 1);
    return out;
  }

  static size_t utf8_length(unsigned char lead) {
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  }

 private:
  OnigRegex regex_ = nullptr;
};

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// `tokenizers`' split of one piece by its matches (SplitDelimiterBehavior).
std::vector<std::string> split_piece(const std::string& piece,
                                     std::vector<std::pair<size_t, size_t>> matches,
                                     Behavior behavior, bool invert) {
  // Every byte range, each marked whether it is a match.
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> spans;
  size_t last = 0;
  for (const auto& [b, e] : matches) {
    if (b == e) continue;
    if (b > last) spans.push_back({{last, b}, false});
    spans.push_back({{b, e}, true});
    last = e;
  }
  if (last < piece.size()) spans.push_back({{last, piece.size()}, false});
  if (invert) {
    for (auto& s : spans) s.second = !s.second;
  }
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> out;
  switch (behavior) {
    case Behavior::kIsolated:
      out = spans;
      break;
    case Behavior::kRemoved:
      for (const auto& s : spans) {
        if (!s.second) out.push_back(s);
      }
      break;
    case Behavior::kContiguous:
      for (const auto& s : spans) {
        if (!out.empty() && out.back().second && s.second) {
          out.back().first.second = s.first.second;
        } else {
          out.push_back(s);
        }
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const auto& s : spans) {
        if (s.second && !out.empty() && !out.back().second) {
          out.back().first.second = s.first.second;
          out.back().second = true;  // closed: the next non-match starts a new piece
        } else {
          out.push_back(s);
        }
      }
      break;
    case Behavior::kMergedWithNext: {
      bool pending = false;
      for (const auto& s : spans) {
        if (pending) {
          out.back().first.second = s.first.second;
          pending = s.second;
        } else {
          out.push_back(s);
          pending = s.second;
        }
      }
      break;
    }
  }
  std::vector<std::string> pieces;
  for (const auto& s : out) {
    if (s.first.second > s.first.first) {
      pieces.push_back(piece.substr(s.first.first, s.first.second - s.first.first));
    }
  }
  return pieces;
}

// GPT-2's reversible map of the 256 bytes onto printable characters.
std::vector<std::string> byte_to_unicode() {
  std::vector<int> codepoints(256, -1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    codepoints[b] = printable ? b : next++;
  }
  std::vector<std::string> out(256);
  for (int b = 0; b < 256; ++b) {
    const int c = codepoints[b];
    std::string s;
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
    out[b] = s;
  }
  return out;
}

struct PreTokenizer {
  enum class Kind { kSplit, kDigits, kByteLevel } kind;
  std::shared_ptr<Regex> regex;  // kSplit with a Regex pattern, kByteLevel with use_regex
  std::string literal;           // kSplit with a String pattern
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  bool individual_digits = false;
  bool add_prefix_space = false;
};

Behavior behavior_of(const std::string& name, const std::string& where) {
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  throw DataError(where + ": unknown split behavior '" + name + "'");
}

void read_pre_tokenizers(const json& j, const std::string& where, std::vector<PreTokenizer>& out) {
  if (j.is_null()) return;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& p : j.at("pretokenizers")) read_pre_tokenizers(p, where, out);
    return;
  }
  PreTokenizer p;
  if (type == "Split") {
    p.kind = PreTokenizer::Kind::kSplit;
    const json& pattern = j.at("pattern");
    if (pattern.contains("Regex")) {
      p.regex = std::make_shared<Regex>(pattern.at("Regex").get<std::string>(), where);
    } else if (pattern.contains("String")) {
      p.literal = pattern.at("String").get<std::string>();
    } else {
      throw DataError(where + ": Split pattern is neither Regex nor String");
    }
    p.behavior = behavior_of(j.value("behavior", "Isolated"), where);
    p.invert = j.value("invert", false);
  } else if (type == "Digits") {
    p.kind = PreTokenizer::Kind::kDigits;
    p.individual_digits = j.value("individual_digits", false);
  } else if (type == "ByteLevel") {
    p.kind = PreTokenizer::Kind::kByteLevel;
    p.add_prefix_space = j.value("add_prefix_space", true);
    if (j.value("use_regex", true)) p.regex = std::make_shared<Regex>(kGpt2Pattern, where);
  } else {
    throw DataError(where + ": pre-tokenizer '" + type + "' is not supported");
  }
  out.push_back(std::move(p));
}

// Bytes -> valid UTF-8, each ill-formed sequence (its maximal valid prefix) replaced by U+FFFD,
// as Rust's String::from_utf8_lossy in the `tokenizers` ByteLevel decoder.
std::string utf8_lossy(const std::string& s) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::string out;
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range (RFC 3629 table)
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c == 0xE0) {
      need = 2, lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      need = 2;
    } else if (c == 0xED) {
      need = 2, hi = 0x9F;
    } else if (c == 0xF0) {
      need = 3, lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      need = 3;
    } else if (c == 0xF4) {
      need = 3, hi = 0x8F;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t j = 1;
    for (; j <= need; ++j) {
      if (i + j >= n) break;
      const auto d = static_cast<unsigned char>(s[i + j]);
      if (d < (j == 1 ? lo : 0x80) || d > (j == 1 ? hi : 0xBF)) break;
    }
    if (j > need) {
      out.append(s, i, need + 1);
      i += need + 1;
    } else {
      out += kReplacement;
      i += j;
    }
  }
  return out;
}

}  // namespace

struct ByteLevelBPE::Impl {
  std::unordered_map<std::string, int> vocab;
  std::vector<std::string> id_to_token;
  std::map<std::pair<std::string, std::string>, int> merge_rank;
  bool ignore_merges = false;
  std::optional<int> unk;
  struct Added {
    std::string content;
    int id;
  };
  std::vector<Added> added;  // longest first, for leftmost-longest matching
  std::unordered_map<int, std::string> added_by_id;
  std::vector<PreTokenizer> pre_tokenizers;
  bool byte_level = false;
  std::vector<std::string> bytes_to_chars = byte_to_unicode();
  std::unordered_map<std::string, unsigned char> chars_to_bytes;
  mutable std::unordered_map<std::string, std::vector<int>> cache;
  mutable std::mutex cache_mutex;

  std::vector<std::string> pre_tokenize(const std::string& text) const;
  void bpe(const std::string& word, std::vector<int>& out) const;
};

std::vector<std::string> ByteLevelBPE::Impl::pre_tokenize(const std::string& text) const {
  std::vector<std::string> pieces = {text};
  for (const auto& p : pre_tokenizers) {
    std::vector<std::string> next;
    for (const auto& piece : pieces) {
      std::vector<std::string> parts;
      if (p.kind == PreTokenizer::Kind::kSplit) {
        std::vector<std::pair<size_t, size_t>> matches;
        if (p.regex) {
          matches = p.regex->find_all(piece);
        } else if (!p.literal.empty()) {
          for (size_t at = piece.find(p.literal); at != std::string::npos;
               at = piece.find(p.literal, at + p.literal.size())) {
            matches.emplace_back(at, at + p.literal.size());
          }
        }
        parts = split_piece(piece, matches, p.behavior, p.invert);
      } else if (p.kind == PreTokenizer::Kind::kDigits) {
        std::vector<std::pair<size_t, size_t>> matches;
        for (size_t i = 0; i < piece.size(); ++i) {
          if (piece[i] >= '0' && piece[i] <= '9') matches.emplace_back(i, i + 1);
        }
        parts =
            split_piece(piece, matches,
                        p.individual_digits ? Behavior::kIsolated : Behavior::kContiguous, false);
      } else {
        std::string s = piece;
        if (p.add_prefix_space && (s.empty() || s[0] != ' ')) s = " " + s;
        parts = p.regex ? split_piece(s, p.regex->find_all(s), Behavior::kIsolated, false)
                        : std::vector<std::string>{s};
      }
      for (auto& part : parts) next.push_back(std::move(part));
    }
    pieces = std::move(next);
  }
  if (byte_level) {
    for (auto& piece : pieces) {
      std::string mapped;
      for (unsigned char b : piece) mapped += bytes_to_chars[b];
      piece = std::move(mapped);
    }
  }
  return pieces;
}

void ByteLevelBPE::Impl::bpe(const std::string& word, std::vector<int>& out) const {
  if (ignore_merges) {
    if (const auto it = vocab.find(word); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (const auto it = cache.find(word); it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<std::string> symbols;
  for (size_t i = 0; i < word.size();) {
    const size_t n = Regex::utf8_length(static_cast<unsigned char>(word[i]));
    symbols.push_back(word.substr(i, n));
    i += n;
  }
  // Merge the best-ranked adjacent pair, leftmost on ties, until none is in the merges: the
  // order `tokenizers` applies them in.
  while (symbols.size() > 1) {
    int best = std::numeric_limits<int>::max();
    size_t at = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = merge_rank.find({symbols[i], symbols[i + 1]});
      if (it != merge_rank.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == std::numeric_limits<int>::max()) break;
    symbols[at] += symbols[at + 1];
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  std::vector<int> ids;
  for (const auto& s : symbols) {
    if (const auto it = vocab.find(s); it != vocab.end()) {
      ids.push_back(it->second);
    } else if (unk) {
      // fuse_unk is off in byte-level tokenizers: one unk per unknown symbol.
      ids.push_back(*unk);
    }
    // Without an unk_token, `tokenizers` drops a symbol the vocabulary lacks; so does this.
  }
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (cache.size() < 100000) cache.emplace(word, std::move(ids));
}

ByteLevelBPE::ByteLevelBPE(const std::string& path) : impl_(std::make_unique<Impl>()) {
  if (!std::filesystem::is_regular_file(path)) throw DataError(path + ": no such tokenizer file");
  json j;
  try {
    j = json::parse(util::read_file(path));
  } catch (const json::exception& e) {
    throw DataError(path + ": malformed JSON: " + e.what());
  }
  try {
    const json& model = j.at("model");
    if (model.value("type", "BPE") != "BPE") {
      throw DataError(path + ": model type '" + model.value("type", "") + "' is not BPE");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(key) && !model.at(key).is_null() && model.at(key) != "") {
        throw DataError(path + ": model." + key + " is not supported");
      }
    }
    if (model.value("byte_fallback", false)) {
      throw DataError(path + ": model.byte_fallback is not supported");
    }
    if (model.contains("dropout") && !model.at("dropout").is_null() &&
        model.at("dropout").get<double>() != 0.0) {
      throw DataError(path + ": model.dropout is not supported");
    }
    impl_->ignore_merges = model.value("ignore_merges", false);
    int size = 0;
    for (const auto& [token, id] : model.at("vocab").items()) {
      impl_->vocab[token] = vocab_id(id, path, token);
      size = std::max(size, impl_->vocab[token] + 1);
    }
    int rank = 0;
    for (const auto& merge : model.at("merges")) {
      std::pair<std::string, std::string> pair;
      if (merge.is_string()) {
        const std::string s = merge.get<std::string>();
        const size_t space = s.find(' ', 1);
        if (space == std::string::npos) throw DataError(path + ": merge '" + s + "' has no space");
        pair = {s.substr(0, space), s.substr(space + 1)};
      } else {
        pair = {merge.at(0).get<std::string>(), merge.at(1).get<std::string>()};
      }
      impl_->merge_rank.emplace(pair, rank++);
    }
    if (model.contains("unk_token") && model.at("unk_token").is_string()) {
      const auto it = impl_->vocab.find(model.at("unk_token").get<std::string>());
      if (it != impl_->vocab.end()) impl_->unk = it->second;
    }
    if (j.contains("added_tokens")) {
      for (const auto& a : j.at("added_tokens")) {
        if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false)) {
          throw DataError(path + ": added token " + a.at("content").get<std::string>() +
                          " uses lstrip/rstrip/single_word, which is not supported");
        }
        const int id = vocab_id(a.at("id"), path, a.at("content").get<std::string>());
        impl_->added.push_back({a.at("content").get<std::string>(), id});
        impl_->added_by_id[id] = impl_->added.back().content;
        size = std::max(size, id + 1);
      }
    }
    std::stable_sort(impl_->added.begin(), impl_->added.end(), [](const auto& a, const auto& b) {
      return a.content.size() > b.content.size();
    });
    impl_->id_to_token.assign(size, "");
    for (const auto& [token, id] : impl_->vocab) impl_->id_to_token[id] = token;
    for (const auto& a : impl_->added) impl_->id_to_token[a.id] = a.content;

    const json normalizer = j.value("normalizer", json());
    if (!normalizer.is_null() &&
        !(normalizer.value("type", "") == "Sequence" && normalizer.at("normalizers").empty())) {
      throw DataError(path + ": normalizer '" + normalizer.value("type", "") +
                      "' is not supported");
    }
    read_pre_tokenizers(j.value("pre_tokenizer", json()), path, impl_->pre_tokenizers);
    for (const auto& p : impl_->pre_tokenizers) {
      if (p.kind == PreTokenizer::Kind::kByteLevel) impl_->byte_level = true;
    }
    if (!impl_->byte_level) throw DataError(path + ": no ByteLevel pre-tokenizer");
  } catch (const json::exception& e) {
    throw DataError(path + ": unexpected tokenizer.json layout: " + e.what());
  }
  for (int b = 0; b < 256; ++b) impl_->chars_to_bytes[impl_->bytes_to_chars[b]] = b;
}

ByteLevelBPE::~ByteLevelBPE() = default;
ByteLevelBPE::ByteLevelBPE(ByteLevelBPE&&) noexcept = default;
ByteLevelBPE& ByteLevelBPE::operator=(ByteLevelBPE&&) noexcept = default;

std::vector<int> ByteLevelBPE::encode(std::string_view text) const {
  std::vector<int> ids;
  auto encode_plain = [&](std::string_view plain) {
    if (plain.empty()) return;
    for (const auto& word : impl_->pre_tokenize(std::string(plain))) impl_->bpe(word, ids);
  };
  // Added tokens first: the leftmost occurrence of any, the longest at that position.
  size_t start = 0;
  while (start < text.size()) {
    size_t best_at = std::string_view::npos;
    const Impl::Added* best = nullptr;
    for (const auto& a : impl_->added) {
      const size_t at = text.find(a.content, start);
      if (at != std::string_view::npos && (at < best_at || (at == best_at && !best))) {
        best_at = at;
        best = &a;
      }
    }
    if (!best) break;
    encode_plain(text.substr(start, best_at - start));
    ids.push_back(best->id);
    start = best_at + best->content.size();
  }
  if (start < text.size()) encode_plain(text.substr(start));
  return ids;
}

std::string ByteLevelBPE::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) {
    if (const auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
      out += it->second;
      continue;
    }
    if (id < 0 || id >= vocab_size()) continue;  // no token: nothing, as transformers
    const std::string& piece = impl_->id_to_token[id];
    for (size_t i = 0; i < piece.size();) {
      const size_t n = Regex::utf8_length(static_cast<unsigned char>(piece[i]));
      const std::string c = piece.substr(i, n);
      const auto b = impl_->chars_to_bytes.find(c);
      if (b != impl_->chars_to_bytes.end()) {
        out += static_cast<char>(b->second);
      } else {
        out += c;
      }
      i += n;
    }
  }
  return utf8_lossy(out);
}

int ByteLevelBPE::vocab_size() const { return static_cast<int>(impl_->id_to_token.size()); }

std::optional<int> ByteLevelBPE::token_id(std::string_view token) const {
  for (const auto& a : impl_->added) {
    if (a.content == token) return a.id;
  }
  if (const auto it = impl_->vocab.find(std::string(token)); it != impl_->vocab.end()) {
    return it->second;
  }
  return std::nullopt;
}

std::string ByteLevelBPE::token(int id) const {
  if (id < 0 || id >= vocab_size()) {
    throw std::out_of_range("byte-level BPE: id " + std::to_string(id) + " outside vocabulary of " +
                            std::to_string(vocab_size()));
  }
  return impl_->id_to_token[id];
}

}  // namespace corl::tokenize
