// The workbench's widgets on Qt's offscreen platform: the smoothing the charts draw, the New Run
// form blocking launch on an invalid value, and a tiny run launched from the window adding points
// to the training chart as its worker reports steps.
#include <QComboBox>
#include <QMessageBox>
#include <QSettings>
#include <QTabWidget>

#include <cmath>
#include <cstdlib>
#include <opencv2/imgproc.hpp>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include "msconv/viz/figure.h"

#include <QElapsedTimer>
#include <QJsonArray>
#include <QScrollBar>
#include <QTableView>
#include <QTableWidget>
#include <random>
#include "msconv/data/decode.h"
#include "msconv/data/ijb.h"
#include "msconv/data/pairs.h"
#include "msconv/eval/det.h"
#include "msconv/eval/evaluate.h"
#include "msconv/eval/failures.h"
#include "msconv/eval/pair_scores.h"
#include "msconv/inspect/faithfulness.h"
#include "msconv/io/npy.h"
#include "msconv/model/checkpoint.h"
#include "msconv/store/run_store.h"
#include "msconv/study/study.h"
#include "msconv/ui/compare_panel.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/eval_panel.h"
#include "msconv/ui/failures_view.h"
#include "msconv/ui/inspect_panel.h"
#include "msconv/ui/main_window.h"
#include "msconv/ui/report.h"
#include "msconv/ui/runs_panel.h"
#include "msconv/ui/smoothing.h"
#include "msconv/ui/study_panel.h"
#include "msconv/ui/training_panel.h"
#include "msconv/ui/training_worker.h"
#include "msconv/workspace/workspace.h"
#include "qcustomplot_include.h"  // ui/src: QCustomPlot under QT_NO_KEYWORDS

using namespace msconv::ui;

namespace {

// No warning boxes while it lives (a test that checks failures in the panels themselves).
struct QuietBoxes {
  QuietBoxes() { setWarningBoxesEnabled(false); }
  ~QuietBoxes() { setWarningBoxesEnabled(true); }
};

// Rows of a panel's table, found by its object name.
int tableRows(const QWidget* panel, const char* name) {
  const auto* t = panel->findChild<QTableWidget*>(name);
  return t ? t->rowCount() : -1;
}

int rocCurves(const QWidget* panel) {
  const auto* p = panel->findChild<QCustomPlot*>("roc");
  return p ? p->graphCount() : -1;
}

std::vector<msconv::workspace::QueuedRun> queueOf(const QTemporaryDir& ws) {
  return msconv::workspace::readQueue(
      msconv::workspace::Workspace(ws.path().toStdString()).queueFile());
}

QString queueFileOf(const QTemporaryDir& ws) {
  return QString::fromStdString(msconv::workspace::Workspace(ws.path().toStdString()).queueFile());
}

// A chart export against tests/golden (MSCONV_UPDATE_GOLDEN=1 rewrites it): mean difference of
// at most 2 levels and at most 1 % of pixels off by more than the antialiasing noise.
bool matchesGolden(const QImage& image, const QString& name, QString* why) {
  const QImage rgb = image.convertToFormat(QImage::Format_RGB888);
  cv::Mat m(rgb.height(), rgb.width(), CV_8UC3, const_cast<uchar*>(rgb.constBits()),
            static_cast<size_t>(rgb.bytesPerLine()));
  cv::Mat bgr;
  cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
  const std::string ref = std::string(MSCONV_GOLDEN_DIR) + "/" + name.toStdString();
  if (std::getenv("MSCONV_UPDATE_GOLDEN")) msconv::viz::writePng(ref, bgr);
  std::string reason;
  const bool ok = msconv::viz::matchesGolden(bgr, ref, 2.0, 0.01, ref + ".candidate.png", &reason);
  *why = QString::fromStdString(reason);
  return ok;
}

// Two runs' curves with fixed values and times: what the chart golden images draw.
void fillCharts(TrainingPanel& p) {
  const double t0 = 1.7e9;
  for (int run = 0; run < 2; ++run) {
    const QString name = run == 0 ? "msnet-tiny-msconv" : "msnet-tiny-skconv";
    for (int s = 1; s <= 60; ++s) {
      const double noise = std::sin(s * 1.7 + run) * 0.15;
      p.addStep(name, s * 10, 4.0 * std::exp(-s / (25.0 + 10 * run)) + 1 + noise,
                0.1 * (1 - s / 61.0), 400 + 30 * std::cos(s * 0.5) - 60 * run, 2 + noise,
                t0 + s * 6.0 * (1 + run * 0.3));
      if (s % 10 == 0) {
        QMap<QString, double> m;
        m["val/val.bin/accuracy"] = 0.6 + 0.05 * s / 10 - 0.03 * run;
        m["val/val.bin/tar@far=1e-02"] = 0.3 + 0.06 * s / 10 - 0.05 * run;
        m["val/val.bin/tar@far=1e-03"] = 0.1 + 0.04 * s / 10 - 0.02 * run;
        p.addValidation(name, s * 10, m, t0 + s * 6.0 * (1 + run * 0.3));
      }
    }
  }
}

// A small study: two operators x three seeds of msnet-tiny, two steps each.
const char* kMiniStudy = R"({"name": "mini",
  "base": {"model.arch": "msnet-tiny", "train.max_steps": 2, "train.batch_size": 8},
  "axes": {"model.op": ["msconv-official", "skconv"]},
  "seeds": [0, 1, 2]})";

// A run in a workspace's store with a status, its last logged step and (failed) its error.
void storeRun(const QString& ws, const std::string& name, msconv::store::RunStatus status,
              int64_t step, const std::string& config = "{}", const std::string& error = {}) {
  const msconv::workspace::Workspace w(ws.toStdString());
  const auto db = w.openStoreToWrite();
  const auto row = db->createRun(name, config, "msnet-tiny", "msconv-official");
  if (step > 0) db->addMetrics(row.id, step, {{"loss", 1.0}});
  if (status != msconv::store::RunStatus::kRunning) db->setStatus(row.id, status);
  if (!error.empty()) {
    QDir().mkpath(QString::fromStdString(w.runDir(name)));
    QFile log(QString::fromStdString(w.runFile(name, msconv::workspace::RunFile::kLog)));
    QVERIFY(log.open(QIODevice::WriteOnly));
    log.write(("error: " + error + "\n").c_str());
  }
}

// A hand-made study report in eval::studyReport's shape: the reference and skconv, three seeds.
QString miniReport() {
  return R"({"study": "mini", "reference": "msconv-official", "checkpoint": "best",
  "cells": [
   {"id": "msconv-official", "axes": {"model.op": "msconv-official"}, "reference": true,
    "runs": [{"run": "r0", "seed": 0, "status": "done", "step": 2},
             {"run": "r1", "seed": 1, "status": "done", "step": 2},
             {"run": "r2", "seed": 2, "status": "failed", "step": 1, "excluded": "failed: x"}],
    "metrics": {
     "val.bin/accuracy": {"values": [0.89, 0.91, null], "n": 2, "mean": 0.90, "std": 0.01,
                          "ci95": [0.88, 0.92]},
     "val.bin/tar@far=1e-03": {"values": [0.5, 0.6, null], "n": 2, "mean": 0.55, "std": 0.07,
                               "ci95": [0.4, 0.7]},
     "params_m": {"values": [1.5, 1.5, null], "n": 2, "mean": 1.5, "std": 0, "ci95": [1.5, 1.5]},
     "gmacs": {"values": [0.2, 0.2, null], "n": 2, "mean": 0.2, "std": 0, "ci95": [0.2, 0.2]},
     "train_samples_per_s": {"values": [400, 420, null], "n": 2, "mean": 410, "std": 14.1,
                             "ci95": [390, 430]}}},
   {"id": "skconv", "axes": {"model.op": "skconv"}, "reference": false,
    "runs": [{"run": "s0", "seed": 0, "status": "done", "step": 2},
             {"run": "s1", "seed": 1, "status": "done", "step": 2},
             {"run": "s2", "seed": 2, "status": "done", "step": 2}],
    "metrics": {
     "val.bin/accuracy": {"values": [0.915, 0.92, 0.925], "n": 3, "mean": 0.92, "std": 0.005,
                          "ci95": [0.91, 0.93]},
     "val.bin/tar@far=1e-03": {"values": [0.5, 0.5, 0.5], "n": 3, "mean": 0.5, "std": 0,
                               "ci95": [0.5, 0.5]},
     "params_m": {"values": [1.2, 1.2, 1.2], "n": 3, "mean": 1.2, "std": 0, "ci95": [1.2, 1.2]},
     "gmacs": {"values": [0.3, 0.3, 0.3], "n": 3, "mean": 0.3, "std": 0, "ci95": [0.3, 0.3]},
     "train_samples_per_s": {"values": [300, 300, 300], "n": 3, "mean": 300, "std": 0,
                             "ci95": [300, 300]}}}],
  "comparisons": [
   {"cell": "skconv", "metric": "val.bin/accuracy", "n": 2, "diff": 0.02, "ci95": [0.01, 0.03],
    "t": 5.0, "p_t": 0.005, "p_holm": 0.01, "p_wilcoxon": null, "significant": true},
   {"cell": "skconv", "metric": "val.bin/tar@far=1e-03", "n": 2, "diff": -0.05,
    "ci95": [-0.2, 0.1], "t": -1.0, "p_t": 0.4, "p_holm": 0.4, "p_wilcoxon": null,
    "significant": false}],
  "within_seed": [], "excluded": [{"run": "r2", "cell": "msconv-official", "seed": 2,
                                   "reason": "failed: x"}],
  "conclusions": ["skconv val.bin/accuracy +2.00 points over msconv-official (significant)."]})";
}

// The graphs of every chart of a panel with this name (the runs' smoothed curves carry it).
QList<QCPGraph*> graphsNamed(const QWidget* panel, const QString& name) {
  QList<QCPGraph*> out;
  for (auto* p : panel->findChildren<QCustomPlot*>())
    for (int i = 0; i < p->graphCount(); ++i)
      if (p->graph(i)->name() == name) out << p->graph(i);
  return out;
}

}  // namespace

