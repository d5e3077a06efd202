/* Atomic file output: every file bnn writes goes to PATH.tmp.PID first, is flushed and synced,
 * and is renamed over PATH, so PATH is either the old file or the complete new one, never a torn
 * mix (rename is atomic on POSIX file systems), and a failure leaves nothing behind.
 *
 * Paths that are not plain files. A symbolic link to a file is followed: the temporary file goes
 * next to the target and is renamed over it, so the link stays a link and the write stays
 * atomic. A PATH that is the process's standard output or error (/dev/stdout, also when that
 * is redirected to a file or a pipe) is written through that stream, after what it already
 * holds; so is the name "-", as in most tools. Any other existing PATH that is not a regular
 * file (/dev/null, a FIFO, a terminal) is written in place: renaming over it would replace the
 * device or pipe with a file. A directory is an error. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a writer writes: byte ranges, or an emitter that prints straight into the stream (so
 * a large text need not be built in memory first). */
typedef struct payload {
    const void *const *parts;
    const size_t *lens;
    int64_t nparts;
    int (*emit)(FILE *f, void *ctx);
    void *ctx;
} payload;

/* The payload to f, then flushed; false on a short write, a failed emitter or a failed flush
 * (errno says why). */
static bool write_payload(FILE *f, const payload *p) {
    bool ok = true;
    if (p->emit)
        ok = p->emit(f, p->ctx) == 0;
    else
        for (int64_t i = 0; ok && i < p->nparts; i++)
            if (p->lens[i]) ok = fwrite(p->parts[i], 1, p->lens[i], f) == p->lens[i];
    return fflush(f) == 0 && ok;
}

static int write_stream(FILE *f, const char *path, const payload *p) {
    const bool ok = fflush(f) == 0 && write_payload(f, p);
    return ok ? 0 : bnn__error(BNN_EIO, "%s: cannot write: %s", path, strerror(errno));
}

