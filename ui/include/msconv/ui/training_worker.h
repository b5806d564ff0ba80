// Runs one training run on its own thread and reports its events as plain values over queued
// signals (no LibTorch types cross into the GUI). Pause, resume and stop use the trainer's atomic
// flags and return at once.
#pragma once

#include <QMap>
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>
#include <thread>

namespace msconv::train {
class Trainer;
}

namespace msconv::ui {

class TrainingWorker : public QObject {
  Q_OBJECT
 public:
  // `settings`: key=value overrides of the default configuration (as msconv train --set).
  // `resume`: continue the stopped or interrupted run `name` from its last checkpoint (as
  // msconv train --resume NAME; its own configuration, `settings` unused).
  TrainingWorker(QString workspace, QString name, QStringList settings, QObject* parent = nullptr,
                 bool resume = false);
  ~TrainingWorker() override;
  void start();
  void pause(bool paused);
  void stop();
  bool running() const { return running_; }
  const QString& name() const { return name_; }
  // The store's name for the run once it started (a taken name gets -2, -3...), else name().
  const QString& runName() const { return run_name_; }
  bool hasStarted() const { return has_started_; }  // the store holds the run

 Q_SIGNALS:
  void started(const QString& run, qint64 total_steps);
  void step(qint64 step, double loss, double lr, double samples_per_s, double grad_norm,
            double eta_s);
  void validation(qint64 step, const QMap<QString, double>& metrics);
  void finished(const QString& status, const QString& checkpoint);
  void failed(const QString& message);

 private:
  QString workspace_, name_, run_name_;
  bool has_started_ = false;  // GUI thread
  bool resume_ = false;
  QStringList settings_;
  std::unique_ptr<train::Trainer> trainer_;
  std::thread thread_;
  std::atomic<bool> running_{false};  // set on the GUI thread; atomic for any reader
};

}  // namespace msconv::ui