class UiTest : public QObject {
  Q_OBJECT
  QTemporaryDir settings_dir_;
  QStringList unexpected_dialogs_;  // captions of file dialogs a test reached without its stub

 private Q_SLOTS:
  void initTestCase() {
    // Settings go to a temporary folder, not the user's.
    QCoreApplication::setOrganizationName("MSConvLabTest");
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, settings_dir_.path());
    // No real file dialog ever opens here (Qt's own deletes files from the Delete key): a test
    // that reaches one without its own stub is reported at the end.
    setFileDialogStub([this](const FileDialogRequest& r) {
      unexpected_dialogs_ << r.caption;
      return QString();
    });
  }

  void cleanupTestCase() {
    QVERIFY2(unexpected_dialogs_.isEmpty(), qPrintable(unexpected_dialogs_.join(", ")));
  }

  // Every button and menu action that opens a file dialog asks through msconv::ui's stub, and
  // asks for a read-only dialog (no renaming, deleting or new folders).
  void everyFileDialogIsReadOnlyAndStubbed() {
    QTemporaryDir ws;
    MainWindow w(ws.path());
    QList<FileDialogRequest> asked;
    setFileDialogStub([&](const FileDialogRequest& r) {
      asked << r;
      return QString();  // cancelled
    });
    int buttons = 0;
    for (auto* b : w.findChildren<QPushButton*>()) {
      if (!b->text().endsWith("...")) continue;
      ++buttons;
      b->click();
    }
    for (auto* a : w.findChildren<QAction*>())
      if (a->text().endsWith("...")) ++buttons, a->trigger();
    // Open, Add set, face Open, two figure exports, arrays export, faithfulness's pair set,
    // curves, CSV, the Compare panel's faithfulness set and Add model, menu; the Study panel's
    // Open and Export.
    QCOMPARE(buttons, 14);
    QCOMPARE(asked.size(), buttons);
    int opens = 0;
    for (const auto& r : asked) {
      QVERIFY2(r.options.testFlag(QFileDialog::ReadOnly), qPrintable(r.caption));
      opens += r.kind == FileDialogKind::kOpen;
    }
    QCOMPARE(opens, 8);
    // A path the stub answers is used: the Evaluation panel's Open... takes the checkpoint.
    QFile junk(ws.filePath("picked.ckpt"));
    QVERIFY(junk.open(QIODevice::WriteOnly));
    junk.write("not a checkpoint");
    junk.close();
    setFileDialogStub([&](const FileDialogRequest&) { return ws.filePath("picked.ckpt"); });
    for (auto* b : w.evaluation()->findChildren<QPushButton*>())
      if (b->text() == "Open...") b->click();
    const auto boxes = w.evaluation()->findChildren<QMessageBox*>();
    QCOMPARE(boxes.size(), 1);  // the foreign file, named
    QVERIFY2(boxes.front()->text().contains("picked.ckpt"), qPrintable(boxes.front()->text()));
    setFileDialogStub([this](const FileDialogRequest& r) {
      unexpected_dialogs_ << r.caption;
      return QString();
    });
  }

  // Error analysis on two tiny trained runs: the Evaluation panel's DET curves (one per model)
  // and EER column against the core's EER of the scores it kept in the workspace, the score
  // histogram's threshold against the core's, the failure browser's rows against
  // eval::listFailures (one model, then the two's disagreements) and a selected row's pair CAMs;
  // the Inspect panel's arrays (read back by io::readNpy) and faithfulness table (against
  // inspect::faithfulnessOnPairs, a superseded request dropped); the Compare panel's EER and
  // faithfulness columns; the report's DET files.
  void errorAnalysisOnTwoTinyRuns() {
    QuietBoxes quiet;
    QTemporaryDir ws, syn, out;
    QVERIFY(QProcess::execute(MSCONV_BIN, {"data", "synth", "-o", syn.path(), "--identities", "4",
                                           "--images-per-id", "2", "--pairs", "20",
                                           "--val-identities", "4"}) == 0);
    const QString bin = QDir(syn.path()).filePath("val.bin");
    for (const QString op : {"msconv-official", "skconv"}) {
      const QStringList args = {"train",
                                "--workspace",
                                ws.path(),
                                "--name",
                                op,
                                "--set",
                                "model.arch=msnet-tiny",
                                "--set",
                                "model.op=" + op,
                                "--set",
                                "train.max_steps=2",
                                "--set",
                                "train.batch_size=8",
                                "--set",
                                "data.synthetic_identities=6",
                                "--set",
                                "data.synthetic_images_per_id=4",
                                "--set",
                                "data.val=" + bin,
                                "--set",
                                "train.threads=1",
                                "--set",
                                "data.threads=1"};
      QProcess train;
      train.start(MSCONV_BIN, args);
      QVERIFY(train.waitForFinished(120000));
      QVERIFY2(train.exitCode() == 0, train.readAllStandardError().constData());
    }
    const auto checkpoints = runCheckpoints(ws.path());
    QCOMPARE(checkpoints.size(), size_t(2));
    EvalPanel panel(ws.path());
    QCOMPARE(panel.checkpointBox()->count(), 2);
    panel.binsEdit()->setText(bin);
    QSignalSpy all(&panel, &EvalPanel::allEvaluated);
    panel.evaluateAll();
    QVERIFY(all.wait(120000));
    QCoreApplication::processEvents();
    QCOMPARE(tableRows(&panel, "verification"), 2);
    QCOMPARE(panel.findChild<QCustomPlot*>("det")->graphCount(), 2);
    // The EER column is the core's EER of the per-pair scores kept in the workspace.
    const msconv::workspace::Workspace space(ws.path().toStdString());
    std::map<QString, msconv::eval::PairScores> kept;
    for (const auto& [name, ck] : checkpoints) {
      const std::string file = msconv::eval::pairScoresFile(space, ck.toStdString(), "val");
      auto s = msconv::eval::readPairScores(
          file, msconv::eval::keptScoresKey(ck.toStdString(), bin.toStdString(), {}));
      QVERIFY2(s.has_value(), file.c_str());
      QCOMPARE(s->size(), size_t(20));
      kept[name] = std::move(*s);
    }
    const auto* table = panel.findChild<QTableWidget*>("verification");
    QCOMPARE(table->horizontalHeaderItem(8)->text(), QString("EER %"));
    for (int r = 0; r < 2; ++r) {
      const auto& s = kept.at(table->item(r, 0)->text());
      const auto roc = msconv::eval::computeRoc(s.score.data(), s.label.data(), 20);
      const auto det = msconv::eval::computeDet(roc);
      QCOMPARE(table->item(r, 8)->data(Qt::DisplayRole).toDouble(),
               QString::number(100 * det.eer, 'f', 2).toDouble());
      QCOMPARE(table->item(r, 9)->data(Qt::DisplayRole).toDouble(),
               QString::number(det.eer_threshold, 'f', 4).toDouble());
    }
    // The histogram's threshold at a FAR is the core's.
    const QString first = panel.checkpointBox()->itemText(0);
    panel.showHistogram(0, 0.2);
    QCOMPARE(panel.histogramThreshold(),
             msconv::eval::thresholdAtFar(kept.at(first).score.data(), kept.at(first).label.data(),
                                          20, 0.2));
    QCOMPARE(panel.findChild<QCustomPlot*>("histogram")->graphCount(), 2);

    // The failure browser: one model's false accepts and rejects at FAR 0.2.
    FailuresView* failures = panel.failures();
    failures->setSet(bin);
    failures->setOperatingPoint({false, 0.2});
    failures->setTopK(1000);
    failures->setModels(first);
    QSignalSpy listed(failures, &FailuresView::listed);
    failures->list();
    QVERIFY(listed.wait(30000));
    QCoreApplication::processEvents();
    const auto one = msconv::eval::listFailures({&kept.at(first)}, {false, 0.2}, 1000);
    QVERIFY(one.false_accepts + one.false_rejects > 0);
    QCOMPARE(failures->model()->rowCount(), static_cast<int>(one.rows.size()));
    QCOMPARE(static_cast<int64_t>(one.rows.size()), one.false_accepts + one.false_rejects);
    for (int r = 1; r < failures->model()->rowCount(); ++r)  // sorted by margin
      QVERIFY(failures->model()->failure(r - 1).margin >= failures->model()->failure(r).margin);
    // As the 10-fold protocol decides: each pair by its fold's threshold.
    failures->setOperatingPoint({true, 0});
    listed.clear();
    failures->list();
    QVERIFY(listed.wait(30000));
    QCoreApplication::processEvents();
    const auto folds = msconv::eval::listFailures({&kept.at(first)}, {true, 0}, 1000);
    QCOMPARE(failures->model()->rowCount(), static_cast<int>(folds.rows.size()));
    QCOMPARE(static_cast<int64_t>(folds.rows.size()), folds.false_accepts + folds.false_rejects);
    failures->setOperatingPoint({false, 0.2});
    // Two models: the disagreements, both ways.
    const QString second = panel.checkpointBox()->itemText(1);
    failures->setModels(first, second);
    listed.clear();
    failures->list();
    QVERIFY(listed.wait(30000));
    QCoreApplication::processEvents();
    const auto two =
        msconv::eval::listFailures({&kept.at(first), &kept.at(second)}, {false, 0.2}, 1000);
    QCOMPARE(failures->model()->rowCount(), static_cast<int>(two.rows.size()));
    QCOMPARE(failures->model()->columnCount(), FailureTableModel::kFirstModel + 4);
    // Selecting a row draws the pair CAMs of both models (image A's grid beside image B's).
    failures->setModels(first);
    listed.clear();
    failures->list();
    QVERIFY(listed.wait(30000));
    QCoreApplication::processEvents();
    QSignalSpy cam(failures, &FailuresView::camReady);
    failures->selectRow(0);
    QVERIFY(cam.wait(60000));
    QVERIFY(failures->camImage().width() > 2 * 112 * 4);  // two grids of at least 4 stages
    QVERIFY(failures->camImage().height() > 2 * 112);     // a row per model
    // The faces of the visible rows arrive from the set.
    panel.findChild<QTabWidget*>("evaluation_tabs")->setCurrentWidget(failures);
    panel.resize(1200, 800);
    panel.QWidget::show();
    QTRY_VERIFY_WITH_TIMEOUT(failures->model()->facesLoaded() > 0, 20000);

    // Inspect: the arrays behind the figures, as numpy reads them.
    InspectPanel inspect(ws.path());
    const QString face = QDir(syn.path()).filePath("train/00000/000.jpg");
    inspect.setImage(face);
    QSignalSpy exported(&inspect, &InspectPanel::arraysExported);
    inspect.exportArrays(out.filePath("arrays"));
    QVERIFY(exported.wait(60000));
    const QStringList files = exported.first().at(0).toStringList();
    for (const char* kind : {"gradcam", "featuremaps"}) {
      QFile index(QDir(out.filePath("arrays")).filePath(QString(kind) + "/index.json"));
      QVERIFY2(index.open(QIODevice::ReadOnly), kind);
      const QJsonArray entries = QJsonDocument::fromJson(index.readAll()).array();
      QVERIFY(entries.size() >= 4);
      for (const auto& v : entries) {
        const QJsonObject e = v.toObject();
        for (const char* key : {"file", "model", "layer", "method", "target", "shape"})
          QVERIFY2(e.contains(key), key);
        const auto a = msconv::io::readNpy(QDir(out.filePath("arrays"))
                                               .filePath(QString(kind) + "/" + e["file"].toString())
                                               .toStdString());
        QCOMPARE(static_cast<int>(a.shape.size()), e["shape"].toArray().size());
        int64_t count = 1;
        for (int d = 0; d < e["shape"].toArray().size(); ++d) {
          QCOMPARE(a.shape[static_cast<size_t>(d)], e["shape"][d].toInteger());
          count *= a.shape[static_cast<size_t>(d)];
        }
        QCOMPARE(static_cast<int64_t>(a.data.size()), count);
        if (QString(kind) == "gradcam") {  // CAMs at the figure's 112 x 112, in [0, 1]
          QCOMPARE(a.shape, (std::vector<int64_t>{112, 112}));
          // (the layers' mean is rescaled in float: a rounding error below 0 is allowed)
          const auto [lo, hi] = std::minmax_element(a.data.begin(), a.data.end());
          QVERIFY2(*lo >= -1e-6f && *hi <= 1.f + 1e-6f,
                   qPrintable(e["file"].toString() + QString(" %1 .. %2").arg(*lo).arg(*hi)));
        }
      }
    }
    QVERIFY(files.last().endsWith("featuremaps/index.json"));
    // Faithfulness over 2 pairs: a first request superseded by a second, whose table is the
    // core's.
    inspect.computeFaithfulness(bin, 3);
    QSignalSpy faith(&inspect, &InspectPanel::faithfulnessReady);
    inspect.computeFaithfulness(bin, 2);
    QVERIFY(faith.wait(120000));
    QTest::qWait(200);
    QCOMPARE(faith.count(), 1);
    auto loaded = msconv::model::loadModel(checkpoints[0].second.toStdString());
    const auto set = msconv::data::readPairsBin(bin.toStdString());
    const auto core = msconv::inspect::faithfulnessOnPairs(
        *loaded.model, checkpoints[0].first.toStdString(), set, 2, {});
    const auto* ft = inspect.faithfulnessTable();
    QCOMPARE(ft->rowCount(), static_cast<int>(2 * core.size()));
    int matched = 0;
    for (int r = 0; r < ft->rowCount(); ++r)
      for (const auto& c : core)
        if (ft->item(r, 0)->text() == checkpoints[0].first &&
            ft->item(r, 1)->text() == QString::fromStdString(c.layer)) {
          QCOMPARE(ft->item(r, 3)->text().toInt(), 2);
          QCOMPARE(ft->item(r, 4)->data(Qt::DisplayRole).toDouble(),
                   QString::number(c.deletion_auc, 'f', 4).toDouble());
          QCOMPARE(ft->item(r, 5)->data(Qt::DisplayRole).toDouble(),
                   QString::number(c.insertion_auc, 'f', 4).toDouble());
          ++matched;
        }
    QCOMPARE(matched, static_cast<int>(core.size()));

    // Compare: the EER per kept set, and the faithfulness columns once computed.
    ComparePanel compare(ws.path());
    compare.refresh();
    QSignalSpy compared(&compare, &ComparePanel::faithfulnessReady);
    compare.computeFaithfulness(bin, 2);
    QVERIFY(compared.wait(120000));
    const auto* ct = compare.table();
    int eer_col = -1, deletion_col = -1;
    for (int c = 0; c < ct->columnCount(); ++c) {
      if (ct->horizontalHeaderItem(c)->text() == "val/EER %") eer_col = c;
      if (ct->horizontalHeaderItem(c)->text() == "val Grad-CAM deletion AUC") deletion_col = c;
    }
    QVERIFY(eer_col >= 0 && deletion_col >= 0);
    for (int r = 0; r < ct->rowCount(); ++r) {
      const auto& s = kept.at(ct->item(r, 0)->text());
      const auto det =
          msconv::eval::computeDet(msconv::eval::computeRoc(s.score.data(), s.label.data(), 20));
      QCOMPARE(ct->item(r, eer_col)->data(Qt::DisplayRole).toDouble(),
               QString::number(100 * det.eer, 'f', 2).toDouble());
      QVERIFY(ct->item(r, deletion_col)->text() != "-");
    }
    // The report: DET chart and points, EER in metrics.json.
    const QStringList report = writeReport(ws.path(), out.filePath("report"));
    QVERIFY(report.contains(out.filePath("report/det.png")));
    QVERIFY(QImage(out.filePath("report/det.png")).width() > 300);
    const QString det_csv = out.filePath("report/det-" + first + "-val.csv");
    QVERIFY2(report.contains(det_csv), qPrintable(report.join(" ")));
    QFile csv(det_csv);
    QVERIFY(csv.open(QIODevice::ReadOnly));
    QCOMPARE(csv.readLine(), QByteArray("fmr,fnmr,threshold\n"));
    QFile metrics(out.filePath("report/metrics.json"));
    QVERIFY(metrics.open(QIODevice::ReadOnly));
    const QJsonArray runs = QJsonDocument::fromJson(metrics.readAll())["runs"].toArray();
    QCOMPARE(runs.size(), 2);
    for (const auto& v : runs) {
      const QJsonObject run = v.toObject();
      const auto& s = kept.at(run["name"].toString());
      const auto det =
          msconv::eval::computeDet(msconv::eval::computeRoc(s.score.data(), s.label.data(), 20));
      QCOMPARE(run["evaluation"][0]["eer"].toDouble(), det.eer);
    }
  }

  // The failure browser's faces: a .bin pair's images as the core decodes them, an IJB
  // template's first face as the evaluation aligns it; a face that is not there is an error
  // naming the set.
  void setFaceDecodesPairSetsAndIjbTemplates() {
    QTemporaryDir syn;
    QVERIFY(QProcess::execute(MSCONV_BIN, {"data", "synth", "-o", syn.path(), "--identities", "4",
                                           "--images-per-id", "2", "--pairs", "6",
                                           "--val-identities", "4"}) == 0);
    QVERIFY(QProcess::execute(MSCONV_BIN, {"data", "synth-ijb", "-o", syn.filePath("ijb"),
                                           "--identities", "3"}) == 0);
    auto same = [](const QImage& face, const cv::Mat& rgb) {
      const QImage ref(rgb.data, rgb.cols, rgb.rows, static_cast<int>(rgb.step),
                       QImage::Format_RGB888);
      return face.convertToFormat(QImage::Format_RGB888) == ref;
    };
    const QString bin = syn.filePath("val.bin");
    const auto set = msconv::data::readPairsBin(bin.toStdString());
    const QImage face = setFace(bin, false, 3, 48);
    QCOMPARE(face.size(), QSize(48, 48));
    QVERIFY(same(face, msconv::data::decodeFace(set.images[3], "x", 48)));
    QVERIFY(!same(face, msconv::data::decodeFace(set.images[2], "x", 48)));
    try {
      setFace(bin, false, 12, 48);
      QFAIL("image 12 of 12 was read");
    } catch (const std::exception& e) {
      QVERIFY2(QString(e.what()).contains("val.bin") && QString(e.what()).contains("12"), e.what());
    }
    const auto ijb = msconv::data::readIjb(syn.filePath("ijb").toStdString());
    const auto& last = ijb.faces.back();
    size_t first = 0;
    while (ijb.faces[first].template_id != last.template_id) ++first;
    QVERIFY(same(setFace(syn.filePath("ijb"), true, last.template_id, 64),
                 msconv::data::loadAlignedFace(ijb, first, 64)));
    try {
      setFace(syn.filePath("ijb"), true, 987654, 64);
      QFAIL("template 987654 was found");
    } catch (const std::exception& e) {
      QVERIFY2(QString(e.what()).contains("987654"), e.what());
    }
  }

  // A failure list of a 100 k-pair set: computed off the GUI thread, shown through the table
  // model, faces asked for only for the rows on screen, also after scrolling to the end.
  void failureBrowserOf100kPairsIsLazy() {
    auto scores = std::make_shared<msconv::eval::PairScores>();
    scores->set = "synthetic";
    scores->set_path = "/nonexistent/synthetic.bin";
    std::mt19937 rng(7);
    std::normal_distribution<float> noise(0.f, 0.2f);
    const int n = 100000;
    for (int i = 0; i < n; ++i) {
      const bool genuine = i % 2 == 0;
      scores->label.push_back(genuine);
      scores->score.push_back((genuine ? 0.4f : 0.f) + noise(rng));
    }
    FailuresView view;
    std::atomic<int> loads{0};
    view.setFaceLoader([&loads](int64_t) {
      ++loads;
      QImage face(48, 48, QImage::Format_RGB888);
      face.fill(Qt::gray);
      return std::make_pair(face, face);
    });
    view.resize(1000, 700);
    view.show();
    view.setTopK(n);
    view.setOperatingPoint({false, 1e-2});
    QSignalSpy listed(&view, &FailuresView::listed);
    view.addScores("m", {}, scores);        // the first set: selected and listed
    QCOMPARE(view.model()->rowCount(), 0);  // the list is computed on the worker thread
    QVERIFY(listed.wait(60000));
    const auto core = msconv::eval::listFailures({scores.get()}, {false, 1e-2}, n);
    QCOMPARE(view.model()->rowCount(), static_cast<int>(core.rows.size()));
    QVERIFY(view.model()->rowCount() > 10000);
    // The visible rows ask for their faces, and only they.
    QElapsedTimer timer;
    timer.start();
    QTRY_VERIFY_WITH_TIMEOUT(view.model()->facesLoaded() > 0, 20000);
    QTest::qWait(100);
    QTableView* t = view.table();
    auto visible = [t] {
      const int top = t->rowAt(0), bottom = t->rowAt(t->viewport()->height() - 1);
      return (bottom < 0 ? t->model()->rowCount() - 1 : bottom) - top + 1;
    };
    const int shown = visible();
    QVERIFY(shown > 0 && shown < 100);
    QVERIFY2(
        view.model()->facesRequested() <= shown + 1,
        qPrintable(
            QString("%1 requested, %2 rows shown").arg(view.model()->facesRequested()).arg(shown)));
    // To the end: the last screen's faces, not the 10 k rows in between.
    t->scrollToBottom();
    QTRY_VERIFY_WITH_TIMEOUT(view.model()->facesLoaded() >= 2 * shown - 1, 20000);
    QTest::qWait(100);
    QVERIFY(view.model()->facesRequested() <= 2 * (shown + 1));
    QCOMPARE(loads.load(), static_cast<int>(view.model()->facesLoaded()));
    // Generous: the GUI thread's share (the table model, two screens of rows) is far below this
    // on any machine; a model built of widgets or faces decoded for every row would not be.
    QVERIFY2(timer.elapsed() < 15000, qPrintable(QString::number(timer.elapsed())));
  }

  void chartsReadBestAndCrosshair() {
    TrainingPanel p;
    fillCharts(p);
    QCOMPARE(p.pointCount("msnet-tiny-msconv", "loss"), 60);
    QCOMPARE(p.pointCount("msnet-tiny-msconv", "accuracy"), 6);
    QCOMPARE(p.farChoices(), (QStringList{"1e-02", "1e-03"}));
    QCOMPARE(p.far(), QString("1e-03"));  // the paper's operating point, when reported
    QCOMPARE(p.pointCount("msnet-tiny-msconv", "tar"), 6);
    // Best values: maximum raw validation accuracy; minimum of the smoothed loss.
    QVERIFY(std::abs(p.best("msnet-tiny-msconv", "accuracy") - 0.9) < 1e-12);
    QVERIFY(std::abs(p.best("msnet-tiny-skconv", "tar") - (0.1 + 0.24 - 0.02)) < 1e-12);
    std::vector<double> loss;
    for (int s = 1; s <= 60; ++s)
      loss.push_back(4.0 * std::exp(-s / 25.0) + 1 + std::sin(s * 1.7) * 0.15);
    const auto sm = smooth(loss, 0.6);
    QCOMPARE(p.best("msnet-tiny-msconv", "loss"), *std::min_element(sm.begin(), sm.end()));
    QVERIFY(std::isnan(p.best("msnet-tiny-msconv", "lr")));  // no "best" learning rate
    p.setFar("1e-02");
    QVERIFY(std::abs(p.best("msnet-tiny-msconv", "tar") - 0.66) < 1e-12);
    // Crosshair: the nearest point of each visible run.
    QString r = p.readout("loss", 204);
    QVERIFY2(r.startsWith("step 204\nmsnet-tiny-msconv  "), qPrintable(r));
    QVERIFY(r.contains(QString("(raw %1)").arg(loss[19], 0, 'g', 5)));  // step 200
    QVERIFY(r.contains("msnet-tiny-skconv"));
    p.setRunVisible("msnet-tiny-skconv", false);
    QVERIFY(!p.readout("loss", 204).contains("msnet-tiny-skconv"));
    // Time axes: relative to each run's first point, or wall-clock.
    p.setXAxis(TrainingPanel::XAxis::kRelative);
    QVERIFY(p.readout("loss", 65).startsWith("0:01:05"));
    QVERIFY(p.readout("loss", 65).contains(QString("(raw %1)").arg(loss[11], 0, 'g', 5)));
    p.setXAxis(TrainingPanel::XAxis::kStep);
    // The CSV holds every raw point, the TAR series under its FAR.
    QTemporaryDir out;
    QVERIFY(p.exportCsv(out.filePath("c.csv")));
    QFile csv(out.filePath("c.csv"));
    QVERIFY(csv.open(QIODevice::ReadOnly));
    const QString text = csv.readAll();
    QCOMPARE(text.count('\n'), 1 + 2 * (4 * 60 + 6 + 6));
    QVERIFY(text.contains("msnet-tiny-msconv,tar@far=1e-02,600,"));
  }

  // The live charts are drawn only while the panel shows (a long run's curves are redrawn ~30
  // times a second otherwise, behind whatever panel is in front), and what came while hidden is
  // drawn when shown; they draw lines segment by segment (QCP::phFastPolylines).
  void chartsDrawOnlyWhileShown() {
    TrainingPanel p;
    p.resize(900, 600);
    fillCharts(p);
    QTest::qWait(50);  // replots already queued
    const auto plots = p.findChildren<QCustomPlot*>();
    QCOMPARE(plots.size(), 6);
    int replots = 0;
    for (auto* plot : plots) {
      QVERIFY(plot->plottingHints().testFlag(QCP::phFastPolylines));
      connect(plot, &QCustomPlot::afterReplot, this, [&] { ++replots; });
    }
    for (int s = 61; s <= 80; ++s) {
      p.addStep("msnet-tiny-msconv", s * 10, 1.0, 0.01, 400, 2, 1.7e9 + s * 6.0);
      QTest::qWait(40);  // more than the 33 ms replot interval
    }
    QCOMPARE(replots, 0);  // never shown
    p.show();
    QVERIFY(QTest::qWaitForWindowExposed(&p));
    QTRY_VERIFY(replots >= 6);  // every chart, on axes that take in the points that came hidden
    QCOMPARE(plots[0]->xAxis->range().upper, 800.0);
    p.hide();
    QTest::qWait(60);
    const int shown = replots;
    p.addStep("msnet-tiny-msconv", 810, 1.0, 0.01, 400, 2, 1.7e9 + 81 * 6.0);
    QTest::qWait(100);
    QCOMPARE(replots, shown);
    // An export while hidden still draws every point, on its axes' new range.
    const QImage img = p.render(900, 600);
    QVERIFY(!img.isNull());
    QCOMPARE(plots[0]->xAxis->range().upper, 810.0);
  }

  void chartExportsMatchGoldenImages() {
    QTemporaryDir out;
    QString why;
    {
      TrainingPanel p;
      p.resize(1200, 700);
      fillCharts(p);
      QVERIFY(p.exportPng(out.filePath("light.png"), 1200, 640));
      QVERIFY2(matchesGolden(QImage(out.filePath("light.png")), "lab_charts.png", &why),
               qPrintable(why));
      QVERIFY(p.exportPdf(out.filePath("c.pdf")));
      QFile pdf(out.filePath("c.pdf"));
      QVERIFY(pdf.open(QIODevice::ReadOnly));
      QVERIFY(pdf.read(5) == "%PDF-");
      QVERIFY(pdf.size() > 5000);
    }
    {
      TrainingPanel p;
      fillCharts(p);
      p.setDark(true);
      p.setLogY(true);
      p.setXAxis(TrainingPanel::XAxis::kRelative);
      p.setSmoothing(0.9);
      QVERIFY2(matchesGolden(p.render(1200, 640), "lab_charts_dark_log_time.png", &why),
               qPrintable(why));
    }
  }

  void settingsAreRemembered() {
    QTemporaryDir ws;
    {
      MainWindow w(ws.path());
      w.training()->setSmoothing(0.85);
      w.training()->setXAxis(TrainingPanel::XAxis::kWall);
      w.setDark(true);
      w.tabs()->setCurrentIndex(2);
      w.close();
    }
    MainWindow w(ws.path());
    // Keyboard: Ctrl+1..5 choose the panel, Ctrl+L switches log y, Ctrl+Shift+T the theme.
    w.show();
    QVERIFY(QTest::qWaitForWindowActive(&w));
    QTest::keyClick(&w, Qt::Key_4, Qt::ControlModifier);
    QCOMPARE(w.tabs()->currentWidget(), static_cast<QWidget*>(w.inspect()));
    QTest::keyClick(&w, Qt::Key_3, Qt::ControlModifier);
    QCOMPARE(w.tabs()->currentIndex(), 2);
    const bool log_y = w.training()->logY();
    QTest::keyClick(&w, Qt::Key_L, Qt::ControlModifier);
    QCOMPARE(w.training()->logY(), !log_y);
    QTest::keyClick(&w, Qt::Key_L, Qt::ControlModifier);
    QTest::keyClick(&w, Qt::Key_T, Qt::ControlModifier | Qt::ShiftModifier);
    QVERIFY(!w.dark());
    QTest::keyClick(&w, Qt::Key_T, Qt::ControlModifier | Qt::ShiftModifier);
    QCOMPARE(w.training()->smoothing(), 0.85);
    QVERIFY(w.training()->xAxis() == TrainingPanel::XAxis::kWall);
    QVERIFY(w.dark());
    QVERIFY(w.training()->dark());
    QCOMPARE(w.tabs()->currentIndex(), 2);
    w.setDark(false);
    w.training()->setXAxis(TrainingPanel::XAxis::kStep);
    w.training()->setSmoothing(0.6);
    w.tabs()->setCurrentIndex(0);
    w.close();
  }

  void queueRunsOneSlotAtATimeAndShowsFailures() {
    QTemporaryDir ws;
    const QStringList tiny = {"model.arch=msnet-tiny",
                              "train.batch_size=8",
                              "train.max_steps=3",
                              "data.synthetic_identities=6",
                              "data.synthetic_images_per_id=4",
                              "data.val=",
                              "train.log_every=1",
                              "train.threads=1",
                              "data.threads=1"};
    const QuietBoxes quiet;  // "broken" fails: its error is checked in the table
    {  // A prepared queue is kept in the workspace and waits for Train queued.
      MainWindow w(ws.path());
      w.enqueue("first", tiny + QStringList{"model.op=msconv-official"});
      w.enqueue("second", tiny + QStringList{"model.op=skconv"});
      w.enqueue("broken", tiny + QStringList{"data.train=/nonexistent/faces"});
      QCOMPARE(queueOf(ws).size(), size_t(3));
      QCOMPARE(w.runningCount(), 0);
    }
    MainWindow w(ws.path());
    QCOMPARE(w.queue().size(), size_t(3));
    QCOMPARE(w.runs()->cell(w.runs()->rowOf("second"), RunsPanel::kStatus), QString("queued"));
    QCOMPARE(w.runs()->cell(w.runs()->rowOf("second"), RunsPanel::kOp), QString("skconv"));
    w.startQueue();
    QCOMPARE(w.runningCount(), 1);  // one slot: the others wait
    QCOMPARE(w.queue().size(), size_t(2));
    QCOMPARE(queueOf(ws).size(), size_t(2));
    QElapsedTimer t;
    t.start();
    while ((!w.queue().empty() || w.runningCount() > 0) && t.elapsed() < 240000) QTest::qWait(50);
    QCOMPARE(w.runningCount(), 0);
    QVERIFY(w.queue().empty());
    // Stop holds the queue: a queued run waits for the next Train queued.
    w.startQueue();
    w.stopAll();
    w.enqueue("held", tiny);
    QTest::qWait(300);
    QCOMPARE(w.runningCount(), 0);
    QCOMPARE(w.queue().size(), size_t(1));
    QCOMPARE(w.runs()->cell(w.runs()->rowOf("held"), RunsPanel::kStatus), QString("queued"));
    QCOMPARE(w.runs()->cell(w.runs()->rowOf("first"), RunsPanel::kStatus), QString("done"));
    QCOMPARE(w.runs()->cell(w.runs()->rowOf("second"), RunsPanel::kStatus), QString("done"));
    QCOMPARE(w.runs()->cell(w.runs()->rowOf("second"), RunsPanel::kSteps), QString("3"));
    const int bad = w.runs()->rowOf("broken");
    QVERIFY(bad >= 0);
    QCOMPARE(w.runs()->cell(bad, RunsPanel::kStatus), QString("failed"));
    QVERIFY2(w.runs()->cell(bad, RunsPanel::kError).contains("/nonexistent/faces"),
             qPrintable(w.runs()->cell(bad, RunsPanel::kError)));
    // The Compare table (it builds every run's model) fills when it is first shown.
    QCOMPARE(tableRows(w.compare(), "comparison"), 0);
    w.tabs()->setCurrentWidget(w.compare());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QCOMPARE(tableRows(w.compare(), "comparison"), 2);
    // Both finished runs are on the chart in their own colours; unchecking one hides it.
    QCOMPARE(w.training()->pointCount("second", "loss"), 3);
    QVERIFY(w.training()->colourOf("first") != w.training()->colourOf("second"));
    w.runs()->setRunVisible(w.runs()->rowOf("second"), false);
    QVERIFY(!w.training()->runVisible("second"));
    QVERIFY(w.training()->runVisible("first"));
  }

  void foreignFilesGiveADialog() {
    QTemporaryDir ws;
    QFile junk(ws.filePath("junk.ckpt"));
    QVERIFY(junk.open(QIODevice::WriteOnly));
    junk.write("this is not a checkpoint");
    junk.close();
    QFile queue(queueFileOf(ws));
    QVERIFY(queue.open(QIODevice::WriteOnly));
    queue.write("{\"queue\": [");
    queue.close();
    MainWindow w(ws.path());
    // The unreadable queue: a dialog naming the file, and the file is left as it was.
    auto boxes = w.findChildren<QMessageBox*>();
    QCOMPARE(boxes.size(), 1);
    QVERIFY(boxes.front()->text().contains("lab-queue.json"));
    QVERIFY(boxes.front()->text().contains("not a run queue"));
    QCOMPARE(QFileInfo(queueFileOf(ws)).size(), qint64(11));
    boxes.front()->close();
    QCoreApplication::processEvents();
    // A foreign checkpoint opened in the Evaluation panel.
    QVERIFY(!w.evaluation()->addCheckpoint(ws.filePath("junk.ckpt")));
    boxes = w.evaluation()->findChildren<QMessageBox*>();
    QCOMPARE(boxes.size(), 1);
    QVERIFY2(boxes.front()->text().contains("junk.ckpt"), qPrintable(boxes.front()->text()));
    // Changing the queue sets the unreadable file aside instead of losing it.
    w.enqueue("later", {"model.arch=msnet-tiny"});
    QVERIFY(QFileInfo::exists(queueFileOf(ws) + ".bad"));
    QCOMPARE(queueOf(ws).size(), size_t(1));
  }

  void studyPanelValidatesTheStudy() {
    QTemporaryDir ws;
    const QuietBoxes quiet;
    StudyPanel panel(ws.path());
    panel.setStudyText(kMiniStudy);
    QVERIFY2(panel.launchEnabled(), qPrintable(panel.error()));
    QCOMPARE(panel.cellCount(), 2);
    QCOMPARE(panel.seedCount(), 3);
    // An unknown key (an axis): named under the editor, and Launch is disabled.
    QString bad = kMiniStudy;
    bad.replace("\"model.op\"", "\"model.bogus\"");
    panel.setStudyText(bad);
    QVERIFY(!panel.launchEnabled());
    QVERIFY2(panel.errorLabel()->text().contains("model.bogus"), qPrintable(panel.error()));
    QVERIFY(panel.studyName().isEmpty());
    QSignalSpy nothing(&panel, &StudyPanel::launchRequested);
    panel.launchButton()->click();  // disabled
    QVERIFY(panel.launch().empty());
    QCOMPARE(nothing.count(), 0);
    // A value the trainer refuses, in a cell: the key and the value are named.
    panel.setStudyText(kMiniStudy);
    QVERIFY(panel.setAxis("model.op = msconv-official, nosuchop"));
    QVERIFY(!panel.launchEnabled());
    QVERIFY2(panel.error().contains("model.op") && panel.error().contains("nosuchop"),
             qPrintable(panel.error()));
    // The axis and seeds lines edit the study in the editor.
    QVERIFY(panel.setAxis("model.op = msconv-official, skconv, scconv"));
    QVERIFY2(panel.launchEnabled(), qPrintable(panel.error()));
    QCOMPARE(panel.cellCount(), 3);
    QVERIFY(panel.setAxis("loss.type = arcface, cosface"));
    QCOMPARE(panel.cellCount(), 6);
    QVERIFY(panel.setSeeds("4, 5"));
    QCOMPARE(panel.seedCount(), 2);
    QVERIFY(panel.studyText().contains("\"loss.type\""));
    QVERIFY(panel.setAxis("loss.type ="));  // removed
    QCOMPARE(panel.cellCount(), 3);
    QVERIFY(!panel.setSeeds("1, x"));
    QVERIFY(panel.errorLabel()->text().contains("'x'"));
    QCOMPARE(panel.seedCount(), 2);  // the study is unchanged
    // A preset: written to the workspace and listed.
    QCOMPARE(panel.newFromPreset("table5", "tiny"), QString("table5"));
    QVERIFY(QFileInfo::exists(ws.filePath("studies/table5.json")));
    QCOMPARE(panel.studyName(), QString("table5"));
    QCOMPARE(panel.cellCount(), 4);
    QVERIFY(panel.studyBox()->findText("table5") >= 0);
    QCOMPARE(panel.newFromPreset("table5", "tiny"), QString("table5"));  // the same: reopened
    panel.setAxis("model.op = msconv-official:kernels=k3k5, msconv-official:kernels=k5k7");
    QVERIFY(panel.launchEnabled());
  }

  void studyLaunchQueuesOnlyPendingRunsAndShowsTheGrid() {
    QTemporaryDir ws;
    const QuietBoxes quiet;
    using msconv::store::RunStatus;
    const auto study = msconv::study::parseStudy(kMiniStudy, "mini");
    const auto cells = msconv::study::expand(study);
    auto name = [&](size_t cell, uint64_t seed) {
      return msconv::study::runName(study, cells[cell], seed);
    };
    // msconv-official: seed 0 done, seed 1 stopped at step 1; skconv: seed 0 failed, seed 2
    // training (this live process holds it).
    storeRun(ws.path(), name(0, 0), RunStatus::kDone, 2);
    storeRun(ws.path(), name(0, 1), RunStatus::kStopped, 1);
    storeRun(ws.path(), name(1, 0), RunStatus::kFailed, 0, "{}", "the loss is NaN at step 1");
    storeRun(ws.path(), name(1, 2), RunStatus::kRunning, 1);
    StudyPanel panel(ws.path());
    panel.setStudyText(kMiniStudy);
    std::vector<QueuedRun> asked;
    connect(&panel, &StudyPanel::launchRequested, &panel,
            [&](const std::vector<QueuedRun>& runs) { asked = runs; });
    const auto queued = panel.launch();
    // msconv-official seed 1 resumed; msconv-official seed 2 and skconv seed 1 new
    QCOMPARE(queued.size(), size_t(3));
    QCOMPARE(asked.size(), size_t(3));
    QCOMPARE(asked[0].name, QString::fromStdString(name(0, 1)));
    QVERIFY(asked[0].resume);
    QVERIFY(asked[0].settings.isEmpty());
    asked.erase(asked.begin());
    const std::pair<size_t, uint64_t> expected[] = {{0, 2}, {1, 1}};
    for (size_t i = 0; i < 2; ++i) {
      const auto [cell, seed] = expected[i];
      QVERIFY(!asked[i].resume);
      QCOMPARE(asked[i].name, QString::fromStdString(name(cell, seed)));
      QStringList settings;
      for (const auto& kv : msconv::study::runSettings(cells[cell], seed))
        settings << QString::fromStdString(kv);
      QCOMPARE(asked[i].settings, settings);
      QVERIFY(asked[i].settings.contains(QString("seed=%1").arg(seed)));
    }
    QVERIFY2(
        panel.messageLabel()->text().contains("1 failed (not retried)") &&
            panel.messageLabel()->text().contains("1 stopped or interrupted, queued to resume"),
        qPrintable(panel.messageLabel()->text()));
    // The study file is in the workspace, as `msconv study status mini` reads it.
    const msconv::workspace::Workspace w(ws.path().toStdString());
    QCOMPARE(msconv::study::studyNames(w), std::vector<std::string>{"mini"});
    QCOMPARE(msconv::study::loadStudy(w, "mini").seeds.size(), size_t(3));
    // The grid: cells x seeds, each run's status.
    panel.setBusyRuns({QString::fromStdString(name(0, 2)), QString::fromStdString(name(0, 1))},
                      {QString::fromStdString(name(1, 1))});
    panel.refreshGrid();
    QCOMPARE(panel.grid()->rowCount(), 2);
    QCOMPARE(panel.grid()->columnCount(), 3);
    QCOMPARE(panel.gridText(0, 0), QString("done"));
    QCOMPARE(panel.gridText(0, 1), QString("resume queued 1/2"));
    QVERIFY(panel.gridToolTip(0, 1).contains("Launch resumes it"));
    QCOMPARE(panel.gridText(0, 2), QString("queued"));
    QCOMPARE(panel.gridText(1, 0), QString("failed"));
    QVERIFY2(panel.gridToolTip(1, 0).contains("the loss is NaN at step 1"),
             qPrintable(panel.gridToolTip(1, 0)));
    QCOMPARE(panel.gridText(1, 1), QString("starting"));
    QCOMPARE(panel.gridText(1, 2), QString("running 1/2"));
    QVERIFY(panel.grid()->item(1, 0)->background().color() !=
            panel.grid()->item(0, 0)->background().color());
    // Queued and starting runs are not queued twice.
    asked.clear();
    QVERIFY(panel.launch().empty());
    QVERIFY(asked.empty());
    QVERIFY2(panel.messageLabel()->text().contains("3 queued or starting already"),
             qPrintable(panel.messageLabel()->text()));
    // Once it trains, a run's progress shows.
    storeRun(ws.path(), name(1, 1), RunStatus::kDone, 2);
    panel.refreshGrid();
    QCOMPARE(panel.gridText(1, 1), QString("done"));
  }

  void studyReportFillsTablesChartAndExports() {
    QTemporaryDir ws;
    const QuietBoxes quiet;
    StudyPanel panel(ws.path());
    QVERIFY(!panel.setReport("{\"no\": 1}"));
    QVERIFY(panel.setReport(miniReport()));
    QCOMPARE(panel.metrics(), (QStringList{"val.bin/accuracy", "val.bin/tar@far=1e-03"}));
    QCOMPARE(panel.metric(), QString("val.bin/accuracy"));
    // The summary: mean +- std per metric; the best per column bold; a mark where significant.
    auto* t = panel.summaryTable();
    QCOMPARE(t->rowCount(), 2);
    int acc = -1, params = -1, sps = -1;
    for (int c = 0; c < t->columnCount(); ++c) {
      const QString h = t->horizontalHeaderItem(c)->text();
      if (h == "val.bin/accuracy %") acc = c;
      if (h == "params (M)") params = c;
      if (h == "samples/s") sps = c;
    }
    QVERIFY(acc > 1 && params > acc && sps > params);
    QCOMPARE(t->item(0, 0)->text(), QString("msconv-official (ref)"));
    QCOMPARE(t->item(0, 1)->text(), QString("2"));  // the failed run is left out
    QCOMPARE(t->item(0, acc)->text(), QString("90.00 ± 1.00"));
    QCOMPARE(t->item(1, acc)->text(), QString("92.00 ± 0.50 ▲"));
    QVERIFY(t->item(1, acc)->font().bold());
    QVERIFY(!t->item(0, acc)->font().bold());
    QVERIFY(t->item(1, params)->font().bold());  // fewer parameters are better
    QVERIFY(t->item(0, sps)->font().bold());     // more samples/s are better
    QVERIFY(t->item(0, acc)->toolTip().contains("[88.00, 92.00]"));
    // The chosen metric against the reference.
    auto* d = panel.detailTable();
    QCOMPARE(d->item(1, 3)->text(), QString("[91.00, 93.00]"));
    QCOMPARE(d->item(1, 4)->text(), QString("+2.00"));
    QCOMPARE(d->item(1, 7)->text(), QString("0.010"));
    QCOMPARE(d->item(1, 9)->text(), QString("yes ▲"));
    QCOMPARE(d->item(0, 4)->text(), QString("reference"));
    QVERIFY(d->item(1, 2)->font().bold());
    panel.setMetric("val.bin/tar@far=1e-03");
    QCOMPARE(d->item(1, 9)->text(), QString("no"));
    QVERIFY(d->item(0, 2)->font().bold());
    QVERIFY(!t->item(1, acc + 1)->text().contains("▼"));  // not significant: no mark
    // The chart: one point per cell at (cost, mean %) with the 95 % interval as error bars.
    auto* chart = panel.chart();
    panel.setMetric("val.bin/accuracy");
    panel.setCost("gmacs");
    QCOMPARE(chart->graphCount(), 2);
    QCOMPARE(chart->graph(1)->name(), QString("skconv"));
    QCOMPARE(chart->graph(1)->data()->at(0)->key, 0.3);
    QVERIFY(std::abs(chart->graph(1)->data()->at(0)->value - 92.0) < 1e-9);
    QCPErrorBars* bars = nullptr;
    for (int i = 0; i < chart->plottableCount(); ++i)
      if (auto* b = qobject_cast<QCPErrorBars*>(chart->plottable(i)))
        if (b->dataPlottable() == chart->graph(0) && b->errorType() == QCPErrorBars::etValueError)
          bars = b;
    QVERIFY(bars != nullptr);
    QVERIFY(std::abs(bars->data()->at(0).errorMinus - 2.0) < 1e-9);  // 90 - 88
    QVERIFY(std::abs(bars->data()->at(0).errorPlus - 2.0) < 1e-9);
    panel.setCost("params_m");
    QCOMPARE(chart->graph(0)->data()->at(0)->key, 1.5);
    QCOMPARE(chart->itemCount(), 2);  // the labels
    QVERIFY(panel.conclusionsLabel()->text().contains("+2.00 points"));
    // Exports: the report's formats through the engine, the chart as PNG and PDF.
    QTemporaryDir out;
    for (const char* f : {"s.csv", "s.md", "s.tex", "s.png", "s.pdf"})
      QVERIFY2(panel.exportTo(out.filePath(f)), f);
    QFile md(out.filePath("s.md"));
    QVERIFY(md.open(QIODevice::ReadOnly));
    QVERIFY(md.readAll().contains("**92.00 +- 0.50**"));
    QFile csv(out.filePath("s.csv"));
    QVERIFY(csv.open(QIODevice::ReadOnly));
    QVERIFY(csv.readAll().startsWith("cell,metric,n,mean,std,ci95_lo,ci95_hi,values"));
    QCOMPARE(QImage(out.filePath("s.png")).width(), 1200);
    QFile pdf(out.filePath("s.pdf"));
    QVERIFY(pdf.open(QIODevice::ReadOnly));
    QVERIFY(pdf.read(5) == "%PDF-");
    QVERIFY(!panel.exportTo(out.filePath("s.doc")));
    QVERIFY(panel.messageLabel()->text().contains(".csv"));
  }

  void trainingPanelGroupsRunsIntoMeanAndBand() {
    // The maths: curves on different steps meet on the range all of them cover.
    const auto c = TrainingPanel::aggregate({{{0, 10, 20}, {0, 10, 20}}, {{5, 15, 25}, {1, 1, 1}}},
                                            TrainingPanel::Band::kMinMax);
    QCOMPARE(c.x, (std::vector<double>{5, 10, 15, 20}));
    QCOMPARE(c.mean, (std::vector<double>{3, 5.5, 8, 10.5}));
    QCOMPARE(c.lower, (std::vector<double>{1, 1, 1, 1}));
    QCOMPARE(c.upper, (std::vector<double>{5, 10, 15, 20}));
    QCOMPARE(c.runs, 2);
    QVERIFY(TrainingPanel::aggregate({{{0, 1}, {0, 1}}, {{2, 3}, {0, 1}}}, {}).x.empty());
    // Runs grouped by a configuration key of their stored configuration.
    QTemporaryDir ws;
    using msconv::store::RunStatus;
    const std::string sk = R"({"model": {"op": "skconv"}})", ms = R"({"model": {"op": "msconv"}})";
    storeRun(ws.path(), "a", RunStatus::kDone, 0, sk);
    storeRun(ws.path(), "b", RunStatus::kDone, 0, sk);
    storeRun(ws.path(), "c", RunStatus::kDone, 0, ms);
    TrainingPanel p;
    p.setSmoothing(0);  // the group averages the drawn (smoothed) curves: here the raw ones
    p.setWorkspace(ws.path());
    const double loss[3][3] = {{1, 2, 3}, {3, 4, 8}, {5, 5, 5}};
    const char* names[] = {"a", "b", "c"};
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < 3; ++s)
        p.addStep(names[r], 10 * (s + 1), loss[r][s], 0.1, 100, 1, 1e9 + s);
    p.addStep("loose", 10, 7, 0.1, 100, 1, 1e9);  // not in the store: in no group
    p.setGroupBy(TrainingPanel::GroupBy::kConfigKey, "model.op");
    QCOMPARE(p.groups(), (QStringList{"model.op=msconv", "model.op=skconv"}));
    QCOMPARE(p.groupOf("a"), QString("model.op=skconv"));
    QCOMPARE(p.groupOf("loose"), QString());
    auto g = p.groupCurve("model.op=skconv", "loss");
    QCOMPARE(g.runs, 2);
    QCOMPARE(g.x, (std::vector<double>{10, 20, 30}));
    QCOMPARE(g.mean, (std::vector<double>{2, 3, 5.5}));
    const double sd[] = {std::sqrt(2.0), std::sqrt(2.0), 5 / std::sqrt(2.0)};  // sample std
    for (int i = 0; i < 3; ++i) {
      QVERIFY(std::abs(g.lower[i] - (g.mean[i] - sd[i])) < 1e-12);
      QVERIFY(std::abs(g.upper[i] - (g.mean[i] + sd[i])) < 1e-12);
    }
    QCOMPARE(p.groupCurve("model.op=msconv", "loss").upper, (std::vector<double>{5, 5, 5}));
    p.setBand(TrainingPanel::Band::kMinMax);
    g = p.groupCurve("model.op=skconv", "loss");
    QCOMPARE(g.lower, (std::vector<double>{1, 2, 3}));
    QCOMPARE(g.upper, (std::vector<double>{3, 4, 8}));
    // The runs themselves: faint, or hidden; a run in no group is drawn as before.
    QVERIFY(graphsNamed(&p, "a").size() >= 1);
    for (auto* graph : graphsNamed(&p, "a")) QVERIFY(graph->visible() && graph->pen().widthF() < 2);
    p.setShowGroupedRuns(false);
    for (auto* graph : graphsNamed(&p, "a")) QVERIFY(!graph->visible());
    for (auto* graph : graphsNamed(&p, "loose")) QVERIFY(graph->visible());
    // A run unchecked in the Runs panel leaves its group.
    p.setRunVisible("b", false);
    QCOMPARE(p.groupCurve("model.op=skconv", "loss").mean, (std::vector<double>{1, 2, 3}));
    p.setRunVisible("b", true);
    QTemporaryDir out;
    QVERIFY(p.exportCsv(out.filePath("g.csv")));
    QFile csv(out.filePath("g.csv"));
    QVERIFY(csv.open(QIODevice::ReadOnly));
    QVERIFY(csv.readAll().contains("\"group model.op=skconv\",loss:mean,30,,5.5"));
    // By study cell: the runs study::runName gives each cell's seeds.
    QDir().mkpath(ws.filePath("studies"));
    const auto study = msconv::study::parseStudy(kMiniStudy, "mini");
    msconv::study::writeStudy(ws.filePath("studies/mini.json").toStdString(), study);
    const auto cells = msconv::study::expand(study);
    for (uint64_t seed : {0, 1})
      for (int s = 1; s <= 2; ++s)
        p.addStep(QString::fromStdString(msconv::study::runName(study, cells[1], seed)), s,
                  seed == 0 ? 2.0 : 4.0, 0.1, 100, 1, 1e9 + s);
    p.setGroupBy(TrainingPanel::GroupBy::kStudyCell, "mini");
    QCOMPARE(p.groups(), QStringList{"skconv"});
    g = p.groupCurve("skconv", "loss");
    QCOMPARE(g.runs, 2);
    QCOMPARE(g.mean, (std::vector<double>{3, 3}));
    QCOMPARE(p.groupOf("a"), QString());
    QVERIFY(p.groupCurve("model.op=skconv", "loss").x.empty());  // the old groups are gone
    // No grouping: today's charts.
    p.setGroupBy(TrainingPanel::GroupBy::kNone);
    QVERIFY(p.groups().isEmpty());
    QVERIFY(p.groupCurve("skconv", "loss").x.empty());
    for (auto* graph : graphsNamed(&p, "a"))
      QVERIFY(graph->visible() && graph->pen().widthF() == 2);
  }

  void smoothingIsDebiased() {
    const auto s = smooth({1.0, 1.0, 1.0}, 0.6);
    for (double v : s) QCOMPARE(v, 1.0);  // a constant stays itself from the first point
    const auto t = smooth({0.0, 10.0}, 0.6);
    QCOMPARE(t[0], 0.0);
    QVERIFY(std::abs(t[1] - 4.0 / (1 - 0.36)) < 1e-12);  // 0.4 * 10 / (1 - 0.6^2)
    QCOMPARE(smooth({3.0, 5.0}, 0.0)[1], 5.0);           // weight 0: the raw curve
  }

  void aWorkerCanBeStartedAgainAfterItEnds() {
    // The first run's thread has ended but is still joinable: a second start must collect it
    // (assigning over a joinable std::thread would terminate the program).
    QTemporaryDir ws;
    TrainingWorker worker(ws.path(), "again", {"data.train=/nonexistent/faces", "data.val="});
    for (int i = 0; i < 2; ++i) {
      QSignalSpy failed(&worker, &TrainingWorker::failed);
      worker.start();
      QVERIFY(failed.count() == 1 || failed.wait(30000));
      QVERIFY(failed.at(0).at(0).toString().contains("/nonexistent/faces"));
      QElapsedTimer t;
      t.start();
      while (worker.running() && t.elapsed() < 10000) QTest::qWait(10);
      QVERIFY(!worker.running());
    }
  }

  void badFormInputBlocksLaunch() {
    QTemporaryDir ws;
    RunsPanel panel(ws.path());
    QVERIFY(panel.launchEnabled());
    panel.lrEdit()->setText("fast");
    QVERIFY(!panel.launchEnabled());
    QVERIFY(panel.errorLabel()->text().contains("train.lr"));
    panel.lrEdit()->setText("0.05");
    QVERIFY(panel.launchEnabled());
    // The architecture takes options, checked as the model builder reads them.
    panel.archBox()->setEditText("msnet50:width=0");
    QVERIFY(!panel.launchEnabled());
    QVERIFY(panel.errorLabel()->text().contains("model.arch"));
    QVERIFY(panel.errorLabel()->text().contains("option 'width'"));
    panel.archBox()->setEditText("msnet-tiny:embedding=128,prelu=channel");
    QVERIFY(panel.launchEnabled());
    panel.findChildren<QLineEdit*>().last()->setText("train.epochs=0");
    QVERIFY(!panel.launchEnabled());
    QVERIFY(panel.errorLabel()->text().contains("train.epochs"));
    QSignalSpy spy(&panel, &RunsPanel::launchRequested);
    panel.launchButton()->click();  // disabled: nothing happens
    QCOMPARE(spy.count(), 0);
  }

  // A queue entry with "resume" continues the stopped run from its checkpoint (as msconv train
  // --resume NAME): the same run in the store, its steps going on to max_steps.
  void aQueuedResumeContinuesAStoppedRun() {
    QTemporaryDir ws;
    MainWindow w(ws.path());
    const QStringList settings = {"model.arch=msnet-tiny",
                                  "train.batch_size=8",
                                  "train.max_steps=10",
                                  "data.synthetic_identities=6",
                                  "data.synthetic_images_per_id=4",
                                  "data.val=",
                                  "train.log_every=1",
                                  "train.checkpoint_every=1",
                                  "train.threads=1",
                                  "data.threads=1"};
    TrainingWorker* first = w.launch("r", settings);
    QVERIFY(first != nullptr);
    QSignalSpy first_steps(first, &TrainingWorker::step);
    QSignalSpy first_done(first, &TrainingWorker::finished);
    QTRY_VERIFY_WITH_TIMEOUT(first_steps.count() >= 3, 120000);
    first->stop();
    QVERIFY(first_done.count() == 1 || first_done.wait(120000));
    QCOMPARE(first_done.first().at(0).toString(), QString("stopped"));
    const qint64 stopped_at = first_steps.last().at(0).toLongLong();
    QVERIFY(stopped_at < 10);
    TrainingWorker* second = w.launch("r", {}, true);
    QVERIFY(second != nullptr);
    QSignalSpy steps(second, &TrainingWorker::step);
    QSignalSpy done(second, &TrainingWorker::finished);
    QVERIFY(done.wait(180000));
    QCOMPARE(done.first().at(0).toString(), QString("done"));
    QVERIFY(steps.count() >= 1);
    QCOMPARE(steps.first().at(0).toLongLong(), stopped_at + 1);
    QCOMPARE(steps.last().at(0).toLongLong(), qint64(10));
    QCOMPARE(second->runName(), QString("r"));  // the same run, not r-2
    const auto db = msconv::workspace::Workspace(ws.path().toStdString()).openStore();
    QCOMPARE(db->runs().size(), size_t(1));
    QCOMPARE(QString(msconv::store::statusName(db->runs()[0].status)), QString("done"));
  }

  // Issue #17: a run trained by two processes from the New Run form (rank 0 in the worker's
  // thread, rank 1 an `msconv train` beside this binary) is one run in the store with one set of
  // curves, and the queue file keeps a queued run's processes.
  void aRunWithTwoProcessesIsOneRun() {
    QuietBoxes quiet;
    QTemporaryDir ws;
    MainWindow w(ws.path());
    RunsPanel* form = w.runs();
    form->archBox()->setEditText("msnet-tiny");
    form->batchBox()->setValue(8);
    form->stepsBox()->setValue(4);
    form->nameEdit()->setText("two");
    form->settingsEdit()->setText(
        "data.synthetic_identities=8 data.synthetic_images_per_id=4 data.val= "
        "train.log_every=1 train.threads=1 data.threads=1");
    QCOMPARE(form->processes(), 1);  // the default
    TrainingWorker* worker = nullptr;
    if (form->processesBox()->maximum() >= 2) {
      form->processesBox()->setValue(2);
      form->batchBox()->setValue(7);  // not divisible by the processes: blocked, the key named
      QVERIFY(!form->launchEnabled());
      QVERIFY(form->errorLabel()->text().contains("train.batch_size"));
      form->batchBox()->setValue(8);
      QVERIFY2(form->launchEnabled(), qPrintable(form->errorLabel()->text()));
      form->launchButton()->click();
      QCOMPARE(w.workers().size(), size_t(1));
      worker = w.workers().front().get();
    } else {  // one core: the form offers one process, the window's launch takes two
      QString error;
      worker = w.launch("two", form->settings(&error), false, 2);
      QVERIFY2(error.isEmpty(), qPrintable(error));
    }
    QVERIFY(worker != nullptr);
    QCOMPARE(worker->processes(), 2);
    QSignalSpy done(worker, &TrainingWorker::finished);
    QSignalSpy failed(worker, &TrainingWorker::failed);
    QTRY_VERIFY_WITH_TIMEOUT(done.count() + failed.count() == 1, 240000);
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().at(0).toString()));
    QCOMPARE(done.first().at(0).toString(), QString("done"));
    QVERIFY(!worker->running());
    QCoreApplication::processEvents();
    QCOMPARE(worker->runName(), QString("two"));
    QCOMPARE(w.training()->pointCount("two", "loss"), 4);  // rank 0's curves only
    const msconv::workspace::Workspace space(ws.path().toStdString());
    const auto db = space.openStore();
    QCOMPARE(db->runs().size(), size_t(1));
    QCOMPARE(QString::fromStdString(db->runs()[0].name), QString("two"));
    QCOMPARE(QString(msconv::store::statusName(db->runs()[0].status)), QString("done"));
    QCOMPARE(db->metrics(db->runs()[0].id, "loss").size(), size_t(4));
    QVERIFY(QFileInfo::exists(
        QString::fromStdString(space.runFile("two", msconv::workspace::RunFile::kLastCheckpoint))));
    // A queued run keeps its processes in the queue file.
    w.stopAll();  // the queue holds
    w.enqueue("later", {"model.arch=msnet-tiny", "train.batch_size=8"}, 2);
    QCOMPARE(queueOf(ws).size(), size_t(1));
    QCOMPARE(queueOf(ws)[0].processes, 2);
    QCOMPARE(w.queue()[0].processes, 2);
  }

  void launchingATinyRunAddsPointsToTheChart() {
    QTemporaryDir ws;
    MainWindow w(ws.path());
    TrainingWorker* worker =
        w.launch("tiny", {"model.arch=msnet-tiny", "train.batch_size=8", "train.max_steps=6",
                          "data.synthetic_identities=6", "data.synthetic_images_per_id=4",
                          "data.val=", "train.log_every=1", "train.threads=1", "data.threads=1"});
    QVERIFY(worker != nullptr);
    QSignalSpy steps(worker, &TrainingWorker::step);
    QSignalSpy done(worker, &TrainingWorker::finished);
    QVERIFY(done.wait(180000));
    QCOMPARE(done.first().at(0).toString(), QString("done"));
    QCoreApplication::processEvents();
    QCOMPARE(steps.count(), 6);
    QCOMPARE(w.training()->pointCount("tiny", "loss"), 6);
    QCOMPARE(w.training()->pointCount("tiny", "samples_per_s"), 6);
    QVERIFY(w.runs()->rowCount() >= 1);
    // Exports: CSV holds every raw point; PNG and PDF are written.
    QTemporaryDir out;
    QVERIFY(w.training()->exportCsv(out.filePath("c.csv")));
    QFile csv(out.filePath("c.csv"));
    QVERIFY(csv.open(QIODevice::ReadOnly));
    QCOMPARE(csv.readAll().count('\n'), 1 + 4 * 6);  // header + loss, lr, samples/s, grad x 6
    w.training()->setLogY(true);
    QVERIFY(w.training()->exportPng(out.filePath("c.png"), 800, 500));
    QCOMPARE(QImage(out.filePath("c.png")).width(), 800);
    QVERIFY(w.training()->exportPdf(out.filePath("c.pdf")));
    QVERIFY(QFileInfo(out.filePath("c.pdf")).size() > 1000);
    // The other panels work on what was trained: the compare table fills, the evaluation panel
    // evaluates the run's checkpoint on its validation set, the inspect panel draws both grids.
    w.compare()->refresh();
    QCOMPARE(tableRows(w.compare(), "comparison"), 1);
    w.evaluation()->refresh();
    QCOMPARE(w.evaluation()->checkpointBox()->count(), 1);
    QTemporaryDir syn;
    QVERIFY(QProcess::execute(MSCONV_BIN, {"data", "synth", "-o", syn.path(), "--identities", "4",
                                           "--images-per-id", "2", "--pairs", "20",
                                           "--val-identities", "4"}) == 0);
    w.evaluation()->binsEdit()->setText(syn.path() + "/val.bin");
    QSignalSpy evaluated(w.evaluation(), &EvalPanel::evaluated);
    w.evaluation()->evaluate();
    QVERIFY(evaluated.wait(120000));
    QCoreApplication::processEvents();
    QCOMPARE(tableRows(w.evaluation(), "verification"), 1);
    QCOMPARE(rocCurves(w.evaluation()), 1);
    QCOMPARE(tableRows(w.evaluation(), "tar_at_far"), 1);
    QSignalSpy all(w.evaluation(), &EvalPanel::allEvaluated);
    w.evaluation()->evaluateAll();  // every listed checkpoint: here the one run again
    QVERIFY(all.wait(120000));
    QCoreApplication::processEvents();
    QCOMPARE(tableRows(w.evaluation(), "verification"), 2);
    QCOMPARE(rocCurves(w.evaluation()), 2);
    w.inspect()->refresh();
    QVERIFY(w.inspect()->layers().size() >= 4);  // the tree: an operator layer per unit
    // The faces of the run's (synthetic) training set, one per identity, listed in the background.
    if (w.inspect()->datasetFaces() == 0)
      QVERIFY(QSignalSpy(w.inspect(), &InspectPanel::datasetListed).wait(60000));
    QCOMPARE(w.inspect()->datasetFaces(), 6);
    QVERIFY(w.inspect()->layer().endsWith(".op"));
    QSignalSpy updated(w.inspect(), &InspectPanel::updated);
    w.inspect()->setImage(QDir(syn.path()).filePath("train/00000/000.jpg"));
    while (updated.count() < 2) QVERIFY(updated.wait(120000));
    QVERIFY(w.inspect()->featureImage().width() > 300);
    QVERIFY(w.inspect()->camImage().width() > 400);
    QVERIFY(w.inspect()->exportPng("gradcam", out.filePath("cam.png")));
    // A face from a RecordIO set: written to a file once, readable, the same file next time.
    QVERIFY(QProcess::execute(MSCONV_BIN, {"data", "pack", syn.filePath("train"), "-o",
                                           out.filePath("faces")}) == 0);
    const auto samples = datasetSamples(out.filePath("faces.rec"), 10);
    QCOMPARE(samples.size(), size_t(4));  // one per identity
    const QString from_rec = datasetImageFile(out.filePath("faces.rec"), samples[1].second);
    QCOMPARE(QImage(from_rec).size(), QSize(112, 112));
    QCOMPARE(datasetImageFile(out.filePath("faces.rec"), samples[1].second), from_rec);
    // identity:N targets the run's margin head (6 identities here), as msconv gradcam does.
    const QString ck = w.evaluation()->checkpointBox()->itemData(0).toString();
    const QString face0 = QDir(syn.path()).filePath("train/00000/000.jpg");
    QVERIFY(gradcamFigure({ck}, face0, "gradcam", "identity:2", {}, "jet", 0.5).width() > 400);
    try {
      gradcamFigure({ck}, face0, "gradcam", "identity:999", {}, "jet", 0.5);
      QFAIL("identity 999 was accepted");
    } catch (const std::exception& e) {
      QVERIFY2(QString(e.what()).contains("999"), e.what());
    }
    QCOMPARE(QImage(out.filePath("cam.png")).size(), w.inspect()->camImage().size());
    // The report: the same charts and figures as files, tied together by index.html.
    const QString face = QDir(syn.path()).filePath("train/00000/000.jpg");
    const QStringList files = writeReport(ws.path(), out.filePath("report"), {face, {}});
    QCOMPARE(files.back(), out.filePath("report/index.html"));
    QFile index(files.back());
    QVERIFY(index.open(QIODevice::ReadOnly));
    const QString html = index.readAll();
    for (const auto& f : files) {
      QVERIFY2(QFileInfo(f).size() > 50, qPrintable(f));
      if (f.endsWith(".png")) {
        QVERIFY2(html.contains("src=\"" + QFileInfo(f).fileName() + "\""), qPrintable(f));
        QVERIFY(QImage(f).width() > 300);
      }
    }
    QVERIFY(files.contains(out.filePath("report/featuremaps-tiny.png")));
    QVERIFY(files.contains(out.filePath("report/gradcam.png")));
    QFile metrics(out.filePath("report/metrics.json"));
    QVERIFY(metrics.open(QIODevice::ReadOnly));
    const QJsonObject run = QJsonDocument::fromJson(metrics.readAll())["runs"][0].toObject();
    QCOMPARE(run["name"].toString(), QString("tiny"));
    QVERIFY(run["params_m"].toDouble() > 0.1);
    // The run validated on nothing: its evaluation says so, and the report is still written.
    QVERIFY(run["evaluation"]["error"].toString().contains("no validation sets"));
    // A run's context menu opens msconv-scope (beside the workbench) on the run's folder.
    QSignalSpy scope(w.runs(), &RunsPanel::scopeRequested);
    w.runs()->openScope(0);
    QCOMPARE(scope.count(), 1);
    QCOMPARE(scope.first().at(0).toString(), QDir(ws.path()).filePath("runs/tiny"));
    QVERIFY(QFileInfo::exists(MainWindow::scopeProgram()));
    QCOMPARE(MainWindow::scopeArguments("x"), QStringList{"x"});
    // A failing configuration reaches the window as an error, not a crash.
    QVERIFY(w.launch("bad", {"model.arch=nosuch"}) == nullptr ||
            QSignalSpy(w.workers().back().get(), &TrainingWorker::failed).wait(60000));
  }
};

QTEST_MAIN(UiTest)
#include "test_ui.moc"
