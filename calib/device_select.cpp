#include "calib/device_select.h"

#include "common/error.h"

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
