#include "msconv/ui/run_state.h"

namespace msconv::ui {

RunState stateOf(store::RunStatus status) {
  switch (status) {
    case store::RunStatus::kRunning:
      return RunState::kRunning;
    case store::RunStatus::kDone:
      return RunState::kDone;
    case store::RunStatus::kStopped:
      return RunState::kStopped;
    case store::RunStatus::kFailed:
      return RunState::kFailed;
    case store::RunStatus::kInterrupted:
      return RunState::kInterrupted;
    case store::RunStatus::kUnknown:
      break;
  }
  return RunState::kUnknown;
}

const char* stateName(RunState state) {
  switch (state) {
    case RunState::kQueued:
      return "queued";
    case RunState::kRunning:
      return "running";
    case RunState::kDone:
      return "done";
    case RunState::kStopped:
      return "stopped";
    case RunState::kFailed:
      return "failed";
    case RunState::kInterrupted:
      return "interrupted";
    case RunState::kUnknown:
      break;
  }
  return "unknown";
}

const char* actionLabel(RunAction action) {
  switch (action) {
    case RunAction::kPause:
      return "Pause";
    case RunAction::kResume:
      return "Resume";
    case RunAction::kStop:
      return "Stop (keeps a checkpoint)";
    case RunAction::kDequeue:
      return "Remove from the queue";
    case RunAction::kEvaluate:
      return "Evaluate";
  }
  return "";
}

std::vector<RunAction> actionsFor(RunState state) {
  switch (state) {
    case RunState::kRunning:
      return {RunAction::kPause, RunAction::kResume, RunAction::kStop};
    case RunState::kQueued:
      return {RunAction::kDequeue};
    case RunState::kDone:
    case RunState::kStopped:
      return {RunAction::kEvaluate};
    default:
      return {};
  }
}

}  // namespace msconv::ui
