// One row of a JSON-lines dataset: JSON syntax, required and optional fields, the ShapeWorld spec
// and scene, and the image it names (read from fuzz/data/, where the corpus's rows point).
#include <cstddef>
#include <cstdint>
#include <string>

#include "corl/data/answers.h"
#include "corl/data/dataset.h"
#include "corl/util/error.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  corl::data::ReadOptions options;
  options.resolution = 16;
  try {
    const auto record =
        corl::data::parse_record(line, "fuzz.jsonl", 1, CORL_FUZZ_DATA_DIR, options);
    corl::fuzz::require(record.qa_type == "MC" || record.qa_type == "OE",
                        "an accepted row is MC or OE");
    const auto gold = corl::data::extract_answer(record.qa_solution);
    corl::fuzz::require(gold && !gold->empty(), "an accepted row holds a gold answer");
    corl::fuzz::require(record.qa_type == "OE" || corl::data::answers_match(*gold, *gold, true),
                        "an accepted multiple-choice row's answer is an option letter");
    corl::fuzz::require(record.image.empty() || (record.image.rows == 16 && record.image.cols == 16),
                        "an accepted row's image has the asked resolution");
  } catch (const corl::DataError&) {
  }
  return 0;
}
