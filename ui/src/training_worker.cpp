#include "msconv/ui/training_worker.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QMetaObject>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "msconv/error.h"
#include "msconv/runtime.h"
#include "msconv/train/collective.h"
#include "msconv/train/trainer.h"

extern char** environ;

namespace msconv::ui {
namespace {

// The last non-empty line a rank wrote to its stderr (its error, as msconv prints it).
std::string lastLine(int fd) {
  if (fd < 0) return {};
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0) return {};
  const off_t from = std::max<off_t>(0, size - 4096);
  std::string text(static_cast<size_t>(size - from), '\0');
  const ssize_t n = ::pread(fd, text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  const size_t nl = text.find_last_of("\r\n");
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

TrainingWorker::TrainingWorker(QString workspace, QString name, QStringList settings,
                               QObject* parent, bool resume, int processes)
    : QObject(parent),
      workspace_(std::move(workspace)),
      name_(std::move(name)),
      resume_(resume),
      processes_(std::max(1, processes)),
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
  {
    // Every rank stops with a checkpoint: rank 0 asks, the children's SIGTERM asks too (and ends
    // a child that has not joined the group yet). The thread reaps them.
    std::lock_guard<std::mutex> lock(mutex_);
    stop_requested_ = true;
    if (trainer_) trainer_->requestStop();
    for (const auto& c : children_)
      if (c.status < 0) ::kill(c.pid, SIGTERM);
  }
  if (thread_.joinable()) thread_.join();
  for (auto& c : children_)
    if (c.log_fd >= 0) ::close(c.log_fd);
}

QString TrainingWorker::rankProgram() {
  return QDir(QCoreApplication::applicationDirPath()).filePath("msconv");
}

// Ranks 1..N-1: `msconv train` with torchrun's variables, each with `threads` intra-op threads
// and its stderr kept for the error message. On failure the ones started are ended and reaped.
void TrainingWorker::spawnChildren(const std::vector<std::string>& args, int port, int threads) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  for (int r = 1; r < processes_; ++r) {
    std::vector<std::string> env = train::rankEnvironment(r, processes_, port, threads);
    std::vector<char*> a, e;
    std::vector<std::string> argv = args;
    for (auto& x : argv) a.push_back(x.data());
    a.push_back(nullptr);
    for (auto& x : env) e.push_back(x.data());
    e.push_back(nullptr);
    Child child;
    // The rank's stderr, in an unlinked temporary file (mkostemp replaces the six X's).
    std::string log = QDir::temp().filePath("msconv-rank-XXXXXX").toStdString();
    child.log_fd = ::mkostemp(log.data(), O_CLOEXEC);
    if (child.log_fd >= 0) ::unlink(log.c_str());
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    if (child.log_fd >= 0) posix_spawn_file_actions_adddup2(&files, child.log_fd, STDERR_FILENO);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, args[0].c_str(), &files, &attr, a.data(), e.data());
    posix_spawn_file_actions_destroy(&files);
    if (rc != 0) {
      if (child.log_fd >= 0) ::close(child.log_fd);
      for (auto& c : children_) {
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, nullptr, 0);
        if (c.log_fd >= 0) ::close(c.log_fd);
      }
      children_.clear();
      posix_spawnattr_destroy(&attr);
      throw Error("processes: cannot start rank " + std::to_string(r) + " (" + args[0] +
                  "): " + std::strerror(rc));
    }
    child.pid = pid;
    std::lock_guard<std::mutex> lock(mutex_);
    children_.push_back(child);
  }
  posix_spawnattr_destroy(&attr);
}

// Waits for ranks 1..N-1 to exit: after rank 0 succeeded as long as a rank may take to notice
// the end (timeout_s + 30 s); after it failed, ending them with SIGTERM, for 10 s. Then SIGKILL.
// Returns what the ranks that failed said ("" when none did).
std::string TrainingWorker::reapChildren(bool failed, double timeout_s) {
  using Clock = std::chrono::steady_clock;
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(failed ? 10.0 : timeout_s + 30.0));
  bool killed = false;
  if (failed) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& c : children_)
      if (c.status < 0) ::kill(c.pid, SIGTERM);
  }
  for (;;) {
    bool alive = false;
    {
      // Under the lock: the destructor signals only pids that are not reaped yet.
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& c : children_) {
        if (c.status >= 0) continue;
        int st = 0;
        const pid_t p = ::waitpid(c.pid, &st, WNOHANG);
        if (p == c.pid)
          c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        else if (p < 0 && errno != EINTR)
          c.status = 255;  // not ours to wait for any more
        else
          alive = true;
      }
      if (alive && !killed && Clock::now() > deadline) {
        for (const auto& c : children_)
          if (c.status < 0) ::kill(c.pid, SIGKILL);
        killed = true;
      }
    }
    if (!alive) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string out;
  for (size_t i = 0; i < children_.size(); ++i) {
    const Child& c = children_[i];
    if (c.status == 0) continue;
    const std::string said = lastLine(c.log_fd);
    out += "; rank " + std::to_string(i + 1) +
           (c.status > 128 ? " ended by signal " + std::to_string(c.status - 128)
                           : " exited with status " + std::to_string(c.status)) +
           (said.empty() ? "" : ": " + said);
  }
  return out;
}

