/* alarms.c: the alarm table of alarms.h, one slot per alarm type. Raising and clearing an alarm is
 * logged; nothing is persisted, so a restart clears every alarm (a write over the quota raises
 * NOSPACE again). */
#include "alarms.h"

#include <inttypes.h>

#include "config.h"
#include "log_msg.h"
#include "rpc.pb-c.h"

typedef struct alarm_state {
    bool active;
    uint64_t member_id;
} alarm_state;

static alarm_state alarms[ALARM_TYPES];

static bool known(int type) {
    return type > 0 && type < ALARM_TYPES;
}

const char *alarm_name(int type) {
    return type == ETCDSERVERPB__ALARM_TYPE__NOSPACE   ? "NOSPACE"
           : type == ETCDSERVERPB__ALARM_TYPE__CORRUPT ? "CORRUPT"
                                                       : "NONE";
}

void alarm_raise_nospace(void) {
    if (alarms[ETCDSERVERPB__ALARM_TYPE__NOSPACE].active) return;
    alarms[ETCDSERVERPB__ALARM_TYPE__NOSPACE] = (alarm_state){true, g_config.member_id};
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
    log_msg(LOG_WARN, "alarm raised: %s (from %016" PRIx64 ")", alarm_name(type), member);
    return true;
}

bool alarm_deactivate(int type, uint64_t member) {
    if (!alarm_is_active(type) || alarms[type].member_id != member) return false;
    alarms[type].active = false;
    log_msg(LOG_WARN, "alarm disarmed: %s", alarm_name(type));
    return true;
}
