// The Inspect panel's figures with the numbers behind them: the picture, and for each tile its
// rectangle in the picture and the float array it shows (a feature map channel at its own
// resolution, or a CAM at the input's), so a viewer can say which model, channel, position and
// value lie under the mouse, and enlarge one tile. Plain values: no LibTorch, no widgets.
#pragma once

#include <QImage>
#include <QMetaType>
#include <QPointF>
#include <QRect>
#include <QString>
#include <QStringList>

#include <vector>

namespace msconv::ui {

struct FigureTile {
  QRect rect;                 // where the tile lies in the figure's pixels
  QString model;              // the model's label (run name and operator)
  QString layer;              // the layer ("mean" for the layers' average CAM)
  QString row;                // feature maps: the branch row (U1, U1+U2, out, ...); CAMs: "CAM"
  int channel = -1;           // feature maps: the channel; CAMs: -1
  int width = 0, height = 0;  // the array's size
  std::vector<float> values;  // height x width, row-major: the feature map or the CAM in [0, 1]
  QImage picture;             // the tile as drawn, at the array's resolution
  bool isCam() const { return channel < 0; }
  // The array cell under a point of the figure (the tile's pixels spread evenly over the array,
  // as the nearest-neighbour enlargement draws them); false outside the tile.
  bool cellAt(const QPointF& figure_point, int* x, int* y) const;
  float value(int x, int y) const { return values[static_cast<size_t>(y * width + x)]; }
};

struct InspectFigure {
  QString kind;  // "featuremaps" or "gradcam"
  QImage image;
  std::vector<FigureTile> tiles;
  QStringList models;  // the models drawn, left to right (feature maps) or top to bottom (CAMs)
  QString note;        // what could not be drawn alike (a model without the layer, other shapes)
  int tileAt(const QPointF& figure_point) const;  // -1: none
  // "MODEL  LAYER  ROW  ch C  (x, y) = VALUE" for a feature map, "MODEL  LAYER  (x, y)  CAM =
  // VALUE" for a CAM; empty off the tiles.
  QString describe(const QPointF& figure_point) const;
};

// The enlarged view of one tile: its picture scaled up by a whole factor (nearest neighbour) to
// at least `min_side` pixels, as a figure with that one tile.
InspectFigure enlargedTile(const FigureTile& tile, int min_side = 448);

}  // namespace msconv::ui

Q_DECLARE_METATYPE(msconv::ui::InspectFigure)
