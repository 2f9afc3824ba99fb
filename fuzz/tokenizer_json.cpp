// A Hugging Face tokenizer.json: the JSON, added tokens, pre-tokenizers and their regular
// expressions (compiled by Oniguruma), the BPE vocabulary and merges. A tokenizer that loads
// must encode text to ids within its vocabulary and decode them without failing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "corl/tokenize/byte_level_bpe.h"
#include "corl/util/error.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = corl::fuzz::input_file(data, size, ".json");
  try {
    const corl::tokenize::ByteLevelBPE tokenizer(path);
    const int vocab = tokenizer.vocab_size();
    for (const char* text : {"", "a photo of 2 red cubes", "  <image>\n\tx1234 caf\xc3\xa9 \xff"}) {
      const auto ids = tokenizer.encode(text);
      for (int id : ids) corl::fuzz::require(id >= 0 && id < vocab, "ids lie in the vocabulary");
      tokenizer.decode(ids);
    }
  } catch (const corl::DataError&) {
  }
  return 0;
}
