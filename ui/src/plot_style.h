// The light and dark looks of the workbench's QCustomPlot charts
// (torch-free translation units only).
#pragma once

#include <QColor>
#include <QPen>

#include "qcustomplot_include.h"

namespace msconv::ui {

inline QColor plotBackground(bool dark) {
  return dark ? QColor(37, 37, 38) : QColor(Qt::white);
}
inline QColor plotForeground(bool dark) {
  return dark ? QColor(220, 220, 220) : QColor(30, 30, 30);
}
inline QColor plotGrid(bool dark) {
  return dark ? QColor(70, 70, 70) : QColor(220, 220, 220);
}

// Background, axes, grid, legend and a title element in row 0 (when there is one).
inline void stylePlot(QCustomPlot* p, bool dark) {
  const QColor bg = plotBackground(dark), fg = plotForeground(dark), grid = plotGrid(dark);
  p->setBackground(bg);
  for (auto* axis : {p->xAxis, p->yAxis}) {
    axis->setBasePen(QPen(fg));
    axis->setTickPen(QPen(fg));
    axis->setSubTickPen(QPen(fg));
    axis->setTickLabelColor(fg);
    axis->setLabelColor(fg);
    axis->grid()->setPen(QPen(grid, 1, Qt::DotLine));
  }
  p->legend->setBrush(bg);
  p->legend->setTextColor(fg);
  p->legend->setBorderPen(QPen(grid));
  if (p->plotLayout()->rowCount() > 1)
    if (auto* title = qobject_cast<QCPTextElement*>(p->plotLayout()->element(0, 0)))
      title->setTextColor(fg);
}

}  // namespace msconv::ui
