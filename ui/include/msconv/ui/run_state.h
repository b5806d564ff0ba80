// A run's state as the workbench shows it (the store's statuses plus "queued", which only the
// workbench's queue knows) and the actions a run's context menu offers in each state. No Qt
// widgets and no LibTorch: tested on its own.
#pragma once

#include <string>
#include <vector>

#include "msconv/store/run_store.h"

namespace msconv::ui {

enum class RunState { kQueued, kRunning, kDone, kStopped, kFailed, kInterrupted, kUnknown };
enum class RunAction { kPause, kResume, kStop, kDequeue, kEvaluate };

RunState stateOf(store::RunStatus status);
const char* stateName(RunState state);      // "queued", "running", "done", ...
const char* actionLabel(RunAction action);  // the menu's text
// Running: pause, resume, stop (the store has no paused state: both are offered); queued:
// dequeue; done or stopped: evaluate; otherwise none.
std::vector<RunAction> actionsFor(RunState state);
// Whether msconv-scope can open the run (it has a folder: anything but queued).
inline bool hasRunFolder(RunState state) {
  return state != RunState::kQueued;
}

}  // namespace msconv::ui
