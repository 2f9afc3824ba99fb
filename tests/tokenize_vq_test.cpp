#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <set>
#include <string>

#include "corl/config/recipes.h"  // defines: config::WorldRecipe
#include "corl/data/world.h"
#include "corl/tokenize/vq.h"
#include "corl/tokenize/vq_trainer.h"

namespace corl::tokenize {
namespace {

// Small enough to run in milliseconds: 32 px images, 4 x 4 codes.
VQConfig tiny_config() {
  VQConfig c;
  c.image_size = 32;
  c.channels = 8;
  c.channel_mult = {1, 2, 2, 4};
  c.num_res_blocks = 1;
  c.z_channels = 16;
  c.codebook_size = 32;
  c.codebook_dim = 4;
  c.norm_groups = 4;
  return c;
}

TEST(VQConfigTest, JsonRoundTripAndChecks) {
  const VQConfig c = tiny_config();
  const VQConfig back = vq_config_from_json(to_json(c), "test");
  EXPECT_EQ(to_json(back), to_json(c));
  EXPECT_EQ(c.downsample(), 8);
  EXPECT_EQ(c.tokens(), 16);
  VQConfig bad = c;
  bad.norm_groups = 3;
  EXPECT_THROW(check(bad), std::invalid_argument);
  bad = c;
  bad.image_size = 36;
  EXPECT_THROW(check(bad), std::invalid_argument);
}

TEST(VQModelTest, HasLlamaGenParameterNames) {
  torch::manual_seed(0);
  VQModel model(tiny_config());
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  for (const char* name : {
           "encoder.conv_in.weight",
           "encoder.conv_blocks.0.res.0.norm1.weight",
           "encoder.conv_blocks.0.res.0.conv2.bias",
           "encoder.conv_blocks.1.res.0.nin_shortcut.weight",
           "encoder.conv_blocks.0.downsample.conv.weight",
           "encoder.conv_blocks.3.attn.0.proj_out.weight",
           "encoder.mid.0.norm2.weight",
           "encoder.mid.1.q.weight",
           "encoder.mid.2.conv1.weight",
           "encoder.norm_out.weight",
           "encoder.conv_out.weight",
           "quant_conv.weight",
           "quantize.embedding.weight",
           "post_quant_conv.weight",
           "decoder.conv_in.weight",
           "decoder.mid.1.k.weight",
           "decoder.conv_blocks.0.attn.1.v.weight",
           "decoder.conv_blocks.0.res.1.conv1.weight",
           "decoder.conv_blocks.0.upsample.conv.weight",
           "decoder.conv_blocks.3.res.1.norm2.bias",
           "decoder.norm_out.bias",
           "decoder.conv_out.weight",
       }) {
    EXPECT_TRUE(names.count(name)) << name;
  }
  // The finest decoder level does not upsample; the coarsest encoder level does not downsample.
  EXPECT_FALSE(names.count("decoder.conv_blocks.3.upsample.conv.weight"));
  EXPECT_FALSE(names.count("encoder.conv_blocks.3.downsample.conv.weight"));
}

TEST(VQModelTest, EncodeDecodeShapesAndRanges) {
  torch::manual_seed(0);
  const VQConfig c = tiny_config();
  VQModel model(c);
  model->eval();
  const auto images = torch::rand({3, 3, 32, 32}) * 2 - 1;
  const auto codes = model->encode(images);
  ASSERT_EQ(codes.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(codes.scalar_type(), torch::kLong);
  EXPECT_GE(codes.min().item<int64_t>(), 0);
  EXPECT_LT(codes.max().item<int64_t>(), c.codebook_size);
  const auto decoded = model->decode(codes);
  ASSERT_EQ(decoded.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_GE(decoded.min().item<float>(), -1.0f);
  EXPECT_LE(decoded.max().item<float>(), 1.0f);
  // decode(encode(x)) is the training pass's reconstruction, clamped.
  const auto out = model->forward(images);
  EXPECT_TRUE(torch::equal(out.quantized.codes, codes));
  EXPECT_TRUE(torch::allclose(out.reconstruction.clamp(-1, 1), decoded, 1e-5, 1e-5));
}

TEST(VectorQuantizerTest, PicksNearestL2NormalisedCode) {
  torch::manual_seed(1);
  VectorQuantizer quantizer(16, 4, /*l2_norm=*/true);
  {
    torch::NoGradGuard no_grad;
    quantizer->embedding->weight.copy_(torch::randn({16, 4}) * 3);  // not unit length
  }
  const auto z = torch::randn({2, 4, 3, 5}) * 5;
  const Quantized q = quantizer(z);
  ASSERT_EQ(q.codes.sizes(), (std::vector<int64_t>{2, 15}));
  const auto e = quantizer->embedding->weight.detach();
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t y = 0; y < 3; ++y) {
      for (int64_t x = 0; x < 5; ++x) {
        const auto v = z.index({b, torch::indexing::Slice(), y, x});
        const auto vn = v / v.norm();
        int64_t best = -1;
        double best_distance = 1e30;
        for (int64_t k = 0; k < 16; ++k) {
          const auto ek = e[k] / e[k].norm();
          const double distance = (vn - ek).pow(2).sum().item<double>();
          if (distance < best_distance) best_distance = distance, best = k;
        }
        EXPECT_EQ(q.codes[b][y * 5 + x].item<int64_t>(), best) << b << " " << y << " " << x;
        const auto chosen = e[best] / e[best].norm();
        EXPECT_TRUE(torch::allclose(q.z_q.index({b, torch::indexing::Slice(), y, x}).detach(),
                                    chosen, 1e-5, 1e-5));
      }
    }
  }
}

TEST(VQModelTest, StraightThroughGradientReachesEncoderAndCodebook) {
  torch::manual_seed(2);
  VQModel model(tiny_config());
  const auto images = torch::rand({2, 3, 32, 32}) * 2 - 1;
  const auto out = model->forward(images);
  const auto loss = (out.reconstruction - images).abs().mean() + out.quantized.codebook_loss +
                    0.25 * out.quantized.commit_loss;
  loss.backward();
  for (const auto& p : {model->encoder->conv_in->weight, model->quant_conv->weight,
                        model->quantize->embedding->weight, model->decoder->conv_out->weight}) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0);
  }
  // Without the commitment and codebook terms the encoder still learns, through the decoder.
  model->zero_grad();
  model->forward(images).reconstruction.abs().mean().backward();
  EXPECT_GT(model->encoder->conv_in->weight.grad().abs().sum().item<double>(), 0.0);
}

