// The workbench for a person: offscreen widget tests of the Inspect panel. Its figures draw as soon
// as a model and a face are there; the checked models' feature maps lie side by side (the same
// channels, another shape said so); both figures zoom and pan; the value under the mouse is the
// engine's array value there (checked against the core's own computation); a clicked tile opens
// enlarged. MSCONV_INSPECT_SCREENSHOT=FILE.png also saves the panel with two models side by side
// (run it under Xvfb with QT_QPA_PLATFORM=xcb for docs/inspect-side-by-side.png).
#include <QApplication>
#include <QDialog>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QToolButton>
#include <QWheelEvent>
#include <QtTest>

#include <cmath>
#include <cstdlib>
#include <set>

#include "msconv/data/image.h"
#include "msconv/inspect/inspect.h"
#include "msconv/model/checkpoint.h"
#include "msconv/nn/backbone.h"
#include "msconv/store/run_store.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/figure_view.h"
#include "msconv/ui/inspect_panel.h"
#include "msconv/workspace/workspace.h"

using namespace msconv::ui;

namespace {

// A run in the workspace's store with an untrained model as its last checkpoint.
void makeRun(const QString& ws, const std::string& name, const std::string& arch,
             const std::string& op) {
  const msconv::workspace::Workspace w(ws.toStdString());
  {
    const auto db = w.openStoreToWrite();
    const auto row = db->createRun(name, "{}", arch, op);
    db->setStatus(row.id, msconv::store::RunStatus::kDone);
  }
  QDir().mkpath(QString::fromStdString(w.runDir(name)));
  auto model = msconv::nn::makeBackbone(arch, op);
  msconv::model::saveModel(w.runFile(name, msconv::workspace::RunFile::kLastCheckpoint), *model);
}

// A face-sized picture with some structure (gradients, a disc, a bar), as a PNG.
QString makeFace(const QString& dir) {
  QImage img(112, 112, QImage::Format_RGB888);
  for (int y = 0; y < 112; ++y)
    for (int x = 0; x < 112; ++x) img.setPixelColor(x, y, QColor(2 * x, 2 * y, (x * y) % 256));
  QPainter p(&img);
  p.setBrush(QColor(240, 200, 160));
  p.drawEllipse(QPoint(56, 56), 30, 38);
  p.fillRect(36, 44, 40, 6, Qt::black);
  p.end();
  const QString path = QDir(dir).filePath("face.png");
  img.save(path);
  return path;
}

void mouse(QWidget* w, QEvent::Type type, const QPointF& pos, Qt::MouseButton button,
           Qt::MouseButtons buttons) {
  QMouseEvent e(type, pos, w->mapToGlobal(pos), button, buttons, Qt::NoModifier);
  QApplication::sendEvent(w, &e);
}

void hover(QWidget* w, const QPointF& pos) {
  mouse(w, QEvent::MouseMove, pos, Qt::NoButton, Qt::NoButton);
}

void click(QWidget* w, const QPointF& pos) {
  mouse(w, QEvent::MouseButtonPress, pos, Qt::LeftButton, Qt::LeftButton);
  mouse(w, QEvent::MouseButtonRelease, pos, Qt::LeftButton, Qt::NoButton);
}

void wheel(QWidget* w, const QPointF& pos, int delta) {
  QWheelEvent e(pos, w->mapToGlobal(pos), QPoint(), QPoint(0, delta), Qt::NoButton, Qt::NoModifier,
                Qt::NoScrollPhase, false);
  QApplication::sendEvent(w, &e);
}

// The middle of array cell (x, y) of a tile, in figure pixels.
QPointF cellCentre(const FigureTile& t, int x, int y) {
  return QPointF(t.rect.x() + (x + 0.5) * t.rect.width() / t.width,
                 t.rect.y() + (y + 0.5) * t.rect.height() / t.height);
}

// The number after the last '=' of a value text.
double valueIn(const QString& text) {
  return text.mid(text.lastIndexOf('=') + 1).trimmed().toDouble();
}

bool near(double a, double b) {
  return std::abs(a - b) <= 1e-4 * (1 + std::abs(b));
}

std::set<int> channelsOf(const InspectFigure& f, const QString& run) {
  std::set<int> out;
  for (const auto& t : f.tiles)
    if (t.model.startsWith(run + " ")) out.insert(t.channel);
  return out;
}

}  // namespace

class InspectPanelTest : public QObject {
  Q_OBJECT
  QTemporaryDir ws_, files_;
  QString face_;

