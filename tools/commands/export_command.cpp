// corl export: a checkpoint in another layout. `--format hf` writes the folder transformers'
// JanusForConditionalGeneration.from_pretrained reads (config.json, model.safetensors,
// preprocessor_config.json, and the tokenizer files).
#include <filesystem>
#include <iostream>

#include "commands/commands.h"
#include "corl/model/janus_hf.h"
#include "corl/train/checkpoint.h"
#include "corl/util/error.h"
#include "corl/util/log.h"

namespace corl::tools {

void add_export_command(CLI::App& app) {
  struct Options {
    std::string checkpoint, out, format = "hf";
  };
  auto o = std::make_shared<Options>();
  CLI::App* command =
      app.add_subcommand("export", "Write a checkpoint in the Hugging Face Janus layout");
  command->add_option("--ckpt", o->checkpoint, "Checkpoint folder, or a run folder")->required();
  command->add_option("--out,-o", o->out, "Folder to write")->required();
  command->add_option("--format", o->format, "Layout to write: hf")->check(CLI::IsMember({"hf"}));
  command->callback([o] {
    namespace fs = std::filesystem;
    auto policy = train::load_policy(o->checkpoint);
    const int64_t image_token_id = policy.text->piece_id("<image_placeholder>");
    model::save_janus_hf(o->out, policy.model, policy.vq, image_token_id);
    const fs::path out(o->out);
    if (policy.hf) {
      for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                               "preprocessor_config.json", "generation_config.json"}) {
        const fs::path from = fs::path(policy.dir) / name;
        if (fs::is_regular_file(from)) {
          fs::copy_file(from, out / name, fs::copy_options::overwrite_existing);
        }
      }
    } else {
      // The unified model reads uint8 / 127.5 - 1, which is rescale 1/255 then mean = std = 0.5.
      model::ImageProcessor processor;
      processor.size = policy.model->config.image_size;
      model::save_image_processor(processor, (out / "preprocessor_config.json").string());
      // A SentencePiece model has no tokenizer.json; it travels as is for corl to read back.
      fs::copy_file(fs::path(policy.dir) / "text.model", out / "text.model",
                    fs::copy_options::overwrite_existing);
    }
    log::info("export: wrote " + o->out + " (Hugging Face Janus layout)");
    std::cout << o->out << "\n";
  });
}

}  // namespace corl::tools
