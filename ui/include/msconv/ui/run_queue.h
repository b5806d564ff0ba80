// The workbench's run queue: runs wait until one of `maxParallel` slots is free. It lives in the
// workspace's queue file (workspace::readQueue / writeQueue), so a prepared queue, such as the
// demo's, is there when the window opens. An unreadable file is left as it is until the queue
// changes, and then set aside as FILE.bad rather than lost.
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>

#include <functional>
#include <vector>

namespace msconv::ui {

struct QueuedRun {
  QString name;
  QStringList settings;  // key=value, as msconv train --set
  bool resume = false;   // continue the stopped or interrupted run NAME (settings unused)
  int processes = 1;     // local ranks training it as one run (TrainingWorker)
};

// Why a run's settings (key=value, as msconv train --set) cannot train: the trainer's own
// validation, naming the key; "" when they can. What the New Run form and msconv-lab --enqueue
// check before a run is queued.
QString settingsError(const QStringList& settings);

class RunQueue : public QObject {
  Q_OBJECT
 public:
  // `running`: how many runs train now (the slots in use).
  RunQueue(QString workspace, std::function<int()> running, QObject* parent = nullptr);
  // Reads the queue file. Returns the error (naming the file) of an unreadable one, else "".
  QString load();
  const std::vector<QueuedRun>& runs() const { return runs_; }
  void enqueue(const QString& name, const QStringList& settings, bool resume = false,
               int processes = 1);
  bool remove(const QString& name);  // false when no queued run has the name
  // From now on queued runs start whenever a slot is free.
  void start();
  // Queued runs wait again (in the queue and its file) until the next start().
  void hold() { started_ = false; }
  int maxParallel() const { return max_parallel_; }
  void setMaxParallel(int n);
  // Starts queued runs while slots are free: each leaves the queue (and the file) and is handed
  // to launchRequested. Call it whenever a run ends.
  void schedule();

 Q_SIGNALS:
  void launchRequested(const QString& name, const QStringList& settings, bool resume,
                       int processes);
  void changed();                           // the queue's content
  void saveFailed(const QString& message);  // the file could not be written (named)

 private:
  void save();
  QString file_;
  std::function<int()> running_;
  std::vector<QueuedRun> runs_;
  bool started_ = false, file_ok_ = true;
  int max_parallel_ = 1;
};

}  // namespace msconv::ui
