#include "msconv/ui/study_panel.h"

#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QSaveFile>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QThread>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>

#include "msconv/error.h"
#include "msconv/eval/metric_name.h"
#include "msconv/study/study.h"
#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "msconv/workspace/workspace.h"
#include "plot_style.h"
#include "qcustomplot_include.h"

namespace msconv::ui {

struct StudyPanel::Current {
  study::Study study;
  std::vector<study::Cell> cells;
};

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const char* kCosts[] = {"gmacs", "params_m", "train_samples_per_s"};
const char* kCostTitles[] = {"MACs (G)", "parameters (M)", "training samples/s"};

bool isCost(const QString& m) {
  return m == "params_m" || m == "gmacs" || m == "train_samples_per_s";
}

double num(const QJsonValue& v) {
  return v.isDouble() ? v.toDouble() : kNaN;
}

// A metric's value as the tables show it: quality metrics in percent, costs in their units.
QString formatValue(const QString& m, double v) {
  if (!std::isfinite(v)) return "-";
  if (m == "params_m") return QString::number(v, 'f', 3);
  if (m == "gmacs") return QString::number(v, 'f', 4);
  if (m == "train_samples_per_s") return QString::number(v, 'f', 1);
  if (eval::isFaithfulnessLabel(m.toStdString()))  // AUCs and ROAD in score units, drop in %
    return QString::number(v, 'f', m.endsWith(".drop") ? 2 : 4);
  return QString::number(100 * v, 'f', 2);
}

QString columnTitle(const QString& m) {
  if (m == "params_m") return "params (M)";
  if (m == "gmacs") return "MACs (G)";
  if (m == "train_samples_per_s") return "samples/s";
  if (eval::isFaithfulnessLabel(m.toStdString())) return m;
  return m + " %";
}

QString formatP(double p) {
  if (!std::isfinite(p)) return "-";
  return p < 0.001 ? QString("< 0.001") : QString::number(p, 'f', 3);
}

// Quality metrics grouped by set: accuracy, TAR@FAR from the loosest FAR, AUC, then the rest.
bool metricBefore(const QString& a, const QString& b) {
  const auto ma = eval::MetricName::parse(a.toStdString());
  const auto mb = eval::MetricName::parse(b.toStdString());
  if (!ma || !mb) return static_cast<bool>(ma) > static_cast<bool>(mb) || (!ma && !mb && a < b);
  if (ma->set != mb->set) return ma->set < mb->set;
  auto rank = [](const eval::MetricName& m) {
    switch (m.kind) {
      case eval::MetricName::Kind::kAccuracy:
        return 0;
      case eval::MetricName::Kind::kTarAtFar:
        return 1;
      case eval::MetricName::Kind::kAuc:
        return 2;
      default:
        return 3;
    }
  };
  if (rank(*ma) != rank(*mb)) return rank(*ma) < rank(*mb);
  return ma->far > mb->far;
}

// Where the text of a long error ends on screen (the whole of it is the tooltip).
QString shortError(const QString& e) {
  return e.size() > 400 ? e.left(400) + "..." : e;
}

QTableWidgetItem* item(const QString& text) {
  auto* it = new QTableWidgetItem(text);
  it->setFlags(it->flags() & ~Qt::ItemIsEditable);
  return it;
}

}  // namespace

