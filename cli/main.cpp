// pgolf entry point: builds the command tree and turns every error into one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/audit_commands.h"
#include "cli/data_commands.h"
#include "cli/export_commands.h"
#include "cli/model_commands.h"
#include "cli/records_commands.h"
#include "core/build_info.h"
#include "core/error.h"

#ifdef PGOLF_HARNESS_TOOLS  // not in the counted engine bundle (docs/code-bytes.md)
#include "cli/check_commands.h"
#include "cli/rerun_commands.h"
#endif

namespace {

void main_print_version() {
    std::cout << "pgolf " << pgolf::build_info_version() << "\n"
              << "cuda backend: " << (pgolf::build_info_has_cuda() ? "built (sm_90a)" : "not built") << "\n"
              << "cudnn: " << pgolf::build_info_cudnn() << "\n";
    std::string reason;
    const auto devices = pgolf::build_info_cuda_devices(reason);
    if (devices.empty()) std::cout << "cuda devices: none (" << reason << ")\n";
    for (const auto& device : devices) {
        std::cout << "cuda device " << device.index << ": " << device.name << " (sm_" << device.major << device.minor
                  << ", " << device.memory_bytes / (1024 * 1024) << " MiB)\n";
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pgolf: reproducibility and compliance harness for the OpenAI Parameter Golf challenge", "pgolf"};
    app.require_subcommand(0, 1);
    bool version = false;
    app.add_flag("--version", version, "Print version, build and CUDA device information");
    pgolf::data_commands_register(app);
    pgolf::model_commands_register(app);
    pgolf::export_commands_register(app);
    pgolf::audit_commands_register(app);
    pgolf::records_commands_register(app);
#ifdef PGOLF_HARNESS_TOOLS
    pgolf::check_commands_register(app);
    pgolf::rerun_commands_register(app);
#endif
    try {
        app.parse(argc, argv);
        if (version) {
            main_print_version();
            return 0;
        }
        if (app.get_subcommands().empty()) {
            std::cout << app.help();
            return 0;
        }
    } catch (const CLI::CallForHelp& help) {
        return app.exit(help);
    } catch (const CLI::CallForAllHelp& help) {
        return app.exit(help);
    } catch (const CLI::RuntimeError& failure) {
        return failure.get_exit_code();  // the command already printed its reasons
    } catch (const CLI::ParseError& failure) {
        std::cerr << "pgolf: error: " << failure.what() << " (see --help)\n";
        return 2;
    } catch (const std::exception& failure) {
        std::cerr << "pgolf: error: " << failure.what() << "\n";
        return 1;
    }
    return 0;
}
