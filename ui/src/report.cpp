#include "msconv/ui/report.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>
#include <QTextStream>

#include <cmath>

#include "msconv/error.h"
#include "msconv/eval/metric_name.h"
#include "msconv/runtime.h"
#include "msconv/ui/engine.h"
#include "msconv/ui/eval_panel.h"
#include "msconv/ui/training_panel.h"
#include "plot_style.h"

namespace msconv::ui {
namespace {

void writeBytes(const QString& path, const QByteArray& bytes) {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly) || f.write(bytes) != bytes.size() || !f.commit())
    throw Error(path.toStdString() + ": cannot write");
}

void writeImage(const QString& path, const QImage& image) {
  QSaveFile f(path);
  if (image.isNull() || !f.open(QIODevice::WriteOnly) || !image.save(&f, "PNG") || !f.commit())
    throw Error(path.toStdString() + ": cannot write");
}

QJsonValue number(double v) {
  return std::isfinite(v) ? QJsonValue(v) : QJsonValue();  // JSON has no NaN: null
}

QString pct(double v) {
  return std::isfinite(v) ? QString::number(100 * v, 'f', 2) : QString("-");
}

QString farName(double far) {
  return QString::fromStdString(eval::MetricName::farText(far));
}

// Every run's checkpoint on the sets it was validated on: JSON per run, the verification table's
// rows, the ROC and DET curves drawn on `roc` and `det`, and each set's DET points as
// det-RUN-SET.csv in `out`.
struct Evaluations {
  QJsonObject json;
  QString rows, det_links;
};

QString detCsv(const SetEvaluation& s) {
  QString csv = "fmr,fnmr,threshold\n";
  for (size_t i = 0; i < s.det_fmr.size(); ++i)
    csv += QString("%1,%2,%3\n")
               .arg(s.det_fmr[i], 0, 'g', 10)
               .arg(s.det_fnmr[i], 0, 'g', 10)
               .arg(i < s.det_threshold.size() ? s.det_threshold[i] : std::nan(""), 0, 'g', 10);
  return csv;
}

// A run or set name as a file-name part.
QString filePart(QString s) {
  for (auto& c : s)
    if (!c.isLetterOrNumber() && c != '.' && c != '_' && c != '-') c = '_';
  return s;
}

Evaluations evaluateRuns(const QString& workspace,
                         const std::vector<std::pair<QString, QString>>& checkpoints,
                         TrainingPanel& charts, QCustomPlot& roc, QCustomPlot& det, const QDir& out,
                         QStringList& written) {
  Evaluations ev;
  for (const auto& [name, ckpt] : checkpoints) {
    std::vector<SetEvaluation> sets;
    try {
      sets = evaluateCheckpoint(ckpt, {}, workspace);
    } catch (const Error& e) {  // reported in the run's row; the other runs go on
      ev.json[name] = QJsonObject{{"error", QString::fromStdString(e.what())}};
      ev.rows += QString("<tr><td>%1</td><td colspan=\"7\">%2</td></tr>\n")
                     .arg(name.toHtmlEscaped(), QString::fromStdString(e.what()).toHtmlEscaped());
      continue;
    }
    QJsonArray runs_sets;
    for (const auto& s : sets) {
      QJsonObject tars;
      QString tar_text;
      for (const auto& [far, tar] : s.tar_at_far) {
        tars[farName(far)] = tar;
        tar_text += farName(far) + ": " + pct(tar) + " ";
      }
      runs_sets.append(QJsonObject{{"set", s.name},
                                   {"pairs", static_cast<double>(s.pairs)},
                                   {"accuracy", number(s.accuracy)},
                                   {"accuracy_std", number(s.accuracy_std)},
                                   {"val_at_far_1e-3", number(s.val)},
                                   {"xnorm", number(s.xnorm)},
                                   {"auc", number(s.auc)},
                                   {"eer", number(s.eer)},
                                   {"eer_threshold", number(s.eer_threshold)},
                                   {"tar_at_far", tars}});
      ev.rows += QString(
                     "<tr><td>%1</td><td>%2</td><td>%3</td><td>%4 &plusmn; %5</td>"
                     "<td>%6</td><td>%7</td><td>%8 (%9)</td><td>%10</td></tr>\n")
                     .arg(name.toHtmlEscaped(), s.name.toHtmlEscaped())
                     .arg(s.pairs)
                     .arg(pct(s.accuracy), pct(s.accuracy_std), pct(s.val), pct(s.auc), pct(s.eer),
                          QString::number(s.eer_threshold, 'f', 4), tar_text.trimmed());
      addRocCurve(&roc, name + " " + s.name, charts.colourOf(name), s.roc_far, s.roc_tar);
      addDetCurve(&det, name + " " + s.name, charts.colourOf(name), s.det_fmr, s.det_fnmr);
      const QString file = "det-" + filePart(name) + "-" + filePart(s.name) + ".csv";
      writeBytes(out.filePath(file), detCsv(s).toUtf8());
      written << out.filePath(file);
      ev.det_links += QString(" <a href=\"%1\">%1</a>").arg(file.toHtmlEscaped());
    }
    ev.json[name] = runs_sets;
  }
  return ev;
}