StudyPanel::StudyPanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  auto* layout = new QHBoxLayout(this);
  auto* split = new QSplitter(Qt::Horizontal);
  layout->addWidget(split);

  // ---- Left: the study and its launch.
  auto* left = new QWidget;
  auto* form = new QVBoxLayout(left);
  form->setContentsMargins(0, 0, 0, 0);
  auto* row = new QHBoxLayout;
  study_box_ = new QComboBox;
  study_box_->setToolTip("the studies the workspace keeps (WORKSPACE/studies/NAME.json)");
  study_box_->setMinimumWidth(160);
  auto* open = new QPushButton("Open...");
  open->setToolTip("a study file from anywhere");
  row->addWidget(new QLabel("study"));
  row->addWidget(study_box_, 1);
  row->addWidget(open);
  form->addLayout(row);
  row = new QHBoxLayout;
  preset_box_ = new QComboBox;
  for (const auto& p : study::presetNames()) preset_box_->addItem(QString::fromStdString(p));
  preset_box_->setToolTip(
      "table5: MSConv's kernel pairs; table6: the ablation rows; operators: MSConv against its "
      "peers; losses: ArcFace, CosFace, CML");
  scale_box_ = new QComboBox;
  scale_box_->addItems({"tiny", "small"});
  scale_box_->setToolTip("tiny: msnet-tiny, a few hundred steps; small: msnet-small, 4 epochs");
  auto* create = new QPushButton("New from preset");
  create->setToolTip("writes the preset to WORKSPACE/studies/NAME.json and opens it");
  row->addWidget(new QLabel("preset"));
  row->addWidget(preset_box_, 1);
  row->addWidget(scale_box_);
  row->addWidget(create);
  form->addLayout(row);
  editor_ = new QPlainTextEdit;
  editor_->setObjectName("study_json");
  editor_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  editor_->setLineWrapMode(QPlainTextEdit::NoWrap);
  editor_->setToolTip(
      "the study as JSON: name, base (key: value), axes (key: [values]), seeds, reference, "
      "checkpoint (best or last)");
  form->addWidget(editor_, 1);
  auto* lines = new QFormLayout;
  axis_edit_ = new QLineEdit;
  axis_edit_->setPlaceholderText("model.op = msconv-official, skconv   (Enter; 'key =' removes)");
  axis_edit_->setToolTip("adds or replaces an axis: a configuration key and its values");
  seeds_edit_ = new QLineEdit;
  seeds_edit_->setPlaceholderText("0, 1, 2   (Enter)");
  lines->addRow("axis", axis_edit_);
  lines->addRow("seeds", seeds_edit_);
  form->addLayout(lines);
  error_ = new QLabel;
  error_->setObjectName("study_error");
  error_->setStyleSheet("color: #d33;");
  error_->setWordWrap(true);
  form->addWidget(error_);
  launch_ = new QPushButton("Launch");
  launch_->setToolTip(
      "queues every cell x seed run that has not started (done runs are kept, failed ones are "
      "not retried)");
  form->addWidget(launch_);
  message_ = new QLabel;
  message_->setObjectName("study_message");
  message_->setWordWrap(true);
  form->addWidget(message_);
  split->addWidget(left);

  // ---- Right: the grid, the report.
  auto* right = new QWidget;
  auto* col = new QVBoxLayout(right);
  col->setContentsMargins(0, 0, 0, 0);
  grid_ = new QTableWidget;
  grid_->setObjectName("study_grid");
  grid_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  grid_->setWordWrap(false);
  col->addWidget(grid_, 2);
  auto* bar = new QHBoxLayout;
  report_button_ = new QPushButton("Report");
  report_button_->setToolTip(
      "evaluates the finished runs (cached per run) and compares the cells with the reference");
  metric_box_ = new QComboBox;
  metric_box_->setToolTip("the metric of the detail table and the chart's y axis");
  metric_box_->setMinimumWidth(180);
  cost_box_ = new QComboBox;
  for (size_t i = 0; i < std::size(kCosts); ++i) cost_box_->addItem(kCostTitles[i], kCosts[i]);
  cost_box_->setToolTip("the chart's x axis");
  auto* save = new QPushButton("Export...");
  save->setToolTip("the report as CSV, Markdown, LaTeX or JSON; the chart as PNG or PDF");
  bar->addWidget(report_button_);
  bar->addWidget(new QLabel("metric"));
  bar->addWidget(metric_box_, 1);
  bar->addWidget(new QLabel("against"));
  bar->addWidget(cost_box_);
  bar->addWidget(save);
  col->addLayout(bar);
  report_status_ = new QLabel;
  report_status_->setWordWrap(true);
  col->addWidget(report_status_);
  auto* progress_row = new QHBoxLayout;
  report_progress_ = new QProgressBar;
  report_progress_->setObjectName("report_progress");
  report_progress_->setFormat("%v / %m runs");
  report_cancel_ = new QPushButton("Cancel");
  report_cancel_->setObjectName("report_cancel");
  report_cancel_->setToolTip("stops the report before the next run is evaluated");
  progress_row->addWidget(report_progress_, 1);
  progress_row->addWidget(report_cancel_);
  col->addLayout(progress_row);
  report_progress_->setVisible(false);
  report_cancel_->setVisible(false);
  connect(report_cancel_, &QPushButton::clicked, this, &StudyPanel::cancelReport);
  auto* lower = new QSplitter(Qt::Horizontal);
  auto* tables = new QTabWidget;
  summary_ = new QTableWidget;
  summary_->setObjectName("study_summary");
  summary_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  detail_ = new QTableWidget;
  detail_->setObjectName("study_detail");
  detail_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  for (auto* t : {summary_, detail_}) t->verticalHeader()->setVisible(false);
  tables->addTab(summary_, "mean +- std");
  tables->addTab(detail_, "metric vs reference");
  lower->addWidget(tables);
  chart_ = new QCustomPlot;
  chart_->setObjectName("study_chart");
  chart_->setMinimumSize(320, 260);
  chart_->plotLayout()->insertRow(0);
  chart_->plotLayout()->addElement(0, 0, new QCPTextElement(chart_, "trade-off"));
  chart_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  lower->addWidget(chart_);
  col->addWidget(lower, 3);
  conclusions_ = new QLabel;
  conclusions_->setObjectName("study_conclusions");
  conclusions_->setWordWrap(true);
  conclusions_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  col->addWidget(conclusions_);
  split->addWidget(right);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 2);

  connect(study_box_, &QComboBox::activated, this,
          [this](int i) { openStudy(study_box_->itemText(i)); });
  connect(open, &QPushButton::clicked, this, [this] {
    const QString f =
        openFileName(this, "Study file", studiesDir(), "Studies (*.json);;All files (*)");
    if (!f.isEmpty()) openStudy(f);
  });
  connect(create, &QPushButton::clicked, this,
          [this] { newFromPreset(preset_box_->currentText(), scale_box_->currentText()); });
  connect(editor_, &QPlainTextEdit::textChanged, this, &StudyPanel::validate);
  connect(axis_edit_, &QLineEdit::returnPressed, this, [this] {
    if (setAxis(axis_edit_->text())) axis_edit_->clear();
  });
  connect(seeds_edit_, &QLineEdit::returnPressed, this, [this] { setSeeds(seeds_edit_->text()); });
  connect(launch_, &QPushButton::clicked, this, [this] { launch(); });
  connect(report_button_, &QPushButton::clicked, this, &StudyPanel::computeReport);
  connect(metric_box_, &QComboBox::currentIndexChanged, this, [this] { fillReport(); });
  connect(cost_box_, &QComboBox::currentIndexChanged, this, [this] { drawChart(); });
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = saveFileName(
        this, "Export the study report", QDir(workspace_).filePath("study.csv"),
        "CSV (*.csv);;Markdown (*.md);;LaTeX (*.tex);;JSON (*.json);;Text (*.txt);;PNG chart "
        "(*.png);;PDF chart (*.pdf)");
    if (!f.isEmpty()) exportTo(f);
  });
  connect(this, &StudyPanel::reportProgress, this, [this](const QString& line) {
    if (report_cancelled_ && *report_cancelled_) return;
    // One line per run as it starts (or is read from its cache): the bar counts them.
    if (line.contains(": evaluating ") || line.endsWith("(cached)")) ++report_done_;
    report_progress_->setRange(0, std::max(report_runs_, report_done_));
    report_progress_->setValue(std::max(0, report_done_ - 1));
    QString eta;
    if (report_done_ > 1 && report_runs_ >= report_done_)
      eta = QString(" (about %1 s left)")
                .arg(static_cast<qint64>(report_clock_.elapsed() / 1000.0 / (report_done_ - 1) *
                                             (report_runs_ - report_done_ + 1) +
                                         0.5));
    report_status_->setText(
        QString("run %1 of %2%3: %4").arg(report_done_).arg(report_runs_).arg(eta, line));
  });
  timer_.setInterval(1000);
  connect(&timer_, &QTimer::timeout, this, &StudyPanel::refreshGrid);

  setDark(false);
  refreshStudies();
  if (study_box_->count() > 0) {
    openStudy(study_box_->itemText(0));
  } else {  // a starting point: two operators of the tiny preset, three seeds
    auto s = study::preset("operators", "tiny");
    s.name = "study";
    s.axes = {{"model.op", {"msconv-official", "skconv"}}};
    s.reference.clear();
    source_ = "study";
    editor_->setPlainText(QString::fromStdString(study::studyJson(s)));
  }
}