  static bool hasModels(const FigureView* v, const QStringList& runs) {
    const auto& models = v->figure().models;
    if (models.size() != runs.size()) return false;
    for (int i = 0; i < runs.size(); ++i)
      if (!models[i].startsWith(runs[i] + " ")) return false;
    return true;
  }

  // The panel over the workspace, `runs` checked, the face set; both figures in.
  void open(InspectPanel& p, const QStringList& runs) {
    for (const QString r : {"tiny-msconv", "tiny-skconv", "tiny-iresnet"})
      p.setChecked(r, runs.contains(r));
    p.setImage(face_);
    QTRY_VERIFY_WITH_TIMEOUT(hasModels(p.featureView(), runs), 120000);
    QTRY_VERIFY_WITH_TIMEOUT(hasModels(p.camView(), runs), 120000);
  }

 private Q_SLOTS:
  void initTestCase() {
    setWarningBoxesEnabled(false);
    setFileDialogStub([](const FileDialogRequest& r) -> QString {
      qWarning("unexpected file dialog: %s", qPrintable(r.caption));
      return {};
    });
    QVERIFY(ws_.isValid() && files_.isValid());
    makeRun(ws_.path(), "tiny-msconv", "msnet-tiny", "msconv-official");
    makeRun(ws_.path(), "tiny-skconv", "msnet-tiny", "skconv");
    makeRun(ws_.path(), "tiny-iresnet", "iresnet-tiny", "conv");
    face_ = makeFace(files_.path());
  }

  // Nothing to click: a panel given a face before any run has a checkpoint draws both figures as
  // soon as the run appears (refresh), on the layer tree's default layer.
  void drawsWithoutClickingALayer() {
    QTemporaryDir ws;
    InspectPanel p(ws.path());
    QSignalSpy updated(&p, &InspectPanel::updated);
    p.setImage(face_);
    QTest::qWait(300);
    QCOMPARE(updated.count(), 0);  // no model yet
    QVERIFY(p.featureImage().isNull());
    makeRun(ws.path(), "tiny-msconv", "msnet-tiny", "msconv-official");
    p.refresh();
    QVERIFY(!p.layer().isEmpty());
    QCOMPARE(p.layer(), p.layers().front());  // the first operator layer, as msconv featuremaps
    QTRY_VERIFY_WITH_TIMEOUT(!p.featureImage().isNull() && !p.camImage().isNull(), 120000);
    QVERIFY(p.featureImage().width() > 300);
    QVERIFY(p.camImage().width() > 400);
    const auto& f = p.featureView()->figure();
    QVERIFY(!f.tiles.empty());
    for (const auto& t : f.tiles) QCOMPARE(t.layer, p.layer());
    // The panel's image is the figure's, and its tiles lie inside it.
    QCOMPARE(f.image, p.featureImage());
    for (const auto& t : f.tiles) QVERIFY(f.image.rect().contains(t.rect));
  }

  // A panel on screen with a trained run and no face takes the first face of the run's training
  // set and draws; a hidden one computes nothing.
  void firstFaceOfTheTrainingSetWhenShown() {
    QTemporaryDir ws;
    QProcess train;
    train.start(MSCONV_BIN, {"train", "--workspace", ws.path(), "--name", "trained", "--set",
                             "model.arch=msnet-tiny", "--set", "train.max_steps=1", "--set",
                             "train.batch_size=4", "--set", "data.synthetic_identities=3", "--set",
                             "data.synthetic_images_per_id=2", "--set", "train.threads=1", "--set",
                             "data.threads=1"});
    QVERIFY(train.waitForFinished(120000));
    QVERIFY2(train.exitCode() == 0, train.readAllStandardError().constData());
    InspectPanel p(ws.path());
    QSignalSpy updated(&p, &InspectPanel::updated);
    if (p.datasetFaces() == 0) QVERIFY(QSignalSpy(&p, &InspectPanel::datasetListed).wait(60000));
    QCOMPARE(p.datasetFaces(), 3);
    QTest::qWait(300);
    QCOMPARE(updated.count(), 0);  // hidden: no face taken, nothing computed
    p.resize(1000, 800);
    p.show();
    QTRY_VERIFY_WITH_TIMEOUT(!p.featureImage().isNull() && !p.camImage().isNull(), 120000);
    const auto ck = runCheckpoints(ws.path()).front().second;
    const auto samples = datasetSamples(trainingSetOf(ck), 1);
    QCOMPARE(p.featureView()->figure().models.size(), 1);
    QVERIFY(p.featureView()->figure().models.front().startsWith("trained "));
    // The figure is of that face: the same as drawing it directly.
    const QString face = datasetImageFile(trainingSetOf(ck), samples.front().second);
    QCOMPARE(p.featureImage(), featureMapsFigure({ck}, face, p.layer(), 5, "viridis", false).image);
  }

