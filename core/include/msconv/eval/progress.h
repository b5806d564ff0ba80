// Progress and cancelling of an evaluation (the workbench's progress bar and Cancel).
#pragma once

#include <cstdint>
#include <functional>

#include "msconv/error.h"

namespace msconv::eval {

// Progress of one set's embedding: (images done, images in the set), after each batch. Returning
// false stops the evaluation, which throws Cancelled (an Error, naming the set).
using EvalProgress = std::function<bool(int64_t done, int64_t total)>;
using Cancelled = msconv::Cancelled;

}  // namespace msconv::eval