StudyPanel::~StudyPanel() {
  if (worker_) {  // the panel outlives its worker: stop it at the next run, wait for it
    if (report_cancelled_) *report_cancelled_ = true;
    worker_->disconnect(this);
    worker_->wait();
    delete worker_;
  }
}

QString StudyPanel::studiesDir() const {
  return QDir(workspace_).filePath("studies");
}

// ---- The study ---------------------------------------------------------------------------------

void StudyPanel::refreshStudies() {
  const QString current = study_box_->currentText();
  study_box_->clear();
  try {
    for (const auto& n : study::studyNames(workspace::Workspace(workspace_.toStdString())))
      study_box_->addItem(QString::fromStdString(n));
  } catch (const std::exception& e) {
    message_->setText(e.what());
  }
  const int at = study_box_->findText(current);
  if (at >= 0) study_box_->setCurrentIndex(at);
}

bool StudyPanel::openStudy(const QString& name_or_file) {
  QString path = name_or_file;
  if (!QFileInfo(path).isFile())
    path = QString::fromStdString(study::studyFile(workspace::Workspace(workspace_.toStdString()),
                                                   name_or_file.toStdString()));
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) {
    error_->setText(name_or_file + ": no such study (" + path + ")");
    return false;
  }
  source_ = path;
  editor_->setPlainText(QString::fromUtf8(f.readAll()));  // validated through textChanged
  const int at = study_box_->findText(QFileInfo(path).completeBaseName());
  if (at >= 0 && QFileInfo(path).absolutePath() == QFileInfo(studiesDir()).absoluteFilePath())
    study_box_->setCurrentIndex(at);
  return current_ != nullptr;
}

QString StudyPanel::newFromPreset(const QString& preset, const QString& scale) {
  try {
    auto s = study::preset(preset.toStdString(), scale.toStdString());
    if (scale == "small") s.name += "-small";
    const workspace::Workspace ws(workspace_.toStdString());
    QDir().mkpath(studiesDir());
    const std::string base = s.name;
    for (int k = 2;; ++k) {
      const QString file = QString::fromStdString(study::studyFile(ws, s.name));
      QFile existing(file);
      if (!existing.exists()) {
        study::writeStudy(file.toStdString(), s);
        break;
      }
      // The same study already there: open it rather than making a copy.
      if (existing.open(QIODevice::ReadOnly) &&
          existing.readAll() == QByteArray::fromStdString(study::studyJson(s)))
        break;
      s.name = base + "-" + std::to_string(k);
    }
    refreshStudies();
    openStudy(QString::fromStdString(s.name));
    message_->setText("study " + QString::fromStdString(s.name) + ": " +
                      QString::fromStdString(study::studyFile(ws, s.name)));
    return QString::fromStdString(s.name);
  } catch (const std::exception& e) {
    error_->setText(e.what());
    return {};
  }
}

void StudyPanel::setStudyText(const QString& json) {
  editor_->setPlainText(json);
}

QString StudyPanel::studyText() const {
  return editor_->toPlainText();
}

QString StudyPanel::studyName() const {
  return current_ ? QString::fromStdString(current_->study.name) : QString();
}

QString StudyPanel::error() const {
  return error_->toolTip().isEmpty() ? error_->text() : error_->toolTip();
}

bool StudyPanel::launchEnabled() const {
  return launch_->isEnabled();
}

int StudyPanel::cellCount() const {
  return current_ ? static_cast<int>(current_->cells.size()) : 0;
}

int StudyPanel::seedCount() const {
  return current_ ? static_cast<int>(current_->study.seeds.size()) : 0;
}

void StudyPanel::validate() {
  current_.reset();
  QString err;
  try {
    auto c = std::make_unique<Current>();
    c->study = study::parseStudy(editor_->toPlainText().toStdString(),
                                 (source_.isEmpty() ? QString("study") : source_).toStdString());
    c->cells = study::expand(c->study);
    current_ = std::move(c);
  } catch (const std::exception& e) {
    err = QString::fromStdString(e.what());
  }
  error_->setText(shortError(err));
  error_->setToolTip(err.size() > 400 ? err : QString());
  launch_->setEnabled(current_ != nullptr);
  report_button_->setEnabled(current_ != nullptr && !worker_);
  syncLines();
  grid_stale_ = true;  // the grid follows the study: now when on screen, else when next shown
  if (isVisible()) refreshGrid();
}

