/* daemon/writer.h — the completion writer. A job's end (succeeded with its
 * results, failed, cancelled, handed back) waits here in order and is written
 * in batches bounded by count and bytes (s1_queue_batch_full), one fenced
 * statement each (store/queue.c), one batch in flight,
 * while the database is up, on a connection of its own so that a slow write
 * never holds up the heartbeat (whose renewals cover the jobs here). Through
 * an outage the ends wait in memory and go again after the reconnect; a batch the database refuses
 * is split until the bad job stands alone, which is then failed without its results, so one bad row
 * never stalls the others. */
#ifndef S1D_WRITER_H
#define S1D_WRITER_H

#include <stdbool.h>

#include "claimed.h"
#include "conn.h"
#include "engine.h"
#include "queue.h"

typedef struct s1d_writer s1d_writer;

typedef struct {
    /* j's end was written (written) or never will be (fenced out, given up
     * on, or left over at exit): j is the callee's again. */
    void (*settled)(void *ud, s1d_job *j, s1_queue_end end, bool written);
    /* A batch came back and the next one, if any, is on its way. */
    void (*batch_back)(void *ud);
    void *ud;
} s1d_writer_events;

/* Writes through db as who (read at every batch: a reload changes it in
 * place), naming info's backend. NULL when out of memory. */
s1d_writer *s1d_writer_new(s1d_conn *db, const s1_queue_worker *who, const s1_engine_info *info,
                           const s1d_writer_events *ev);

/* Queues j's end; j is owned here from now. -1 when out of memory: j is
 * still the caller's. */
int s1d_writer_add(s1d_writer *w, s1d_job *j, s1_queue_end end);

/* Sends the next batch, unless one is in flight or the database is down. */
void s1d_writer_flush(s1d_writer *w);

/* The fencing keys of every job here, waiting or in flight (their leases
 * are renewed until the write commits), into held (up to cap). Returns how
 * many there are, which may be more than cap. */
int s1d_writer_held(const s1d_writer *w, s1_queue_held *held, int cap);

/* Ends waiting, not counting the batch in flight. */
int s1d_writer_waiting(const s1d_writer *w);

/* Nothing waits and nothing is in flight. */
bool s1d_writer_idle(const s1d_writer *w);

/* Hands every job still here to settled, unwritten, and frees w; after the
 * loop has stopped. */
void s1d_writer_free(s1d_writer *w);

#endif
