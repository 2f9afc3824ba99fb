// The translation unit that compiles the shared precompiled <torch/torch.h> (CMakeLists.txt).