void StudyPanel::syncLines() {
  if (!current_ || seeds_edit_->hasFocus()) return;
  QStringList seeds;
  for (auto s : current_->study.seeds) seeds << QString::number(static_cast<qulonglong>(s));
  seeds_edit_->setText(seeds.join(", "));
}

bool StudyPanel::setAxis(const QString& line) {
  const int eq = line.indexOf('=');
  const QString key = line.left(eq).trimmed();
  if (eq <= 0 || key.isEmpty()) {
    error_->setText("axis: write key = value, value, ... (got '" + line + "')");
    return false;
  }
  std::vector<std::string> values;
  for (const auto& v : line.mid(eq + 1).split(',', Qt::SkipEmptyParts))
    if (!v.trimmed().isEmpty()) values.push_back(v.trimmed().toStdString());
  try {
    auto s = study::parseStudy(editor_->toPlainText().toStdString(), "study");
    auto it = std::find_if(s.axes.begin(), s.axes.end(),
                           [&](const auto& a) { return a.first == key.toStdString(); });
    if (values.empty()) {
      if (it != s.axes.end()) s.axes.erase(it);
    } else if (it != s.axes.end()) {
      it->second = values;
    } else {
      s.axes.emplace_back(key.toStdString(), values);
    }
    // The reference keeps only the axis values that are still there.
    s.reference.erase(
        std::remove_if(s.reference.begin(), s.reference.end(),
                       [&](const study::Setting& r) {
                         const auto a =
                             std::find_if(s.axes.begin(), s.axes.end(),
                                          [&](const auto& x) { return x.first == r.first; });
                         return a == s.axes.end() || std::find(a->second.begin(), a->second.end(),
                                                               r.second) == a->second.end();
                       }),
        s.reference.end());
    // The axis is no longer a base setting.
    s.base.erase(std::remove_if(s.base.begin(), s.base.end(),
                                [&](const auto& b) { return b.first == key.toStdString(); }),
                 s.base.end());
    editor_->setPlainText(QString::fromStdString(study::studyJson(s)));
  } catch (const std::exception& e) {
    error_->setText(shortError(QString("axis: ") + e.what()));
    return false;
  }
  return true;
}

bool StudyPanel::setSeeds(const QString& line) {
  std::vector<uint64_t> seeds;
  for (const auto& t : line.split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts)) {
    bool ok = false;
    const qulonglong v = t.toULongLong(&ok);
    if (!ok) {
      error_->setText("seeds: '" + t + "' is not a non-negative integer");
      return false;
    }
    seeds.push_back(v);
  }
  if (seeds.empty()) {
    error_->setText("seeds: list at least one seed");
    return false;
  }
  try {
    auto s = study::parseStudy(editor_->toPlainText().toStdString(), "study");
    s.seeds = seeds;
    editor_->setPlainText(QString::fromStdString(study::studyJson(s)));
  } catch (const std::exception& e) {
    error_->setText(shortError(QString("seeds: ") + e.what()));
    return false;
  }
  return true;
}

// ---- Launch ------------------------------------------------------------------------------------

void StudyPanel::setBusyRuns(const QStringList& queued, const QStringList& training) {
  queued_ = std::set<QString>(queued.begin(), queued.end());
  training_ = std::set<QString>(training.begin(), training.end());
  grid_stale_ = true;
  if (isVisible()) refreshGrid();
}

std::vector<QueuedRun> StudyPanel::launch() {
  if (!current_) return {};
  const auto& s = current_->study;
  const workspace::Workspace ws(workspace_.toStdString());
  std::vector<QueuedRun> out;
  int done = 0, failed = 0, halted = 0, busy = 0, running = 0;
  try {
    // The workspace keeps the study as it runs: `msconv study status NAME` sees the same cells.
    QDir().mkpath(studiesDir());
    const QString file = QString::fromStdString(study::studyFile(ws, s.name));
    QSaveFile f(file);
    QByteArray text = editor_->toPlainText().toUtf8();
    if (!text.endsWith('\n')) text += '\n';
    if (!f.open(QIODevice::WriteOnly) || f.write(text) != text.size() || !f.commit())
      throw Error(file.toStdString() +
                  ": cannot write the study: " + f.errorString().toStdString());
    source_ = file;
    const auto runs = study::cellRuns(s, current_->cells, ws);
    for (size_t i = 0; i < runs.size(); ++i) {
      const auto& r = runs[i];
      const QString name = QString::fromStdString(r.run);
      if (!r.exists) {
        if (queued_.count(name) || training_.count(name)) {
          ++busy;
          continue;
        }
        const auto& cell = current_->cells[i / s.seeds.size()];
        QueuedRun q{name, {}};
        for (const auto& kv : study::runSettings(cell, r.seed))
          q.settings << QString::fromStdString(kv);
        out.push_back(std::move(q));
      } else if (r.row.status == store::RunStatus::kDone) {
        ++done;
      } else if (r.row.status == store::RunStatus::kFailed) {
        ++failed;
      } else if (r.row.status == store::RunStatus::kRunning) {
        ++running;
      } else if (queued_.count(name) || training_.count(name)) {
        ++busy;
      } else {
        ++halted;  // stopped or interrupted: resumed from its last checkpoint
        out.push_back({name, {}, true});
      }
    }
  } catch (const std::exception& e) {
    message_->setText(QString("Launch: ") + e.what());
    showWarning(this, "Study", message_->text());
    return {};
  }
  QStringList parts = {QString("%1 run(s) queued").arg(out.size() - halted)};
  if (done) parts << QString("%1 done").arg(done);
  if (busy) parts << QString("%1 queued or starting already").arg(busy);
  if (running) parts << QString("%1 training").arg(running);
  if (failed) parts << QString("%1 failed (not retried)").arg(failed);
  if (halted) parts << QString("%1 stopped or interrupted, queued to resume").arg(halted);
  message_->setText("study " + QString::fromStdString(s.name) + ": " + parts.join(", "));
  refreshStudies();
  const int at = study_box_->findText(QString::fromStdString(s.name));
  if (at >= 0) study_box_->setCurrentIndex(at);
  if (!out.empty()) Q_EMIT launchRequested(out);
  refreshGrid();
  return out;
}

