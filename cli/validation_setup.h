#pragma once
// What validate, sensitivity and calibrate --weigh-layers share to run validations: the prompts as
// validate takes them and an engine with room for the validation's device buffers.
#include <memory>
#include <vector>

#include "calib/record.h"
#include "calib/validate.h"
#include "cli/prompt_options.h"

namespace hc::cli {

// The prompts of a run (a set, or the one prompt), as validate_prompt_set takes them.
std::vector<ValidationPrompt> validation_prompts(const RunPrompts& run);

// An engine on `device` with `base`'s settings (no prober), sized for validating `profile` on the
// longest of `prompts`.
std::unique_ptr<Engine> make_validation_engine(const ModelFile& model, DeviceKind device, RecordOptions base,
                                               const Profile& profile, const std::vector<ValidationPrompt>& prompts);

}  // namespace hc::cli
