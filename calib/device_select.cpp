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

DeviceKind resolve_device(const std::string& choice, std::string* notice) {
  if (choice == "cpu") return DeviceKind::Cpu;
  if (choice != "cuda" && choice != "auto")
    throw InputError("--device", "'" + choice + "' is not one of cuda, cpu, auto");
#if defined(HEADCAL_HAVE_CUDA)
  const bool built = true;
#else
  const bool built = false;
#endif
  const bool present = built && cuda_device_present();
  if (present) return DeviceKind::Cuda;
  const std::string why = built ? "no CUDA device is present" : "this headcal was built without CUDA";
  if (choice == "cuda") throw DeviceError("--device cuda: " + why);
  if (notice) *notice = why + "; running on the CPU backend (slow beyond a few thousand tokens)";
  return DeviceKind::Cpu;
}

}  // namespace hc
