#include "calib/engine.h"

#include <string>

#include "common/error.h"

namespace hc {

ResolvedRequest resolve_request(const ModelConfig& config, const PrefillRequest& request) {
  const int64_t n = static_cast<int64_t>(request.tokens.size());
  if (n == 0) throw InputError("prefill: the token sequence is empty");
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = request.tokens[static_cast<size_t>(i)];
    if (id < 0 || id >= config.vocab)
      throw InputError("prefill: token " + std::to_string(i) + " has id " + std::to_string(id) +
                       ", outside the vocabulary [0, " + std::to_string(config.vocab) + ")");
  }
  ResolvedRequest r;
  const int n_layers = static_cast<int>(config.n_layers);
  r.first_layer = request.first_layer;
  r.last_layer = request.last_layer < 0 ? n_layers - 1 : request.last_layer;
  if (r.first_layer < 0 || r.first_layer > r.last_layer || r.last_layer >= n_layers)
    throw InputError("prefill: hook layer range [" + std::to_string(request.first_layer) + ", " +
                     std::to_string(request.last_layer) + "] is outside the model's " +
                     std::to_string(n_layers) + " layers");
  r.layers_to_run = request.want_logits || request.want_final_hidden ? n_layers : r.last_layer + 1;
  if (request.want_logits) {
    if (request.logit_positions.empty()) {
      r.logit_positions.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) r.logit_positions[static_cast<size_t>(i)] = i;
    } else {
      for (int64_t p : request.logit_positions)
        if (p < 0 || p >= n)
          throw InputError("prefill: logit position " + std::to_string(p) + " is outside the " +
                           std::to_string(n) + " tokens");
      r.logit_positions = request.logit_positions;
    }
  }
  return r;
}

}  // namespace hc
