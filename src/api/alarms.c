/* alarms.c: the alarm table of alarms.h, one slot per alarm type. Raising and clearing an alarm is
 * logged and saved in the store (as etcd keeps its alarm bucket), so an alarm outlives a restart
 * until it is disarmed. */
#include "alarms.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log_msg.h"
#include "rpc.pb-c.h"
#include "store.h"

typedef struct alarm_state {
    bool active;
    uint64_t member_id;
} alarm_state;

static alarm_state alarms[ALARM_TYPES];

static bool known(int type) {
    return type > 0 && type < ALARM_TYPES;
}

/* The saved form: a version byte, then 9 bytes per active alarm (its type, its member id LE). */
#define ALARMS_FORMAT 1

static void save(void) {
    uint8_t blob[1 + 9 * ALARM_TYPES], *p = blob;
    *p++ = ALARMS_FORMAT;
    for (int type = 1; type < ALARM_TYPES; type++) {
        if (!alarms[type].active) continue;
        *p++ = (uint8_t)type;
        for (int i = 0; i < 8; i++)
            *p++ = (uint8_t)(alarms[type].member_id >> (8 * i));
    }
    /* never refused by the quota; the reply that changed the alarm waits for the commit */
    mv_err err = mvcc_state_save(g_store, MV_STATE_ALARMS, blob, (size_t)(p - blob));
    assert(err == MV_OK);
    (void)err;
}

bool alarms_load(char *why, size_t whylen) {
    memset(alarms, 0, sizeof alarms);
    mv_bytes saved = mvcc_state(g_store, MV_STATE_ALARMS);
    if (saved.len == 0) return true;
    if (saved.data[0] != ALARMS_FORMAT || (saved.len - 1) % 9 != 0) {
        snprintf(why, whylen, "the saved alarms are in an unknown format (%zu bytes, version %u)", saved.len,
                 saved.data[0]);
        return false;
    }
    for (const uint8_t *p = saved.data + 1; p < saved.data + saved.len; p += 9) {
        uint64_t member = 0;
        for (int i = 0; i < 8; i++)
            member |= (uint64_t)p[1 + i] << (8 * i);
        if (known(p[0])) alarms[p[0]] = (alarm_state){true, member};
        if (known(p[0]))
            log_msg(LOG_WARN, "alarm %s is active (raised before the restart)", alarm_name(p[0]));
    }
    return true;
}

const char *alarm_name(int type) {
    return type == ETCDSERVERPB__ALARM_TYPE__NOSPACE   ? "NOSPACE"
           : type == ETCDSERVERPB__ALARM_TYPE__CORRUPT ? "CORRUPT"
                                                       : "NONE";
}

void alarm_raise_nospace(void) {
    if (alarms[ETCDSERVERPB__ALARM_TYPE__NOSPACE].active) return;
    alarms[ETCDSERVERPB__ALARM_TYPE__NOSPACE] = (alarm_state){true, g_config.member_id};
    save();
    log_msg(LOG_WARN, "alarm raised: NOSPACE (database space exceeded the quota)");
}

bool alarm_nospace_active(void) {
    return alarms[ETCDSERVERPB__ALARM_TYPE__NOSPACE].active;
}

bool alarm_is_active(int type) {
    return known(type) && alarms[type].active;
}

uint64_t alarm_member(int type) {
    return known(type) ? alarms[type].member_id : 0;
}

bool alarm_activate(int type, uint64_t member) {
    if (!known(type)) return false;
    if (alarms[type].active) return true;
    alarms[type] = (alarm_state){true, member};
    save();
    log_msg(LOG_WARN, "alarm raised: %s (from %016" PRIx64 ")", alarm_name(type), member);
    return true;
}

bool alarm_deactivate(int type, uint64_t member) {
    if (!alarm_is_active(type) || alarms[type].member_id != member) return false;
    alarms[type].active = false;
    save();
    log_msg(LOG_WARN, "alarm disarmed: %s", alarm_name(type));
    return true;
}
