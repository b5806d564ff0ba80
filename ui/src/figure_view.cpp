#include "msconv/ui/figure_view.h"

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QWheelEvent>

#include <algorithm>
#include <cmath>

namespace msconv::ui {

FigureView::FigureView(const QString& placeholder, QWidget* parent)
    : QWidget(parent), placeholder_(placeholder) {
  setMouseTracking(true);
  setFocusPolicy(Qt::StrongFocus);
  setMinimumSize(160, 120);
  setCursor(Qt::OpenHandCursor);
  setToolTip("wheel or + / - to zoom, drag to pan, 0 to fit, 1 for 100 %; click a tile to enlarge");
}

void FigureView::setPlaceholder(const QString& text) {
  placeholder_ = text;
  update();
}

void FigureView::setFigure(InspectFigure figure) {
  const bool same_size = !figure_.image.isNull() && figure_.image.size() == figure.image.size();
  figure_ = std::move(figure);
  if (!same_size || fitting_) fit();
  update();
  setHover({});
}

QString FigureView::textAt(const QPointF& widget_point) const {
  return figure_.describe(toImage(widget_point));
}

void FigureView::setHover(const QString& text) {
  if (text == hover_) return;
  hover_ = text;
  Q_EMIT hovered(text);
}

void FigureView::zoomBy(double factor, const QPointF& anchor) {
  const double s = std::clamp(scale_ * factor, kMinScale, kMaxScale);
  if (s == scale_) return;
  const QPointF at = toImage(anchor);
  scale_ = s;
  offset_ = anchor - at * scale_;
  fitting_ = false;
  update();
  Q_EMIT viewChanged();
}

void FigureView::zoomIn() {
  zoomBy(1.25, QPointF(width() / 2.0, height() / 2.0));
}
void FigureView::zoomOut() {
  zoomBy(0.8, QPointF(width() / 2.0, height() / 2.0));
}

void FigureView::fit() {
  fitting_ = true;
  if (figure_.image.isNull() || width() <= 0 || height() <= 0) {
    scale_ = 1.0;
    offset_ = {};
  } else {
    const double sx = (width() - 8.0) / figure_.image.width(),
                 sy = (height() - 8.0) / figure_.image.height();
    scale_ = std::clamp(std::min(sx, sy), kMinScale, kMaxScale);
    offset_ = QPointF((width() - figure_.image.width() * scale_) / 2,
                      (height() - figure_.image.height() * scale_) / 2);
  }
  update();
  Q_EMIT viewChanged();
}

void FigureView::actualSize() {
  zoomBy(1.0 / scale_, QPointF(width() / 2.0, height() / 2.0));
}

void FigureView::panBy(const QPointF& delta) {
  if (delta.isNull()) return;
  offset_ += delta;
  fitting_ = false;
  update();
  Q_EMIT viewChanged();
}

void FigureView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().base());
  if (figure_.image.isNull()) {
    p.setPen(palette().color(QPalette::PlaceholderText));
    p.drawText(rect().adjusted(8, 8, -8, -8), Qt::AlignCenter | Qt::TextWordWrap, placeholder_);
    return;
  }
  // Nearest neighbour when enlarged (a map's cells stay cells), smooth when shrunk.
  p.setRenderHint(QPainter::SmoothPixmapTransform, scale_ < 1.0);
  p.translate(offset_);
  p.scale(scale_, scale_);
  p.drawImage(QPointF(0, 0), figure_.image);
  const int i = figure_.tileAt(toImage(mapFromGlobal(QCursor::pos())));
  if (i >= 0 && underMouse()) {  // the tile under the mouse, outlined
    QPen pen(QColor(255, 255, 255));
    pen.setCosmetic(true);
    pen.setWidth(2);
    p.setPen(pen);
    p.drawRect(figure_.tiles[static_cast<size_t>(i)].rect);
  }
}

void FigureView::resizeEvent(QResizeEvent*) {
  if (fitting_) fit();
}

void FigureView::wheelEvent(QWheelEvent* e) {
  const double steps = e->angleDelta().y() / 120.0;
  if (steps == 0) return;
  zoomBy(std::pow(1.25, steps), e->position());
  e->accept();
}

void FigureView::mousePressEvent(QMouseEvent* e) {
  if (e->button() != Qt::LeftButton) return;
  pressed_ = true;
  dragged_ = false;
  press_pos_ = last_pos_ = e->position();
  setCursor(Qt::ClosedHandCursor);
}

void FigureView::mouseMoveEvent(QMouseEvent* e) {
  if (pressed_ && (e->buttons() & Qt::LeftButton)) {
    if ((e->position() - press_pos_).manhattanLength() > 3) dragged_ = true;
    if (dragged_) panBy(e->position() - last_pos_);
    last_pos_ = e->position();
  }
  setHover(textAt(e->position()));
  update();
}

void FigureView::mouseReleaseEvent(QMouseEvent* e) {
  if (e->button() != Qt::LeftButton || !pressed_) return;
  pressed_ = false;
  setCursor(Qt::OpenHandCursor);
  if (!dragged_) {
    const int i = figure_.tileAt(toImage(e->position()));
    if (i >= 0) Q_EMIT tileClicked(i);
  }
}

void FigureView::keyPressEvent(QKeyEvent* e) {
  switch (e->key()) {
    case Qt::Key_Plus:
    case Qt::Key_Equal:
      zoomIn();
      break;
    case Qt::Key_Minus:
      zoomOut();
      break;
    case Qt::Key_0:
      fit();
      break;
    case Qt::Key_1:
      actualSize();
      break;
    default:
      QWidget::keyPressEvent(e);
  }
}

void FigureView::leaveEvent(QEvent*) {
  setHover({});
  update();
}

}  // namespace msconv::ui
