#include "corl/util/threads.h"

#include <ATen/Parallel.h>  // defines: at::set_num_threads

#include <opencv2/core/utility.hpp>  // defines: cv::setNumThreads

namespace corl {

void set_thread_count(int threads) {
  at::set_num_threads(threads);
  cv::setNumThreads(threads);
}

}  // namespace corl