static bool same_file(const struct stat *a, int fd) {
    struct stat b;
    return fstat(fd, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

static int write_in_place(const char *path, const payload *p) {
    fflush(stdout); /* what the program printed comes first, as on a terminal */
    FILE *f = fopen(path, "wb");
    if (!f) return bnn__error(BNN_EIO, "%s: cannot open: %s", path, strerror(errno));
    const bool ok = write_payload(f, p);
    const int e = errno;
    if (fclose(f) != 0 || !ok)
        return bnn__error(BNN_EIO, "%s: cannot write: %s", path, strerror(ok ? errno : e));
    return 0;
}

/* Threads that write are numbered as they first do: 0 (in a program of one thread, the only
 * one), 1, 2, ... */
static atomic_int writer_count;
static _Thread_local int writer_no = -1;
static int writer_id(void) {
    if (writer_no < 0) writer_no = atomic_fetch_add(&writer_count, 1);
    return writer_no;
}

/* "PATH.WHAT.PID", or "PATH.WHAT.PID.N" from the N-th thread that writes, malloc'ed (NULL when
 * out of memory): a name beside PATH that no other bnn process, and no other thread of this one,
 * writes (two threads saving one path each write their own, and the last rename wins). */
static char *tmp_name(const char *path, const char *what) {
    const size_t len = strlen(path) + strlen(what) + 48;
    char *s = malloc(len);
    const int w = writer_id();
    if (s && w == 0) snprintf(s, len, "%s.%s.%ld", path, what, (long)getpid());
    else if (s) snprintf(s, len, "%s.%s.%ld.%d", path, what, (long)getpid(), w);
    return s;
}

/* How PATH is written, decided once for the writer and for bnn_check_output. */
typedef enum { OUT_RENAME, OUT_STDOUT, OUT_STDERR, OUT_IN_PLACE } out_kind;

/* After a rename, the directory that holds the name is synced too, so that the new name (not
 * only the contents, synced before) survives a power loss. Best effort: a file system that
 * cannot sync a directory (EINVAL) has nothing more to offer, and the rename itself succeeded. */
static void sync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return;
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* The way to write path, and for OUT_RENAME the file renamed over: path itself, or the file an
 * existing link names (*resolved, malloc'ed, to be freed). BNN_EINVAL for an empty name, BNN_EIO
 * for a directory. */
static int out_plan(const char *path, out_kind *kind, const char **target, char **resolved) {
    *kind = OUT_RENAME, *target = path, *resolved = NULL;
    if (!path || !*path) return bnn__error(BNN_EINVAL, "the output file name is empty");
    if (!strcmp(path, "-")) return *kind = OUT_STDOUT, 0; /* the usual name for stdout */
    struct stat sb, lb;
    const bool exists = stat(path, &sb) == 0;
    if (exists) {
        if (S_ISDIR(sb.st_mode))
            return bnn__error(BNN_EIO, "%s is a directory, not a file name", path);
        if (same_file(&sb, STDOUT_FILENO)) return *kind = OUT_STDOUT, 0;
        if (same_file(&sb, STDERR_FILENO)) return *kind = OUT_STDERR, 0;
        if (!S_ISREG(sb.st_mode)) return *kind = OUT_IN_PLACE, 0;
    }
    /* A link into /proc/self/fd (/dev/stdout, /dev/stderr, /dev/fd/N) that leads nowhere is a
     * closed stream, not a link to replace: as root, the rename put a file in place of the
     * system's /dev/stdout. */
    if (!exists && lstat(path, &lb) == 0 && S_ISLNK(lb.st_mode)) {
        char to[256];
        const ssize_t len = readlink(path, to, sizeof to - 1);
        if (len > 0) {
            to[len] = '\0';
            if (!strncmp(to, "/proc/", 6) || !strncmp(to, "/dev/fd/", 8))
                return bnn__error(BNN_EIO, "%s leads to %s, a file descriptor that is not open "
                                  "(standard output or error closed?)", path, to);
        }
    }
    /* A link to an existing file: replace the file it names, not the link. */
    if (exists && lstat(path, &lb) == 0 && S_ISLNK(lb.st_mode) &&
        (*resolved = realpath(path, NULL)))
        *target = *resolved;
    return 0;
}

/* The temporary files on disk: being written, or written and held for bnn_output_commit. A
 * signal handler reads these (bnn_output_abandon), so a slot's names are complete before its
 * state leaves SLOT_FREE, and the state is SLOT_FREE again before they change. */
enum { SLOTS = 8, SLOT_PATH = 4096, SLOT_FREE = 0, SLOT_WRITING = 1, SLOT_HELD = 2 };
static char slot_tmp[SLOTS][SLOT_PATH], slot_dst[SLOTS][SLOT_PATH];
static volatile sig_atomic_t slot_state[SLOTS];
static int64_t slot_seq[SLOTS], next_seq;
static int slot_owner[SLOTS]; /* writer_id of the thread that claimed it */
/* The table is shared by the threads of a program (the signal handler reads it unlocked: it only
 * unlinks); a hold is the calling thread's own. */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local bool holding;
/* Set while bnn_output_commit renames held files; a signal that arrives then is kept in
 * deferred_sig (bnn_output_abandon_sig) and raised once every file is renamed. committing counts
 * the threads in a commit: the last to finish raises it. */
static atomic_int committing;
static volatile sig_atomic_t deferred_sig;
void (*bnn__commit_hook)(void);

/* A slot for tmp (to be renamed over dst), or -1 when none is free or a name is too long (the
 * write then goes on without one: only a signal's clean-up misses it). A held file written again
 * keeps its slot: the new contents replace the old under the same temporary name. */
static int slot_held_locked(const char *tmp) {
    for (int i = 0; i < SLOTS; i++)
        if (slot_state[i] == SLOT_HELD && !strcmp(slot_tmp[i], tmp)) return i;
    return -1;
}
static int slot_held(const char *tmp) {
    pthread_mutex_lock(&slot_lock);
    const int i = slot_held_locked(tmp);
    pthread_mutex_unlock(&slot_lock);
    return i;
}

static int slot_claim(const char *tmp, const char *dst) {
    if (strlen(tmp) >= SLOT_PATH || strlen(dst) >= SLOT_PATH) return -1;
    int got = -1;
    pthread_mutex_lock(&slot_lock);
    const int held = slot_held_locked(tmp);
    if (held >= 0) {
        slot_state[held] = SLOT_WRITING;
        got = held;
    }
    for (int i = 0; got < 0 && i < SLOTS; i++)
        if (slot_state[i] == SLOT_FREE) {
            memcpy(slot_tmp[i], tmp, strlen(tmp) + 1);
            memcpy(slot_dst[i], dst, strlen(dst) + 1);
            slot_owner[i] = writer_id();
            slot_state[i] = SLOT_WRITING;
            got = i;
        }
    pthread_mutex_unlock(&slot_lock);
    return got;
}

static void slot_release(int i) {
    if (i < 0) return;
    pthread_mutex_lock(&slot_lock);
    slot_state[i] = SLOT_FREE;
    pthread_mutex_unlock(&slot_lock);
}

/* This thread's held file written first, or -1. */
static int first_held(void) {
    const int me = writer_id();
    int first = -1;
    pthread_mutex_lock(&slot_lock);
    for (int i = 0; i < SLOTS; i++)
        if (slot_state[i] == SLOT_HELD && slot_owner[i] == me &&
            (first < 0 || slot_seq[i] < slot_seq[first]))
            first = i;
    pthread_mutex_unlock(&slot_lock);
    return first;
}

void bnn_output_hold(void) { holding = true; }

int bnn_output_commit(void) {
    holding = false;
    int rc = 0;
    atomic_fetch_add(&committing, 1);
    for (;;) { /* in the order written */
        const int first = first_held();
        if (first < 0) break;
        if (!rc && rename(slot_tmp[first], slot_dst[first]) != 0)
            rc = bnn__error(BNN_EIO, "%s: cannot rename %s over it: %s", slot_dst[first],
                            slot_tmp[first], strerror(errno));
        else if (!rc) sync_dir_of(slot_tmp[first]); /* its directory is the target's */
        if (rc) remove(slot_tmp[first]); /* after a failure, the rest are dropped */
        slot_release(first);
        if (bnn__commit_hook) bnn__commit_hook();
    }
    /* A signal during the renames was held back so that the files stand together: it ends the
     * process now, as it would have, after removing any other write's temporary file. */
    if (atomic_fetch_sub(&committing, 1) == 1 && deferred_sig) {
        const int sig = deferred_sig;
        deferred_sig = 0;
        bnn_output_abandon();
        signal(sig, SIG_DFL);
        raise(sig);
    }
    return rc;
}

int bnn_output_abandon_sig(int sig) {
    if (atomic_load(&committing) > 0) {
        deferred_sig = sig;
        return 1;
    }
    bnn_output_abandon();
    return 0;
}

void bnn_output_discard(void) {
    holding = false;
    for (int i; (i = first_held()) >= 0;) {
        remove(slot_tmp[i]);
        slot_release(i);
    }
}

void bnn_output_abandon(void) {
    for (int i = 0; i < SLOTS; i++)
        if (slot_state[i] != SLOT_FREE) unlink(slot_tmp[i]); /* async-signal-safe */
}

int bnn_output_kind(const char *path) {
    out_kind kind;
    const char *target;
    char *resolved;
    const int rc = out_plan(path, &kind, &target, &resolved);
    free(resolved);
    if (rc) return rc;
    return kind == OUT_STDOUT   ? BNN_OUTPUT_STDOUT
           : kind == OUT_STDERR ? BNN_OUTPUT_STDERR
           : kind == OUT_IN_PLACE ? BNN_OUTPUT_DEVICE
                                  : BNN_OUTPUT_FILE;
}

int bnn_check_output(const char *path) {
    out_kind kind;
    const char *target;
    char *resolved;
    int rc = out_plan(path, &kind, &target, &resolved);
    if (rc || kind != OUT_RENAME) return rc;
    /* The temporary file goes into the target's directory, which must exist and take it. */
    const char *slash = strrchr(target, '/');
    char *dir = slash == target ? strdup("/") : slash ? strndup(target, (size_t)(slash - target))
                                                      : strdup(".");
    struct stat sd;
    if (!dir) rc = bnn__error(BNN_ENOMEM, "%s: cannot allocate a file name", path);
    else if (stat(dir, &sd) != 0)
        rc = errno == ENOENT ? bnn__error(BNN_EIO, "cannot write %s: the directory %s does not "
                                          "exist", path, dir)
             : errno == ENOTDIR ? bnn__error(BNN_EIO, "cannot write %s: a part of %s is a file, "
                                             "not a directory", path, dir)
                                : bnn__error(BNN_EIO, "cannot write %s: cannot reach the "
                                             "directory %s (%s)", path, dir, strerror(errno));
    else if (!S_ISDIR(sd.st_mode))
        rc = bnn__error(BNN_EIO, "cannot write %s: %s is not a directory", path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = bnn__error(BNN_EIO, "cannot write %s: the directory %s is not writable (%s)", path,
                        dir, strerror(errno));
    else { /* access() can say yes where creating fails (/proc, a name too long): try it */
        char *tmp = tmp_name(target, "tmp"); /* the name the writer will use */
        if (!tmp) {
            rc = bnn__error(BNN_ENOMEM, "%s: cannot allocate a file name", path);
        } else if (slot_held(tmp) < 0) { /* (a file held for a commit is written already) */
            const int slot = slot_claim(tmp, target); /* a signal removes it too */
            const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd < 0 && errno != EEXIST)
                rc = bnn__error(BNN_EIO, "cannot write %s: cannot create a file in %s (%s)", path,
                                dir, strerror(errno));
            if (fd >= 0) close(fd), unlink(tmp);
            slot_release(slot);
        }
        free(tmp);
    }
    free(dir);
    free(resolved);
    return rc;
}

static int write_atomic(const char *path, const payload *pl) {
    out_kind kind;
    char *resolved;
    int rc0 = out_plan(path, &kind, &path, &resolved);
    if (rc0) return rc0;
    if (kind == OUT_STDOUT) return write_stream(stdout, path, pl);
    if (kind == OUT_STDERR) return write_stream(stderr, path, pl);
    if (kind == OUT_IN_PLACE) return write_in_place(path, pl);
    char *tmp = tmp_name(path, "tmp");
    if (!tmp) {
        /* path may be resolved (a link's target): report before freeing it */
        rc0 = bnn__error(BNN_ENOMEM, "%s: cannot allocate a file name", path);
        free(resolved);
        return rc0;
    }
    int rc = 0;
    const int slot = slot_claim(tmp, path);
    if (slot < 0 && holding) {
        rc = bnn__error(BNN_EINVAL, "%s: more than %d outputs held, or a name of %d bytes or more",
                        path, SLOTS, SLOT_PATH);
        goto out;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = bnn__error(BNN_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    /* A file of ours updated in place keeps its permissions (calibrate -m m -o m made a 0640
     * file 0644): the new file gets the old one's mode before it holds anything. Best effort,
     * and only for the caller's own file: root replacing another user's file makes it root's,
     * and that user's mode on it could lock them out. */
    struct stat old;
    if (stat(path, &old) == 0 && S_ISREG(old.st_mode) && old.st_uid == geteuid())
        (void)fchmod(fileno(f), old.st_mode & 07777);
    /* Syncing before the rename makes the contents durable before the name points at them, so
     * a crash cannot leave PATH naming an empty file. */
    const bool ok = write_payload(f, pl) && fsync(fileno(f)) == 0;
    int e = errno;
    if (!ok) {
        fclose(f);
        remove(tmp);
        rc = bnn__error(BNN_EIO, "%s: cannot write %s: %s", path, tmp, strerror(e));
        goto out;
    }
    if (fclose(f) != 0) {
        e = errno;
        remove(tmp);
        rc = bnn__error(BNN_EIO, "%s: cannot close %s: %s", path, tmp, strerror(e));
        goto out;
    }
    if (holding) { /* bnn_output_commit renames it, bnn_output_discard removes it */
        pthread_mutex_lock(&slot_lock);
        slot_seq[slot] = next_seq++;
        slot_state[slot] = SLOT_HELD;
        pthread_mutex_unlock(&slot_lock);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        remove(tmp);
        rc = bnn__error(BNN_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(e));
    } else {
        sync_dir_of(tmp); /* the temporary's directory: the target's, also through a link */
    }
out: /* a held file keeps its slot for the commit; any other write frees it, once */
    if (rc || !holding) slot_release(slot);
    free(tmp);
    free(resolved);
    return rc;
}

int bnn__write_atomic(const char *path, const void *const *parts, const size_t *lens,
                      int64_t nparts) {
    const payload pl = {parts, lens, nparts, NULL, NULL};
    return write_atomic(path, &pl);
}

int bnn_write_file_emit(const char *path, int (*emit)(FILE *f, void *ctx), void *ctx) {
    if (!emit) return bnn__error(BNN_EINVAL, "%s: nothing to write (no emitter)", path ? path : "?");
    const payload pl = {NULL, NULL, 0, emit, ctx};
    return write_atomic(path, &pl);
}

int bnn_write_file(const char *path, const void *data, size_t len) {
    if (!data && len) return bnn__error(BNN_EINVAL, "%s: no data to write (NULL)", path ? path : "?");
    const void *parts[1] = {data};
    return bnn__write_atomic(path, parts, &len, 1);
}

void bnn__fmt_double(char *buf, size_t len, double v) {
    /* (The guard also keeps GCC 12's -Wformat-truncation quiet under the sanitizers, where it
     * cannot see that buf is never NULL.) */
    if (!buf || len == 0) return;
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}
