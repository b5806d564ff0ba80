// The workbench's engine threads, driven the way the window drives them, without the widgets: the
// training worker's thread (pause, resume and stop from the GUI thread, destruction mid-run) and
// the inspect queue's engine thread (bursts of requests that supersede each other, real figures,
// failures, destruction with work pending). Part of msconv_thread_tests, which ./lab test also
// runs under ThreadSanitizer (tests/sanitize/run.sh thread).
#include <gtest/gtest.h>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QImage>
#include <QTemporaryDir>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "msconv/error.h"
#include "msconv/store/run_store.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/training_worker.h"
#include "msconv/workspace/workspace.h"

using namespace msconv;
using namespace msconv::ui;

namespace {

void ensureApp() {
  static int argc = 1;
  static char name[] = "msconv_thread_tests";
  static char* argv[] = {name, nullptr};
  static QCoreApplication app(argc, argv);
}

// Delivers queued events until `done` holds or `ms` pass; returns done().
bool pumpUntil(const std::function<bool()>& done, int ms) {
  ensureApp();
  QElapsedTimer t;
  t.start();
  while (!done() && t.elapsed() < ms) {
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

void pumpFor(int ms) {
  pumpUntil([] { return false; }, ms);
}

QStringList tinyRun(int steps) {
  return {"model.arch=msnet-tiny",
          "train.batch_size=8",
          "train.max_steps=" + QString::number(steps),
          "data.synthetic_identities=6",
          "data.synthetic_images_per_id=4",
          "data.val=",
          "train.log_every=1",
          "train.threads=1",
          "data.threads=2"};
}

// One worker's signals, as the Runs and Training panels receive them (queued to this thread).
struct Recorder {
  std::vector<qint64> steps;
  std::vector<qint64> arrival_ms;  // when each step arrived
  QElapsedTimer clock;
  QString status, checkpoint, failure;
  bool ended = false;
  explicit Recorder(TrainingWorker& w) {
    clock.start();
    QObject::connect(&w, &TrainingWorker::step, &ctx,
                     [this](qint64 s, double, double, double, double, double) {
                       steps.push_back(s);
                       arrival_ms.push_back(clock.elapsed());
                     });
    QObject::connect(&w, &TrainingWorker::finished, &ctx,
                     [this](const QString& s, const QString& c) {
                       status = s;
                       checkpoint = c;
                       ended = true;
                     });
    QObject::connect(&w, &TrainingWorker::failed, &ctx, [this](const QString& m) {
      failure = m;
      ended = true;
    });
  }
  QObject ctx;
};

store::RunStatus statusInStore(const QString& workspace, const QString& run) {
  return workspace::Workspace(workspace.toStdString()).openStore()->run(run.toStdString()).status;
}

}  // namespace

TEST(TrainingWorkerThread, PausesResumesAndStopsFromTheGuiThread) {
  ensureApp();
  QTemporaryDir ws;
  TrainingWorker worker(ws.path(), "paused", tinyRun(500));
  Recorder rec(worker);
  worker.start();
  ASSERT_TRUE(pumpUntil([&] { return rec.steps.size() >= 2 || rec.ended; }, 120000))
      << rec.failure.toStdString();
  ASSERT_FALSE(rec.ended) << rec.failure.toStdString();

  // The trainer looks at the flag before each step: the step under way when the pause came (and
  // one already queued to this thread) may still arrive, then none until resumed. Waits are in
  // steps of this machine (a sanitizer build is several times slower).
  const qint64 step_ms = rec.arrival_ms[1] - rec.arrival_ms[0];
  const int wait_ms = static_cast<int>(std::max<qint64>(1000, 4 * step_ms));
  const size_t at_pause = rec.steps.size();
  worker.pause(true);
  pumpFor(wait_ms);
  const size_t paused_at = rec.steps.size();
  EXPECT_LE(paused_at, at_pause + 2);
  pumpFor(wait_ms);
  EXPECT_EQ(rec.steps.size(), paused_at) << "steps went on while paused";
  EXPECT_TRUE(worker.running());

  worker.pause(false);
  ASSERT_TRUE(pumpUntil([&] { return rec.steps.size() >= paused_at + 2 || rec.ended; }, 60000));
  worker.stop();
  ASSERT_TRUE(pumpUntil([&] { return rec.ended; }, 60000));
  EXPECT_EQ(rec.status, "stopped") << rec.failure.toStdString();
  EXPECT_FALSE(worker.running());
  // Every step the trainer made arrived once, in order, from 1.
  for (size_t i = 0; i < rec.steps.size(); ++i) EXPECT_EQ(rec.steps[i], static_cast<qint64>(i + 1));
  EXPECT_LT(rec.steps.size(), 500u);
  EXPECT_TRUE(std::filesystem::exists(rec.checkpoint.toStdString()))
      << rec.checkpoint.toStdString();
  EXPECT_EQ(statusInStore(ws.path(), worker.runName()), store::RunStatus::kStopped);
}

TEST(TrainingWorkerThread, DestroyedWhileTrainingStopsTheRunAndJoins) {
  ensureApp();
  QTemporaryDir ws;
  QString run;
  {
    auto worker = std::make_unique<TrainingWorker>(ws.path(), "dropped", tinyRun(500));
    Recorder rec(*worker);
    worker->start();
    ASSERT_TRUE(pumpUntil([&] { return !rec.steps.empty() || rec.ended; }, 120000));
    ASSERT_FALSE(rec.ended) << rec.failure.toStdString();
    run = worker->runName();
    worker.reset();  // the window closing: stop requested, thread joined
  }
  // The events the training thread queued to the dead worker are dropped, not delivered.
  pumpFor(200);
  EXPECT_EQ(statusInStore(ws.path(), run), store::RunStatus::kStopped);
}

TEST(InspectQueueThread, ABurstKeepsOnlyTheNewestRequestOfEachKind) {
  ensureApp();
  InspectQueue queue;
  QObject ctx;
  std::map<QString, std::vector<int>> delivered;
  QString failure;
  QObject::connect(&queue, &InspectQueue::ready, &ctx, [&](const QString& kind, const QImage& im) {
    delivered[kind].push_back(im.width());
  });
  QObject::connect(&queue, &InspectQueue::failed, &ctx,
                   [&](const QString&, const QString& m) { failure = m; });
  std::atomic<int> executed{0};
  const int n = 100;
  for (int i = 1; i <= n; ++i) {
    for (const QString kind : {"features", "gradcam"}) {
      queue.submit(kind, [i, &executed] {
        ++executed;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return QImage(i, 1, QImage::Format_RGB32);
      });
    }
  }
  ASSERT_TRUE(pumpUntil(
      [&] {
        return !delivered["features"].empty() && delivered["features"].back() == n &&
               !delivered["gradcam"].empty() && delivered["gradcam"].back() == n;
      },
      30000));
  pumpFor(100);
  EXPECT_TRUE(failure.isEmpty());
  EXPECT_EQ(executed + queue.superseded(), 2 * n);  // each request ran or was replaced
  EXPECT_GT(queue.superseded(), 0);                 // dragging a control builds no backlog
  for (const auto& [kind, widths] : delivered) {
    // Never an older figure after a newer one.
    for (size_t i = 1; i < widths.size(); ++i)
      EXPECT_LT(widths[i - 1], widths[i]) << kind.toStdString();
  }

  queue.submit("features", []() -> QImage { throw Error("broken.ckpt: not a checkpoint"); });
  ASSERT_TRUE(pumpUntil([&] { return !failure.isEmpty(); }, 30000));
  EXPECT_EQ(failure, "broken.ckpt: not a checkpoint");
}

TEST(InspectQueueThread, DestroyedWithWorkPendingRunsAtMostTheJobUnderWay) {
  ensureApp();
  std::atomic<int> executed{0};
  {
    InspectQueue queue;
    for (const QString kind : {"a", "b", "c", "d"}) {
      queue.submit(kind, [&executed] {
        ++executed;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return QImage(1, 1, QImage::Format_RGB32);
      });
    }
  }
  EXPECT_LE(executed.load(), 1);
  pumpFor(100);  // the finished job's queued `ready` goes nowhere
}

TEST(InspectQueueThread, RendersRealFiguresOfATrainedModelOffTheGuiThread) {
  ensureApp();
  QTemporaryDir ws;
  QString checkpoint;
  {
    TrainingWorker worker(ws.path(), "figures", tinyRun(2));
    Recorder rec(worker);
    worker.start();
    ASSERT_TRUE(pumpUntil([&] { return rec.ended; }, 180000));
    ASSERT_EQ(rec.status, "done") << rec.failure.toStdString();
    checkpoint = rec.checkpoint;
  }
  const QStringList layers = operatorLayers(checkpoint);
  ASSERT_FALSE(layers.isEmpty());
  const QString image = datasetImageFile(trainingSetOf(checkpoint), 0);

  InspectQueue queue;
  QObject ctx;
  std::map<QString, QImage> last;
  std::map<QString, QString> failures;
  QObject::connect(&queue, &InspectQueue::ready, &ctx,
                   [&](const QString& kind, const QImage& im) { last[kind] = im; });
  QObject::connect(&queue, &InspectQueue::failed, &ctx,
                   [&](const QString& kind, const QString& m) { failures[kind] = m; });
  // A user sweeping the layer box and the CAM controls: only the last of each kind matters.
  for (const auto& layer : layers) {
    queue.submit("features",
                 [=] { return featureMapFigure(checkpoint, image, layer, 4, "viridis", true); });
    queue.submit("gradcam", [=] {
      return gradcamFigure({checkpoint, checkpoint}, image, "gradcam", "norm", "", "jet", 0.5);
    });
  }
  const QString missing = ws.filePath("none.ckpt");
  queue.submit("missing", [=] {
    return featureMapFigure(missing, image, layers.front(), 4, "viridis", true);
  });
  ASSERT_TRUE(pumpUntil(
      [&] { return last.count("features") && last.count("gradcam") && failures.count("missing"); },
      180000));
  EXPECT_FALSE(last["features"].isNull());
  EXPECT_FALSE(last["gradcam"].isNull());
  EXPECT_GT(last["gradcam"].width(), 112);
  EXPECT_NE(failures["missing"].toStdString().find("none.ckpt"), std::string::npos)
      << failures["missing"].toStdString();
  EXPECT_EQ(failures.count("features") + failures.count("gradcam"), 0u);
}
