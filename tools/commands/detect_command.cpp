// corl detect: the judge's reading of an image, as a scene spec in JSON.
#include <iostream>

#include "commands/commands.h"
#include "corl/data/detect.h"
#include "corl/data/render.h"

namespace corl::tools {

void add_detect_command(CLI::App& app) {
  auto image = std::make_shared<std::string>();
  auto resolution = std::make_shared<int>(0);
  CLI::App* command =
      app.add_subcommand("detect", "Read an image back into a scene spec (JSON on stdout)");
  command->add_option("--image,-i", *image, "Image file (PNG, JPEG, ...)")->required();
  command
      ->add_option("--resolution", *resolution,
                   "Resize to this side before detecting (0: as stored)")
      ->check(CLI::Range(0, 4096));
  command->callback([image, resolution] {
    const auto rgb = data::read_image(*image, *resolution);
    std::cout << data::to_json(data::detect(rgb)).dump(2) << std::endl;
  });
}

}  // namespace corl::tools
