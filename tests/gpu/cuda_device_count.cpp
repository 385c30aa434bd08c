// Prints the number of CUDA devices this process sees (0 without a driver or a device): the GPU
// test scripts decide with it whether to run or skip.
#include <fmt/format.h>

#include "comms/nccl/nccl_expert_exchange.h"

int main() { fmt::print("{}\n", flashline::cuda_device_count()); }
