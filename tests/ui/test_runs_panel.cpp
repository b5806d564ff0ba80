// The workbench for a person, offscreen: the Runs table's live columns while a run trains, its
// stable sorting, the empty workspace's hint and the demo workspace, File > Open workspace and
// Recent workspaces, the New Run form's data pickers (with the picked set's summary), key-by-key
// validation and "Copy settings from run", and the Evaluation panel's progress bar and Cancel.
#include <QAction>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <memory>

#include "msconv/config/config.h"
#include "msconv/data/synth.h"
#include "msconv/store/run_store.h"
#include "msconv/ui/compare_panel.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/eval_panel.h"
#include "msconv/ui/main_window.h"
#include "msconv/ui/runs_panel.h"
#include "msconv/ui/study_panel.h"
#include "msconv/ui/training_worker.h"
#include "msconv/workspace/workspace.h"

using namespace msconv::ui;

namespace {

// A run in a workspace's store with its last logged step (and a configuration).
void storeRun(const QString& ws, const std::string& name, msconv::store::RunStatus status,
              int64_t step, const std::string& config = "{}") {
  const msconv::workspace::Workspace w(ws.toStdString());
  const auto db = w.openStoreToWrite();
  const auto row = db->createRun(name, config, "msnet-tiny", "msconv-official");
  if (step > 0) db->addMetrics(row.id, step, {{"loss", 1.0}, {"samples_per_s", 100.0 + step}});
  if (status != msconv::store::RunStatus::kRunning) db->setStatus(row.id, status);
}

// A small synthetic face set: DIR/train (identity folders) and DIR/val.bin.
void synth(const QString& dir, int identities, int per_id, int pairs) {
  msconv::data::SynthOptions o;
  o.identities = identities;
  o.images_per_id = per_id;
  o.pairs = pairs;
  o.val_identities = 4;
  o.threads = 1;
  msconv::data::generateSyntheticFaces(dir.toStdString(), o);
}

// `msconv export` of a checkpoint to `onnx`: "" when it worked, else what msconv said.
QString exportOnnx(const QString& checkpoint, const QString& onnx) {
  QProcess p;
  p.start(MSCONV_BIN, {"export", "--checkpoint", checkpoint, "--onnx", onnx});
  if (!p.waitForFinished(120000)) return "msconv export did not finish";
  return p.exitCode() == 0 ? QString() : QString::fromUtf8(p.readAllStandardError());
}

const QStringList kTiny = {"model.arch=msnet-tiny",
                           "train.batch_size=8",
                           "data.synthetic_identities=6",
                           "data.synthetic_images_per_id=4",
                           "train.log_every=1",
                           "train.threads=1",
                           "data.threads=1"};

}  // namespace

class RunsPanelTest : public QObject {
  Q_OBJECT
  QTemporaryDir home_;      // settings, the demo workspace, the current folder
  QStringList unexpected_;  // captions of file dialogs reached without a test's own stub
  std::unique_ptr<QTemporaryDir> trained_;  // a workspace with a trained tiny run
  QString checkpoint_;

  void defaultStub() {
    setFileDialogStub([this](const FileDialogRequest& r) {
      unexpected_ << r.caption;
      return QString();
    });
  }

  // A trained tiny run (the live test's, else one trained here).
  QString checkpoint() {
    if (!checkpoint_.isEmpty()) return checkpoint_;
    trained_ = std::make_unique<QTemporaryDir>();
    MainWindow w(trained_->path());
    TrainingWorker* worker = w.launch("ck", kTiny + QStringList{"train.max_steps=2", "data.val="});
    if (!worker) return {};
    QSignalSpy done(worker, &TrainingWorker::finished);
    if (!done.wait(180000)) return {};
    checkpoint_ = QString::fromStdString(
        msconv::workspace::Workspace(trained_->path().toStdString()).runCheckpoint("ck"));
    return checkpoint_;
  }

