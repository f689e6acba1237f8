/* Mailbox: FIFO delivery on the owner loop, RK_EBUSY when full (and
 * nothing lost or duplicated), and four producer threads racing a
 * consumer loop: every accepted item is delivered exactly once, in
 * per-producer order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/mailbox.h"
#include "util/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PRODUCERS    4
#define PER_PRODUCER 200000

struct sink {
    uintptr_t got[64];
    int n;
    uint32_t next[PRODUCERS]; /* next expected sequence number per producer */
    atomic_int delivered;
    atomic_int accepted;
    atomic_int done;
    bool order_ok;
};

static void collect(struct rk_mailbox *mb, void *item, void *arg)
{
    (void)mb;
    struct sink *s = arg;
    if (s->n < 64)
        s->got[s->n++] = (uintptr_t)item;
}

static void test_fifo_and_full(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(0);
    struct rk_mailbox mb;
    struct sink s = {0};
    assert_int_equal(rk_mailbox_init(&mb, loop, 8, collect, &s), 0);
    for (uintptr_t i = 1; i <= 8; i++)
        assert_int_equal(rk_mailbox_post(&mb, (void *)i), 0);
    assert_int_equal(rk_mailbox_post(&mb, (void *)9), RK_EBUSY); /* bounded */
    ev_run(loop, EVRUN_NOWAIT);                                  /* the ev_async wake-up drains */
    assert_int_equal(s.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(s.got[i], (uintptr_t)(i + 1));
    assert_int_equal(rk_mailbox_post(&mb, (void *)10), 0); /* room again */
    rk_mailbox_fini(&mb);                                  /* hands over what is still queued */
    assert_int_equal(s.n, 9);
    assert_int_equal(s.got[8], 10);
    ev_loop_destroy(loop);
}

static void check_order(struct rk_mailbox *mb, void *item, void *arg)
{
    (void)mb;
    struct sink *s = arg;
    uintptr_t v = (uintptr_t)item;
    uint32_t p = (uint32_t)(v >> 32), seq = (uint32_t)v;
    if (p >= PRODUCERS || seq < s->next[p])
        s->order_ok = false; /* duplicate or reordered */
    else
        s->next[p] = seq + 1;
    atomic_fetch_add(&s->delivered, 1);
}

struct prod {
    struct rk_mailbox *mb;
    struct sink *s;
    uint32_t id;
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
        uintptr_t v = (uintptr_t)p->id << 32 | seq;
        if (rk_mailbox_post(p->mb, (void *)v) == 0)
            atomic_fetch_add(&p->s->accepted, 1);
    }
    atomic_fetch_add(&p->s->done, 1);
    return NULL;
}

static void test_producers_race_consumer(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(0);
    struct rk_mailbox mb;
    struct sink *s = calloc(1, sizeof(*s));
    s->order_ok = true;
    assert_int_equal(rk_mailbox_init(&mb, loop, 1024, check_order, s), 0);
    pthread_t th[PRODUCERS];
    struct prod ps[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        ps[i] = (struct prod){&mb, s, i};
        assert_int_equal(pthread_create(&th[i], NULL, producer, &ps[i]), 0);
    }
    /* Run the consumer loop until all producers are done and every
     * accepted item has been delivered (bounded by the item count). */
    while (atomic_load(&s->done) < PRODUCERS ||
           atomic_load(&s->delivered) < atomic_load(&s->accepted))
        ev_run(loop, EVRUN_ONCE);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    assert_true(s->order_ok);
    assert_int_equal(atomic_load(&s->delivered), atomic_load(&s->accepted));
    assert_true(atomic_load(&s->accepted) > 0);
    print_message("accepted %d of %d posts\n", atomic_load(&s->accepted), PRODUCERS * PER_PRODUCER);
    rk_mailbox_fini(&mb);
    ev_loop_destroy(loop);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_full),
        cmocka_unit_test(test_producers_race_consumer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
