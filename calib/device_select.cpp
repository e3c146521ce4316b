#include "calib/device_select.h"

#include "common/error.h"
#include "io/model/model_config.h"

#if defined(HEADCAL_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace hc {

bool cuda_device_present() {
#if defined(HEADCAL_HAVE_CUDA)
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error so later calls start clean
    return false;
  }
  return count > 0;
#else
  return false;
#endif
}

const char* device_name(DeviceKind kind) { return kind == DeviceKind::Cuda ? "cuda" : "cpu"; }

int64_t prefill_host_floor_bytes(const ModelConfig& config, int64_t n_tokens, DeviceKind device) {
  const int64_t fp32 = 4;
  const int64_t per_token = device == DeviceKind::Cuda
                                ? 2 * config.hidden * fp32
                                : fp32 * (4 * config.hidden + 2 * config.n_kv_heads * config.head_dim + 2 * config.intermediate);
  return per_token * n_tokens;
}

std::string no_cuda_device_message() {
#if defined(HEADCAL_HAVE_CUDA)
  return "no CUDA device: none is present or its driver does not answer (nvidia-smi lists the devices)";
#else
  return "no CUDA device: this headcal was built without CUDA";
#endif
}

void require_cuda_device() {
  if (!cuda_device_present()) throw DeviceError(no_cuda_device_message());
}

DeviceKind resolve_device(const std::string& choice, std::string* notice) {
  if (choice == "cpu") return DeviceKind::Cpu;
  if (choice != "cuda" && choice != "auto")
    throw InputError("--device", "'" + choice + "' is not one of cuda, cpu, auto");
  if (cuda_device_present()) return DeviceKind::Cuda;
  if (choice == "cuda") throw DeviceError("--device cuda: " + no_cuda_device_message());
  if (notice) *notice = no_cuda_device_message() + "; running on the CPU (slow beyond a few thousand tokens)";
  return DeviceKind::Cpu;
}

}  // namespace hc
