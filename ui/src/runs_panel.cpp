#include "msconv/ui/runs_panel.h"

#include <QComboBox>
#include <QDir>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

#include "msconv/error.h"
#include "msconv/store/run_store.h"
#include "msconv/train/config.h"

namespace msconv::ui {

RunsPanel::RunsPanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  auto* layout = new QHBoxLayout(this);
  table_ = new QTableWidget(0, 4);
  table_->setHorizontalHeaderLabels({"run", "status", "architecture", "operator"});
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  layout->addWidget(table_, 2);
  table_->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(table_, &QTableWidget::customContextMenuRequested, this, [this](const QPoint& at) {
    const int row = table_->rowAt(at.y());
    if (row < 0) return;
    QMenu menu(this);
    QAction* scope = menu.addAction("Open in msconv-scope (live telemetry)");
    if (menu.exec(table_->viewport()->mapToGlobal(at)) == scope) openScope(row);
  });

  auto* form_box = new QWidget;
  auto* form = new QFormLayout(form_box);
  arch_ = new QComboBox;
  arch_->addItems({"msnet-tiny", "msnet-small", "iresnet-tiny", "iresnet-small", "msnet26",
                   "msnet50", "msnet101", "iresnet18", "iresnet50"});
  op_ = new QComboBox;
  op_->setEditable(true);  // any operator spec, e.g. msconv:kernels=k3k5
  op_->addItems({"msconv-official", "msconv", "skconv", "scconv", "conv3x3", "conv"});
  lr_ = new QLineEdit("0.1");
  batch_ = new QSpinBox;
  batch_->setRange(2, 4096);
  batch_->setValue(64);
  steps_ = new QSpinBox;
  steps_->setRange(0, 10000000);
  steps_->setValue(250);
  steps_->setSpecialValueText("epochs decide");
  name_ = new QLineEdit;
  name_->setPlaceholderText("msnet-tiny-msconv-official");
  extra_ = new QLineEdit;
  extra_->setPlaceholderText("more key=value settings, separated by spaces");
  form->addRow("architecture", arch_);
  form->addRow("operator", op_);
  form->addRow("learning rate", lr_);
  form->addRow("batch size", batch_);
  form->addRow("max steps", steps_);
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
  connect(launch_, &QPushButton::clicked, this, [this] {
    QString error;
    const auto s = settings(&error);
    if (!error.isEmpty()) return;
    Q_EMIT launchRequested(runName(), s);
  });
  validate();
  refresh();
}

QStringList RunsPanel::settings(QString* error) const {
  QStringList s = {"model.arch=" + arch_->currentText(), "model.op=" + op_->currentText(),
                   "train.lr=" + lr_->text(),
                   "train.batch_size=" + QString::number(batch_->value()),
                   "train.max_steps=" + QString::number(steps_->value())};
  for (const auto& kv : extra_->text().split(' ', Qt::SkipEmptyParts)) s << kv;
  // The trainer's own validation, key by key, so the message names the key.
  try {
    std::vector<std::string> sets;
    for (const auto& x : s) sets.push_back(x.toStdString());
    train::Config::load("", sets);
  } catch (const Error& e) {
    if (error) *error = QString::fromStdString(e.what());
    return {};
  }
  if (error) error->clear();
  return s;
}

QString RunsPanel::runName() const {
  return name_->text().isEmpty() ? arch_->currentText() + "-" + op_->currentText() : name_->text();
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
  table_->setRowCount(0);
  try {
    store::RunStore db(workspace_.toStdString());
    for (const auto& r : db.runs()) {
      const int row = table_->rowCount();
      table_->insertRow(row);
      table_->setItem(row, 0, new QTableWidgetItem(QString::fromStdString(r.name)));
      table_->setItem(row, 1, new QTableWidgetItem(QString::fromStdString(r.status)));
      table_->setItem(row, 2, new QTableWidgetItem(QString::fromStdString(r.arch)));
      table_->setItem(row, 3, new QTableWidgetItem(QString::fromStdString(r.op)));
    }
  } catch (const Error& e) {
    error_->setText(QString::fromStdString(e.what()));
  }
}

int RunsPanel::rowCount() const {
  return table_->rowCount();
}

QString RunsPanel::runDir(int row) const {
  const auto* item = table_->item(row, 0);
  return item ? QDir(workspace_).filePath("runs/" + item->text()) : QString();
}

void RunsPanel::openScope(int row) {
  const QString dir = runDir(row);
  if (!dir.isEmpty()) Q_EMIT scopeRequested(dir);
}

}  // namespace msconv::ui