  // Feature maps of every checked model side by side, the same channels; the CAM figure a row per
  // model, the same picture as gradcamFigure draws; a model without the layer said so.
  void modelsSideBySide() {
    InspectPanel p(ws_.path());
    open(p, {"tiny-msconv"});
    const InspectFigure one = p.featureView()->figure();
    const int cam_one = p.camImage().height();
    open(p, {"tiny-msconv", "tiny-skconv"});
    const InspectFigure two = p.featureView()->figure();
    // Two blocks across: the figure at least twice as wide as one model's tiles span.
    int span_lo = one.image.width(), span_hi = 0;
    for (const auto& t : one.tiles) {
      span_lo = std::min(span_lo, t.rect.left());
      span_hi = std::max(span_hi, t.rect.right());
    }
    QVERIFY2(two.image.width() > 2 * (span_hi - span_lo) && two.image.width() > one.image.width(),
             qPrintable(QString("%1 vs %2").arg(two.image.width()).arg(one.image.width())));
    const auto a = channelsOf(two, "tiny-msconv"), b = channelsOf(two, "tiny-skconv");
    QVERIFY(!a.empty());
    QCOMPARE(a, b);                               // the same channels side by side
    QCOMPARE(a, channelsOf(one, "tiny-msconv"));  // the first model's top channels
    QCOMPARE(
        two.tiles.size(), one.tiles.size() + [&] {
          size_t n = 0;
          for (const auto& t : two.tiles) n += t.model.startsWith("tiny-skconv ");
          return n;
        }());
    int right_of_a = 0, left_of_b = two.image.width();
    for (const auto& t : two.tiles)
      if (t.model.startsWith("tiny-msconv "))
        right_of_a = std::max(right_of_a, t.rect.right());
      else
        left_of_b = std::min(left_of_b, t.rect.left());
    QVERIFY(left_of_b > right_of_a);  // B's tiles to the right of A's
    QVERIFY(two.note.isEmpty());
    // Grad-CAM: a row per model, exactly the picture gradcamFigure (and msconv gradcam) draws.
    QVERIFY(p.camImage().height() > cam_one + 100);
    QStringList ckpts;
    for (const auto& [name, ck] : runCheckpoints(ws_.path()))
      if (name != "tiny-iresnet") ckpts << ck;
    QCOMPARE(p.camImage(), gradcamFigure(ckpts, face_, "gradcam", "norm", {}, "jet", 0.5)
                               .convertToFormat(p.camImage().format()));
    QCOMPARE(p.camView()->figure().tiles.size() % 2, size_t(0));

    if (const char* shot = std::getenv("MSCONV_INSPECT_SCREENSHOT")) {
      // A synthetic face (msconv data synth) for the picture, the value under the mouse told.
      QTemporaryDir syn;
      QVERIFY(QProcess::execute(MSCONV_BIN, {"data", "synth", "-o", syn.path(), "--identities", "2",
                                             "--images-per-id", "1", "--pairs", "2",
                                             "--val-identities", "2"}) == 0);
      const QString face = QDir(syn.path()).filePath("train/00000/000.jpg");
      QVERIFY(QFileInfo::exists(face));
      p.resize(1400, 950);
      p.show();
      QVERIFY(QTest::qWaitForWindowExposed(&p));
      QSignalSpy updated(&p, &InspectPanel::updated);
      p.setImage(face);
      QTRY_VERIFY_WITH_TIMEOUT(updated.count() >= 2, 120000);
      QTest::qWait(200);
      const auto& t = p.featureView()->figure().tiles[7];
      hover(p.featureView(), p.featureView()->toWidget(cellCentre(t, 3, 4)));
      QTest::qWait(200);
      QVERIFY(p.grab().save(QString::fromLocal8Bit(shot)));
      p.hide();
    }

    // A model of another architecture: its maps of another shape beside the others (its own
    // top channels), the difference said in the note, the figure and under it.
    open(p, {"tiny-msconv", "tiny-skconv", "tiny-iresnet"});
    const InspectFigure three = p.featureView()->figure();
    QVERIFY(!channelsOf(three, "tiny-iresnet").empty());
    QVERIFY2(three.note.contains("tiny-iresnet") && three.note.contains("own top"),
             qPrintable(three.note));
    QVERIFY(!three.note.contains("tiny-skconv"));
    QVERIFY(three.image.height() > two.image.height());  // the note's line in the figure
    const QString note = three.note;
    bool shown = false;  // the note under the figure too
    for (const auto* l : p.findChildren<QLabel*>()) shown = shown || l->text() == note;
    QVERIFY2(shown, qPrintable(note));
    // A model without the layer (two blocks in stage 1 against one): named in the note, not
    // drawn, not silently dropped.
    QDir().mkpath(files_.filePath("deep"));
    const QString deep = files_.filePath("deep/last.ckpt");
    msconv::model::saveModel(
        deep.toStdString(),
        *msconv::nn::makeBackbone("msnet-tiny:blocks=2-1-1-1", "msconv-official"));
    QVERIFY(operatorLayers(deep).contains("stage1.1.op"));
    QString iresnet;
    for (const auto& [name, ck] : runCheckpoints(ws_.path()))
      if (name == "tiny-iresnet") iresnet = ck;
    QVERIFY(!operatorLayers(iresnet).contains("stage1.1.op"));
    const auto missing =
        featureMapsFigure({deep, iresnet}, face_, "stage1.1.op", 3, "viridis", false);
    QCOMPARE(missing.models.size(), 1);
    QVERIFY(missing.models.front().startsWith("deep "));
    QVERIFY2(missing.note.contains("tiny-iresnet") &&
                 missing.note.contains("no operator layer stage1.1.op"),
             qPrintable(missing.note));
  }

