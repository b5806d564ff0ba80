#include "msconv/ui/training_worker.h"

#include <QMetaObject>

#include "msconv/error.h"
#include "msconv/runtime.h"
#include "msconv/train/trainer.h"

namespace msconv::ui {

TrainingWorker::TrainingWorker(QString workspace, QString name, QStringList settings,
                               QObject* parent, bool resume)
    : QObject(parent),
      workspace_(std::move(workspace)),
      name_(std::move(name)),
      resume_(resume),
      settings_(std::move(settings)) {
  qRegisterMetaType<QMap<QString, double>>("QMap<QString,double>");
  run_name_ = name_;
  // First connection: later slots of the same (queued) signal see the store's name.
  connect(this, &TrainingWorker::started, this, [this](const QString& run, qint64) {
    run_name_ = run;
    has_started_ = true;
  });
}

TrainingWorker::~TrainingWorker() {
  if (trainer_) trainer_->requestStop();
  if (thread_.joinable()) thread_.join();
}

void TrainingWorker::start() {
  if (running_) return;
  // A run that finished has left its thread at its last statement: collect it before reuse
  // (assigning over a joinable std::thread would terminate the program).
  if (thread_.joinable()) thread_.join();
  std::vector<std::string> sets;
  for (const auto& s : settings_) sets.push_back(s.toStdString());
  config::Config config = config::Config::load("", sets);  // throws msconv::Error: caller shows it
  trainer_ =
      std::make_unique<train::Trainer>(config, workspace_.toStdString(), name_.toStdString());
  // Events arrive on the training thread; signals to GUI objects are queued.
  trainer_->addObserver([this](const train::TrainEvent& e) {
    using K = train::TrainEvent::Kind;
    if (e.kind == K::kStart) {
      Q_EMIT started(QString::fromStdString(e.message), e.total_steps);
    } else if (e.kind == K::kStep) {
      Q_EMIT step(e.step, e.loss, e.lr, e.samples_per_s, e.grad_norm, e.eta_s);
    } else if (e.kind == K::kValidation) {
      QMap<QString, double> m;
      for (const auto& [k, v] : e.metrics) m.insert(QString::fromStdString(k), v);
      Q_EMIT validation(e.step, m);
    }
  });
  running_ = true;
  thread_ = std::thread([this] {
    setThreads(0);  // intra-op threads are per thread in LibTorch
    // The end is announced on the GUI thread, after every queued step event: running() turns
    // false in the same call that emits finished / failed, so no observer ever sees a run that
    // is neither running nor reported (and a destroyed worker drops the call).
    try {
      const auto r = trainer_->run(resume_ ? name_.toStdString() : std::string());
      const QString status = store::statusName(r.status);
      const QString ckpt = QString::fromStdString(r.final_checkpoint);
      QMetaObject::invokeMethod(
          this,
          [this, status, ckpt] {
            running_ = false;
            Q_EMIT finished(status, ckpt);
          },
          Qt::QueuedConnection);
    } catch (const std::exception& e) {
      const QString message = QString::fromStdString(e.what());
      QMetaObject::invokeMethod(
          this,
          [this, message] {
            running_ = false;
            Q_EMIT failed(message);
          },
          Qt::QueuedConnection);
    }
  });
}

void TrainingWorker::pause(bool paused) {
  if (trainer_) trainer_->setPaused(paused);
}

void TrainingWorker::stop() {
  if (trainer_) trainer_->requestStop();
}

}  // namespace msconv::ui
