#include "msconv/ui/runs_panel.h"

#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPixmap>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <map>
#include <thread>

#include "msconv/error.h"
#include "msconv/store/run_store.h"
#include "msconv/ui/run_queue.h"
#include "msconv/workspace/workspace.h"

namespace msconv::ui {

RunsPanel::RunsPanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  auto* layout = new QHBoxLayout(this);
  table_ = new QTableWidget(0, kColumns);
  table_->setHorizontalHeaderLabels({"run", "status", "architecture", "operator", "step", "error"});
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->verticalHeader()->setVisible(false);
  table_->setWordWrap(false);
  layout->addWidget(table_, 2);
  connect(table_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
    if (item->column() == kName)
      Q_EMIT visibilityChanged(item->text(), item->checkState() == Qt::Checked);
  });
  table_->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(table_, &QTableWidget::customContextMenuRequested, this, [this](const QPoint& at) {
    const int row = table_->rowAt(at.y());
    if (row < 0) return;
    const QString run = cell(row, kName);
    const RunState state = stateOf(row);
    QMenu menu(this);
    std::map<QAction*, RunAction> actions;
    for (RunAction a : actionsFor(state)) actions[menu.addAction(actionLabel(a))] = a;
    QAction* scope =
        hasRunFolder(state) ? menu.addAction("Open in msconv-scope (live telemetry)") : nullptr;
    QAction* chosen = menu.exec(table_->viewport()->mapToGlobal(at));
    if (!chosen) return;
    if (chosen == scope)
      openScope(row);
    else if (actions.count(chosen))
      Q_EMIT runAction(run, actions[chosen]);
  });

  auto* form_box = new QWidget;
  auto* form = new QFormLayout(form_box);
  arch_ = new QComboBox;
  arch_->setEditable(true);  // any architecture text, e.g. msnet50:width=0.5,blocks=2-2-2-2
  arch_->addItems({"msnet-tiny", "msnet-small", "iresnet-tiny", "iresnet-small", "fasternet-t0",
                   "msnet26", "msnet50", "msnet101", "iresnet18", "iresnet50", "fasternet-s"});
  arch_->setToolTip(
      "a preset or a preset with options: width, blocks (3-4-6-3), G, L, embedding, stem_stride, "
      "prelu=shared|channel");
  op_ = new QComboBox;
  op_->setEditable(true);  // any operator spec, e.g. msconv:kernels=k3k5
  op_->addItems({"msconv-official", "msconv", "skconv", "scconv", "ghost", "ghostv2", "pconv",
                 "star", "conv3x3", "conv"});
  lr_ = new QLineEdit("0.1");
  batch_ = new QSpinBox;
  batch_->setRange(2, 4096);
  batch_->setValue(64);
  steps_ = new QSpinBox;
  steps_->setRange(0, 10000000);
  steps_->setValue(250);
  steps_->setSpecialValueText("epochs decide");
  processes_ = new QSpinBox;
  processes_->setRange(1, std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  processes_->setValue(1);
  processes_->setToolTip(
      "processes that train the run together, as one run (data-parallel, each with its share of "
      "the cores and of the batch: the batch size must divide evenly)");
  name_ = new QLineEdit;
  name_->setPlaceholderText("msnet-tiny-msconv-official");
  extra_ = new QLineEdit;
  extra_->setPlaceholderText("more key=value settings, separated by spaces");
  form->addRow("architecture", arch_);
  form->addRow("operator", op_);
  form->addRow("learning rate", lr_);
  form->addRow("batch size", batch_);
  form->addRow("max steps", steps_);
  form->addRow("processes", processes_);
  form->addRow("name", name_);
  form->addRow("settings", extra_);
  error_ = new QLabel;
  error_->setStyleSheet("color: #d33;");
  error_->setWordWrap(true);
  form->addRow(error_);
  launch_ = new QPushButton("Launch");
  launch_->setShortcut(QKeySequence("Ctrl+Return"));
  form->addRow(launch_);
  layout->addWidget(form_box, 1);

  for (auto* e : {lr_, name_, extra_})
    connect(e, &QLineEdit::textChanged, this, &RunsPanel::validate);
  connect(op_, &QComboBox::currentTextChanged, this, &RunsPanel::validate);
  connect(arch_, &QComboBox::currentTextChanged, this, &RunsPanel::validate);
  connect(batch_, &QSpinBox::valueChanged, this, &RunsPanel::validate);
  connect(steps_, &QSpinBox::valueChanged, this, &RunsPanel::validate);
  connect(processes_, &QSpinBox::valueChanged, this, &RunsPanel::validate);
  connect(launch_, &QPushButton::clicked, this, [this] {
    QString error;
    const auto s = settings(&error);
    if (!error.isEmpty()) return;
    Q_EMIT launchRequested(runName(), s, processes());
  });
  validate();  // the table fills on refresh() or setPending()
}