  // Wheel, keys and buttons zoom about a point that stays put; a drag pans; Fit restores.
  void zoomAndPan() {
    InspectPanel p(ws_.path());
    open(p, {"tiny-msconv", "tiny-skconv"});
    p.resize(1200, 900);
    p.show();
    QVERIFY(QTest::qWaitForWindowExposed(&p));
    FigureView* v = p.featureView();
    v->fit();
    QVERIFY(v->fitting());
    const double fit = v->scale();
    QVERIFY(fit > 0);
    // The figure fits: both corners inside the view.
    QVERIFY(QRectF(v->rect()).contains(v->toWidget(QPointF(0, 0))));
    QVERIFY(
        QRectF(v->rect())
            .adjusted(0, 0, 1, 1)
            .contains(v->toWidget(QPointF(v->figure().image.width(), v->figure().image.height()))));
    const QPointF anchor(v->width() * 0.3, v->height() * 0.4);
    const QPointF under = v->toImage(anchor);
    wheel(v, anchor, 120);
    QVERIFY(std::abs(v->scale() - fit * 1.25) < 1e-9);
    QVERIFY(!v->fitting());
    QVERIFY((v->toImage(anchor) - under).manhattanLength() < 1e-6);  // zoomed about the mouse
    wheel(v, anchor, -240);
    QVERIFY(std::abs(v->scale() - fit / 1.25) < 1e-9);
    v->setFocus();
    QTest::keyClick(v, Qt::Key_Plus);
    QVERIFY(std::abs(v->scale() - fit) < 1e-9);
    QTest::keyClick(v, Qt::Key_1);
    QVERIFY(std::abs(v->scale() - 1.0) < 1e-9);
    auto* plus = p.findChild<QToolButton*>("featuremaps_+");
    QVERIFY(plus);
    plus->click();
    QVERIFY(std::abs(v->scale() - 1.25) < 1e-9);
    // Pan: a drag moves the figure with the mouse, and opens no tile.
    const QPointF from(v->width() / 2.0, v->height() / 2.0), to = from + QPointF(-150, 60);
    const QPointF before = v->offset();
    const QPointF image_at = v->toImage(from);
    mouse(v, QEvent::MouseButtonPress, from, Qt::LeftButton, Qt::LeftButton);
    mouse(v, QEvent::MouseMove, from + QPointF(-50, 20), Qt::NoButton, Qt::LeftButton);
    mouse(v, QEvent::MouseMove, to, Qt::NoButton, Qt::LeftButton);
    mouse(v, QEvent::MouseButtonRelease, to, Qt::LeftButton, Qt::NoButton);
    QVERIFY((v->offset() - (before + (to - from))).manhattanLength() < 1e-6);
    QVERIFY((v->toImage(to) - image_at).manhattanLength() < 1e-6);  // the point went with it
    QCOMPARE(v->scale(), 1.25);
    QVERIFY(p.enlargedWindow() == nullptr);
    // A new figure of the same size keeps the view; Fit goes back to the whole figure.
    p.featureView()->setFigure(p.featureView()->figure());
    QCOMPARE(v->scale(), 1.25);
    p.findChild<QToolButton*>("featuremaps_Fit")->click();
    QVERIFY(v->fitting());
    QCOMPARE(v->scale(), fit);
    // The CAM view zooms on its own.
    const double cam_scale = p.camView()->scale();
    p.findChild<QToolButton*>("gradcam_+")->click();
    QVERIFY(std::abs(p.camView()->scale() - cam_scale * 1.25) < 1e-9);
    QCOMPARE(v->scale(), fit);
  }

