/* What each key does to the dashboard's UI state (render.h), and the
 * demo's action keys, confirmed on the status line. */
#ifndef TUI_KEYS_H
#define TUI_KEYS_H

#include "tui/model.h"
#include "tui/render.h"

struct tui_demo;

enum tui_key_result { TUI_KEYS_NONE, TUI_KEYS_REDRAW, TUI_KEYS_REFRESH, TUI_KEYS_QUIT };

struct tui_keys {
    int confirm; /* the demo action waiting for y ('k' or 'l'), 0 none */
    char confirm_id[64];
};

/* Apply key. demo may be NULL. REFRESH: poll now (an action changed the
 * cluster); QUIT: q. */
enum tui_key_result tui_keys_handle(struct tui_keys *k, struct tui_ui *ui,
                                    const struct tui_model *m, struct tui_demo *demo, int key);

#endif
