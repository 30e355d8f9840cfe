/*
 * Neighbor discovery for the sled's underlay address (RFC 4861): switches
 * resolve it before they send Geneve to the sled, so each uplink answers
 * neighbor solicitations for it. Pure functions over a byte buffer.
 */
#ifndef OF_NDP_H
#define OF_NDP_H

#include <stdint.h>

/*
 * 1 if frame is a neighbor solicitation for addr that RFC 4861 7.1.1 lets
 * us answer, else 0: Ethernet (one 802.1Q tag at most), IPv6 with hop limit
 * 255 and ICMPv6 as next header, to addr or its solicited-node group (only
 * the group when sent from ::), from a non-multicast source; ICMPv6 type
 * 135 code 0 with target addr, a right checksum, options of non-zero length
 * inside the packet, and no source link-layer address option when from ::.
 */
int of_ndp_is_solicit_for(const uint8_t *frame, uint32_t len, const uint8_t addr[16]);

/*
 * 1 if the len bytes of options at opts are what RFC 4861 (7.1.1, 6.1.1)
 * asks of a solicitation's: each of non-zero length and inside the message,
 * and no source link-layer address option when the sender is :: (from_unspecified).
 */
int of_nd_options_valid(const uint8_t *opts, uint32_t len, int from_unspecified);

/*
 * Turn the solicitation in frame (len bytes, in a buffer of room bytes)
 * into the advertisement of addr at mac, in place: Ethernet to the
 * solicitor's source MAC from mac (a VLAN tag is kept), IPv6 from addr to
 * the solicitor with hop limit 255, ICMPv6 type 136 with the Solicited and
 * Override flags, target addr and a target link-layer address option.
 * A duplicate address detection probe (source ::) is answered to all-nodes,
 * ff02::1 at 33:33:00:00:00:01 (RFC 2464 7), without Solicited (RFC 4861
 * 7.2.4), as Linux answers it.
 *
 * Returns the advertisement's length; 0, with frame untouched, when
 * of_ndp_is_solicit_for would say 0 or the advertisement needs more than
 * room bytes.
 */
uint32_t of_ndp_build_advert(uint8_t *frame, uint32_t len, uint32_t room,
			     const uint8_t mac[6], const uint8_t addr[16]);

#endif