QStringList RunsPanel::settings(QString* error) const {
  QStringList s = {"model.arch=" + arch_->currentText(), "model.op=" + op_->currentText(),
                   "train.lr=" + lr_->text(),
                   "train.batch_size=" + QString::number(batch_->value()),
                   "train.max_steps=" + QString::number(steps_->value())};
  for (const auto& kv : extra_->text().split(' ', Qt::SkipEmptyParts)) s << kv;
  // The trainer's own validation, key by key, so the message names the key.
  QString message = settingsError(s);
  if (message.isEmpty() && processes() > 1) {
    const int n = processes();
    int64_t batch = batch_->value();  // the last train.batch_size given wins, as in the trainer
    for (const auto& kv : s)
      if (kv.startsWith("train.batch_size=")) batch = kv.mid(17).toLongLong();
    if (batch % n != 0)
      message = QString(
                    "train.batch_size: %1 samples cannot be split evenly over %2 processes; "
                    "use a multiple of %2")
                    .arg(batch)
                    .arg(n);
  }
  if (error) *error = message;
  return message.isEmpty() ? s : QStringList();
}

QString RunsPanel::runName() const {
  return name_->text().isEmpty() ? arch_->currentText() + "-" + op_->currentText() : name_->text();
}

int RunsPanel::processes() const {
  return processes_->value();
}

bool RunsPanel::launchEnabled() const {
  return launch_->isEnabled();
}

void RunsPanel::validate() {
  QString error;
  settings(&error);
  error_->setText(error);
  launch_->setEnabled(error.isEmpty());
}

void RunsPanel::refresh() {
  std::vector<PendingRun> rows = pending_;
  std::vector<QString> steps(rows.size());
  try {
    const workspace::Workspace ws(workspace_.toStdString());
    const auto db = ws.openStore();
    for (const auto& r : db->runs()) {
      PendingRun p{QString::fromStdString(r.name),
                   ui::stateOf(r.status),
                   QString::fromStdString(r.arch),
                   QString::fromStdString(r.op),
                   {}};
      if (p.state == RunState::kFailed) p.error = QString::fromStdString(ws.runError(r.name));
      const auto loss = db->metrics(r.id, "loss");
      steps.push_back(loss.empty() ? QString() : QString::number(loss.back().step));
      rows.push_back(std::move(p));
    }
  } catch (const Error& e) {
    error_->setText(QString::fromStdString(e.what()));
  }
  // Visibility survives a refresh.
  std::map<QString, bool> visible;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (auto* item = table_->item(r, kName))
      visible[item->text()] = item->checkState() == Qt::Checked;
  table_->blockSignals(true);
  table_->setRowCount(0);
  states_.clear();
  for (size_t i = 0; i < rows.size(); ++i) {
    const PendingRun& p = rows[i];
    const int row = table_->rowCount();
    table_->insertRow(row);
    auto* name = new QTableWidgetItem(p.name);
    name->setFlags(name->flags() | Qt::ItemIsUserCheckable);
    name->setCheckState(!visible.count(p.name) || visible[p.name] ? Qt::Checked : Qt::Unchecked);
    name->setToolTip("checked: drawn on the charts");
    if (colour_of_) {
      QPixmap swatch(12, 12);
      swatch.fill(colour_of_(p.name));
      name->setData(Qt::DecorationRole, swatch);
    }
    table_->setItem(row, kName, name);
    states_.push_back(p.state);
    const QStringList cells = {stateName(p.state), p.arch, p.op, steps[i], p.error};
    for (int c = 0; c < cells.size(); ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      if (!p.error.isEmpty()) {
        item->setForeground(QColor(211, 51, 51));
        item->setToolTip(p.error);
      }
      table_->setItem(row, c + 1, item);
    }
  }
  table_->resizeColumnsToContents();
  table_->blockSignals(false);
}

void RunsPanel::setPending(std::vector<PendingRun> pending) {
  pending_ = std::move(pending);
  refresh();
}

QString RunsPanel::cell(int row, int column) const {
  const auto* item = table_->item(row, column);
  return item ? item->text() : QString();
}

int RunsPanel::rowOf(const QString& run) const {
  for (int r = 0; r < table_->rowCount(); ++r)
    if (cell(r, kName) == run) return r;
  return -1;
}

void RunsPanel::setRunVisible(int row, bool visible) {
  if (auto* item = table_->item(row, kName))
    item->setCheckState(visible ? Qt::Checked : Qt::Unchecked);  // emits through itemChanged
}

int RunsPanel::rowCount() const {
  return table_->rowCount();
}

QString RunsPanel::runDir(int row) const {
  const auto* item = table_->item(row, 0);
  return item ? QString::fromStdString(workspace::Workspace(workspace_.toStdString())
                                           .runDir(item->text().toStdString()))
              : QString();
}

RunState RunsPanel::stateOf(int row) const {
  return row >= 0 && row < static_cast<int>(states_.size()) ? states_[row] : RunState::kUnknown;
}

void RunsPanel::openScope(int row) {
  const QString dir = runDir(row);
  if (!dir.isEmpty()) Q_EMIT scopeRequested(dir);
}

}  // namespace msconv::ui