 private Q_SLOTS:
  void initTestCase() {
    QCoreApplication::setOrganizationName("MSConvLabRunsPanelTest");
    QCoreApplication::setApplicationName("msconv-lab-test");
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, home_.filePath("config"));
    qputenv("XDG_DATA_HOME", home_.filePath("data").toUtf8());
    QVERIFY(QDir::setCurrent(home_.path()));  // no ./out/demo/lab here: the demo is our own
    setWarningBoxesEnabled(false);            // refusals reach the status bar; no boxes
    defaultStub();
  }

  void cleanupTestCase() {
    setWarningBoxesEnabled(true);
    QVERIFY2(unexpected_.isEmpty(), qPrintable(unexpected_.join(", ")));
  }

  // A run's row while it trains: step, "step / total", ETA and samples/s follow each step event
  // (the store is read only at the start and at validations); the validation's accuracy and
  // TAR@FAR fill in; the empty workspace's hint goes once the run is listed.
  void liveStepsFillTheRunRowWhileItTrains() {
    trained_ = std::make_unique<QTemporaryDir>();
    MainWindow w(trained_->path());
    RunsPanel* runs = w.runs();
    QVERIFY(runs->emptyHint()->isVisibleTo(runs));
    TrainingWorker* worker =
        w.launch("live", kTiny + QStringList{"train.max_steps=12", "train.val_every=6", "seed=3"});
    QVERIFY(worker != nullptr);
    struct Seen {
      qint64 step;
      QString steps, progress, eta, speed, status;
    };
    QList<Seen> seen;
    // After the window's own slot (connected first): what the row shows at each step.
    connect(worker, &TrainingWorker::step, this,
            [&](qint64 step, double, double, double, double, double) {
              const int row = runs->rowOf("live");
              if (row < 0) return;
              seen << Seen{step,
                           runs->cell(row, RunsPanel::kSteps),
                           runs->cell(row, RunsPanel::kProgress),
                           runs->cell(row, RunsPanel::kEta),
                           runs->cell(row, RunsPanel::kSpeed),
                           runs->cell(row, RunsPanel::kStatus)};
            });
    QSignalSpy done(worker, &TrainingWorker::finished);
    QVERIFY(done.wait(240000));
    QCOMPARE(done.first().at(0).toString(), QString("done"));
    QCoreApplication::processEvents();
    QCOMPARE(seen.size(), 12);
    int live = 0;
    for (const auto& s : seen) {
      if (s.status != "running") continue;
      ++live;
      QCOMPARE(s.steps, QString::number(s.step));
      QCOMPARE(s.progress, QString("%1 / 12").arg(s.step));
      QVERIFY2(s.eta.endsWith(" s") || s.eta.contains("min"), qPrintable(s.eta));
      QVERIFY2(s.speed.toDouble() > 0, qPrintable(s.speed));
    }
    QVERIFY2(live >= 10, qPrintable(QString::number(live)));  // every step but the last ones
    QVERIFY(!runs->emptyHint()->isVisibleTo(runs));
    const int row = runs->rowOf("live");
    QCOMPARE(runs->cell(row, RunsPanel::kStatus), QString("done"));
    QCOMPARE(runs->cell(row, RunsPanel::kSteps), QString("12"));
    QCOMPARE(runs->cell(row, RunsPanel::kProgress), QString("12 / 12"));
    QVERIFY(runs->cell(row, RunsPanel::kEta).isEmpty());  // no ETA once done
    QVERIFY(!runs->cell(row, RunsPanel::kElapsed).isEmpty());
    // The validation behind best.ckpt, as the Compare panel names its metrics.
    bool ok = false;
    const double acc = runs->cell(row, RunsPanel::kAccuracy).toDouble(&ok);
    QVERIFY2(ok && acc > 0 && acc <= 100, qPrintable(runs->cell(row, RunsPanel::kAccuracy)));
    const double tar = runs->cell(row, RunsPanel::kTar).toDouble(&ok);
    QVERIFY2(ok && tar >= 0 && tar <= 100, qPrintable(runs->cell(row, RunsPanel::kTar)));
    // The tooltip names the metric (1e-3 where the set is large enough, else its lowest FAR)
    // and lists every compared metric of that validation, one number per name.
    const QStringList tip = runs->table()->item(row, RunsPanel::kTar)->toolTip().split('\n');
    QVERIFY2(tip.size() >= 4 && tip[0].startsWith("val.bin/tar@far="), qPrintable(tip.join('|')));
    QVERIFY2(tip[1].startsWith("best.ckpt, step "), qPrintable(tip[1]));
    QVERIFY2(tip.contains(tip[0] + " = " + runs->cell(row, RunsPanel::kTar) + " %"),
             qPrintable(tip.join('|')));
    QVERIFY(tip.contains("val.bin/accuracy = " + runs->cell(row, RunsPanel::kAccuracy) + " %"));
    double lowest = 1;
    for (const auto& line : tip)
      if (line.startsWith("val.bin/tar@far=") && line.contains(" = "))
        lowest = std::min(lowest, line.mid(16, line.indexOf(' ') - 16).toDouble());
    const double chosen = tip[0].mid(16).toDouble();
    QVERIFY2(std::fabs(chosen - 1e-3) < 1e-12 || chosen == lowest, qPrintable(tip[0]));
    checkpoint_ = QString::fromStdString(
        msconv::workspace::Workspace(trained_->path().toStdString()).runCheckpoint("live"));
    QVERIFY(QFileInfo::exists(checkpoint_));
  }

  // Sorting by a column keeps the selected run selected; numbers sort as numbers (9 < 10 < 100),
  // ties keep one order; a refresh (with a new run) neither reorders nor moves the columns.
  void sortingKeepsTheSelectionAndSortsNumbers() {
    QTemporaryDir ws;
    using S = msconv::store::RunStatus;
    storeRun(ws.path(), "a", S::kDone, 9);
    storeRun(ws.path(), "b", S::kDone, 100);
    storeRun(ws.path(), "c", S::kStopped, 10);
    storeRun(ws.path(), "d", S::kDone, 100);
    RunsPanel panel(ws.path());
    panel.resize(1400, 600);
    panel.refresh();
    QCOMPARE(panel.runOrder(), (QStringList{"a", "b", "c", "d"}));  // the store's order
    panel.selectRun("c");
    QCOMPARE(panel.selectedRun(), QString("c"));
    panel.sortBy(RunsPanel::kSteps, Qt::AscendingOrder);
    QCOMPARE(panel.runOrder(), (QStringList{"a", "c", "b", "d"}));
    QCOMPARE(panel.selectedRun(), QString("c"));
    panel.sortBy(RunsPanel::kSteps, Qt::DescendingOrder);
    QCOMPARE(panel.runOrder().mid(2), (QStringList{"c", "a"}));
    QCOMPARE(panel.selectedRun(), QString("c"));
    panel.sortBy(RunsPanel::kSpeed, Qt::AscendingOrder);  // 109, 200, 110, 200 samples/s
    QCOMPARE(panel.runOrder(), (QStringList{"a", "c", "b", "d"}));
    QCOMPARE(panel.cell(panel.rowOf("c"), RunsPanel::kSpeed), QString("110.0"));
    QCOMPARE(panel.selectedRun(), QString("c"));
    std::vector<int> widths;
    for (int c = 0; c < RunsPanel::kError; ++c) widths.push_back(panel.table()->columnWidth(c));
    for (int i = 0; i < 3; ++i) panel.refresh();
    QCOMPARE(panel.runOrder(), (QStringList{"a", "c", "b", "d"}));
    QCOMPARE(panel.selectedRun(), QString("c"));
    storeRun(ws.path(), "e", S::kDone, 150);
    panel.refresh();
    QCOMPARE(panel.runOrder(), (QStringList{"a", "c", "b", "d", "e"}));  // in its sorted place
    QCOMPARE(panel.selectedRun(), QString("c"));
    for (int c = 0; c < RunsPanel::kError; ++c)
      QCOMPARE(panel.table()->columnWidth(c), widths[static_cast<size_t>(c)]);
    panel.sortBy(RunsPanel::kName, Qt::DescendingOrder);
    QCOMPARE(panel.runOrder(), (QStringList{"e", "d", "c", "b", "a"}));
    QCOMPARE(panel.selectedRun(), QString("c"));
  }

  // An empty workspace says what to do, with buttons that work: Open workspace asks for a folder
  // (read-only, stubbed); the demo workspace opens with its three tiny runs queued, once.
  void emptyWorkspaceHintAndTheDemo() {
    QTemporaryDir ws;
    MainWindow w(ws.path());
    RunsPanel* runs = w.runs();
    QVERIFY(runs->emptyHint()->isVisibleTo(runs));
    QList<FileDialogRequest> asked;
    setFileDialogStub([&](const FileDialogRequest& r) {
      asked << r;
      return QString();  // cancelled
    });
    runs->emptyHint()->findChild<QPushButton*>("hint_open")->click();
    QCoreApplication::processEvents();
    QCOMPARE(asked.size(), 1);
    QCOMPARE(asked[0].kind, FileDialogKind::kDirectory);
    QVERIFY(asked[0].options.testFlag(QFileDialog::ReadOnly));
    QCOMPARE(w.workspace(), ws.path());  // cancelled: the same workspace
    defaultStub();
    runs->emptyHint()->findChild<QPushButton*>("hint_demo")->click();
    QTRY_COMPARE(w.workspace(), MainWindow::demoWorkspace());
    QVERIFY(MainWindow::demoWorkspace().startsWith(home_.filePath("data")));
    QCOMPARE(w.queue().size(), size_t(3));
    QCOMPARE(w.runningCount(), 0);  // queued, waiting for Train queued
    QCOMPARE(w.runs()->rowCount(), 3);
    QCOMPARE(w.runs()->cell(0, RunsPanel::kStatus), QString("queued"));
    QVERIFY(!w.runs()->emptyHint()->isVisibleTo(w.runs()));
    QVERIFY(w.openDemoWorkspace());  // again: nothing queued twice
    QCOMPARE(w.queue().size(), size_t(3));
    // The window's title and every panel follow the workspace.
    QVERIFY(w.windowTitle().endsWith(MainWindow::demoWorkspace()));
    QCOMPARE(w.runs()->workspace(), MainWindow::demoWorkspace());
  }

  // File > Open workspace (a stubbed folder dialog) and File > Recent workspaces: most recent
  // first, at most 8, folders that are gone dropped; a file is refused.
  void recentWorkspacesOrderAndPruning() {
    QSettings().remove("workspaces/recent");
    QTemporaryDir root;
    QStringList dirs;
    for (int i = 0; i < 11; ++i) {
      dirs << root.filePath(QString("ws%1").arg(i));
      QVERIFY(QDir().mkpath(dirs.back()));
    }
    MainWindow w(dirs[0]);
    QCOMPARE(MainWindow::recentWorkspaces(), QStringList{dirs[0]});
    QVERIFY(w.setWorkspace(dirs[1]));
    // File > Open workspace…: the stub's folder.
    QAction* open = nullptr;
    for (auto* a : w.findChildren<QAction*>())
      if (a->text().startsWith("Open workspace")) open = a;
    QVERIFY(open != nullptr);
    QList<FileDialogRequest> asked;
    setFileDialogStub([&](const FileDialogRequest& r) {
      asked << r;
      return dirs[2];
    });
    open->trigger();
    defaultStub();
    QCOMPARE(asked.size(), 1);
    QCOMPARE(asked[0].kind, FileDialogKind::kDirectory);
    QVERIFY(asked[0].options.testFlag(QFileDialog::ReadOnly));
    QCOMPARE(w.workspace(), dirs[2]);
    QCOMPARE(w.runs()->workspace(), dirs[2]);
    QCOMPARE(MainWindow::recentWorkspaces(), (QStringList{dirs[2], dirs[1], dirs[0]}));
    // Reopening one moves it to the top, without a second entry.
    QVERIFY(w.setWorkspace(dirs[0]));
    QCOMPARE(MainWindow::recentWorkspaces(), (QStringList{dirs[0], dirs[2], dirs[1]}));
    // The menu lists them; its entry switches the window.
    Q_EMIT w.recentMenu()->aboutToShow();
    QStringList listed;
    QAction* to_second = nullptr;
    for (auto* a : w.recentMenu()->actions()) {
      listed << a->text();
      if (a->text() == dirs[2]) to_second = a;
    }
    QCOMPARE(listed, (QStringList{dirs[0], dirs[2], dirs[1]}));
    QVERIFY(to_second != nullptr);
    to_second->trigger();
    QCOMPARE(w.workspace(), dirs[2]);
    // A folder that is gone is dropped.
    QVERIFY(QDir(dirs[1]).removeRecursively());
    QCOMPARE(MainWindow::recentWorkspaces(), (QStringList{dirs[2], dirs[0]}));
    QCOMPARE(QSettings().value("workspaces/recent").toStringList(),
             (QStringList{dirs[2], dirs[0]}));
    // At most 8, the newest first.
    for (int i = 3; i < 11; ++i) QVERIFY(w.setWorkspace(dirs[i]));
    const QStringList recent = MainWindow::recentWorkspaces();
    QCOMPARE(recent.size(), MainWindow::kMaxRecent);
    QCOMPARE(recent.front(), dirs[10]);
    QCOMPARE(recent.back(), dirs[3]);
    // Not a folder: refused, the workspace unchanged.
    QFile file(root.filePath("plain.txt"));
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.close();
    QVERIFY(!w.setWorkspace(file.fileName()));
    QCOMPARE(w.workspace(), dirs[10]);
  }

  // The data pickers: the stubbed dialogs' paths fill data.train / data.val, and a one-line
  // summary of the set follows (what `msconv data info` says); a path that is not a set is named.
  void pickersFillTheFormAndSummarise() {
    QTemporaryDir ws, syn;
    synth(syn.path(), 4, 3, 40);
    RunsPanel panel(ws.path());
    QList<FileDialogRequest> asked;
    setFileDialogStub([&](const FileDialogRequest& r) {
      asked << r;
      return r.kind == FileDialogKind::kDirectory ? syn.filePath("train") : syn.filePath("val.bin");
    });
    QSignalSpy ready(&panel, &RunsPanel::summaryReady);
    panel.findChild<QToolButton*>("train_folder")->click();
    QCOMPARE(panel.trainEdit()->text(), syn.filePath("train"));
    QVERIFY(ready.count() == 1 || ready.wait(30000));
    QVERIFY2(panel.trainSummary()->text().contains("folder: 4 identities, 12 images, 112x112"),
             qPrintable(panel.trainSummary()->text()));
    panel.findChild<QToolButton*>("val_file")->click();
    QCOMPARE(panel.valEdit()->text(), syn.filePath("val.bin"));
    QVERIFY(ready.count() == 2 || ready.wait(30000));
    QVERIFY2(panel.valSummary()->text().contains("val.bin: pairs: 80 images, 40 pairs"),
             qPrintable(panel.valSummary()->text()));
    panel.findChild<QToolButton*>("train_file")->click();  // a file: the .bin here
    QCOMPARE(asked.size(), 3);
    QCOMPARE(asked[0].kind, FileDialogKind::kDirectory);
    QCOMPARE(asked[1].kind, FileDialogKind::kOpen);
    for (const auto& r : asked) QVERIFY(r.options.testFlag(QFileDialog::ReadOnly));
    defaultStub();
    panel.trainEdit()->setText(syn.filePath("train"));
    QString error;
    const QStringList s = panel.settings(&error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QVERIFY(s.contains("data.train=" + syn.filePath("train")));
    QVERIFY(s.contains("data.val=" + syn.filePath("val.bin")));
    // A path that is no set: the summary says so, naming it.
    panel.trainEdit()->setText(syn.filePath("nothing-here"));
    Q_EMIT panel.trainEdit()->editingFinished();
    // (A summary asked for earlier may still arrive: it must not replace this one.)
    QTRY_VERIFY2_WITH_TIMEOUT(panel.trainSummary()->text().contains("nothing-here"),
                              qPrintable(panel.trainSummary()->text()), 30000);
    QTest::qWait(300);
    QVERIFY2(panel.trainSummary()->text().contains("nothing-here"),
             qPrintable(panel.trainSummary()->text()));
  }

  // Each field of the New Run form maps onto its configuration key and is validated by the
  // trainer's own validation: a bad value blocks Launch and the message names the key.
  void badValuesAreRejectedNamingTheKey() {
    QTemporaryDir ws;
    RunsPanel panel(ws.path());
    QVERIFY2(panel.launchEnabled(), qPrintable(panel.errorLabel()->text()));
    // The settings line stays the form's last line edit (the window's older tests type there).
    QCOMPARE(panel.findChildren<QLineEdit*>().last(), panel.settingsEdit());
    struct Case {
      QLineEdit* edit;
      QString bad, key, good;
    };
    const QList<Case> cases = {{panel.lrEdit(), "fast", "train.lr", "0.05"},
                               {panel.scaleEdit(), "0", "loss.s", "30"},
                               {panel.marginEdit(1), "20", "loss.m1", "1"},
                               {panel.marginEdit(2), "5", "loss.m2", "0.4"},
                               {panel.marginEdit(3), "x", "loss.m3", "0.1"},
                               {panel.lrMinEdit(), "-1", "train.lr_min", "1e-5"},
                               {panel.warmupEdit(), "soon", "train.warmup_epochs", "1"},
                               {panel.seedEdit(), "-3", "seed", "7"}};
    for (const auto& c : cases) {
      c.edit->setText(c.bad);
      QVERIFY2(!panel.launchEnabled(), qPrintable(c.key));
      QVERIFY2(panel.errorLabel()->text().contains("'" + c.key + "'"),
               qPrintable(c.key + ": " + panel.errorLabel()->text()));
      c.edit->setText(c.good);
      QVERIFY2(panel.launchEnabled(), qPrintable(c.key + ": " + panel.errorLabel()->text()));
    }
    panel.epochsBox()->setValue(0);
    QVERIFY(!panel.launchEnabled());
    QVERIFY(panel.errorLabel()->text().contains("'train.epochs'"));
    panel.epochsBox()->setValue(3);
    panel.lossBox()->setCurrentText("cosface");
    panel.scheduleBox()->setCurrentText("poly");
    panel.deviceBox()->setCurrentText("cpu");
    panel.threadsBox()->setValue(2);
    QVERIFY(panel.launchEnabled());
    QString error;
    const QStringList s = panel.settings(&error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    for (const char* kv :
         {"loss.type=cosface", "train.schedule=poly", "train.device=cpu", "train.threads=2",
          "train.epochs=3", "loss.s=30", "loss.m1=1", "loss.m2=0.4", "loss.m3=0.1",
          "train.lr_min=1e-5", "train.warmup_epochs=1", "seed=7", "train.lr=0.05"})
      QVERIFY2(s.contains(kv), kv);
    // The form's settings are a configuration the trainer reads as given.
    std::vector<std::string> sets;
    for (const auto& kv : s) sets.push_back(kv.toStdString());
    const auto r = msconv::config::Config::load("", sets).settings();
    QCOMPARE(r.loss.type, std::string("cosface"));
    QCOMPARE(r.loss.m2, 0.4);
    QCOMPARE(r.train.schedule, std::string("poly"));
    QCOMPARE(r.train.threads, 2);
    QCOMPARE(r.seed, uint64_t(7));
  }

  // "Copy settings from run": the form takes a run's stored configuration (its fields, the rest
  // in the settings line), and launching it would train the same configuration.
  void copySettingsFillsTheForm() {
    QTemporaryDir ws;
    const std::vector<std::string> sets = {"model.arch=msnet-small", "model.op=skconv",
                                           "train.lr=0.05",          "train.batch_size=32",
                                           "train.max_steps=77",     "train.epochs=3",
                                           "train.schedule=poly",    "loss.type=cosface",
                                           "loss.m3=0.35",           "seed=7",
                                           "train.threads=2",        "data.val=a.bin,b.bin",
                                           "train.lr_min=1e-05",     "data.synthetic_identities=12",
                                           "train.log_every=5"};
    const auto original = msconv::config::Config::load("", sets);
    storeRun(ws.path(), "src", msconv::store::RunStatus::kDone, 77, original.toJson());
    RunsPanel panel(ws.path());
    panel.refresh();
    // Through the button's menu of the workspace's runs.
    QMenu* menu = panel.copyButton()->menu();
    QVERIFY(menu != nullptr);
    Q_EMIT menu->aboutToShow();
    QAction* src = nullptr;
    for (auto* a : menu->actions())
      if (a->text() == "src") src = a;
    QVERIFY(src != nullptr);
    src->trigger();
    QCOMPARE(panel.archBox()->currentText(), QString("msnet-small"));
    QCOMPARE(panel.opBox()->currentText(), QString("skconv"));
    QCOMPARE(panel.lrEdit()->text(), QString("0.05"));
    QCOMPARE(panel.batchBox()->value(), 32);
    QCOMPARE(panel.stepsBox()->value(), 77);
    QCOMPARE(panel.epochsBox()->value(), 3);
    QCOMPARE(panel.scheduleBox()->currentText(), QString("poly"));
    QCOMPARE(panel.lossBox()->currentText(), QString("cosface"));
    QCOMPARE(panel.marginEdit(3)->text(), QString("0.35"));
    QVERIFY(panel.marginEdit(1)->text().isEmpty());  // the preset's
    QCOMPARE(panel.seedEdit()->text(), QString("7"));
    QCOMPARE(panel.threadsBox()->value(), 2);
    QCOMPARE(panel.valEdit()->text(), QString("a.bin,b.bin"));
    const QString extra = panel.settingsEdit()->text();
    QVERIFY2(extra.contains("data.synthetic_identities=12"), qPrintable(extra));
    QVERIFY2(extra.contains("train.log_every=5"), qPrintable(extra));
    QVERIFY2(!extra.contains("train.lr=") && !extra.contains("model."), qPrintable(extra));
    QString error;
    const QStringList s = panel.settings(&error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    std::vector<std::string> back;
    for (const auto& kv : s) back.push_back(kv.toStdString());
    QCOMPARE(QString::fromStdString(msconv::config::Config::load("", back).toJson()),
             QString::fromStdString(original.toJson()));
    // A run that is not there: false, named.
    QVERIFY(!panel.copySettingsFrom("nosuch"));
    QVERIFY2(panel.errorLabel()->text().contains("nosuch"), qPrintable(panel.errorLabel()->text()));
  }

  // The Evaluation panel's long work: a progress bar over its units with an ETA, and Cancel, which
  // stops it before the next set (the rest are never evaluated).
  void cancellingAnEvaluationStopsIt() {
    const QString ck = checkpoint();
    QVERIFY(QFileInfo::exists(ck));
    QTemporaryDir ws, syn;
    synth(syn.path(), 4, 2, 300);
    QStringList bins;
    for (int i = 0; i < 8; ++i) {
      bins << syn.filePath(QString("set%1.bin").arg(i));
      QVERIFY(QFile::copy(syn.filePath("val.bin"), bins.back()));
    }
    EvalPanel panel(ws.path());
    QVERIFY(panel.addCheckpoint(ck));
    panel.binsEdit()->setText(bins.join(' '));
    QSignalSpy progressed(&panel, &EvalPanel::progressed);
    QSignalSpy evaluated(&panel, &EvalPanel::evaluated);
    QSignalSpy all(&panel, &EvalPanel::allEvaluated);
    panel.evaluate();
    QVERIFY(panel.busy());
    QVERIFY(panel.progressBar()->isVisibleTo(&panel));
    QVERIFY(panel.cancelButton()->isVisibleTo(&panel));
    QCOMPARE(panel.progressBar()->maximum(), 8);
    QVERIFY(progressed.wait(120000));
    QCOMPARE(panel.progressBar()->value(), progressed.last().at(0).toInt());
    QVERIFY2(panel.progressLabel()->text().contains("left"),
             qPrintable(panel.progressLabel()->text()));
    panel.cancelButton()->click();
    QVERIFY(all.count() == 1 || all.wait(120000));
    QCoreApplication::processEvents();
    QVERIFY(!panel.busy());
    const int done = progressed.last().at(0).toInt();
    QVERIFY2(done < 8, qPrintable(QString::number(done)));
    QVERIFY2(evaluated.count() <= done, qPrintable(QString::number(evaluated.count())));
    QCOMPARE(panel.findChild<QTableWidget*>("verification")->rowCount(), evaluated.count());
    QVERIFY(!panel.progressBar()->isVisibleTo(&panel));
    QVERIFY(panel.findChild<QLabel*>() != nullptr);
    bool said = false;
    for (auto* l : panel.findChildren<QLabel*>()) said |= l->text().contains("cancelled");
    QVERIFY(said);
    // Nothing more arrives after the cancel: the worker has stopped.
    const int after = evaluated.count();
    QTest::qWait(1500);
    QCOMPARE(evaluated.count(), after);
    // A new evaluation runs to its end.
    panel.binsEdit()->setText(bins[0]);
    QSignalSpy again(&panel, &EvalPanel::allEvaluated);
    panel.evaluate();
    QVERIFY(again.wait(120000));
    QCOMPARE(progressed.last().at(0).toInt(), 1);
    QCOMPARE(progressed.last().at(1).toInt(), 1);
  }

  // The first run of a workspace generates its synthetic set: its row says "preparing N %" and
  // what, before the store holds it; Stop ends the generation at once (stopped, no run in the
  // store, no partial set left).
  void aRunPreparingItsSyntheticSetShowsItAndStops() {
    QTemporaryDir ws;
    MainWindow w(ws.path());
    TrainingWorker* worker = w.launch(
        "prep", {"model.arch=msnet-tiny", "data.synthetic_identities=400",
                 "data.synthetic_images_per_id=20", "train.max_steps=5", "train.batch_size=8"});
    QVERIFY(worker);
    QSignalSpy preparing(worker, &TrainingWorker::preparing);
    QSignalSpy finished(worker, &TrainingWorker::finished);
    QVERIFY(preparing.wait(60000));
    QCoreApplication::processEvents();
    QCOMPARE(preparing.last().at(2).toLongLong(), qint64{400 * 20 + 2 * 1000});
    RunsPanel* runs = w.runs();
    const int row = runs->rowOf("prep");
    QVERIFY(row >= 0);
    QVERIFY2(runs->cell(row, RunsPanel::kStatus).startsWith("preparing"),
             qPrintable(runs->cell(row, RunsPanel::kStatus)));
    QVERIFY2(runs->cell(row, RunsPanel::kError).contains("synthetic set"),
             qPrintable(runs->cell(row, RunsPanel::kError)));
    // From the second report on, an ETA.
    QVERIFY(preparing.count() >= 2 || preparing.wait(60000));
    QCoreApplication::processEvents();
    QVERIFY2(!runs->cell(runs->rowOf("prep"), RunsPanel::kEta).isEmpty(),
             qPrintable(runs->cell(runs->rowOf("prep"), RunsPanel::kEta)));
    worker->stop();
    QVERIFY(finished.wait(60000));
    QCOMPARE(finished.last().at(0).toString(), QString("stopped"));
    QVERIFY(preparing.last().at(1).toLongLong() < preparing.last().at(2).toLongLong());
    QCoreApplication::processEvents();
    QCOMPARE(runs->rowOf("prep"), -1);  // no run was made
    QVERIFY(
        QDir(ws.filePath("datasets")).entryList(QDir::NoDotAndDotDot | QDir::AllEntries).isEmpty());
  }

  // One large set: the label counts its images with an ETA, and Cancel stops it at the next batch
  // (no result, far fewer batches than the set has).
  void cancelStopsALargeSetAtItsNextBatch() {
    const QString ck = checkpoint();
    QVERIFY(QFileInfo::exists(ck));
    QTemporaryDir ws, syn;
    synth(syn.path(), 4, 2, 3000);  // 6,000 images: about 94 batches of 64
    EvalPanel panel(ws.path());
    QVERIFY(panel.addCheckpoint(ck));
    panel.binsEdit()->setText(syn.filePath("val.bin"));
    QSignalSpy inside(&panel, &EvalPanel::setProgressed);
    QSignalSpy evaluated(&panel, &EvalPanel::evaluated);
    QSignalSpy all(&panel, &EvalPanel::allEvaluated);
    panel.evaluate();
    QVERIFY(inside.wait(120000));
    QCoreApplication::processEvents();
    const qint64 total = inside.last().at(2).toLongLong();
    QCOMPARE(total, qint64{6000});
    QVERIFY2(panel.progressLabel()->text().contains("of 6000 images"),
             qPrintable(panel.progressLabel()->text()));
    QVERIFY2(panel.progressLabel()->text().contains("left"),
             qPrintable(panel.progressLabel()->text()));
    panel.cancelButton()->click();
    QVERIFY(all.count() == 1 || all.wait(120000));
    QCoreApplication::processEvents();
    QCOMPARE(evaluated.count(), 0);
    QVERIFY2(inside.count() < 20, qPrintable(QString::number(inside.count())));
    QVERIFY(inside.last().at(1).toLongLong() < total);
    bool said = false;
    for (auto* l : panel.findChildren<QLabel*>()) said |= l->text().contains("cancelled");
    QVERIFY(said);
  }

  // ONNX in: the panel evaluates an ONNX file (the checkpoint exported by msconv export, run by
  // OpenCV's DNN module) beside the checkpoint itself; both rows give the same accuracy.
  void anOnnxModelIsEvaluatedBesideItsCheckpoint() {
    const QString ck = checkpoint();
    QVERIFY(QFileInfo::exists(ck));
    QTemporaryDir ws, syn;
    synth(syn.path(), 4, 2, 40);
    const QString onnx = ws.filePath("model.onnx");
    const QString exported = exportOnnx(ck, onnx);
    QVERIFY2(exported.isEmpty(), qPrintable(exported));
    EvalPanel panel(ws.path());
    QVERIFY(panel.addCheckpoint(onnx));
    QVERIFY(panel.addCheckpoint(ck));
    panel.binsEdit()->setText(syn.filePath("val.bin"));
    QSignalSpy all(&panel, &EvalPanel::allEvaluated);
    panel.evaluateAll();
    QVERIFY(all.wait(120000));
    const auto* t = panel.findChild<QTableWidget*>("verification");
    QCOMPARE(t->rowCount(), 2);
    int acc = -1;
    for (int c = 0; c < t->columnCount(); ++c)
      if (t->horizontalHeaderItem(c)->text().startsWith("accuracy")) acc = c;
    QVERIFY(acc >= 0);
    QVERIFY(!t->item(0, acc)->text().isEmpty());
    QCOMPARE(t->item(0, acc)->text(), t->item(1, acc)->text());
    QStringList models = {t->item(0, 0)->text(), t->item(1, 0)->text()};
    QVERIFY2(models.join(' ').contains("model.onnx") || models.join(' ').contains("onnx"),
             qPrintable(models.join(", ")));
  }

  // ONNX in, Compare: "Add model..." puts an ONNX file and its checkpoint beside the runs,
  // evaluated on a set: the same accuracy; the ONNX row's operator reads onnx and its MACs "-";
  // a file that is not a model is refused, named.
  void compareAddsModelFilesBesideTheRuns() {
    const QString ck = checkpoint();
    QVERIFY(QFileInfo::exists(ck));
    QTemporaryDir ws, syn;
    synth(syn.path(), 4, 2, 40);
    const QString onnx = ws.filePath("model.onnx");
    const QString exported = exportOnnx(ck, onnx);
    QVERIFY2(exported.isEmpty(), qPrintable(exported));
    ComparePanel panel(ws.path());
    QStringList answers = {onnx, syn.filePath("val.bin")};
    setFileDialogStub([&](const FileDialogRequest& r) {
      [&] { QVERIFY(r.options.testFlag(QFileDialog::ReadOnly)); }();
      return answers.isEmpty() ? QString() : answers.takeFirst();
    });
    QSignalSpy added(&panel, &ComparePanel::modelAdded);
    QPushButton* add = nullptr;
    for (auto* b : panel.findChildren<QPushButton*>())
      if (b->text() == "Add model...") add = b;
    QVERIFY(add);
    add->click();
    QVERIFY(added.wait(120000));
    panel.addModelFile(ck, {syn.filePath("val.bin")});
    QVERIFY(added.wait(120000));
    setFileDialogStub({});
    const auto* t = panel.table();
    QCOMPARE(t->rowCount(), 2);
    auto column = [&](const QString& head) {
      for (int c = 0; c < t->columnCount(); ++c)
        if (t->horizontalHeaderItem(c)->text() == head) return c;
      return -1;
    };
    const int acc = column("val.bin/accuracy %"), op = column("operator"),
              macs = column("MACs (G)");
    QVERIFY(acc >= 0 && op >= 0 && macs >= 0);
    int onnx_row = t->item(0, 0)->text() == "model.onnx" ? 0 : 1;
    QCOMPARE(t->item(onnx_row, 0)->text(), QString("model.onnx"));
    QCOMPARE(t->item(onnx_row, op)->text(), QString("onnx"));
    QCOMPARE(t->item(onnx_row, macs)->text(), QString("-"));
    QVERIFY(t->item(1 - onnx_row, op)->text() != "onnx");
    QCOMPARE(t->item(0, acc)->text(), t->item(1, acc)->text());
    // Not a model: refused, named.
    setWarningBoxesEnabled(false);
    const QString junk = ws.filePath("junk.onnx");
    QFile f(junk);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("junk");
    f.close();
    QSignalSpy failed(&panel, &ComparePanel::modelFailed);
    panel.addModelFile(junk, {syn.filePath("val.bin")});
    QVERIFY(failed.wait(60000));
    setWarningBoxesEnabled(true);
    QVERIFY(failed.last().at(0).toString().contains("junk.onnx"));
    QCOMPARE(t->rowCount(), 2);
  }

  // The Study panel's report: a progress bar over the study's finished runs, and Cancel, which
  // stops it before the next run is evaluated (no report; the message says so).
  void cancellingAStudyReportStopsIt() {
    QTemporaryDir ws;
    MainWindow w(ws.path());
    StudyPanel* study = w.study();
    study->setStudyText(R"({"name": "cancel",
      "base": {"model.arch": "msnet-tiny", "train.max_steps": 3, "train.batch_size": 8,
               "data.synthetic_identities": 6, "data.synthetic_images_per_id": 4,
               "train.threads": 1, "data.threads": 1},
      "axes": {"model.op": ["msconv-official", "skconv", "scconv"]},
      "seeds": [0]})");
    QVERIFY2(study->launchEnabled(), qPrintable(study->error()));
    const auto runs = study->launch();
    QCOMPARE(runs.size(), size_t(3));
    QTRY_VERIFY_WITH_TIMEOUT(w.queue().empty() && w.runningCount() == 0, 300000);
    const msconv::workspace::Workspace space(ws.path().toStdString());
    auto evaluations = [&] {
      int n = 0;
      for (const auto& r : runs)
        for (const char* f : {"study-eval-best.json", "study-eval-last.json"})
          n += QFileInfo::exists(
              QDir(QString::fromStdString(space.runDir(r.name.toStdString()))).filePath(f));
      return n;
    };
    QCOMPARE(evaluations(), 0);
    QSignalSpy progress(study, &StudyPanel::reportProgress);
    QSignalSpy failed(study, &StudyPanel::reportFailed);
    QSignalSpy ready(study, &StudyPanel::reportReady);
    study->computeReport();
    QVERIFY(study->computing());
    QVERIFY(study->reportProgressBar()->isVisibleTo(study));
    QCOMPARE(study->reportProgressBar()->maximum(), 3);
    QVERIFY(progress.count() > 0 || progress.wait(120000));
    study->reportCancelButton()->click();
    QVERIFY(failed.count() == 1 || failed.wait(120000));
    QTRY_VERIFY(!study->computing());
    QCOMPARE(ready.count(), 0);
    QVERIFY2(failed.first().at(0).toString().contains("report cancelled"),
             qPrintable(failed.first().at(0).toString()));
    QVERIFY2(evaluations() < 3, qPrintable(QString::number(evaluations())));
    QVERIFY(!study->reportProgressBar()->isVisibleTo(study));
    QVERIFY(study->reportJson().isEmpty());
  }
};

QTEST_MAIN(RunsPanelTest)
#include "test_runs_panel.moc"
