// The workbench's QCustomPlot charts: the light and dark looks, the series colours, and the ROC
// chart the Evaluation panel and the report share (torch-free translation units only).
#pragma once

#include <QColor>
#include <QPen>
#include <QString>

#include <vector>

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

// Background, axes, grid, legend, a title element in row 0 (when there is one), fast lines.
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
  // Lines drawn segment by segment on screen: stroking a long polyline of a 2 px pen as one path
  // cost ~60 ms per chart at 2,000 points (180 ms at 20,000), which stalled the event loop of a
  // long run's live charts; segments cost ~2 ms. Exports (PDF, toPainter) keep exact polylines.
  p->setPlottingHint(QCP::phFastPolylines, true);
  p->legend->setBrush(bg);
  p->legend->setTextColor(fg);
  p->legend->setBorderPen(QPen(grid));
  if (p->plotLayout()->rowCount() > 1)
    if (auto* title = qobject_cast<QCPTextElement*>(p->plotLayout()->element(0, 0)))
      title->setTextColor(fg);
}

// The i-th series colour (matplotlib's tab10 order).
inline QColor seriesColour(size_t i) {
  static const QColor c[] = {QColor(31, 119, 180),  QColor(255, 127, 14),  QColor(44, 160, 44),
                             QColor(214, 39, 40),   QColor(148, 103, 189), QColor(140, 86, 75),
                             QColor(227, 119, 194), QColor(23, 190, 207)};
  return c[i % (sizeof c / sizeof c[0])];
}

// TAR against FAR on a logarithmic FAR axis, the legend bottom right.
inline void setupRocPlot(QCustomPlot* p) {
  p->xAxis->setScaleType(QCPAxis::stLogarithmic);
  p->xAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  p->xAxis->setLabel("FAR");
  p->yAxis->setLabel("TAR");
  p->legend->setVisible(true);
  p->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignBottom | Qt::AlignRight);
}

// One ROC curve; points at FAR 0 are left out (they are off the log axis). Then the axes fit
// every curve, TAR from 0 to 1.
inline void addRocCurve(QCustomPlot* p, const QString& name, const QColor& colour,
                        const std::vector<double>& far, const std::vector<double>& tar) {
  auto* g = p->addGraph();
  g->setName(name);
  g->setPen(QPen(colour, 2));
  QVector<double> x, y;
  for (size_t i = 0; i < far.size(); ++i)
    if (far[i] > 0) x << far[i], y << tar[i];
  g->setData(x, y);
  p->rescaleAxes();
  p->yAxis->setRange(0, 1.02);
}

}  // namespace msconv::ui
