/* JSON-like value generator for the benchmarks. Each value is a user record
 * in a fixed field order (as rows of one schema are), followed by as many
 * event objects as fit, padded to the exact size requested. Numbers and
 * choices come from a per-value PRNG, so values differ the way real rows do:
 * shared field names and vocabularies, distinct ids, timestamps and scores. */
#include "gen_json.h"

#include <stdbool.h>
#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One field is at most a few hundred bytes; 512 leaves room for all. */
#define FIELD_MAX 512

static const char *const first_names[] = {
    "anna", "ben",  "carla", "david", "emma",  "felix", "greta", "hugo", "ida",   "jonas", "kim",
    "lena", "max",  "nina",  "oscar", "paula", "quinn", "rosa",  "sam",  "tara",  "ugo",   "vera",
    "will", "xena", "yusuf", "zoe",   "li",    "omar",  "maria", "chen", "sofia", "ravi",
};
static const char *const last_names[] = {
    "schmidt", "smith",  "garcia", "muller", "rossi",   "dubois", "kowalski", "tanaka",
    "nguyen",  "silva",  "jensen", "novak",  "brown",   "weber",  "lopez",    "moreau",
    "ivanov",  "kim",    "wang",   "patel",  "oconnor", "berg",   "fischer",  "costa",
    "meyer",   "horvat", "sato",   "ali",    "hansen",  "klein",  "romano",   "lee",
};
static const char *const domains[] = {
    "example.com",      "mail.example.org", "corp.example.net", "example.io",
    "shop.example.com", "users.example.de", "example.co.uk",    "news.example.fr",
};
static const char *const tags[] = {
    "new",   "vip",    "beta",  "mobile", "desktop", "eu",    "us",  "asia",
    "trial", "annual", "promo", "churn",  "loyal",   "admin", "api", "support",
};
static const char *const countries[] = {
    "DE", "US", "FR", "GB", "JP", "BR", "IN", "CN", "IT", "ES", "PL", "NL", "SE", "CA", "AU", "KR",
};
static const char *const plans[] = {"free", "pro", "team", "enterprise"};
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/119.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148",
    "okhttp/4.12.0",
};
static const char *const event_types[] = {"view", "click", "search", "cart", "purchase", "login"};
static const char *const sections[] = {"products", "search", "account", "cart", "blog", "help"};
static const char pad_text[] = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
                               "eiusmod tempor incididunt ut labore et dolore magna aliqua ";

struct out {
    char *p;
    size_t len;
    size_t cap;
};

uint64_t rk_genjson_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t next(uint64_t *st)
{
    *st += 0x9e3779b97f4a7c15ull;
    return rk_genjson_mix(*st);
}

static uint64_t below(uint64_t *st, uint64_t n)
{
    return next(st) % n;
}

