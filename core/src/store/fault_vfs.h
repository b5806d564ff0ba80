// The run store's SQLite file system: the platform's own, with every write and sync counted by
// AtomicFile's fault injector (failNthFileOperation), so that tests can fail the n-th write of a
// training run whether it lands in a checkpoint or in the store. Without an injected fault it
// only forwards.
#pragma once

namespace msconv::store {

// Registers the file system once (not as the default) and returns its name for sqlite3_open_v2.
const char* faultVfsName();
// Forgets this thread's last injected fault: called before each statement, so that an I/O error
// reports the errno of a fault injected while that statement ran, and no other.
void clearFaultCause();
// The errno of a fault injected since then on this thread, or 0.
int lastFaultCause();

}  // namespace msconv::store
