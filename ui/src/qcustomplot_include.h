// QCustomPlot's header uses Qt's keyword macros (signals, foreach), which QT_NO_KEYWORDS (needed
// next to LibTorch) switches off. Only translation units without LibTorch include this, and the
// macros are withdrawn again right after.
#pragma once

#include <QtGlobal>

#define signals Q_SIGNALS
#define slots Q_SLOTS
#define emit Q_EMIT
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef signals
#undef slots
#undef emit
#undef foreach