  // The value under the mouse is the array the engine computed: a feature map's activation (the
  // core's captureBranchMaps on the same face) and a CAM's value (the core's computeCams).
  void valueUnderTheMouse() {
    InspectPanel p(ws_.path());
    open(p, {"tiny-msconv", "tiny-skconv"});
    p.resize(1200, 900);
    p.show();
    QVERIFY(QTest::qWaitForWindowExposed(&p));
    FigureView* v = p.featureView();
    v->zoomBy(1.7, QPointF(40, 40));  // any view: the position maps back through it
    const InspectFigure& f = v->figure();
    const auto x_in = msconv::data::loadFaceImage(face_.toStdString(), 112);
    QString skconv_ck;
    for (const auto& [name, ck] : runCheckpoints(ws_.path()))
      if (name == "tiny-skconv") skconv_ck = ck;
    auto loaded = msconv::model::loadModel(skconv_ck.toStdString());
    const auto maps =
        msconv::inspect::captureBranchMaps(*loaded.model, x_in, p.layer().toStdString(), 5);
    int checked = 0;
    for (const auto& t : f.tiles) {
      if (!t.model.startsWith("tiny-skconv ") || (t.row != "U1+U2" && t.row != "out")) continue;
      const int x = t.width / 3, y = (2 * t.height) / 3;
      const QPointF at = v->toWidget(cellCentre(t, x, y));
      if (!QRectF(v->rect()).contains(at))
        v->panBy(QPointF(v->width() / 2.0, v->height() / 2.0) - at);
      const QPointF pos = v->toWidget(cellCentre(t, x, y));
      hover(v, pos);
      const QString text = p.valueText();
      QVERIFY2(text.contains("tiny-skconv"), qPrintable(text));
      QVERIFY2(text.contains(QString("ch %1 ").arg(t.channel)), qPrintable(text));
      QVERIFY2(text.contains(QString("(x %1, y %2)").arg(x).arg(y)), qPrintable(text));
      QVERIFY2(text.contains(t.row) && text.contains(p.layer()), qPrintable(text));
      const auto rows = maps.rows;
      const size_t r = static_cast<size_t>(
          std::find(rows.begin(), rows.end(), t.row.toStdString()) - rows.begin());
      QVERIFY(r < rows.size());
      QCOMPARE(maps.maps[r].size(1), t.height);
      QCOMPARE(maps.maps[r].size(2), t.width);
      const double expected = maps.maps[r][t.channel][y][x].item<double>();
      QVERIFY2(near(valueIn(text), expected),
               qPrintable(text + QString(" vs %1").arg(expected, 0, 'g', 8)));
      QVERIFY(near(t.value(x, y), expected));
      ++checked;
    }
    QCOMPARE(checked, 10);  // U1+U2 and out, five channels each
    // Off the tiles: nothing said.
    hover(v, v->toWidget(QPointF(1, 1)));
    QCOMPARE(p.valueText(), QString());

    // A CAM: model, layer, position and value, against the core's CAM of the same face.
    FigureView* c = p.camView();
    const InspectFigure& cf = c->figure();
    QString msconv_ck;
    for (const auto& [name, ck] : runCheckpoints(ws_.path()))
      if (name == "tiny-msconv") msconv_ck = ck;
    auto msconv_loaded = msconv::model::loadModel(msconv_ck.toStdString());
    const auto target = msconv::inspect::makeCamTarget(msconv::inspect::parseTargetSpec("norm"),
                                                       *msconv_loaded.model, "", {});
    const auto cams = msconv::inspect::computeCams(*msconv_loaded.model, x_in, target, {});
    const FigureTile* tile = nullptr;
    for (const auto& t : cf.tiles)
      if (t.model.startsWith("tiny-msconv ") && t.layer == QString::fromStdString(cams.layers[1]))
        tile = &t;
    QVERIFY(tile);
    QVERIFY(tile->isCam());
    c->fit();
    const int x = 70, y = 41;
    hover(c, c->toWidget(cellCentre(*tile, x, y)));
    const QString text = p.valueText();
    QVERIFY2(text.contains("tiny-msconv") && text.contains(tile->layer) && text.contains("CAM ="),
             qPrintable(text));
    QVERIFY2(text.contains("(x 70, y 41)"), qPrintable(text));
    const double expected = cams.cams[1].at<float>(y, x);
    QVERIFY2(near(valueIn(text), expected), qPrintable(text + QString(" vs %1").arg(expected)));
    QVERIFY(expected >= 0 && expected <= 1);
  }

