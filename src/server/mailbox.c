/* Mailbox: a mutex-guarded ring plus ev_async. The lock is held only to
 * move pointers, never while an item is processed; the consumer takes the
 * whole backlog in bounded chunks so one wake-up serves many posts. */
#include "server/mailbox.h"
#include "util/err.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_CHUNK 64 /* items moved per lock hold */

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop, (void)revents;
    rk_mailbox_drain(w->data);
}

int rk_mailbox_init(struct rk_mailbox *mb, struct ev_loop *loop, uint32_t cap, rk_mailbox_cb *cb,
                    void *arg)
{
    memset(mb, 0, sizeof(*mb));
    mb->ring = calloc(cap, sizeof(void *));
    if (!mb->ring)
        return -ENOMEM;
    pthread_mutex_init(&mb->lock, NULL);
    mb->cap = cap;
    mb->loop = loop;
    mb->cb = cb;
    mb->arg = arg;
    ev_async_init(&mb->wake, on_wake);
    mb->wake.data = mb;
    ev_async_start(loop, &mb->wake);
    return 0;
}

void rk_mailbox_fini(struct rk_mailbox *mb)
{
    if (!mb->ring)
        return;
    rk_mailbox_drain(mb);
    ev_async_stop(mb->loop, &mb->wake);
    pthread_mutex_destroy(&mb->lock);
    free(mb->ring);
    mb->ring = NULL;
}

int rk_mailbox_post(struct rk_mailbox *mb, void *item)
{
    pthread_mutex_lock(&mb->lock);
    if (mb->count == mb->cap) {
        pthread_mutex_unlock(&mb->lock);
        return RK_EBUSY;
    }
    mb->ring[(mb->head + mb->count) % mb->cap] = item;
    bool first = mb->count++ == 0;
    pthread_mutex_unlock(&mb->lock);
    /* One wake-up per burst: the consumer drains everything it finds. */
    if (first)
        ev_async_send(mb->loop, &mb->wake);
    return 0;
}

uint32_t rk_mailbox_drain(struct rk_mailbox *mb)
{
    uint32_t total = 0;
    void *items[DRAIN_CHUNK];
    for (;;) {
        uint32_t n = 0;
        pthread_mutex_lock(&mb->lock);
        while (n < DRAIN_CHUNK && mb->count > 0) {
            items[n++] = mb->ring[mb->head];
            mb->head = (mb->head + 1) % mb->cap;
            mb->count--;
        }
        pthread_mutex_unlock(&mb->lock);
        for (uint32_t i = 0; i < n; i++)
            mb->cb(mb, items[i], mb->arg);
        total += n;
        if (n < DRAIN_CHUNK)
            return total;
    }
}
