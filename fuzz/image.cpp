// An image file of any format the build reads (imgcodecs: PNG, JPEG, BMP, ...; without it, PNG
// through libpng), resized to the model's resolution as a dataset row's image is.
#include <cstddef>
#include <cstdint>

#include "corl/data/render.h"
#include "corl/util/error.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = corl::fuzz::input_file(data, size, ".img");
  try {
    const cv::Mat image = corl::data::read_image(path, 16);
    corl::fuzz::require(image.rows == 16 && image.cols == 16 && image.channels() == 3,
                        "an image that reads is RGB at the asked resolution");
  } catch (const corl::DataError&) {
  }
  return 0;
}