void TrainingWorker::start() {
  if (running_) return;
  // A run that finished has left its thread at its last statement: collect it before reuse
  // (assigning over a joinable std::thread would terminate the program).
  if (thread_.joinable()) thread_.join();
  std::vector<std::string> sets;
  for (const auto& s : settings_) sets.push_back(s.toStdString());
  config::Config config = config::Config::load("", sets);  // throws msconv::Error: caller shows it
  const auto& t = config.settings().train;
  // A resumed run's own configuration is checked by the ranks themselves.
  if (processes_ > 1 && !resume_ && t.batch_size % processes_ != 0)
    throw Error("train.batch_size: " + std::to_string(t.batch_size) +
                " samples cannot be split evenly over " + std::to_string(processes_) +
                " processes; use a multiple of " + std::to_string(processes_));
  auto make_trainer = [this](const config::Config& c, std::shared_ptr<train::Collective> group) {
    auto trainer = std::make_unique<train::Trainer>(c, workspace_.toStdString(),
                                                    name_.toStdString(), std::move(group));
    // Events arrive on the training thread; signals to GUI objects are queued.
    trainer->addObserver([this](const train::TrainEvent& e) {
      using K = train::TrainEvent::Kind;
      if (e.kind == K::kPrepare) {
        Q_EMIT preparing(QString::fromStdString(e.message), e.step, e.total_steps);
      } else if (e.kind == K::kStart) {
        Q_EMIT started(QString::fromStdString(e.message), e.total_steps);
      } else if (e.kind == K::kStep) {
        Q_EMIT step(e.step, e.loss, e.lr, e.samples_per_s, e.grad_norm, e.eta_s);
      } else if (e.kind == K::kValidation) {
        QMap<QString, double> m;
        for (const auto& [k, v] : e.metrics) m.insert(QString::fromStdString(k), v);
        Q_EMIT validation(e.step, m);
      }
    });
    return trainer;
  };
  {
    std::lock_guard<std::mutex> lock(mutex_);
    trainer_.reset();
    stop_requested_ = paused_ = false;
    for (auto& c : children_)
      if (c.log_fd >= 0) ::close(c.log_fd);
    children_.clear();
  }
  // The ranks share the cores: each gets an equal part (rank 0 here too).
  const int threads = processes_ > 1 ? std::max(1, defaultThreadCount() / processes_) : 0;
  int port = 0;
  if (processes_ == 1) {
    trainer_ = make_trainer(config, nullptr);
  } else {
    const QString program = rankProgram();
    if (!QFileInfo(program).isExecutable())
      throw Error("training with " + std::to_string(processes_) + " processes runs ranks 1.." +
                  std::to_string(processes_ - 1) + " as `msconv train`, but " +
                  program.toStdString() + " is missing (it is built beside msconv-lab)");
    std::vector<std::string> args = {program.toStdString(),    "train",  "--workspace",
                                     workspace_.toStdString(), "--name", name_.toStdString()};
    if (resume_) args.insert(args.end(), {"--resume", name_.toStdString()});
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    // train.threads 0 would share MSCONV_THREADS between the ranks once more.
    if (!resume_ && t.threads == 0)
      args.insert(args.end(), {"--set", "train.threads=" + std::to_string(threads)});
    port = train::freeLoopbackPort();
    spawnChildren(args, port, threads);
  }
  running_ = true;
  thread_ = std::thread([this, config, port, threads, make_trainer] {
    setThreads(threads);  // intra-op threads are per thread in LibTorch
    // The end is announced on the GUI thread, after every queued step event: running() turns
    // false in the same call that emits finished / failed, so no observer ever sees a run that
    // is neither running nor reported (and a destroyed worker drops the call).
    train::TrainResult r;
    std::string error;
    try {
      if (processes_ > 1) {
        train::ProcessGroupOptions o;
        o.rank = o.local_rank = 0;
        o.world = o.local_world = processes_;
        o.master_addr = "127.0.0.1";
        o.master_port = port;
        o.timeout_s = config.settings().train.dist_timeout;
        auto group = train::processGroup(o);  // blocks until every rank has joined
        std::lock_guard<std::mutex> lock(mutex_);
        trainer_ = make_trainer(config, std::move(group));
        if (stop_requested_) trainer_->requestStop();
        trainer_->setPaused(paused_);
      }
      r = trainer_->run(resume_ ? name_.toStdString() : std::string());
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
    if (processes_ > 1) {
      if (!error.empty()) {  // the group goes with rank 0's trainer: the ranks see it end
        std::lock_guard<std::mutex> lock(mutex_);
        trainer_.reset();
      }
      const std::string ranks = reapChildren(!error.empty(), config.settings().train.dist_timeout);
      if (!error.empty()) error += ranks;
      std::lock_guard<std::mutex> lock(mutex_);
      trainer_.reset();  // and with it rank 0's rendezvous
    }
    if (error.empty()) {
      const QString status = store::statusName(r.status);
      const QString ckpt = QString::fromStdString(r.final_checkpoint);
      QMetaObject::invokeMethod(
          this,
          [this, status, ckpt] {
            running_ = false;
            Q_EMIT finished(status, ckpt);
          },
          Qt::QueuedConnection);
    } else {
      const QString message = QString::fromStdString(error);
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
  std::lock_guard<std::mutex> lock(mutex_);
  paused_ = paused;
  if (trainer_) trainer_->setPaused(paused);
}

void TrainingWorker::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stop_requested_ = true;
  if (trainer_) trainer_->requestStop();
}

}  // namespace msconv::ui
