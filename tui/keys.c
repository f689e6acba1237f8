/* Keys (keys.h). */
#include "tui/keys.h"

#include "tui/demo.h"
#include "tui/term.h"

#include <stdio.h>
#include <string.h>

/* The demo slot of member id, or -1. */
static long slot_of(struct tui_demo *d, const char *id)
{
    for (size_t i = 0; i < tui_demo_count(d); i++) {
        struct tui_demo_node n;
        tui_demo_node(d, i, &n);
        if (strcmp(n.id, id) == 0)
            return (long)i;
    }
    return -1;
}

static enum tui_key_result demo_key(struct tui_keys *k, struct tui_ui *ui, struct tui_demo *d,
                                    int key)
{
    char msg[200] = "";
    if (key == 'a') {
        tui_demo_add(d, msg, sizeof msg);
    } else if (key == 't') {
        uint64_t ok, failed;
        bool on = !tui_demo_load(d, &ok, &failed);
        tui_demo_set_load(d, on);
        snprintf(msg, sizeof msg, "load %s", on ? "on" : "off");
    } else {
        long i = ui->sel_id[0] ? slot_of(d, ui->sel_id) : -1;
        if (i < 0) {
            snprintf(ui->status, sizeof ui->status,
                     "select a member started by this demo first (Tab to Peers, Up/Down)");
            return TUI_KEYS_REDRAW;
        }
        struct tui_demo_node n;
        tui_demo_node(d, (size_t)i, &n);
        switch (key) {
        case 'k':
        case 'l':
            k->confirm = key;
            snprintf(k->confirm_id, sizeof k->confirm_id, "%s", n.id);
            snprintf(ui->status, sizeof ui->status,
                     "%s %s (pid %d)? y to confirm, any other key cancels",
                     key == 'k' ? "kill -9" : "make leave the cluster:", n.id, n.pid);
            return TUI_KEYS_REDRAW;
        case 'r':
            tui_demo_restart(d, (size_t)i, msg, sizeof msg);
            break;
        case 'z':
            if (n.state == TUI_DEMO_PAUSED)
                tui_demo_resume(d, (size_t)i, msg, sizeof msg);
            else
                tui_demo_pause(d, (size_t)i, msg, sizeof msg);
            break;
        default:
            return TUI_KEYS_NONE;
        }
    }
    snprintf(ui->status, sizeof ui->status, "%s", msg);
    return TUI_KEYS_REFRESH;
}

static enum tui_key_result confirmed(struct tui_keys *k, struct tui_ui *ui, struct tui_demo *d,
                                     int key)
{
    int what = k->confirm;
    k->confirm = 0;
    long i = slot_of(d, k->confirm_id);
    if (key != 'y' || i < 0) {
        snprintf(ui->status, sizeof ui->status, "cancelled");
        return TUI_KEYS_REDRAW;
    }
    char msg[200] = "";
    if (what == 'k')
        tui_demo_kill(d, (size_t)i, msg, sizeof msg);
    else
        tui_demo_leave(d, (size_t)i, msg, sizeof msg);
    snprintf(ui->status, sizeof ui->status, "%s", msg);
    return TUI_KEYS_REFRESH;
}

static enum tui_key_result filter_key(struct tui_ui *ui, int key)
{
    size_t n = strlen(ui->filter);
    if (key == TUI_KEY_ENTER) {
        ui->editing_filter = false;
    } else if (key == TUI_KEY_ESC) {
        ui->editing_filter = false;
        ui->filter[0] = '\0';
    } else if (key == TUI_KEY_BACKSPACE) {
        if (n)
            ui->filter[n - 1] = '\0';
    } else if (key >= 0x20 && key < 0x7f && n + 1 < sizeof ui->filter) {
        ui->filter[n] = (char)key;
        ui->filter[n + 1] = '\0';
    }
    ui->sel = 0;
    return TUI_KEYS_REDRAW;
}

enum tui_key_result tui_keys_handle(struct tui_keys *k, struct tui_ui *ui,
                                    const struct tui_model *m, struct tui_demo *demo, int key)
{
    if (key == TUI_KEY_NONE)
        return TUI_KEYS_NONE;
    if (key == TUI_KEY_RESIZE)
        return TUI_KEYS_REDRAW;
    if (key == TUI_KEY_HANGUP)
        return TUI_KEYS_QUIT;
    if (ui->editing_filter)
        return filter_key(ui, key);
    if (k->confirm && demo)
        return confirmed(k, ui, demo, key);
    if (ui->help) {
        ui->help = false;
        return key == 'q' ? TUI_KEYS_QUIT : TUI_KEYS_REDRAW;
    }
    ui->status[0] = '\0';
    switch (key) {
    case 'q':
    case 'Q':
        return TUI_KEYS_QUIT;
    case '?':
    case 'h':
        ui->help = true;
        return TUI_KEYS_REDRAW;
    case TUI_KEY_TAB:
    case TUI_KEY_RIGHT:
        ui->focus = (enum tui_pane)((ui->focus + 1) % TUI_NPANES);
        return TUI_KEYS_REDRAW;
    case TUI_KEY_BTAB:
    case TUI_KEY_LEFT:
        ui->focus = (enum tui_pane)((ui->focus + TUI_NPANES - 1) % TUI_NPANES);
        return TUI_KEYS_REDRAW;
    case TUI_KEY_ENTER:
        ui->zoom = !ui->zoom;
        return TUI_KEYS_REDRAW;
    case TUI_KEY_ESC:
        ui->zoom = false;
        return TUI_KEYS_REDRAW;
    case TUI_KEY_UP:
        if (ui->sel)
            ui->sel--;
        ui->focus = TUI_PEERS;
        return TUI_KEYS_REDRAW;
    case TUI_KEY_DOWN:
        if (ui->sel + 1 < m->npeers)
            ui->sel++;
        ui->focus = TUI_PEERS;
        return TUI_KEYS_REDRAW;
    case '/':
        ui->editing_filter = true;
        return TUI_KEYS_REDRAW;
    case 's':
        ui->sort = (enum tui_sort)((ui->sort + 1) % TUI_NSORTS);
        snprintf(ui->status, sizeof ui->status, "members sorted by %s", tui_sort_names[ui->sort]);
        return TUI_KEYS_REDRAW;
    case 'p':
        ui->paused = !ui->paused;
        snprintf(ui->status, sizeof ui->status, "%s",
                 ui->paused ? "paused (p resumes)" : "resumed");
        return ui->paused ? TUI_KEYS_REDRAW : TUI_KEYS_REFRESH;
    default:
        break;
    }
    if (key >= '1' && key < '1' + TUI_NPANES) {
        ui->focus = (enum tui_pane)(key - '1');
        return TUI_KEYS_REDRAW;
    }
    if (demo && strchr("krzalt", key))
        return demo_key(k, ui, demo, key);
    if (strchr("krzalt", key)) {
        snprintf(ui->status, sizeof ui->status, "'%c' acts on nodes in ringkvd demo only", key);
        return TUI_KEYS_REDRAW;
    }
    return TUI_KEYS_NONE;
}
