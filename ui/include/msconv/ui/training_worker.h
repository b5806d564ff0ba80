// Runs one training run on its own thread and reports its events as plain values over queued
// signals (no LibTorch types cross into the GUI). Pause, resume and stop use the trainer's atomic
// flags and return at once.
//
// With several processes the run is trained data-parallel as one run: this worker's thread is
// rank 0 (it alone writes the store, the log and the checkpoints, and reports the events), and
// ranks 1..N-1 are `msconv train` processes beside msconv-lab, started with torchrun's variables
// and a rendezvous on a free loopback port; each rank gets an equal share of the cores. Stop is
// agreed by every rank at the next step (each keeps to the checkpoint rank 0 writes); a rank that
// fails makes rank 0 fail within train.dist_timeout, with the rank's own error in the message.
// The worker reports the end once every process has exited.
#pragma once

#include <QMap>
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace msconv::train {
class Trainer;
}

namespace msconv::ui {

class TrainingWorker : public QObject {
  Q_OBJECT
 public:
  // `settings`: key=value overrides of the default configuration (as msconv train --set).
  // `resume`: continue the stopped or interrupted run `name` from its last checkpoint (as
  // msconv train --resume NAME; its own configuration, `settings` unused). `processes`: the ranks
  // that train it (as msconv train --nproc).
  TrainingWorker(QString workspace, QString name, QStringList settings, QObject* parent = nullptr,
                 bool resume = false, int processes = 1);
  // Stops the run (with a checkpoint) and waits for its thread and its processes: SIGTERM to
  // ranks 1..N-1, which are reaped.
  ~TrainingWorker() override;
  // Throws msconv::Error (shown by the caller) for an invalid configuration, a batch the processes
  // cannot share, a missing msconv beside msconv-lab or a rank that cannot be started.
  void start();
  void pause(bool paused);
  void stop();
  bool running() const { return running_; }
  const QString& name() const { return name_; }
  int processes() const { return processes_; }
  // msconv beside this executable: the program of ranks 1..N-1.
  static QString rankProgram();
  // The store's name for the run once it started (a taken name gets -2, -3...), else name().
  const QString& runName() const { return run_name_; }
  bool hasStarted() const { return has_started_; }  // the store holds the run

 Q_SIGNALS:
  void started(const QString& run, qint64 total_steps);
  // Before the first step: long preparation (the synthetic set generated), `done` of `total`.
  void preparing(const QString& what, qint64 done, qint64 total);
  void step(qint64 step, double loss, double lr, double samples_per_s, double grad_norm,
            double eta_s);
  void validation(qint64 step, const QMap<QString, double>& metrics);
  void finished(const QString& status, const QString& checkpoint);
  void failed(const QString& message);

 private:
  QString workspace_, name_, run_name_;
  bool has_started_ = false;  // GUI thread
  bool resume_ = false;
  int processes_ = 1;
  QStringList settings_;
  struct Child {
    int pid = -1;     // ranks 1..N-1, in rank order
    int log_fd = -1;  // its stderr (an unlinked temporary file)
    int status = -1;  // exit status once reaped (128 + signal when killed)
  };
  // Ranks 1..N-1 (`args`: msconv train ...); throws msconv::Error when one cannot start.
  void spawnChildren(const std::vector<std::string>& args, int port, int threads);
  // On the thread, after rank 0 ended: waits for (or ends) ranks 1..N-1; what the failed ones said.
  std::string reapChildren(bool failed, double timeout_s);
  std::vector<Child> children_;  // written by start() before the thread, read by it and ~
  // trainer_ and the requests made before it exists (rank 0 joins the group on its thread).
  std::mutex mutex_;
  std::unique_ptr<train::Trainer> trainer_;
  bool stop_requested_ = false, paused_ = false;
  std::thread thread_;
  std::atomic<bool> running_{false};  // set on the GUI thread; atomic for any reader
};

}  // namespace msconv::ui
