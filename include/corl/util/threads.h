// The one place the intra-op thread counts are set, for LibTorch and OpenCV alike: left to
// themselves both size their pools to the machine, which oversubscribes small hosts.
#pragma once

namespace corl {

void set_thread_count(int threads);

}  // namespace corl
