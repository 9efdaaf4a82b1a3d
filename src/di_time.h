/* di_time.h: the clock of di_time.c, for the units that time a wait in C. */
#ifndef DI_TIME_H
#define DI_TIME_H

/* Seconds on CLOCK_MONOTONIC, which never jumps with the wall clock. */
double di_now(void);

#endif
