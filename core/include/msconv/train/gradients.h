// Clearing gradients between steps.
#pragma once

#include <torch/optim/optimizer.h>

namespace msconv::train {

// Sets every parameter's gradient in `opt` to an undefined tensor: PyTorch's
// optimizer.zero_grad(set_to_none=True), its default since 2.0. The next backward then stores each
// gradient where zero_grad() would have filled every gradient with zeros and added to it (a fill
// and an add of every parameter per step). Identical updates wherever a parameter gets a gradient;
// one that gets none is skipped by the optimizer's step, as in PyTorch.
void releaseGradients(torch::optim::Optimizer& opt);

}  // namespace msconv::train