// The comparison table (paper Tables 7-8 layout) as JSON, CSV and HTML rows.
struct Comparison {
  QJsonArray runs;
  QString csv, head, rows;
};

Comparison compareSection(const QString& workspace, const QJsonObject& evaluations) {
  Comparison c;
  const auto rows = compareRuns(workspace);
  QStringList keys;
  for (const auto& r : rows)
    for (const auto& [k, v] : r.metrics)
      if (!keys.contains(k)) keys << k;
  c.csv = "model,operator,status,params_m,gmacs,samples_per_s";
  for (const auto& k : keys) c.csv += "," + k;
  c.csv += "\n";
  c.head =
      "<tr><th>model</th><th>operator</th><th>status</th><th>params (M)</th>"
      "<th>MACs (G)</th><th>train samples/s</th>";
  for (const auto& k : keys) c.head += "<th>" + k.toHtmlEscaped() + " %</th>";
  c.head += "</tr>\n";
  for (const auto& r : rows) {
    QJsonObject metrics;
    for (const auto& [k, v] : r.metrics) metrics[k] = number(v);
    c.runs.append(QJsonObject{{"name", r.name},
                              {"operator", r.op},
                              {"status", r.status},
                              {"params_m", number(r.params_m)},
                              {"gmacs", number(r.gmacs)},
                              {"samples_per_s", number(r.samples_per_s)},
                              {"metrics", metrics},
                              {"evaluation", evaluations.value(r.name)}});
    c.csv += QString("%1,%2,%3,%4,%5,%6")
                 .arg(r.name, r.op, r.status)
                 .arg(r.params_m, 0, 'f', 4)
                 .arg(r.gmacs, 0, 'f', 5)
                 .arg(r.samples_per_s, 0, 'f', 1);
    c.rows += QString("<tr><td>%1</td><td>%2</td><td>%3</td><td>%4</td><td>%5</td><td>%6</td>")
                  .arg(r.name.toHtmlEscaped(), r.op.toHtmlEscaped(), r.status)
                  .arg(r.params_m, 0, 'f', 3)
                  .arg(r.gmacs, 0, 'f', 4)
                  .arg(r.samples_per_s, 0, 'f', 1);
    for (const auto& k : keys) {
      const auto it = r.metrics.find(k);
      c.csv += "," + (it == r.metrics.end() ? QString() : QString::number(it->second, 'g', 8));
      c.rows += "<td>" + (it == r.metrics.end() ? QString("-") : pct(it->second)) + "</td>";
    }
    c.csv += "\n";
    c.rows += "</tr>\n";
  }
  return c;
}

// Inspection: each run's branch feature maps (a middle operator layer) and the Grad-CAM grid of
// every run across stages. Returns the section's HTML ("" without an image).
QString inspectSection(const std::vector<std::pair<QString, QString>>& checkpoints,
                       const ReportOptions& options, const QDir& out, QStringList& written) {
  QString html;
  if (options.image.isEmpty() || checkpoints.empty()) return html;
  QStringList ckpts;
  for (const auto& [name, ckpt] : checkpoints) {
    ckpts << ckpt;
    const QStringList layers = operatorLayers(ckpt);
    if (layers.isEmpty()) continue;
    const QString layer = layers[layers.size() / 2];
    const QString file = "featuremaps-" + name + ".png";
    writeImage(out.filePath(file),
               featureMapFigure(ckpt, options.image, layer, 6, "viridis", false));
    written << out.filePath(file);
    html += QString("<h3>%1: %2</h3>\n<img src=\"%3\" alt=\"feature maps of %1\">\n")
                .arg(name.toHtmlEscaped(), layer.toHtmlEscaped(), file.toHtmlEscaped());
  }
  const QString target = options.reference.isEmpty() ? "norm" : "cosine";
  writeImage(out.filePath("gradcam.png"),
             gradcamFigure(ckpts, options.image, "gradcam", target, options.reference, "jet", 0.5));
  written << out.filePath("gradcam.png");
  html += QString(
              "<h3>Grad-CAM (target: %1), models &times; stages</h3>\n"
              "<img src=\"gradcam.png\" alt=\"Grad-CAM\">\n")
              .arg(target);
  return html;
}

