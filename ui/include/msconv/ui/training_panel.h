// Live training curves (QCustomPlot): loss, validation accuracy and TAR@FAR over the top row,
// learning rate, samples/s and gradient norm below; several runs overlaid, one colour per run.
// Each series is drawn faint raw with its debiased exponential average (smoothing slider, 0.6 by
// default) on top. The x axis shows steps, time since the run started, or wall-clock time; value
// axes may be logarithmic; a crosshair reads every visible run's value under the mouse; a marker
// sits on each run's best value. Points are appended as events arrive and the plots are replotted
// at most ~30 times a second.
//
// Grouping: the runs of one study cell (study::runName of its seeds), or of one value of a
// configuration key (the run's stored configuration), drawn as one curve: the mean of the runs'
// smoothed curves with a translucent band (mean -+ the sample standard deviation, or min to max),
// on the x values of any run within the range every run of the group covers (each run linearly
// interpolated there: at the steps all of them logged, the mean of the logged values). The runs
// themselves are drawn faint in the group's colour, or hidden; runs in no group stay as they are.
#pragma once

#include <QColor>
#include <QImage>
#include <QMap>
#include <QString>
#include <QStringList>
#include <QTimer>
#include <QWidget>

#include "msconv/ui/chart_series.h"
#include "msconv/ui/engine.h"

#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

class QCustomPlot;
class QCPGraph;
class QCPItemStraightLine;
class QCPItemText;
class QSlider;
class QLabel;
class QComboBox;
class QCheckBox;
class QCPPainter;
class QLineEdit;

namespace msconv::ui {

class TrainingPanel : public QWidget {
  Q_OBJECT
 public:
  enum class XAxis { kStep, kRelative, kWall };
  enum class GroupBy { kNone, kStudyCell, kConfigKey };
  enum class Band { kStd, kMinMax };
  // A group's curve on one chart: x, the mean and the band's two edges; how many runs it averages.
  struct GroupCurve {
    std::vector<double> x, mean, lower, upper;
    int runs = 0;
  };
  // The mean and band of curves (each: x ascending, y) on common x: every x of any curve within
  // the range all of them cover, each curve linearly interpolated there. Std: the sample standard
  // deviation (n - 1; 0 for one run). Empty when the curves share no range.
  static GroupCurve aggregate(
      const std::vector<std::pair<std::vector<double>, std::vector<double>>>& curves, Band band);
  // Series keys, in plot order.
  static const QStringList& seriesKeys();  // loss, accuracy, tar, lr, samples_per_s, grad_norm

  explicit TrainingPanel(QWidget* parent = nullptr);
  // Raw points of a run's series (a key of seriesKeys()).
  int pointCount(const QString& run, const QString& series) const;
  double smoothing() const { return weight_; }
  void setSmoothing(double weight);
  XAxis xAxis() const { return x_mode_; }
  void setXAxis(XAxis mode);
  bool logY() const { return log_y_; }
  void setLogY(bool on);  // logarithmic value axes (loss, learning rate, samples/s, grad norm)
  bool dark() const { return dark_; }
  void setDark(bool on);
  // The FAR whose TAR the TAR@FAR chart shows ("1e-03"); the FARs validation has reported.
  QString far() const;
  QStringList farChoices() const;
  void setFar(const QString& far);

  // A run's colour: assigned on first use and kept; the Runs panel shows the same.
  QColor colourOf(const QString& run);
  void setRunVisible(const QString& run, bool visible);
  bool runVisible(const QString& run) const;
  // The value the best-value marker sits on (NaN when the series is empty or has no "best"):
  // the minimum of the smoothed loss, the maximum of the smoothed samples/s, the maximum of the
  // raw validation accuracy and TAR (validation is not batch noise).
  double best(const QString& run, const QString& series) const;
  // What the crosshair shows at x (in the current axis units) on a series' chart: the x, then
  // each visible run's smoothed value at its nearest point.
  QString readout(const QString& series, double x) const;

  // The whole chart grid: PNG (width x height pixels) or vector PDF; CSV of every raw point.
  bool exportPng(const QString& path, int width, int height);
  bool exportPdf(const QString& path, int width = 1200, int height = 720);
  bool exportCsv(const QString& path) const;
  QImage render(int width, int height);
  // A run's logged curves from the store (a run trained before the window opened).
  void addHistory(const RunHistory& history);

