// headcal record: prefill a prompt, record every head's attention statistics and probe every
// grid candidate on every head, write the atlas.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/option_checks.h"
#include "cli/record_options.h"

namespace hc::cli {

namespace {

Runner setup(CLI::App& sub) {
  std::shared_ptr<RecordCliOptions> o = add_record_options(sub);
  auto out = std::make_shared<std::string>();
  sub.add_option("-o,--out", *out, "atlas file to write (HDF5)")->required()->check(output_file());
  return [o, out]() {
    PreparedRecord r = prepare_record(*o);
    const RecordSummary s = record_atlas_set(*r.model, r.records, *out, r.options);
    print_record_summary(s);
    std::printf("wrote %s\n", out->c_str());
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("record", "prefill a prompt, record per-head attention statistics and candidate probes into an atlas",
                    setup);

}  // namespace hc::cli
