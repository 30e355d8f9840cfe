/*
 * DHCPv4 and DHCPv6 servers of the guest's gateway (dhcp.c), for frames
 * the guest service dispatch of guest.h found to be DHCP to the gateway: the same
 * contract, answered in place or a drop reason.
 */
#ifndef OF_DHCP_H
#define OF_DHCP_H

#include <stdint.h>

#include "parse.h"
#include "tables.h"

#define OF_DHCP4_SERVER_PORT	67
#define OF_DHCP4_CLIENT_PORT	68
#define OF_DHCP6_CLIENT_PORT	546
#define OF_DHCP6_SERVER_PORT	547

int of_dhcp4_answer(uint8_t *frame, uint32_t len, uint32_t room, const struct of_inner_meta *m,
		    const struct of_guest *g, uint32_t *reply_len);
int of_dhcp6_answer(uint8_t *frame, uint32_t len, uint32_t room, const struct of_inner_meta *m,
		    const struct of_guest *g, uint32_t *reply_len);

#endif
