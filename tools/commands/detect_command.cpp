// corl detect: the judge's reading of an image, as a scene spec in JSON; with a prompt's spec,
// also the judge's verdict, exactly as the geneval reward computes it.
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "commands/commands.h"
#include "corl/data/detect.h"
#include "corl/data/geneval.h"
#include "corl/data/render.h"
#include "corl/util/error.h"

namespace corl::tools {
namespace {

struct DetectOptions {
  std::string image;
  std::string spec;   // JSON text, or a file holding it
  std::string batch;  // JSON lines, or "-" for stdin
  int resolution = 0;
  data::JudgeRules rules{0.1, true};  // the geneval reward's defaults (reward.* in recipes)
};

// The scene `image` shows, and the verdict on it when `spec` is given.
nlohmann::json read_back(const std::string& image, const nlohmann::json& spec,
                         const DetectOptions& options, const std::string& where) {
  const auto scene = data::detect(data::read_image(image, options.resolution));
  nlohmann::json out = {{"scene", data::to_json(scene)}};
  if (spec.is_null()) return out;
  const auto judgement = data::judge(data::spec_from_json(spec, where), scene, options.rules);
  out["correct"] = judgement.correct;
  out["partial"] = judgement.partial;
  out["reason"] = judgement.reason;
  return out;
}

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(where + ": malformed JSON: " + e.what());
  }
}

// Each input line {"image": PATH, "spec"?: {...}} gives one output line, in order.
void detect_batch(const DetectOptions& options) {
  std::ifstream file;
  if (options.batch != "-") {
    file.open(options.batch);
    if (!file) throw DataError(options.batch + ": cannot read");
  }
  std::istream& in = options.batch == "-" ? std::cin : file;
  const std::string name = options.batch == "-" ? "stdin" : options.batch;
  int line = 0;
  for (std::string text; std::getline(in, text);) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string at = where(name, line);
    const auto row = parse_json(text, at);
    if (!row.is_object() || !row.contains("image") || !row["image"].is_string()) {
      throw DataError(at + ": expected {\"image\": PATH, \"spec\"?: {...}}");
    }
    const auto spec = row.value("spec", nlohmann::json());
    std::cout << read_back(row["image"].get<std::string>(), spec, options, at).dump() << '\n';
  }
  std::cout.flush();
}

}  // namespace

void add_detect_command(CLI::App& app) {
  auto options = std::make_shared<DetectOptions>();
  CLI::App* command = app.add_subcommand(
      "detect",
      "Read an image back into a scene spec (JSON on stdout); with --spec, also judge it as the "
      "geneval reward does");
  auto* image = command->add_option("--image,-i", options->image, "Image file (PNG, JPEG, ...)");
  command->add_option("--spec", options->spec,
                      "The prompt's scene spec (JSON text, or a file holding it): adds the "
                      "judge's verdict (correct, partial, reason)");
  auto* batch = command->add_option(
      "--batch", options->batch,
      "JSON lines {\"image\": PATH, \"spec\"?: {...}} (\"-\": stdin): one line out per line in, "
      "{\"scene\", and with a spec \"correct\", \"partial\", \"reason\"}");
  image->excludes(batch);
  command
      ->add_option("--resolution", options->resolution,
                   "Resize to this side before detecting (0: as stored)")
      ->check(CLI::Range(0, 4096));
  command
      ->add_option("--position-margin", options->rules.position_margin,
                   "Centres must differ by more than this for a relation to hold "
                   "(reward.position_margin)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  command
      ->add_option("--exclusive", options->rules.exclusive,
                   "Objects the prompt did not ask for count against the image (reward.exclusive)")
      ->capture_default_str();
  command->callback([options] {
    if (!options->batch.empty()) return detect_batch(*options);
    if (options->image.empty()) throw UsageError("detect: give --image FILE or --batch FILE");
    nlohmann::json spec;
    if (!options->spec.empty()) {
      std::ifstream file(options->spec);
      std::string text = options->spec;
      if (file) text.assign(std::istreambuf_iterator<char>(file), {});
      spec = parse_json(text, "--spec");
    }
    const auto out = read_back(options->image, spec, *options, "--spec");
    // Without a spec the output is the scene itself, as it always was.
    std::cout << (spec.is_null() ? out["scene"] : out).dump(2) << std::endl;
  });
}

}  // namespace corl::tools
