#include "store/fault_vfs.h"

#include <sqlite3.h>

#include <cerrno>
#include <mutex>

#include "msconv/atomic_file.h"

namespace msconv::store {
namespace {

sqlite3_vfs* g_real = nullptr;  // the platform's file system, which every call goes to
sqlite3_vfs g_vfs;
thread_local int g_last_fault = 0;  // the errno of this thread's last injected fault

// One open file: ours first (SQLite's own header), the real file's state after it.
struct File {
  sqlite3_file base;
  const char* name;  // SQLite keeps it valid while the file is open
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

sqlite3_file* real(sqlite3_file* f) {
  return reinterpret_cast<File*>(f)->real();
}

const char* nameOf(sqlite3_file* f) {
  const char* n = reinterpret_cast<File*>(f)->name;
  return n ? n : "(temporary SQLite file)";
}

// A fault the injector placed on this operation, as SQLite's result code (`code` for EIO). Its
// errno is what lastFaultCause() reports until the store's next statement (clearFaultCause).
int fault(const char* op, sqlite3_file* f, int code) {
  int err = 0;
  if (!injectedFileFault(op, nameOf(f), err)) return SQLITE_OK;
  g_last_fault = err;
  return err == ENOSPC ? SQLITE_FULL : code;
}

int xClose(sqlite3_file* f) {
  return real(f)->pMethods->xClose(real(f));
}
int xRead(sqlite3_file* f, void* p, int n, sqlite3_int64 at) {
  return real(f)->pMethods->xRead(real(f), p, n, at);
}
int xWrite(sqlite3_file* f, const void* p, int n, sqlite3_int64 at) {
  if (const int rc = fault("write", f, SQLITE_IOERR_WRITE)) return rc;
  return real(f)->pMethods->xWrite(real(f), p, n, at);
}
int xTruncate(sqlite3_file* f, sqlite3_int64 size) {
  return real(f)->pMethods->xTruncate(real(f), size);
}
int xSync(sqlite3_file* f, int flags) {
  if (const int rc = fault("fsync", f, SQLITE_IOERR_FSYNC)) return rc;
  return real(f)->pMethods->xSync(real(f), flags);
}
int xFileSize(sqlite3_file* f, sqlite3_int64* size) {
  return real(f)->pMethods->xFileSize(real(f), size);
}
int xLock(sqlite3_file* f, int level) {
  return real(f)->pMethods->xLock(real(f), level);
}
int xUnlock(sqlite3_file* f, int level) {
  return real(f)->pMethods->xUnlock(real(f), level);
}
int xCheckReservedLock(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int xFileControl(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int xSectorSize(sqlite3_file* f) {
  return real(f)->pMethods->xSectorSize(real(f));
}
int xDeviceCharacteristics(sqlite3_file* f) {
  return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
int xShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** p) {
  return real(f)->pMethods->xShmMap(real(f), region, size, extend, p);
}
int xShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void xShmBarrier(sqlite3_file* f) {
  real(f)->pMethods->xShmBarrier(real(f));
}
int xShmUnmap(sqlite3_file* f, int remove) {
  return real(f)->pMethods->xShmUnmap(real(f), remove);
}
int xFetch(sqlite3_file* f, sqlite3_int64 at, int n, void** p) {
  return real(f)->pMethods->xFetch(real(f), at, n, p);
}
int xUnfetch(sqlite3_file* f, sqlite3_int64 at, void* p) {
  return real(f)->pMethods->xUnfetch(real(f), at, p);
}

// Our methods, one table per version of the real file's (a version-1 file has no shared memory).
sqlite3_io_methods g_methods[4];

int xOpen(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out) {
  File* file = reinterpret_cast<File*>(f);
  file->base.pMethods = nullptr;
  file->name = name;
  const int rc = g_real->xOpen(g_real, name, file->real(), flags, out);
  const sqlite3_io_methods* m = file->real()->pMethods;
  if (m) file->base.pMethods = &g_methods[m->iVersion < 1 ? 1 : m->iVersion > 3 ? 3 : m->iVersion];
  return rc;
}

void registerOnce() {
  g_real = sqlite3_vfs_find(nullptr);
  for (int v = 1; v <= 3; ++v) {
    sqlite3_io_methods& m = g_methods[v];
    m = {};
    m.iVersion = v;
    m.xClose = xClose;
    m.xRead = xRead;
    m.xWrite = xWrite;
    m.xTruncate = xTruncate;
    m.xSync = xSync;
    m.xFileSize = xFileSize;
    m.xLock = xLock;
    m.xUnlock = xUnlock;
    m.xCheckReservedLock = xCheckReservedLock;
    m.xFileControl = xFileControl;
    m.xSectorSize = xSectorSize;
    m.xDeviceCharacteristics = xDeviceCharacteristics;
    if (v >= 2) {
      m.xShmMap = xShmMap;
      m.xShmLock = xShmLock;
      m.xShmBarrier = xShmBarrier;
      m.xShmUnmap = xShmUnmap;
    }
    if (v >= 3) {
      m.xFetch = xFetch;
      m.xUnfetch = xUnfetch;
    }
  }
  g_vfs = *g_real;  // everything else (delete, access, full names, time...) as the platform's
  g_vfs.zName = "msconv-counted";
  g_vfs.szOsFile = static_cast<int>(sizeof(File)) + g_real->szOsFile;
  g_vfs.xOpen = xOpen;
  g_vfs.pNext = nullptr;
  sqlite3_vfs_register(&g_vfs, 0);
}

}  // namespace

void clearFaultCause() {
  g_last_fault = 0;
}

int lastFaultCause() {
  return g_last_fault;
}

const char* faultVfsName() {
  static std::once_flag once;
  std::call_once(once, registerOnce);
  return g_vfs.zName;
}

}  // namespace msconv::store
