/* Bounded multi-producer, single-consumer queue woken by ev_async: the only
 * path by which work crosses from one thread to a worker loop. Producers on
 * any thread post; the owning loop drains. Full means full: the producer
 * gets RK_EBUSY at once and answers BUSY, so no queue grows without bound. */
#ifndef RK_MAILBOX_H
#define RK_MAILBOX_H

#include <ev.h>
#include <pthread.h>
#include <stdint.h>

struct rk_mailbox;
/* Called on the owner's loop for each drained item. */
typedef void rk_mailbox_cb(struct rk_mailbox *mb, void *item, void *arg);

struct rk_mailbox {
    pthread_mutex_t lock;
    void **ring;
    uint32_t cap, head, count; /* guarded by lock */
    ev_async wake;
    struct ev_loop *loop;
    rk_mailbox_cb *cb;
    void *arg;
};

/* Set up a mailbox of cap items for loop, and start its watcher. Call on
 * the owning thread before any producer posts. 0 or -ENOMEM. */
int rk_mailbox_init(struct rk_mailbox *mb, struct ev_loop *loop, uint32_t cap, rk_mailbox_cb *cb,
                    void *arg);

/* Stop the watcher and free the ring (owner thread). Items still queued are
 * handed to cb first, so none is leaked. */
void rk_mailbox_fini(struct rk_mailbox *mb);

/* Queue item (ownership passes only on success). Any thread. 0 or RK_EBUSY. */
int rk_mailbox_post(struct rk_mailbox *mb, void *item);

/* Deliver queued items to cb now (owner thread). Returns how many. */
uint32_t rk_mailbox_drain(struct rk_mailbox *mb);

#endif