// ---- The grid ----------------------------------------------------------------------------------

void StudyPanel::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  refreshStudies();
  if (grid_stale_) refreshGrid();
  timer_.start();
}

void StudyPanel::invalidate() {
  grid_stale_ = true;
  if (isVisible()) {
    refreshStudies();
    refreshGrid();
  }
}

void StudyPanel::hideEvent(QHideEvent* e) {
  QWidget::hideEvent(e);
  timer_.stop();
}

void StudyPanel::refreshGrid() {
  grid_stale_ = false;
  if (!current_) {
    grid_->setRowCount(0);
    grid_->setColumnCount(0);
    return;
  }
  const auto& s = current_->study;
  const auto& cells = current_->cells;
  std::vector<study::CellRun> runs;
  try {
    runs = study::cellRuns(s, cells, workspace::Workspace(workspace_.toStdString()));
  } catch (const std::exception& e) {
    message_->setText(e.what());
    return;
  }
  grid_->setRowCount(static_cast<int>(cells.size()));
  grid_->setColumnCount(static_cast<int>(s.seeds.size()));
  QStringList rows, cols;
  for (const auto& c : cells) rows << QString::fromStdString(c.id) + (c.reference ? " (ref)" : "");
  for (auto seed : s.seeds) cols << QString("seed %1").arg(static_cast<qulonglong>(seed));
  grid_->setVerticalHeaderLabels(rows);
  grid_->setHorizontalHeaderLabels(cols);
  const QColor ink(20, 20, 20);
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    const QString name = QString::fromStdString(r.run);
    QString text, tip = name;
    QColor bg;
    auto progress = [&r] {
      return r.total_steps > 0 ? QString(" %1/%2").arg(r.step).arg(r.total_steps)
                               : QString(" step %1").arg(r.step);
    };
    if (!r.exists) {
      if (training_.count(name)) {
        text = "starting", bg = QColor(189, 215, 238);
      } else if (queued_.count(name)) {
        text = "queued", bg = QColor(225, 225, 225);
      } else {
        text = "pending";
      }
      tip += "\nnot started yet";
    } else {
      switch (r.row.status) {
        case store::RunStatus::kDone:
          text = "done", bg = QColor(198, 239, 206);
          break;
        case store::RunStatus::kRunning:
          text = "running" + progress(), bg = QColor(189, 215, 238);
          break;
        case store::RunStatus::kFailed:
          text = "failed", bg = QColor(255, 199, 206);
          tip += "\n" +
                 (r.error.empty() ? QString("failed (no error recorded)")
                                  : QString::fromStdString(r.error)) +
                 "\nnot retried by Launch";
          break;
        case store::RunStatus::kStopped:
        case store::RunStatus::kInterrupted:
          text = (queued_.count(name) || training_.count(name)
                      ? QString("resume queued")
                      : QString::fromStdString(r.statusText())) +
                 progress();
          bg = QColor(255, 235, 156);
          tip += "\nLaunch resumes it from its last checkpoint (as `msconv study run " +
                 QString::fromStdString(s.name) + " --workspace " + workspace_ + "` does)";
          break;
        default:
          text = QString::fromStdString(r.statusText());
      }
    }
    auto* it = item(text);
    it->setToolTip(tip);
    it->setData(Qt::UserRole, name);
    if (bg.isValid()) {
      it->setBackground(bg);
      it->setForeground(ink);
    }
    grid_->setItem(static_cast<int>(i / s.seeds.size()), static_cast<int>(i % s.seeds.size()), it);
  }
  grid_->resizeColumnsToContents();
}

QString StudyPanel::gridText(int cell, int seed) const {
  const auto* it = grid_->item(cell, seed);
  return it ? it->text() : QString();
}

QString StudyPanel::gridToolTip(int cell, int seed) const {
  const auto* it = grid_->item(cell, seed);
  return it ? it->toolTip() : QString();
}

// ---- The report --------------------------------------------------------------------------------