static void put_mem(struct out *o, const char *s, size_t n)
{
    if (o->len + n > o->cap)
        n = o->cap - o->len; /* cannot happen for fields under FIELD_MAX */
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_s(struct out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_u(struct out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_mem(o, tmp + i, sizeof(tmp) - i);
}

static void put_key(struct out *o, const char *name)
{
    put_s(o, "\"");
    put_s(o, name);
    put_s(o, "\":");
}

static void put_qs(struct out *o, const char *s)
{
    put_s(o, "\"");
    put_s(o, s);
    put_s(o, "\"");
}

#define PICK(st, arr) ((arr)[below((st), NELEM(arr))])

/* Field 12 and beyond: "e<n>":{"type":..,"at":..,"page":..,"ms":..} */
static void event_field(struct out *o, uint64_t *st, unsigned n, uint64_t ts)
{
    put_s(o, "\"e");
    put_u(o, n);
    put_s(o, "\":{\"type\":");
    put_qs(o, PICK(st, event_types));
    put_s(o, ",\"at\":");
    put_u(o, ts + n * 1000 + below(st, 60000));
    put_s(o, ",\"page\":\"/");
    put_s(o, PICK(st, sections));
    put_s(o, "/");
    put_u(o, below(st, 100000));
    put_s(o, "\",\"ms\":");
    put_u(o, 5 + below(st, 2000));
    put_s(o, "}");
}

static void put_kv_u(struct out *o, const char *name, uint64_t v)
{
    put_key(o, name);
    put_u(o, v);
}

static void put_kv_s(struct out *o, const char *name, const char *v)
{
    put_key(o, name);
    put_qs(o, v);
}

/* "user":"user_123" */
static void user_field(struct out *o, uint64_t *st)
{
    put_key(o, "user");
    put_s(o, "\"user_");
    put_u(o, below(st, 100000));
    put_s(o, "\"");
}

/* "email":"anna.smith42@example.com" */
static void email_field(struct out *o, uint64_t *st, const char *first, const char *last)
{
    put_key(o, "email");
    put_s(o, "\"");
    put_s(o, first);
    put_s(o, ".");
    put_s(o, last);
    put_u(o, below(st, 100));
    put_s(o, "@");
    put_s(o, PICK(st, domains));
    put_s(o, "\"");
}

/* "score":71.3 */
static void score_field(struct out *o, uint64_t *st)
{
    put_kv_u(o, "score", below(st, 100));
    put_s(o, ".");
    put_u(o, below(st, 10));
}

/* "tags":["vip","eu"] */
static void tags_field(struct out *o, uint64_t *st)
{
    put_key(o, "tags");
    put_s(o, "[");
    put_qs(o, PICK(st, tags));
    put_s(o, ",");
    put_qs(o, PICK(st, tags));
    put_s(o, "]");
}

/* "referrer":"https://example.io/blog?ref=39" */
static void referrer_field(struct out *o, uint64_t *st)
{
    put_key(o, "referrer");
    put_s(o, "\"https://");
    put_s(o, PICK(st, domains));
    put_s(o, "/");
    put_s(o, PICK(st, sections));
    put_s(o, "?ref=");
    put_u(o, below(st, 1000));
    put_s(o, "\"");
}

/* The n-th field of the record, without separators. first/last/ts are drawn
 * once per value so that email, user name and events agree. */
static void field(struct out *o, uint64_t *st, unsigned n, const char *first, const char *last,
                  uint64_t ts)
{
    switch (n) {
    case 0:
        put_kv_u(o, "id", 100000 + below(st, 900000));
        break;
    case 1:
        user_field(o, st);
        break;
    case 2:
        email_field(o, st, first, last);
        break;
    case 3:
        put_key(o, "active");
        put_s(o, below(st, 4) ? "true" : "false");
        break;
    case 4:
        score_field(o, st);
        break;
    case 5:
        tags_field(o, st);
        break;
    case 6:
        put_kv_u(o, "ts", ts);
        break;
    case 7:
        put_kv_s(o, "country", PICK(st, countries));
        break;
    case 8:
        put_kv_s(o, "plan", PICK(st, plans));
        break;
    case 9:
        put_kv_u(o, "visits", below(st, 5000));
        break;
    case 10:
        referrer_field(o, st);
        break;
    case 11:
        put_kv_s(o, "ua", PICK(st, agents));
        break;
    default:
        event_field(o, st, n - 12, ts);
        break;
    }
}

/* Pad the object to exactly o->cap bytes including the closing brace: a
 * padding string field if it fits, then spaces (JSON whitespace). */
static void finish(struct out *o)
{
    const char *head = o->len == 1 ? "\"p\":\"" : ",\"p\":\"";
    size_t frame = strlen(head) + 1; /* head and the closing quote */
    size_t room = o->cap - o->len - 1;

    if (room >= frame) {
        size_t text = room - frame;
        put_s(o, head);
        while (text > 0) {
            size_t n = text < sizeof(pad_text) - 1 ? text : sizeof(pad_text) - 1;
            put_mem(o, pad_text, n);
            text -= n;
        }
        put_s(o, "\"");
    }
    while (o->len < o->cap - 1)
        o->p[o->len++] = ' ';
    o->p[o->len++] = '}';
}

void rk_genjson_fill(char *buf, size_t len, uint64_t seed)
{
    uint64_t st = rk_genjson_mix(seed);
    char tmp[FIELD_MAX];
    struct out o = {buf, 0, len};

    if (len < 2) {
        memset(buf, ' ', len);
        return;
    }
    const char *first = PICK(&st, first_names);
    const char *last = PICK(&st, last_names);
    uint64_t ts = 1700000000000ull + below(&st, 31536000000ull); /* within a year */

    put_s(&o, "{");
    for (unsigned n = 0;; n++) {
        struct out f = {tmp, 0, sizeof(tmp)};
        size_t sep = n > 0;
        field(&f, &st, n, first, last, ts);
        if (o.len + sep + f.len + 1 > len)
            break;
        if (sep)
            put_s(&o, ",");
        put_mem(&o, tmp, f.len);
    }
    finish(&o);
}