QString indexHtml(const QString& workspace, const ReportOptions& options, const Comparison& cmp,
                  const Evaluations& ev, const QString& inspect_html) {
  QString html;
  QTextStream h(&html);
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>MSConv Lab report</title>\n"
    << "<style>body{font-family:sans-serif;margin:2em;max-width:1900px}"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
       "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
       "</style></head><body>\n"
    << "<h1>MSConv Lab report</h1>\n<p>Workspace <code>"
    << QFileInfo(workspace).absoluteFilePath().toHtmlEscaped() << "</code>, "
    << QDateTime::currentDateTimeUtc().toString(Qt::ISODate) << ", "
    << QString::fromStdString(deviceSummary()).toHtmlEscaped()
    << ". Numbers: <a href=\"metrics.json\">metrics.json</a>, "
       "<a href=\"compare.csv\">compare.csv</a>.</p>\n"
    << "<h2>Models side by side</h2>\n<table>\n"
    << cmp.head << cmp.rows << "</table>\n"
    << "<h2>Training</h2>\n<img src=\"training.png\" alt=\"training curves\">\n"
    << "<h2>Verification</h2>\n<table>\n<tr><th>model</th><th>set</th><th>pairs</th>"
       "<th>accuracy %</th><th>VAL@FAR=1e-3 %</th><th>AUC %</th><th>EER % (threshold)</th>"
       "<th>TAR@FAR %</th></tr>\n"
    << ev.rows << "</table>\n<img src=\"roc.png\" alt=\"ROC\">\n"
    << "<img src=\"det.png\" alt=\"DET\">\n";
  if (!ev.det_links.isEmpty()) h << "<p>DET points:" << ev.det_links << "</p>\n";
  if (!inspect_html.isEmpty())
    h << "<h2>Inspection of <code>" << options.image.toHtmlEscaped() << "</code></h2>\n"
      << inspect_html;
  h << "</body></html>\n";
  h.flush();
  return html;
}

}  // namespace

QStringList writeReport(const QString& workspace, const QString& dir,
                        const ReportOptions& options) {
  if (!QDir().mkpath(dir)) throw Error(dir.toStdString() + ": cannot create the folder");
  const QDir out(dir);
  QStringList written;

  // Training curves, exactly as the Training panel draws them.
  TrainingPanel charts;
  for (const auto& h : runHistories(workspace)) charts.addHistory(h);
  writeImage(out.filePath("training.png"), charts.render(1800, 960));
  written << out.filePath("training.png");

  QCustomPlot roc;
  setupRocPlot(&roc);
  stylePlot(&roc, false);
  QCustomPlot det;
  setupDetPlot(&det);
  stylePlot(&det, false);
  const auto checkpoints = runCheckpoints(workspace);
  const Evaluations ev = evaluateRuns(workspace, checkpoints, charts, roc, det, out, written);
  writeImage(out.filePath("roc.png"), roc.toPixmap(900, 640).toImage());
  written << out.filePath("roc.png");
  writeImage(out.filePath("det.png"), det.toPixmap(900, 640).toImage());
  written << out.filePath("det.png");

  const Comparison cmp = compareSection(workspace, ev.json);
  writeBytes(out.filePath("compare.csv"), cmp.csv.toUtf8());
  written << out.filePath("compare.csv");

  const QString inspect_html = inspectSection(checkpoints, options, out, written);

  const QJsonObject doc{
      {"workspace", QFileInfo(workspace).absoluteFilePath()},
      {"created", QDateTime::currentDateTimeUtc().toString(Qt::ISODate)},
      {"device", QString::fromStdString(deviceSummary())},
      {"image", options.image},
      {"runs", cmp.runs},
  };
  writeBytes(out.filePath("metrics.json"), QJsonDocument(doc).toJson());
  written << out.filePath("metrics.json");
  writeBytes(out.filePath("index.html"),
             indexHtml(workspace, options, cmp, ev, inspect_html).toUtf8());
  written << out.filePath("index.html");
  return written;
}

}  // namespace msconv::ui
