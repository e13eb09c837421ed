/* alarms.h: the member's alarms (etcd's AlarmType values: 1 NOSPACE, 2 CORRUPT), held in memory and
 * saved in the store, so that they outlive a restart as etcd's do. KV writes and LeaseGrant consult NOSPACE,
 * /health consults every alarm, and the Maintenance service lists and changes them; none of them owns the
 * state, this module does. */
#ifndef CETCD_ALARMS_H
#define CETCD_ALARMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Alarm types run from 1 to ALARM_TYPES - 1; 0 is NONE. */
#define ALARM_TYPES 3

/* Reads the alarms saved in the store (g_store), at start. False with why set if they are unreadable. */
bool alarms_load(char *why, size_t whylen);
/* The store refused a write for the space quota: raise NOSPACE for this member. */
void alarm_raise_nospace(void);
/* While NOSPACE is active etcd refuses Put, write Txns and LeaseGrant ("database space exceeded"). */
bool alarm_nospace_active(void);
bool alarm_is_active(int type);
/* The member that raised the alarm (meaningful while it is active). */
uint64_t alarm_member(int type);
/* etcd's name of the type: "NOSPACE", "CORRUPT", or "NONE" for anything else. */
const char *alarm_name(int type);

/* Raises type for member unless it is already active. False if type is not a known alarm. */
bool alarm_activate(int type, uint64_t member);
/* Clears type if it is active and was raised by member; true if it was cleared. */
bool alarm_deactivate(int type, uint64_t member);

#endif
