#include "msconv/train/trainer.h"

#include <chrono>
#include <cmath>
#include <thread>

#include "msconv/workspace/workspace.h"
#include "train/session.h"

namespace msconv::train {

double learningRate(const config::RunSettings::Train& t, int64_t step, int64_t total,
                    int64_t steps_per_epoch) {
  const double warm = t.warmup_epochs * steps_per_epoch;
  if (warm > 0 && step < warm) return t.lr * (step + 1) / warm;
  const double x = total > warm ? (step - warm) / (total - warm) : 1.0;
  if (t.schedule == "cosine")
    return t.lr_min + (t.lr - t.lr_min) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, x)));
  if (t.schedule == "poly") return t.lr * std::pow(std::max(0.0, 1.0 - x), 2.0);
  return t.lr;
}

Trainer::Trainer(Config config, std::string workspace, std::string name,
                 std::shared_ptr<Collective> group)
    : config_(std::move(config)),
      workspace_(std::move(workspace)),
      name_(std::move(name)),
      group_(group ? std::move(group) : singleProcess()) {}

void Trainer::emit(const TrainEvent& e) {
  for (auto& o : observers_) o(e);
}

TrainResult Trainer::run(const std::string& resume) {
  Session session(
      config_, workspace::Workspace(workspace_), name_, group_,
      [this](const TrainEvent& e) { emit(e); }, [this] { return stop_.load(); });
  try {
    session.prepare(resume);
    while (!session.finished()) {
      // Every rank pauses and stops together (a lone paused rank would stall the others).
      const auto agreed = session.agree(stop_, paused_);
      if (agreed.stop) {
        stop_ = true;
        break;
      }
      if (agreed.pause) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      session.step();
      if (session.validationDue()) session.validate();
      if (session.checkpointDue()) session.checkpoint();
    }
    // A stop that arrives with the last step leaves a finished run: done, not stopped.
    return session.finish(stop_ && !session.finished() ? store::RunStatus::kStopped
                                                       : store::RunStatus::kDone);
  } catch (const Cancelled& e) {
    if (session.hasRun()) {
      session.fail(e.what());
      group_->abort(e.what());
      throw;
    }
    // Stopped while its data was prepared: no run was made, nothing to keep.
    TrainResult r;
    r.run_name = name_;
    r.status = store::RunStatus::kStopped;
    return r;
  } catch (const std::exception& e) {
    session.fail(e.what());
    group_->abort(e.what());
    throw;
  } catch (...) {
    session.fail("unknown error");
    group_->abort("unknown error");
    throw;
  }
}

}  // namespace msconv::train