TEST(VectorQuantizerTest, RestartReplacesDeadCodesWithCandidates) {
  torch::manual_seed(3);
  VectorQuantizer quantizer(8, 4, /*l2_norm=*/true);
  const auto before = quantizer->embedding->weight.detach().clone();
  auto dead = torch::ones({8}, torch::kBool);
  dead.index_put_({0}, false);
  dead.index_put_({1}, false);
  const auto candidates = torch::randn({20, 4});
  EXPECT_EQ(quantizer->restart_dead_codes(dead, candidates), 6);
  const auto after = quantizer->embedding->weight.detach();
  EXPECT_TRUE(torch::equal(after.slice(0, 0, 2), before.slice(0, 0, 2)));
  const auto normalised = candidates / candidates.norm(2, 1, true);
  std::set<int64_t> picked;
  for (int64_t k = 2; k < 8; ++k) {
    const auto distance = (normalised - after[k]).pow(2).sum(1);
    const int64_t row = distance.argmin().item<int64_t>();
    EXPECT_LT(distance[row].item<double>(), 1e-10) << "code " << k;
    picked.insert(row);
  }
  EXPECT_EQ(picked.size(), 6u);  // drawn without replacement
  // Restarted codes are now the nearest ones to the candidates they came from.
  const auto codes = quantizer(candidates.t().reshape({1, 4, 4, 5})).codes.view({-1});
  for (int64_t k = 2; k < 8; ++k) {
    const int64_t row = (normalised - after[k]).pow(2).sum(1).argmin().item<int64_t>();
    EXPECT_EQ(codes[row].item<int64_t>(), k);
  }
}

TEST(VQImagesTest, MatTensorRoundTrip) {
  cv::Mat image(4, 5, CV_8UC3);
  cv::randu(image, 0, 256);
  const auto tensor = images_to_tensor({image, image});
  ASSERT_EQ(tensor.sizes(), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_NEAR(tensor[0][0][1][2].item<float>(), image.at<cv::Vec3b>(1, 2)[0] / 127.5 - 1, 1e-6);
  EXPECT_NEAR(tensor[1][2][3][4].item<float>(), image.at<cv::Vec3b>(3, 4)[2] / 127.5 - 1, 1e-6);
  const auto back = tensor_to_images(tensor);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(cv::norm(back[1], image, cv::NORM_INF), 0.0);
}

TEST(VQTrainerTest, TinyRunLowersTheLoss) {
  auto spec = data::WorldSpec::from_recipe(config::WorldRecipe{});
  spec.resolution = 32;
  torch::manual_seed(4);
  VQModel model(tiny_config());
  const auto held_out = world_batches(spec, 99)(8);
  auto l1 = [&] {
    torch::NoGradGuard no_grad;
    return (model->forward(held_out).reconstruction - held_out).abs().mean().item<double>();
  };
  const double before = l1();
  VQTrainOptions options;
  options.steps = 40;
  options.batch_size = 8;
  options.warmup_steps = 5;
  options.restart_every = 10;
  options.log_every = 0;
  const auto result = train_vq(model, world_batches(spec, 1), options);
  EXPECT_EQ(result.steps, 40);
  EXPECT_GT(result.restarted, 0);
  const double after = l1();
  EXPECT_LT(after, 0.5 * before) << before << " -> " << after;
}

TEST(VQTrainerTest, DeterministicGivenSeed) {
  auto spec = data::WorldSpec::from_recipe(config::WorldRecipe{});
  spec.resolution = 32;
  VQTrainOptions options;
  options.steps = 6;
  options.batch_size = 4;
  options.restart_every = 3;
  options.log_every = 0;
  auto run = [&] {
    torch::manual_seed(5);
    VQModel model(tiny_config());
    train_vq(model, world_batches(spec, 1), options);
    return model->quantize->embedding->weight.detach().clone();
  };
  EXPECT_TRUE(torch::equal(run(), run()));
}

TEST(VQModelTest, SaveLoadRoundTripGivesIdenticalCodes) {
  torch::manual_seed(6);
  VQModel model(tiny_config());
  model->eval();
  const std::string path = ::testing::TempDir() + "/vq_roundtrip.safetensors";
  save_vq(model, path);
  VQModel loaded = load_vq(path);
  loaded->eval();
  EXPECT_EQ(to_json(loaded->config), to_json(model->config));
  const auto images = torch::rand({2, 3, 32, 32}) * 2 - 1;
  const auto codes = model->encode(images);
  EXPECT_TRUE(torch::equal(loaded->encode(images), codes));
  EXPECT_TRUE(torch::equal(loaded->decode(codes), model->decode(codes)));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace corl::tokenize
