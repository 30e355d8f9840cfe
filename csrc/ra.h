/*
 * Router advertisements of the guest's gateway (ra.c): a router solicitation
 * (ICMPv6 type 133 at m's l4) answered in place with the port's
 * advertisement, under the guest service contract of guest.h.
 */
#ifndef OF_RA_H
#define OF_RA_H

#include <stdint.h>

#include "parse.h"
#include "tables.h"

int of_ra_answer(uint8_t *frame, uint32_t len, uint32_t room, const struct of_inner_meta *m,
		 const struct of_guest *g, uint32_t *reply_len);

#endif
