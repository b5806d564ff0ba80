#include "msconv/ui/run_queue.h"

#include <QFile>

#include <algorithm>

#include "msconv/config/config.h"
#include "msconv/error.h"
#include "msconv/workspace/workspace.h"

namespace msconv::ui {

QString settingsError(const QStringList& settings) {
  try {
    std::vector<std::string> sets;
    for (const auto& x : settings) sets.push_back(x.toStdString());
    config::Config::load("", sets);
  } catch (const Error& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}

RunQueue::RunQueue(QString workspace, std::function<int()> running, QObject* parent)
    : QObject(parent),
      file_(QString::fromStdString(workspace::Workspace(workspace.toStdString()).queueFile())),
      running_(std::move(running)) {}

QString RunQueue::load() {
  try {
    runs_.clear();
    for (const auto& r : workspace::readQueue(file_.toStdString())) {
      QueuedRun q{QString::fromStdString(r.name), {}, r.resume, r.processes};
      for (const auto& s : r.settings) q.settings << QString::fromStdString(s);
      runs_.push_back(std::move(q));
    }
    file_ok_ = true;
  } catch (const Error& e) {
    file_ok_ = false;  // left as it is until the user changes the queue
    return QString::fromStdString(e.what());
  }
  Q_EMIT changed();
  return {};
}

void RunQueue::enqueue(const QString& name, const QStringList& settings, bool resume,
                       int processes) {
  runs_.push_back({name, settings, resume, std::max(1, processes)});
  save();
  Q_EMIT changed();
}

bool RunQueue::remove(const QString& name) {
  const auto it =
      std::find_if(runs_.begin(), runs_.end(), [&](const QueuedRun& q) { return q.name == name; });
  if (it == runs_.end()) return false;
  runs_.erase(it);
  save();
  Q_EMIT changed();
  return true;
}

void RunQueue::start() {
  started_ = true;
  schedule();
}

void RunQueue::setMaxParallel(int n) {
  max_parallel_ = std::max(1, n);
  schedule();
}

void RunQueue::schedule() {
  bool any = false;
  while (started_ && !runs_.empty() && running_() < max_parallel_) {
    const QueuedRun next = runs_.front();
    runs_.erase(runs_.begin());
    save();
    any = true;
    Q_EMIT launchRequested(next.name, next.settings, next.resume,
                           next.processes);  // a launch that fails takes no slot
  }
  if (any) Q_EMIT changed();
}

void RunQueue::save() {
  if (!file_ok_) {  // keep the unreadable file for the user: set it aside before replacing it
    QFile::remove(file_ + ".bad");
    QFile::rename(file_, file_ + ".bad");
    file_ok_ = true;
  }
  std::vector<workspace::QueuedRun> out;
  for (const auto& r : runs_) {
    workspace::QueuedRun q{r.name.toStdString(), {}, r.resume, r.processes};
    for (const auto& s : r.settings) q.settings.push_back(s.toStdString());
    out.push_back(std::move(q));
  }
  try {
    workspace::writeQueue(file_.toStdString(), out);
  } catch (const Error& e) {
    Q_EMIT saveFailed(QString::fromStdString(e.what()));
  }
}

}  // namespace msconv::ui