  // Grouping (see above). The workspace is where runs are looked up: the run store for their
  // configuration, WS/studies for a study.
  void setWorkspace(const QString& workspace);
  // `key`: the study (a name the workspace keeps, or a file) for kStudyCell, the configuration key
  // ("model.op", "loss.type", "train.lr") for kConfigKey. A study that cannot be read is shown
  // beside the controls (groupNote) and groups nothing.
  void setGroupBy(GroupBy mode, const QString& key = {});
  GroupBy groupBy() const { return group_by_; }
  QString groupKey() const { return group_key_; }
  void setBand(Band band);
  Band band() const { return band_; }
  // The grouped runs: drawn faint (true) or hidden (false).
  void setShowGroupedRuns(bool on);
  bool showGroupedRuns() const { return show_grouped_runs_; }
  // A run's group: "model.op=skconv" or the study cell's id; "" when in none.
  QString groupOf(const QString& run) const;
  QStringList groups() const;  // the groups with runs on the charts
  // A group's curve on a series' chart (a key of seriesKeys()), as its graphs hold it.
  GroupCurve groupCurve(const QString& group, const QString& series);
  QString groupNote() const;  // what the grouping found, or why it found nothing

 public Q_SLOTS:
  // `wall`: unix seconds of the point (0: now).
  void addStep(const QString& run, qint64 step, double loss, double lr, double samples_per_s,
               double grad_norm, double wall = 0);
  void addValidation(const QString& run, qint64 step, const QMap<QString, double>& metrics,
                     double wall = 0);

 Q_SIGNALS:
  void settingsChanged();  // smoothing, axis, log y or FAR changed by the user

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;  // hides the crosshair on leave
  void showEvent(QShowEvent* event) override;                  // draws what came while hidden

 private:
  struct Series {
    ChartSeries data;
    QCPGraph* raw = nullptr;
    QCPGraph* smooth = nullptr;
    QCPGraph* best = nullptr;  // one point: the best-value marker
  };
  struct GroupGraphs {
    QCPGraph* mean = nullptr;
    QCPGraph* lower = nullptr;  // filled up to `upper` (the band)
    QCPGraph* upper = nullptr;
    int runs = 0;
  };
  struct Run {
    QColor colour;
    double t0 = -1;  // wall time of its first point
    bool visible = true;
    std::vector<std::tuple<double, double, QMap<QString, double>>> validations;  // step, wall, m
  };
  Series& series(const QString& run, int plot);
  Run& runInfo(const QString& run);
  double xOf(const QString& run, double step, double wall) const;
  void append(const QString& run, int plot, double step, double wall, double y);
  void drawBest(Series& s);
  void rebuild();  // every graph from the raw points (axis, smoothing, FAR changes)
  void showFar(const QString& far);  // the TAR chart's title and every run's TAR series
  void rebuildTar(const QString& run);
  void addTarPoint(const QString& run, double step, double wall, const QMap<QString, double>& m);
  void styleAxes();
  void replotIfDirty();   // the replot timer: rescales and redraws the charts, while visible
  bool rescaleIfDirty();  // the axes to the data (and the groups), when either changed
  void showCrosshair(int plot, double pixel_x);
  void paintGrid(QCPPainter& painter, int width, int height);  // the six charts, 3 x 2
  void markDirty() { dirty_ = groups_dirty_ = true; }
  void resolveGroups(bool all);  // runs to groups: every run (all) or the runs not looked up yet
  // Every group's curve on every chart, from the visible runs' curves now.
  std::map<std::pair<QString, int>, GroupCurve> currentGroups() const;
  void regroup();  // the group graphs from currentGroups(), the runs' styles
  void styleRun(const QString& run);
  QColor groupColour(const QString& group);
  void showGroupControls();  // the key box for the mode (studies or configuration keys)

  std::vector<QCustomPlot*> plots_;
  std::vector<QCPItemStraightLine*> cross_;
  std::vector<QCPItemText*> readout_;
  std::map<std::pair<QString, int>, Series> series_;
  std::map<QString, Run> runs_;
  QSlider* slider_ = nullptr;
  QLabel* slider_label_ = nullptr;
  QComboBox* x_box_ = nullptr;
  QComboBox* far_box_ = nullptr;
  QCheckBox* log_box_ = nullptr;
  QComboBox* group_box_ = nullptr;
  QComboBox* group_key_box_ = nullptr;
  QComboBox* band_box_ = nullptr;
  QCheckBox* group_runs_box_ = nullptr;
  QLabel* group_note_ = nullptr;
  QString workspace_, group_key_;
  GroupBy group_by_ = GroupBy::kNone;
  Band band_ = Band::kStd;
  bool show_grouped_runs_ = true, groups_dirty_ = false;
  std::map<QString, QString> group_of_;      // looked-up runs with a group
  std::set<QString> unresolved_;             // runs not looked up yet
  std::map<QString, QString> study_cells_;   // the study's run names to their cells
  std::map<QString, QColor> group_colours_;  // kept while the grouping is
  std::map<std::pair<QString, int>, GroupGraphs> group_graphs_;  // (group, plot)
  QTimer replot_;
  bool dirty_ = false;
  double weight_ = 0.6;
  XAxis x_mode_ = XAxis::kStep;
  bool log_y_ = false, dark_ = false;
};

}  // namespace msconv::ui
