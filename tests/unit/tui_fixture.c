/* Canned admin replies (tui_fixture.h). */
#include "tui_fixture.h"

#include "util/jbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void placement(struct rk_jbuf *b, const struct tui_fixture *f)
{
    size_t n = f->nodes;
    rk_jadd(b, ",\"placement\":{\"members\":[");
    for (size_t i = 0; i < n; i++)
        rk_jadd(b, "%s\"node-%zu\"", i ? "," : "", i + 1);
    rk_jadd(b, "],\"serve\":[");
    for (uint32_t p = 0; p < f->parts; p++)
        rk_jadd(b, "%s[%zu,%zu,%zu]", p ? "," : "", p % n, (p + 1) % n, (p + 2) % n);
    rk_jadd(b, "],\"pending\":[");
    for (uint32_t p = 0; p < f->parts; p++)
        rk_jadd(b, "%s[%s]", p ? "," : "", p == 5 ? "2" : "");
    rk_jadd(b, "]}");
}

static void bitmap(struct rk_jbuf *b, uint32_t parts, const char *marked)
{
    rk_jadd(b, "\"held\":\"");
    for (uint32_t i = 0; i < (parts + 3) / 4; i++)
        rk_jadd(b, "f");
    rk_jadd(b, "\",\"pending\":\"0\",\"marked\":\"%s\",", marked ? marked : "0");
}

static char *overview(const struct tui_fixture *f, size_t i)
{
    struct rk_jbuf b = {0};
    rk_jadd(&b,
            "{\"node\":\"node-%zu\",\"state\":\"serving\",\"uptime_s\":9,\"now_ms\":%llu,"
            "\"partitions\":%u,\"replicas\":3,\"read_quorum\":2,\"write_quorum\":2,"
            "\"requests\":{\"get\":%llu,\"put\":0,\"del\":0,\"admin\":1},\"busy\":0,\"errors\":0,"
            "\"latency\":{\"bounds_us\":[100,1000,10000],\"counts\":[%llu,%llu,%llu,%llu]},",
            i + 1, (unsigned long long)f->now_ms, f->parts, (unsigned long long)f->gets,
            (unsigned long long)f->lat[0], (unsigned long long)f->lat[1],
            (unsigned long long)f->lat[2], (unsigned long long)f->lat[3]);
    bitmap(&b, f->parts, f->marked);
    rk_jadd(&b,
            "\"hints\":{\"pending\":4,\"pending_bytes\":40,\"by_target\":{\"node-%zu\":4}},"
            "\"ae\":{\"enabled\":true,\"round\":2,\"in_progress\":true,\"compared\":4,\"total\":16,"
            "\"keys_repaired\":7,\"bytes\":100,\"keys_per_second\":3.5,"
            "\"max_keys_per_second\":50000,\"eta_s\":12,\"finished_ms\":0,\"marked\":1,"
            "\"peers\":[{\"node\":\"node-2\",\"last_ms\":1,\"result\":\"ok\"}]},"
            "\"transfers\":{\"pending\":0,\"active\":0,\"done\":1,\"failed\":0,\"keys\":0,"
            "\"bytes\":0,\"waiting\":\"\",\"receiving\":[]},"
            "\"events\":[{\"seq\":1,\"ms\":%llu,\"kind\":\"member\",\"text\":\"node-%zu: alive -> "
            "suspect\"}]",
            f->nodes, (unsigned long long)f->now_ms - 5, f->nodes);
    if (i == 0)
        placement(&b, f);
    rk_jadd(&b, "}");
    return b.p;
}

static char *members(const struct tui_fixture *f)
{
    struct rk_jbuf b = {0};
    rk_jadd(&b, "{\"node\":\"node-1\",\"cluster\":\"demo\",\"members\":[");
    for (size_t i = 0; i < f->nodes; i++) {
        bool last = i + 1 == f->nodes;
        rk_jadd(&b,
                "%s{\"id\":\"node-%zu\",\"self\":%s,\"state\":\"%s\",\"incarnation\":1,"
                "\"client\":\"tcp://127.0.0.1:%zu\",\"last_heard_ms\":%u,\"rtt_us\":900,"
                "\"state_for_ms\":%u,\"config_match\":%s}",
                i ? "," : "", i + 1, i ? "false" : "true", last ? f->last_state : "alive", i + 1,
                last ? 4000 : 20, last ? 3000 : 10, last ? "false" : "true");
    }
    rk_jadd(&b, "],\"refused\":[]}");
    return b.p;
}

size_t tui_fixture_answers(struct tui_answer *a, const struct tui_fixture *f)
{
    memset(a, 0, f->nodes * sizeof(*a));
    for (size_t i = 0; i < f->nodes; i++) {
        snprintf(a[i].id, sizeof a[i].id, "node-%zu", i + 1);
        snprintf(a[i].addr, sizeof a[i].addr, "tcp://127.0.0.1:%zu", i + 1);
        bool ok = !(i + 1 == f->nodes && f->last_silent);
        a[i].ok = ok;
        a[i].ok_ms = ok ? f->now_ms : 1;
        a[i].tried_ms = f->now_ms;
        a[i].anchor = i == 0;
        if (ok)
            a[i].overview = overview(f, i);
        else
            snprintf(a[i].error, sizeof a[i].error, "timed out");
    }
    a[0].members = members(f);
    return f->nodes;
}