void StudyPanel::computeReport() {
  if (worker_ || !current_) return;
  // The editor's study as it is (saved or not): a file of its own for the report.
  auto dir = std::make_shared<QTemporaryDir>();
  const QString file = dir->filePath("study.json");
  QFile f(file);
  if (!dir->isValid() || !f.open(QIODevice::WriteOnly) ||
      f.write(editor_->toPlainText().toUtf8()) < 0) {
    report_status_->setText("cannot write a temporary study file: " + f.errorString());
    return;
  }
  f.close();
  report_button_->setEnabled(false);
  report_status_->setText("evaluating the finished runs of " + studyName() + "...");
  // The runs the report evaluates: the study's finished ones.
  report_runs_ = report_done_ = 0;
  try {
    for (const auto& r : study::cellRuns(current_->study, current_->cells,
                                         workspace::Workspace(workspace_.toStdString())))
      report_runs_ += r.exists && r.row.status == store::RunStatus::kDone;
  } catch (const std::exception&) {
  }
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  report_cancelled_ = cancelled;
  report_clock_.start();
  report_progress_->setRange(0, report_runs_);
  report_progress_->setValue(0);
  report_progress_->setVisible(true);
  report_cancel_->setVisible(true);
  report_cancel_->setEnabled(true);
  const QString ws = workspace_;
  worker_ = QThread::create([this, ws, file, dir, cancelled] {
    try {
      const QString json = studyReportJson(ws, file, [this, cancelled](const QString& line) {
        // Called before each run is evaluated: a cancelled report stops here (Cancelled is no
        // std::exception, so the per-run error handling lets it through).
        if (*cancelled) throw Cancelled{};
        Q_EMIT reportProgress(line);
      });
      QMetaObject::invokeMethod(
          this,
          [this, json] {
            if (setReport(json)) {
              report_status_->setText("report of " + report_["study"].toString());
              Q_EMIT reportReady();
            } else {
              Q_EMIT reportFailed(report_status_->text());
            }
          },
          Qt::QueuedConnection);
    } catch (const Cancelled&) {
      QMetaObject::invokeMethod(
          this,
          [this] {
            const QString message = QString("report cancelled: %1 of %2 runs evaluated")
                                        .arg(std::max(0, report_done_ - 1))
                                        .arg(report_runs_);
            report_status_->setText(message);
            Q_EMIT reportFailed(message);
          },
          Qt::QueuedConnection);
    } catch (const std::exception& e) {
      const QString message = QString::fromStdString(e.what());
      QMetaObject::invokeMethod(
          this,
          [this, message] {
            report_status_->setText(message);
            showWarning(this, "Study report", message);
            Q_EMIT reportFailed(message);
          },
          Qt::QueuedConnection);
    }
  });
  connect(worker_, &QThread::finished, this, [this] {
    worker_->deleteLater();
    worker_ = nullptr;
    report_button_->setEnabled(current_ != nullptr);
    report_progress_->setVisible(false);
    report_cancel_->setVisible(false);
  });
  worker_->start();
}

void StudyPanel::cancelReport() {
  if (!worker_ || !report_cancelled_) return;
  *report_cancelled_ = true;
  report_cancel_->setEnabled(false);
  report_status_->setText("cancelling: the run being evaluated finishes first");
}

bool StudyPanel::setReport(const QString& json) {
  QJsonParseError pe;
  const auto doc = QJsonDocument::fromJson(json.toUtf8(), &pe);
  if (doc.isNull() || !doc.isObject() || !doc["cells"].isArray()) {
    report_status_->setText("not a study report: " +
                            (doc.isNull() ? pe.errorString() : QString("no cells")));
    return false;
  }
  report_json_ = json;
  report_ = doc;
  const QString current = metric_box_->currentText();
  metric_box_->blockSignals(true);
  metric_box_->clear();
  metric_box_->addItems(metrics());
  int at = metric_box_->findText(current);
  if (at < 0)  // the first accuracy
    for (int i = 0; i < metric_box_->count() && at < 0; ++i)
      if (metric_box_->itemText(i).endsWith("/accuracy")) at = i;
  metric_box_->setCurrentIndex(std::max(0, at));
  metric_box_->blockSignals(false);
  // The summary: every metric's mean +- std per cell; the best per column bold; a mark where a
  // cell differs significantly from the reference (Holm).
  const QJsonArray cells = report_["cells"].toArray();
  QStringList quality = metrics(), all = quality;
  for (const char* c : {"params_m", "gmacs", "train_samples_per_s"})
    for (const QJsonValue cell : cells)
      if (cell["metrics"].toObject().contains(c) && !all.contains(c)) all << c;
  std::map<std::pair<QString, QString>, QJsonObject> cmp;
  for (const QJsonValue c : report_["comparisons"].toArray())
    cmp[{c["cell"].toString(), c["metric"].toString()}] = c.toObject();
  summary_->clear();
  summary_->setColumnCount(2 + static_cast<int>(all.size()));
  summary_->setRowCount(static_cast<int>(cells.size()));
  QStringList head = {"cell", "n"};
  for (const auto& m : all) head << columnTitle(m);
  summary_->setHorizontalHeaderLabels(head);
  for (int c = 0; c < all.size(); ++c) {
    const QString& m = all[c];
    const bool lower_best = eval::lowerIsBetter(m.toStdString());
    double best = lower_best ? 1e300 : -1e300;
    for (const QJsonValue cell : cells) {
      const double v = num(cell["metrics"][m]["mean"]);
      if (std::isfinite(v)) best = lower_best ? std::min(best, v) : std::max(best, v);
    }
    for (int r = 0; r < cells.size(); ++r) {
      const QJsonObject x = cells[r]["metrics"][m].toObject();
      const double mean = num(x["mean"]), sd = num(x["std"]);
      QString text = formatValue(m, mean);
      if (std::isfinite(mean) && std::isfinite(sd)) text += " ± " + formatValue(m, sd);
      QString tip = QString("n = %1").arg(x["n"].toInt());
      const QJsonArray ci = x["ci95"].toArray();
      if (ci.size() == 2 && std::isfinite(num(ci[0])))
        tip += ", 95 % interval [" + formatValue(m, num(ci[0])) + ", " +
               formatValue(m, num(ci[1])) + "]";
      const auto k = cmp.find({cells[r]["id"].toString(), m});
      if (k != cmp.end()) {
        const double d = num(k->second["diff"]);
        if (k->second["significant"].toBool()) text += d > 0 ? QString(" ▲") : QString(" ▼");
        tip += QString("\nvs reference %1%2%3, p (Holm) %4")
                   .arg(d >= 0 ? "+" : "")
                   .arg(!std::isfinite(d) ? QString("-")
                        : eval::isFaithfulnessLabel(m.toStdString())
                            ? formatValue(m, d)
                            : QString::number(100 * d, 'f', 2))
                   .arg(eval::isFaithfulnessLabel(m.toStdString()) ? "" : " points")
                   .arg(formatP(num(k->second["p_holm"])));
      }
      auto* it = item(text);
      it->setToolTip(tip);
      it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      if (std::isfinite(mean) && mean == best) {
        QFont bold = it->font();
        bold.setBold(true);
        it->setFont(bold);
      }
      summary_->setItem(r, 2 + c, it);
    }
  }
  for (int r = 0; r < cells.size(); ++r) {
    int n = 0;
    for (const QJsonValue run : cells[r]["runs"].toArray())
      n += !run.toObject().contains("excluded");
    summary_->setItem(
        r, 0, item(cells[r]["id"].toString() + (cells[r]["reference"].toBool() ? " (ref)" : "")));
    summary_->setItem(r, 1, item(QString::number(n)));
  }
  summary_->resizeColumnsToContents();
  // The conclusions, and what was left out.
  QStringList words;
  for (const QJsonValue c : report_["conclusions"].toArray()) words << "• " + c.toString();
  conclusions_->setText(words.join("\n"));
  fillReport();
  return true;
}

