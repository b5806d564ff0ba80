#include "msconv/ui/inspect_figure.h"

#include <algorithm>
#include <cmath>

namespace msconv::ui {

bool FigureTile::cellAt(const QPointF& p, int* x, int* y) const {
  if (width <= 0 || height <= 0 || rect.isEmpty()) return false;
  const double fx = p.x() - rect.x(), fy = p.y() - rect.y();
  if (fx < 0 || fy < 0 || fx >= rect.width() || fy >= rect.height()) return false;
  *x = std::min(width - 1, static_cast<int>(std::floor(fx * width / rect.width())));
  *y = std::min(height - 1, static_cast<int>(std::floor(fy * height / rect.height())));
  return static_cast<size_t>(width) * static_cast<size_t>(height) == values.size();
}

int InspectFigure::tileAt(const QPointF& p) const {
  for (size_t i = 0; i < tiles.size(); ++i) {
    const QRect& r = tiles[i].rect;
    if (p.x() >= r.x() && p.y() >= r.y() && p.x() < r.x() + r.width() && p.y() < r.y() + r.height())
      return static_cast<int>(i);
  }
  return -1;
}

QString InspectFigure::describe(const QPointF& p) const {
  const int i = tileAt(p);
  if (i < 0) return {};
  const FigureTile& t = tiles[static_cast<size_t>(i)];
  int x = 0, y = 0;
  if (!t.cellAt(p, &x, &y)) return {};
  const QString value = QString::number(static_cast<double>(t.value(x, y)), 'g', 5);
  if (t.isCam())
    return QString("%1   %2   (x %3, y %4)   CAM = %5")
        .arg(t.model, t.layer)
        .arg(x)
        .arg(y)
        .arg(value);
  return QString("%1   %2   %3   ch %4   (x %5, y %6) = %7")
      .arg(t.model, t.layer, t.row)
      .arg(t.channel)
      .arg(x)
      .arg(y)
      .arg(value);
}

InspectFigure enlargedTile(const FigureTile& tile, int min_side) {
  InspectFigure f;
  f.kind = tile.isCam() ? "gradcam" : "featuremaps";
  f.models << tile.model;
  const int side = std::max(1, std::max(tile.picture.width(), tile.picture.height()));
  const int factor = std::max(1, (min_side + side - 1) / side);
  f.image = tile.picture.scaled(tile.picture.size() * factor, Qt::IgnoreAspectRatio,
                                Qt::FastTransformation);
  FigureTile t = tile;
  t.rect = QRect(QPoint(0, 0), f.image.size());
  f.tiles.push_back(std::move(t));
  return f;
}

}  // namespace msconv::ui
