// The workspace report: what the workbench shows, written as files for a machine without a
// display (./lab demo's headless path) or to share. Into DIR it writes training.png (the Training
// panel's charts), roc.png and det.png (every run's ROC and DET curves on its validation sets),
// det-RUN-SET.csv (each set's DET points: fmr,fnmr,threshold), featuremaps-RUN.png and
// gradcam.png (when an image is given), metrics.json (the compare table and each evaluation, with
// its EER and EER threshold), compare.csv, and index.html tying them together. Each file is
// written beside and renamed into place. Uses the same engine calls as the panels; call it from a
// thread with a QApplication.
#pragma once

#include <QString>
#include <QStringList>

namespace msconv::ui {

struct ReportOptions {
  QString image;      // a face to inspect ("" skips the inspection figures)
  QString reference;  // Grad-CAM's cosine target ("" targets the embedding norm)
};

// Returns the files written (index.html last). Throws msconv::Error naming the run, file or set
// that failed.
QStringList writeReport(const QString& workspace, const QString& dir,
                        const ReportOptions& options = {});

}  // namespace msconv::ui
