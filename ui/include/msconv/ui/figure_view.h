// A figure to look into: the picture zooms (wheel about the mouse, + / -, 0 to fit, 1 for one
// image pixel per screen pixel) and pans (drag); the value under the mouse is told (`hovered`:
// the tile's model, layer, channel, position and value, from the figure's arrays); a click on a
// tile (a press and release without a drag) asks for it enlarged (`tileClicked`).
#pragma once

#include <QPointF>
#include <QString>
#include <QWidget>

#include "msconv/ui/inspect_figure.h"

namespace msconv::ui {

class FigureView : public QWidget {
  Q_OBJECT
 public:
  explicit FigureView(const QString& placeholder = {}, QWidget* parent = nullptr);
  // Shows a figure. A figure of the same size keeps the zoom and the pan (a control changed);
  // another size is fitted into the view.
  void setFigure(InspectFigure figure);
  const InspectFigure& figure() const { return figure_; }
  void setPlaceholder(const QString& text);

  // The view: widget = image * scale + offset.
  double scale() const { return scale_; }
  QPointF offset() const { return offset_; }
  bool fitting() const { return fitting_; }  // follows the widget's size until zoomed or panned
  QPointF toImage(const QPointF& widget_point) const { return (widget_point - offset_) / scale_; }
  QPointF toWidget(const QPointF& image_point) const { return image_point * scale_ + offset_; }
  QString textAt(const QPointF& widget_point) const;  // "" off the tiles
  QString hoverText() const { return hover_; }

  void zoomBy(double factor, const QPointF& widget_anchor);  // the anchor's image point stays
  void zoomIn();
  void zoomOut();
  void fit();         // the whole figure, centred
  void actualSize();  // one image pixel per screen pixel
  void panBy(const QPointF& delta);

  static constexpr double kMinScale = 0.05, kMaxScale = 64.0;
  QSize sizeHint() const override { return {480, 320}; }

 Q_SIGNALS:
  void hovered(const QString& text);
  void tileClicked(int tile);
  void viewChanged();

 protected:
  void paintEvent(QPaintEvent* e) override;
  void resizeEvent(QResizeEvent* e) override;
  void wheelEvent(QWheelEvent* e) override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;
  void leaveEvent(QEvent* e) override;

 private:
  void setHover(const QString& text);
  InspectFigure figure_;
  QString placeholder_, hover_;
  double scale_ = 1.0;
  QPointF offset_;
  bool fitting_ = true;
  bool pressed_ = false, dragged_ = false;
  QPointF press_pos_, last_pos_;
};

}  // namespace msconv::ui
