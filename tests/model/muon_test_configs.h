// The Muon option grid the device-Muon tests share (the CPU replay in muon_math_test.cpp and the GPU comparison in
// optim_cuda_test.cpp): both precisions × both momentum-state dtypes × Nesterov on/off × decay before/after.
#pragma once

#include <string>
#include <vector>

#include "model/optim.h"

namespace pgolf::test {

struct MuonConfig {
    std::string name;
    MuonOptions options;
};

inline std::vector<MuonConfig> muon_grid_configs() {
    std::vector<MuonConfig> configs;
    for (const MuonPrecision precision : {MuonPrecision::bf16, MuonPrecision::f32}) {
        for (const bool bf16_state : {false, true}) {
            for (const bool nesterov : {true, false}) {
                for (const WeightDecayOrder order : {WeightDecayOrder::before_update, WeightDecayOrder::after_update}) {
                    MuonOptions options;
                    options.lr = 0.02;
                    options.momentum = 0.9;
                    options.backend_steps = 5;
                    options.nesterov = nesterov;
                    options.weight_decay = 0.04;
                    options.decay_order = order;
                    options.precision = precision;
                    options.bf16_state = bf16_state;
                    configs.push_back(
                        {std::string(precision == MuonPrecision::bf16 ? "bf16" : "f32") +
                             (bf16_state ? " bf16_state" : "") + (nesterov ? " nesterov" : "") +
                             (order == WeightDecayOrder::before_update ? " decay_before" : " decay_after"),
                         options});
                }
            }
        }
    }
    return configs;
}

}  // namespace pgolf::test
