// The workbench's widgets on Qt's offscreen platform: the smoothing the charts draw, the New Run
// form blocking launch on an invalid value, and a tiny run launched from the window adding points
// to the training chart as its worker reports steps.
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include "msconv/ui/engine.h"
#include "msconv/ui/main_window.h"
#include "msconv/ui/panels.h"
#include "msconv/ui/runs_panel.h"
#include "msconv/ui/smoothing.h"
#include "msconv/ui/training_panel.h"
#include "msconv/ui/training_worker.h"

using namespace msconv::ui;

class UiTest : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void smoothingIsDebiased() {
    const auto s = smooth({1.0, 1.0, 1.0}, 0.6);
    for (double v : s) QCOMPARE(v, 1.0);  // a constant stays itself from the first point
    const auto t = smooth({0.0, 10.0}, 0.6);
    QCOMPARE(t[0], 0.0);
    QVERIFY(std::abs(t[1] - 4.0 / (1 - 0.36)) < 1e-12);  // 0.4 * 10 / (1 - 0.6^2)
    QCOMPARE(smooth({3.0, 5.0}, 0.0)[1], 5.0);           // weight 0: the raw curve
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
    panel.findChildren<QLineEdit*>().last()->setText("train.epochs=0");
    QVERIFY(!panel.launchEnabled());
    QVERIFY(panel.errorLabel()->text().contains("train.epochs"));
    QSignalSpy spy(&panel, &RunsPanel::launchRequested);
    panel.launchButton()->click();  // disabled: nothing happens
    QCOMPARE(spy.count(), 0);
  }

  void launchingATinyRunAddsPointsToTheChart() {
    QTemporaryDir ws;
    MainWindow w(ws.path());
    TrainingWorker* worker =
        w.launch("tiny",
                 {"model.arch=msnet-tiny", "train.batch_size=8", "train.max_steps=6",
                  "data.synthetic_identities=6", "data.synthetic_images_per_id=4",
                  "data.val=", "train.log_every=1", "train.threads=1", "data.threads=1"},
                 /*quiet=*/true);
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
    QCOMPARE(csv.readAll().count('\n'), 1 + 3 * 6);  // header + loss, lr, samples/s x 6 steps
    w.training()->setLogY(true);
    QVERIFY(w.training()->exportPng(out.filePath("c.png"), 800, 500));
    QVERIFY(QImage(out.filePath("c.png")).width() == 800);
    QVERIFY(w.training()->exportPdf(out.filePath("c.pdf")));
    QVERIFY(QFileInfo(out.filePath("c.pdf")).size() > 1000);
    // The other panels work on what was trained: the compare table fills, the evaluation panel
    // evaluates the run's checkpoint on its validation set, the inspect panel draws both grids.
    w.compare()->refresh();
    QCOMPARE(w.compare()->rows(), 1);
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
    QCOMPARE(w.evaluation()->resultRows(), 1);
    QCOMPARE(w.evaluation()->rocCurves(), 1);
    w.inspect()->refresh();
    QSignalSpy updated(w.inspect(), &InspectPanel::updated);
    w.inspect()->setImage(QDir(syn.path()).filePath("train/00000/000.jpg"));
    while (updated.count() < 2) QVERIFY(updated.wait(120000));
    QVERIFY(w.inspect()->featureImage().width() > 300);
    QVERIFY(w.inspect()->camImage().width() > 400);
    // A run's context menu opens msconv-scope (beside the workbench) on the run's folder.
    QSignalSpy scope(w.runs(), &RunsPanel::scopeRequested);
    w.runs()->openScope(0);
    QCOMPARE(scope.count(), 1);
    QCOMPARE(scope.first().at(0).toString(), QDir(ws.path()).filePath("runs/tiny"));
    QVERIFY(QFileInfo::exists(MainWindow::scopeProgram()));
    QCOMPARE(MainWindow::scopeArguments("x"), QStringList{"x"});
    // A failing configuration reaches the window as an error, not a crash.
    QVERIFY(w.launch("bad", {"model.arch=nosuch"}, true) == nullptr ||
            QSignalSpy(w.workers().back().get(), &TrainingWorker::failed).wait(60000));
  }
};

QTEST_MAIN(UiTest)
#include "test_ui.moc"
