#include "msconv/train/gradients.h"

namespace msconv::train {

void releaseGradients(torch::optim::Optimizer& opt) {
  for (auto& group : opt.param_groups())
    for (auto& p : group.params())
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

}  // namespace msconv::train
