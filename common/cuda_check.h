#pragma once
// Check macros for CUDA runtime and cuBLAS calls: the failing call, file and line go into the
// thrown hc::DeviceError.
#include <cuda_runtime.h>

#include <string>

#include "common/error.h"

#define HC_CHECK_CUDA(call)                                                                     \
  do {                                                                                          \
    cudaError_t hc_err_ = (call);                                                               \
    if (hc_err_ != cudaSuccess)                                                                 \
      throw ::hc::DeviceError(std::string("CUDA error: ") + #call + " at " __FILE__             \
                              ":" HC_STRINGIFY(__LINE__) ": " + cudaGetErrorName(hc_err_) + " (" + \
                              cudaGetErrorString(hc_err_) + ")");                               \
  } while (0)

// After a kernel launch: launch-configuration errors surface here.
#define HC_CHECK_LAUNCH() HC_CHECK_CUDA(cudaGetLastError())

#define HC_CHECK_CUBLAS(call)                                                                   \
  do {                                                                                          \
    int hc_st_ = static_cast<int>(call);                                                        \
    if (hc_st_ != 0)                                                                            \
      throw ::hc::DeviceError(std::string("cuBLAS error: ") + #call + " at " __FILE__           \
                              ":" HC_STRINGIFY(__LINE__) ": status " + std::to_string(hc_st_)); \
  } while (0)
