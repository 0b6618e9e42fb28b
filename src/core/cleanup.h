/*
 * Removal of temporary files on interruption.
 *
 * While an export runs, personal data sits in hidden temporary files and
 * folders beside the output (the bundle's temporary zip, its work folder,
 * a batch's spool folder). This module keeps a process-wide registry of
 * those paths so that they can all be removed when the process is told to
 * stop (SIGINT, SIGTERM, SIGHUP) or by pex_cleanup_run().
 *
 * Ownership: the registry keeps its own copy of every path; the caller
 * keeps and frees its string. The registry never owns the files: whoever
 * made a path removes or renames it as before and then calls
 * pex_cleanup_forget(). Paths are used as given, so a relative path must
 * stay valid: the process must not change its working folder meanwhile.
 * Registering the same path with the same kind twice keeps one entry, and
 * one pex_cleanup_forget() drops it.
 *
 * All functions are thread-safe (one mutex). None may be called from a
 * signal handler: interruption is handled by a thread that sigwait()s,
 * started by pex_cleanup_on_signals(); see docs/internals/cleanup.md.
 */
#ifndef PEX_CORE_CLEANUP_H
#define PEX_CORE_CLEANUP_H

/* Longest path the registry accepts, NUL included (Linux PATH_MAX). */
#define PEX_CLEANUP_PATH_MAX 4096

enum pex_cleanup_kind {
	/* one file (or an empty folder) */
	PEX_CLEANUP_FILE = 1,
	/* a folder and everything below it, symbolic links not followed */
	PEX_CLEANUP_TREE = 2,
	/* every entry of path's folder whose name starts with path's last
	 * component (that name itself included), e.g. libzip's
	 * "<tmp_path>.XXXXXX"; a folder that matches goes as a tree. The
	 * last component must not be empty, "." or "..". */
	PEX_CLEANUP_PREFIX = 3,
};

/* Register path (copied) under kind. Returns 0, PEX_ENOMEM, PEX_ELIMIT
 * (path too long) or PEX_EUSAGE (bad kind or prefix), with the error
 * set. */
int pex_cleanup_add(const char *path, int kind);

/* Drop path's entries (every kind): the caller removed or renamed it.
 * NULL and unknown paths are fine. */
void pex_cleanup_forget(const char *path);

/* rename(from, to) and, in the same critical section, forget from:
 * once an interruption has begun, no temporary file becomes a finished
 * one, so what it finds in place is all that will be (the command line
 * reports it). Returns rename()'s result, errno kept. */
int pex_cleanup_rename(const char *from, const char *to);

/* mkdtemp(tmpl) and, in the same critical section, register the folder
 * as PEX_CLEANUP_TREE, so that an interruption can never find the folder
 * made but not registered. Returns 0, or PEX_EIO (errno kept from
 * mkdtemp) or PEX_ENOMEM (the folder is removed again), with the error
 * set. */
int pex_cleanup_mkdtemp(char *tmpl);

/* open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) for a new
 * file inside a registered folder, made in the registry's critical
 * section: once an interruption has begun removing the folder, no file
 * can appear in it behind the removal (the call then waits for the
 * process to end). Returns the descriptor, or -1 with errno set. */
int pex_cleanup_create(const char *path, int mode);

/* Remove everything registered: files and prefix matches first, then
 * trees depth-first; then empty the registry. Paths that are already gone
 * are not an error; a path that cannot be removed is named on stderr. */
void pex_cleanup_run(void);

/*
 * For the command line front end, once, before any thread is created:
 * blocks SIGINT, SIGTERM and SIGHUP in the calling thread (threads made
 * later inherit that mask) and starts a detached thread that waits for
 * them. On one it takes the registry's lock for good (nothing new can be
 * registered), removes what pex_cleanup_run() would, prints one line on
 * stderr and ends the process with _exit(128 + signal). Finished bundles
 * (already renamed into place) are not touched. Returns 0 or PEX_ERROR
 * with the error set; a second call does nothing.
 */
int pex_cleanup_on_signals(void);

/*
 * fn (NULL: none) is called by that thread after the removal and its
 * line, before the process ends: the command line says there what was
 * finished. It runs while the other threads go on, must not call this
 * module, and must not wait for anything they may hold for long.
 */
void pex_cleanup_on_interrupt(void (*fn)(void *data, int signo),
			      void *data);

/*
 * What kill -9 (or a machine that stopped) leaves cannot be removed by
 * the run itself. Temporary names therefore carry a tag, "portex-HHHHHHHH-
 * PID" (HHHHHHHH: FNV-1a, 32 bits, of this host's name, in hex; PID: the
 * process that made them), and a later run sweeps the output folder of
 * hidden entries whose tag is this host's and whose process is gone.
 * Entries of live processes, of other hosts sharing the folder, and of
 * other users are left alone.
 */
#define PEX_CLEANUP_TAG_MAX 40

/* This process's tag ("portex-1a2b3c4d-4242"); never NULL. */
const char *pex_cleanup_tag(void);

/* Remove from dir what killed runs of this host left (see above).
 * Returns how many entries were removed (0 when dir cannot be read). */
int pex_cleanup_sweep(const char *dir);

#endif