  // A click on a channel's tile opens it enlarged, with its own value under the mouse.
  void clickEnlargesATile() {
    InspectPanel p(ws_.path());
    open(p, {"tiny-msconv", "tiny-skconv"});
    p.resize(1200, 900);
    p.show();
    QVERIFY(QTest::qWaitForWindowExposed(&p));
    FigureView* v = p.featureView();
    const InspectFigure& f = v->figure();
    const FigureTile* pick = nullptr;
    size_t index = 0;
    for (size_t i = 0; i < f.tiles.size() && !pick; ++i)
      if (f.tiles[i].model.startsWith("tiny-skconv ") && f.tiles[i].row == "U1*U2" &&
          f.tiles[i].channel != *channelsOf(f, "tiny-skconv").begin()) {
        pick = &f.tiles[i];
        index = i;
      }
    QVERIFY(pick);
    QSignalSpy clicked(v, &FigureView::tileClicked);
    click(v, v->toWidget(QPointF(pick->rect.center())));
    QCOMPARE(clicked.count(), 1);
    QCOMPARE(clicked.first().at(0).toInt(), static_cast<int>(index));
    QVERIFY(p.enlargedWindow() && p.enlargedWindow()->isVisible());
    QVERIFY(p.enlargedWindow()->windowTitle().contains(QString("channel %1").arg(pick->channel)));
    const InspectFigure& big = p.enlargedView()->figure();
    QCOMPARE(big.tiles.size(), size_t(1));
    QCOMPARE(big.tiles[0].channel, pick->channel);
    QCOMPARE(big.tiles[0].model, pick->model);
    QCOMPARE(big.tiles[0].row, pick->row);
    QVERIFY(big.image.width() >= 448);
    QCOMPARE(big.image.width() % pick->width, 0);  // whole map cells
    QCOMPARE(big.image.width() / pick->width, big.image.height() / pick->height);
    // Its pixels are the map's own picture, enlarged.
    const int k = big.image.width() / pick->width;
    QCOMPARE(big.image.pixel(3 * k + k / 2, 2 * k + k / 2), pick->picture.pixel(3, 2));
    // The value under the mouse in the enlarged view.
    FigureView* e = p.enlargedView();
    QVERIFY(QTest::qWaitForWindowExposed(p.enlargedWindow()));
    const int x = pick->width - 2, y = 1;
    hover(e, e->toWidget(cellCentre(big.tiles[0], x, y)));
    const auto* value = p.enlargedWindow()->findChildren<QLabel*>().last();
    QVERIFY2(value->text().contains(QString("(x %1, y %2)").arg(x).arg(y)),
             qPrintable(value->text()));
    QVERIFY(near(valueIn(value->text()), pick->value(x, y)));
    // Another tile (a CAM) replaces it in the same window.
    const auto& cam = p.camView()->figure();
    click(p.camView(), p.camView()->toWidget(QPointF(cam.tiles.back().rect.center())));
    QCOMPARE(p.enlargedView()->figure().tiles.size(), size_t(1));
    QVERIFY(p.enlargedView()->figure().tiles[0].isCam());
    QCOMPARE(p.enlargedView()->figure().tiles[0].layer, cam.tiles.back().layer);
    QCOMPARE(p.findChildren<QDialog*>().size(), 1);
  }
};

QTEST_MAIN(InspectPanelTest)
#include "test_inspect_panel.moc"