QStringList StudyPanel::metrics() const {
  QStringList out;
  for (const QJsonValue cell : report_["cells"].toArray())
    for (const QString& k : cell["metrics"].toObject().keys())
      if (!isCost(k) && !out.contains(k)) out << k;
  std::stable_sort(out.begin(), out.end(), metricBefore);
  return out;
}

void StudyPanel::setMetric(const QString& metric) {
  const int at = metric_box_->findText(metric);
  if (at >= 0) metric_box_->setCurrentIndex(at);
}

QString StudyPanel::metric() const {
  return metric_box_->currentText();
}

void StudyPanel::setCost(const QString& cost) {
  const int at = cost_box_->findData(cost);
  if (at >= 0) cost_box_->setCurrentIndex(at);
}

QString StudyPanel::cost() const {
  return cost_box_->currentData().toString();
}

// The detail of the chosen metric: n, mean +- std, the 95 % interval, the difference from the
// reference with its interval and p values; the best mean bold.
void StudyPanel::fillReport() {
  const QString m = metric();
  const QJsonArray cells = report_["cells"].toArray();
  std::map<QString, QJsonObject> cmp;
  for (const QJsonValue c : report_["comparisons"].toArray())
    if (c["metric"].toString() == m) cmp[c["cell"].toString()] = c.toObject();
  detail_->clear();
  const QStringList head = {"cell",      "n",     "mean ± std", "95 % interval", "diff vs ref",
                            "diff 95 %", "p (t)", "p (Holm)",   "p (Wilcoxon)",  "significant"};
  detail_->setColumnCount(static_cast<int>(head.size()));
  detail_->setHorizontalHeaderLabels(head);
  detail_->setRowCount(static_cast<int>(cells.size()));
  const bool lower_best = eval::lowerIsBetter(m.toStdString());
  double best = lower_best ? 1e300 : -1e300;
  for (const QJsonValue cell : cells) {
    const double v = num(cell["metrics"][m]["mean"]);
    if (std::isfinite(v)) best = lower_best ? std::min(best, v) : std::max(best, v);
  }
  for (int r = 0; r < cells.size(); ++r) {
    const QJsonObject x = cells[r]["metrics"][m].toObject();
    const double mean = num(x["mean"]), sd = num(x["std"]);
    const QJsonArray ci = x["ci95"].toArray();
    QStringList row = {
        cells[r]["id"].toString() + (cells[r]["reference"].toBool() ? " (ref)" : ""),
        QString::number(x["n"].toInt()),
        formatValue(m, mean) + (std::isfinite(sd) ? " ± " + formatValue(m, sd) : ""),
        ci.size() == 2 && std::isfinite(num(ci[0]))
            ? "[" + formatValue(m, num(ci[0])) + ", " + formatValue(m, num(ci[1])) + "]"
            : "-"};
    const auto k = cmp.find(cells[r]["id"].toString());
    if (cells[r]["reference"].toBool()) {
      row << "reference"
          << ""
          << ""
          << ""
          << ""
          << "";
    } else if (k != cmp.end()) {
      const QJsonObject& c = k->second;
      const double d = num(c["diff"]);
      const QJsonArray dci = c["ci95"].toArray();
      row << (std::isfinite(d) ? (d >= 0 ? "+" : "") + QString::number(100 * d, 'f', 2) : "-")
          << (dci.size() == 2 && std::isfinite(num(dci[0]))
                  ? "[" + QString::number(100 * num(dci[0]), 'f', 2) + ", " +
                        QString::number(100 * num(dci[1]), 'f', 2) + "]"
                  : "-")
          << formatP(num(c["p_t"])) << formatP(num(c["p_holm"])) << formatP(num(c["p_wilcoxon"]))
          << (c["significant"].toBool() ? (d > 0 ? "yes ▲" : "yes ▼") : "no");
    } else {
      row << "-"
          << "-"
          << "-"
          << "-"
          << "-"
          << "-";
    }
    for (int c = 0; c < row.size(); ++c) {
      auto* it = item(row[c]);
      if (c > 0) it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      if (c == 2 && std::isfinite(mean) && mean == best) {
        QFont bold = it->font();
        bold.setBold(true);
        it->setFont(bold);
      }
      detail_->setItem(r, c, it);
    }
  }
  detail_->resizeColumnsToContents();
  drawChart();
}

