#include "cli/validation_setup.h"

#include <algorithm>

namespace hc::cli {

std::vector<ValidationPrompt> validation_prompts(const RunPrompts& run) {
  std::vector<ValidationPrompt> prompts;
  for (const SetPrompt& p : run.prompts)
    prompts.push_back({p.name, p.prompt.description, p.prompt.sha256, p.weight, p.prompt.tokens});
  return prompts;
}

std::unique_ptr<Engine> make_validation_engine(const ModelFile& model, DeviceKind device, RecordOptions base,
                                               const Profile& profile, const std::vector<ValidationPrompt>& prompts) {
  int64_t longest = 0;
  for (const ValidationPrompt& p : prompts) longest = std::max<int64_t>(longest, static_cast<int64_t>(p.tokens.size()));
  base.prober = nullptr;
  base.cuda.hook_device_bytes = validate_device_bytes(model.config(), profile, longest);
  return make_engine(model, device, base);
}

}  // namespace hc::cli
