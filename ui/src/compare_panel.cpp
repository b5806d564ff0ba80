#include "msconv/ui/compare_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSpinBox>
#include <QTableWidget>
#include <QTextStream>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <cmath>
#include <map>

#include "msconv/ui/dialogs.h"
#include "msconv/ui/engine.h"
#include "plot_style.h"
#include "qcustomplot_include.h"

namespace msconv::ui {

ComparePanel::ComparePanel(QString workspace, QWidget* parent)
    : QWidget(parent), workspace_(std::move(workspace)) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  auto* reload = new QPushButton("Refresh");
  auto* save = new QPushButton("Export CSV...");
  bar->addWidget(reload);
  bar->addWidget(save);
  bar->addStretch(1);
  layout->addLayout(bar);
  table_ = new QTableWidget;
  table_->setObjectName("comparison");
  table_->setSortingEnabled(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  layout->addWidget(table_, 1);
  connect(reload, &QPushButton::clicked, this, &ComparePanel::refresh);
  connect(save, &QPushButton::clicked, this, [this] {
    const QString f = saveFileName(this, "Export", "compare.csv", "CSV (*.csv)");
    if (!f.isEmpty()) exportCsv(f);
  });
}

void ComparePanel::invalidate() {
  stale_ = true;
  if (isVisible()) refresh();
}

void ComparePanel::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  if (stale_) refresh();
}

void ComparePanel::refresh() {
  stale_ = false;
  std::vector<CompareRow> rows;
  try {
    rows = compareRuns(workspace_);
  } catch (const std::exception&) {
  }
  QStringList keys;
  for (const auto& r : rows)
    for (const auto& [k, v] : r.metrics)
      if (!keys.contains(k)) keys << k;
  QStringList head = {"model",    "operator",        "status",    "params (M)",
                      "MACs (G)", "train samples/s", "validation"};
  for (const auto& k : keys) head << k + " %";
  table_->setSortingEnabled(false);
  table_->clear();
  table_->setColumnCount(head.size());
  table_->setHorizontalHeaderLabels(head);
  table_->setRowCount(static_cast<int>(rows.size()));
  for (int i = 0; i < static_cast<int>(rows.size()); ++i) {
    const auto& r = rows[i];
    auto num = [](double v, int digits) {
      auto* item = new QTableWidgetItem;
      item->setData(Qt::DisplayRole, QString::number(v, 'f', digits).toDouble());
      return item;
    };
    table_->setItem(i, 0, new QTableWidgetItem(r.name));
    table_->setItem(i, 1, new QTableWidgetItem(r.op));
    table_->setItem(i, 2, new QTableWidgetItem(r.status));
    table_->setItem(i, 3, num(r.params_m, 3));
    table_->setItem(i, 4, num(r.gmacs, 4));
    table_->setItem(i, 5, num(r.samples_per_s, 1));
    table_->setItem(i, 6, new QTableWidgetItem(r.validation.isEmpty() ? "-" : r.validation));
    for (int k = 0; k < keys.size(); ++k) {
      const auto it = r.metrics.find(keys[k]);
      table_->setItem(i, 7 + k,
                      it == r.metrics.end() ? new QTableWidgetItem("-") : num(100 * it->second, 2));
    }
  }
  table_->setSortingEnabled(true);
  table_->resizeColumnsToContents();
}

bool ComparePanel::exportCsv(const QString& path) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
  QTextStream out(&f);
  for (int c = 0; c < table_->columnCount(); ++c)
    out << (c ? "," : "") << table_->horizontalHeaderItem(c)->text();
  out << "\n";
  for (int r = 0; r < table_->rowCount(); ++r) {
    for (int c = 0; c < table_->columnCount(); ++c)
      out << (c ? "," : "") << (table_->item(r, c) ? table_->item(r, c)->text() : "");
    out << "\n";
  }
  return true;
}

}  // namespace msconv::ui