// The trade-off: the chosen metric's mean with its 95 % interval (y) against a cost (x), one
// labelled point per cell.
void StudyPanel::drawChart() {
  chart_->clearPlottables();
  chart_->clearItems();
  const QString m = metric(), c = cost();
  const QString cost_title = cost_box_->currentText();
  if (auto* title = qobject_cast<QCPTextElement*>(chart_->plotLayout()->element(0, 0)))
    title->setText(m.isEmpty() ? QString("trade-off")
                               : m + " against " + cost_title + " (mean, 95 % interval)");
  chart_->xAxis->setLabel(cost_title);
  chart_->yAxis->setLabel(m.isEmpty() ? QString() : m + " %");
  const QJsonArray cells = report_["cells"].toArray();
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (int i = 0; i < cells.size(); ++i) {
    const QJsonObject ym = cells[i]["metrics"][m].toObject();
    const QJsonObject xm = cells[i]["metrics"][c].toObject();
    const double x = num(xm["mean"]), y = 100 * num(ym["mean"]);
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    const bool ref = cells[i]["reference"].toBool();
    const QColor colour = seriesColour(static_cast<size_t>(i));
    auto* g = chart_->addGraph();
    g->setName(cells[i]["id"].toString());
    g->setLineStyle(QCPGraph::lsNone);
    g->setScatterStyle(QCPScatterStyle(ref ? QCPScatterStyle::ssDiamond : QCPScatterStyle::ssDisc,
                                       colour, ref ? 11 : 8));
    g->setData(QVector<double>{x}, QVector<double>{y});
    double lo = y, hi = y;
    const QJsonArray ci = ym["ci95"].toArray();
    if (ci.size() == 2 && std::isfinite(num(ci[0])) && std::isfinite(num(ci[1]))) {
      lo = 100 * num(ci[0]), hi = 100 * num(ci[1]);
      auto* bars = new QCPErrorBars(chart_->xAxis, chart_->yAxis);
      bars->setName(g->name() + " 95 %");
      bars->removeFromLegend();
      bars->setDataPlottable(g);
      bars->setPen(QPen(colour, 1.5));
      bars->setData(QVector<double>{y - lo}, QVector<double>{hi - y});
    }
    double xl = x, xh = x;
    const QJsonArray xci = xm["ci95"].toArray();
    if (xci.size() == 2 && std::isfinite(num(xci[0])) && num(xci[1]) > num(xci[0])) {
      xl = num(xci[0]), xh = num(xci[1]);  // training speed varies from seed to seed
      auto* bars = new QCPErrorBars(chart_->xAxis, chart_->yAxis);
      bars->removeFromLegend();
      bars->setErrorType(QCPErrorBars::etKeyError);
      bars->setDataPlottable(g);
      bars->setPen(QPen(colour, 1));
      bars->setData(QVector<double>{x - xl}, QVector<double>{xh - x});
    }
    auto* label = new QCPItemText(chart_);
    label->position->setCoords(x, y);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    label->setPadding(QMargins(6, 0, 0, 2));
    label->setText(g->name() + (ref ? " (ref)" : ""));
    label->setColor(plotForeground(dark_));
    label->setSelectable(false);
    x0 = std::min(x0, xl), x1 = std::max(x1, xh), y0 = std::min(y0, lo), y1 = std::max(y1, hi);
  }
  if (x1 >= x0) {  // some air around the points and their labels
    const double dx = x1 > x0 ? 0.12 * (x1 - x0) : std::max(1e-3, 0.1 * std::abs(x0));
    const double dy = y1 > y0 ? 0.1 * (y1 - y0) : std::max(0.1, 0.05 * std::abs(y0));
    chart_->xAxis->setRange(x0 - dx, x1 + 4 * dx);  // the labels sit right of their points
    chart_->yAxis->setRange(y0 - dy, y1 + dy);
  }
  chart_->replot();
}

bool StudyPanel::exportTo(const QString& path) {
  const QString ext = QFileInfo(path).suffix().toLower();
  if (report_json_.isEmpty()) {
    message_->setText("no report yet: press Report first");
    return false;
  }
  bool ok = false;
  try {
    if (ext == "png") {
      ok = chart_->savePng(path, 1200, 800);
    } else if (ext == "pdf") {
      ok = chart_->savePdf(path, 1200, 800);
    } else {
      const std::map<QString, QString> formats = {
          {"csv", "csv"}, {"md", "markdown"}, {"tex", "latex"}, {"json", "json"}, {"txt", "text"}};
      const auto it = formats.find(ext);
      if (it == formats.end())
        throw Error(path.toStdString() +
                    ": name a .csv, .md, .tex, .json, .txt, .png or .pdf file");
      const QByteArray text = formatStudyReport(report_json_, it->second).toUtf8();
      QSaveFile f(path);
      ok = f.open(QIODevice::WriteOnly) && f.write(text) == text.size() && f.commit();
    }
    if (!ok) throw Error(path.toStdString() + ": cannot write it");
  } catch (const std::exception& e) {
    message_->setText(e.what());
    showWarning(this, "Export", e.what());
    return false;
  }
  message_->setText("exported " + path);
  return true;
}

void StudyPanel::setDark(bool on) {
  dark_ = on;
  stylePlot(chart_, on);
  drawChart();
}

}  // namespace msconv::ui
