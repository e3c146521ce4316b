#pragma once
// --device cuda|cpu|auto: which prefill backend runs. auto picks CUDA when this build has it and a
// GPU is present, else the CPU with a notice on stderr.
#include <cstdint>
#include <string>

namespace hc {

struct ModelConfig;

enum class DeviceKind { Cuda, Cpu };

// The least host memory a prefill of n_tokens needs on `device`, to refuse a huge --length at once:
// the CPU engine holds a few activations of hidden, K/V and MLP width per token; the CUDA engine's
// activations live on the device, and the host keeps at most two final hidden states in fp32
// (validate's comparison).
int64_t prefill_host_floor_bytes(const ModelConfig& config, int64_t n_tokens, DeviceKind device);

// "cuda", "cpu" or "auto" (case-sensitive); throws InputError naming the option otherwise.
// "cuda" throws DeviceError when the build has no CUDA or no GPU is present.
// `notice`: when non-null and auto falls back to the CPU, it receives the reason.
DeviceKind resolve_device(const std::string& choice, std::string* notice = nullptr);

// True when this build has CUDA and at least one device answers.
bool cuda_device_present();

const char* device_name(DeviceKind kind);  // "cuda" / "cpu"

// The one wording of "no CUDA device" ("no CUDA device: <why>"), for every command that needs one.
std::string no_cuda_device_message();
// Throws DeviceError (exit 3) with no_cuda_device_message() when no CUDA device can be used.
void require_cuda_device();

}  // namespace hc
