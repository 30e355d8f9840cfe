/*
 * Building and publishing table snapshots (control thread only).
 *
 * The builder holds the complete desired state; commit turns it into a new
 * snapshot, carrying over what must not change: a member that is still up
 * and unchanged keeps its generation (its flows stay pinned), and each
 * resilient table is rebuilt from its previous version (only the buckets of
 * members that left move).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "builder.h"
#include "dp.h"
#include "error.h"
#include "guest_net.h"
#include "heap.h"
#include "memory.h"
#include "tables.h"

struct of_member_list {
	uint8_t defined;
	uint16_t n;
	uint16_t ids[OF_RES_MAX_MEMBERS];
	struct of_resilient *restored;	/* saved before a restart: replaces the previous table */
};

struct of_builder {
	struct of_dp *dp;
	int error;			/* first error; commit refuses */
	struct of_guest guests[OF_MAX_PORTS];
	struct {
		uint8_t defined;
		uint8_t up;
		struct of_tep tep;
	} teps[OF_MAX_TEPS];
	struct {
		uint8_t defined;
		uint8_t up;
		struct of_nexthop nh;
	} nhs[OF_MAX_NEXTHOPS];
	struct of_member_list tep_sets[OF_MAX_GROUPS];
	struct of_member_list nh_groups[OF_MAX_GROUPS];
	uint32_t n_v2b, n_routes, n_v2p;
	struct of_prefix_rule *v2b, *routes;
	struct of_v2p_entry *v2p;
};

static uint32_t tables_ids;

/* memcmp/memcpy of an empty, possibly NULL, input (no rules yet) is undefined: guard it. */
static int
same_bytes(const void *a, const void *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

static void
copy_bytes(void *dst, const void *src, size_t n)
{
	if (n != 0)
		memcpy(dst, src, n);
}

static void v2p_table_put(struct of_v2p_table *vt);

static int
builder_fail(struct of_builder *b, int err, const char *what)
{
	if (b->error == 0) {
		b->error = err;
		of_set_error("%s", what);
	}
	return err;
}

static int
grow(void *arrayp, uint32_t n, size_t elem)
{
	void **array = arrayp;

	/* Double at powers of two: amortised O(1) appends. */
	if (n != 0 && (n & (n - 1)) != 0)
		return 0;
	void *p = realloc(*array, (n ? 2 * (size_t)n : 16) * elem);
	if (p == NULL)
		return -ENOMEM;
	*array = p;
	return 0;
}

struct of_builder *
of_builder_new(struct of_dp *dp)
{
	struct of_builder *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		of_set_error("out of memory for a table builder");
		return NULL;
	}
	b->dp = dp;
	return b;
}

void
of_builder_free(struct of_builder *b)
{
	if (b == NULL)
		return;
	for (unsigned g = 0; g < OF_MAX_GROUPS; g++) {
		of_resilient_free(b->tep_sets[g].restored);
		of_resilient_free(b->nh_groups[g].restored);
	}
	free(b->v2b);
	free(b->routes);
	free(b->v2p);
	free(b);
}

int
of_builder_guest(struct of_builder *b, uint16_t port, uint32_t vni, const uint8_t mac[6],
		 const uint8_t gw_mac[6])
{
	if (port >= b->dp->n_ports || b->dp->ports[port].role != OF_ROLE_GUEST)
		return builder_fail(b, -EINVAL, "guest entry names a port that is not a guest port");
	b->guests[port].valid = 1;
	b->guests[port].vni = vni;
	memcpy(b->guests[port].mac, mac, 6);
	memcpy(b->guests[port].gw_mac, gw_mac, 6);
	of_guest_net_default(&b->guests[port].net);
	return 0;
}

int
of_builder_guest_net(struct of_builder *b, uint16_t port, const struct of_guest_net *net)
{
	const char *why;

	if (port >= b->dp->n_ports || !b->guests[port].valid)
		return builder_fail(b, -EINVAL, "guest network names a port with no guest entry");
	why = of_guest_net_problem(net);
	if (why != NULL)
		return builder_fail(b, -EINVAL, why);
	b->guests[port].net = *net;
	return 0;
}

int
of_builder_v2p(struct of_builder *b, uint32_t vni, const uint8_t ip[16], const uint8_t underlay[16],
	       const uint8_t mac[6])
{
	if (grow(&b->v2p, b->n_v2p, sizeof(*b->v2p)) != 0)
		return builder_fail(b, -ENOMEM, "out of memory for V2P entries");
	memset(&b->v2p[b->n_v2p], 0, sizeof(*b->v2p));
	b->v2p[b->n_v2p].key.vni = vni;
	memcpy(b->v2p[b->n_v2p].key.ip, ip, 16);
	memcpy(b->v2p[b->n_v2p].val.underlay, underlay, 16);
	memcpy(b->v2p[b->n_v2p].val.mac, mac, 6);
	b->n_v2p++;
	return 0;
}

int
of_builder_tep(struct of_builder *b, uint16_t id, const uint8_t addr[16], uint32_t vni, int up)
{
	if (id == 0 || id >= OF_MAX_TEPS)
		return builder_fail(b, -EINVAL, "TEP id out of range (1..1023)");
	b->teps[id].defined = 1;
	b->teps[id].up = up != 0;
	memcpy(b->teps[id].tep.addr, addr, 16);
	b->teps[id].tep.vni = vni;
	return 0;
}

int
of_builder_nexthop(struct of_builder *b, uint16_t id, uint16_t uplink, const uint8_t mac[6], int up)
{
	if (id == 0 || id >= OF_MAX_NEXTHOPS)
		return builder_fail(b, -EINVAL, "nexthop id out of range (1..1023)");
	if (uplink >= b->dp->n_ports || b->dp->ports[uplink].role != OF_ROLE_UPLINK)
		return builder_fail(b, -EINVAL, "nexthop names a port that is not an uplink");
	b->nhs[id].defined = 1;
	b->nhs[id].up = up != 0;
	b->nhs[id].nh.uplink = uplink;
	memcpy(b->nhs[id].nh.mac, mac, 6);
	return 0;
}

static int
member_list_set(struct of_builder *b, struct of_member_list *list, const uint16_t *ids, uint16_t n,
		uint32_t id_limit)
{
	if (n > OF_RES_MAX_MEMBERS)
		return builder_fail(b, -EINVAL, "more than 64 members in a TEP set or nexthop group");
	for (uint16_t i = 0; i < n; i++)
		if (ids[i] == 0 || ids[i] >= id_limit)
			return builder_fail(b, -EINVAL, "member id out of range");
	list->defined = 1;
	list->n = n;
	memcpy(list->ids, ids, n * sizeof(ids[0]));
	return 0;
}

int
of_builder_tep_set(struct of_builder *b, uint16_t set, const uint16_t *teps, uint16_t n)
{
	if (set >= OF_MAX_GROUPS)
		return builder_fail(b, -EINVAL, "TEP set id out of range");
	return member_list_set(b, &b->tep_sets[set], teps, n, OF_MAX_TEPS);
}

int
of_builder_nh_group(struct of_builder *b, uint16_t group, const uint16_t *nhs, uint16_t n)
{
	if (group >= OF_MAX_GROUPS)
		return builder_fail(b, -EINVAL, "nexthop group id out of range");
	return member_list_set(b, &b->nh_groups[group], nhs, n, OF_MAX_NEXTHOPS);
}

static int
member_list_restore(struct of_builder *b, struct of_member_list *list, const uint16_t *buckets, uint32_t n)
{
	if (n != b->dp->cfg.n_buckets)
		return builder_fail(b, -EINVAL, "a restored bucket table has another number of buckets");
	of_resilient_free(list->restored);
	list->restored = of_resilient_restore(n, buckets);
	if (list->restored == NULL)
		return builder_fail(b, -errno, "cannot restore a bucket table (more than 64 members, or out of memory)");
	return 0;
}

int
of_builder_tep_set_restore(struct of_builder *b, uint16_t set, const uint16_t *buckets, uint32_t n)
{
	if (set >= OF_MAX_GROUPS)
		return builder_fail(b, -EINVAL, "TEP set id out of range");
	return member_list_restore(b, &b->tep_sets[set], buckets, n);
}

int
of_builder_nh_group_restore(struct of_builder *b, uint16_t group, const uint16_t *buckets, uint32_t n)
{
	if (group >= OF_MAX_GROUPS)
		return builder_fail(b, -EINVAL, "nexthop group id out of range");
	return member_list_restore(b, &b->nh_groups[group], buckets, n);
}

static int
add_rule(struct of_builder *b, struct of_prefix_rule **rules, uint32_t *n, const uint8_t prefix[16],
	 uint8_t depth, uint16_t target)
{
	if (depth > 128 || target >= OF_MAX_GROUPS)
		return builder_fail(b, -EINVAL, "prefix length over 128 or group id out of range");
	if (grow(rules, *n, sizeof(**rules)) != 0)
		return builder_fail(b, -ENOMEM, "out of memory for prefixes");
	/* Whole-struct zeroing: rules are compared with memcmp, padding included. */
	memset(&(*rules)[*n], 0, sizeof(**rules));
	memcpy((*rules)[*n].prefix, prefix, 16);
	(*rules)[*n].depth = depth;
	(*rules)[*n].target = target;
	(*n)++;
	return 0;
}

int
of_builder_v2b(struct of_builder *b, const uint8_t prefix[16], uint8_t depth, uint16_t set)
{
	return add_rule(b, &b->v2b, &b->n_v2b, prefix, depth, set);
}

int
of_builder_route(struct of_builder *b, const uint8_t prefix[16], uint8_t depth, uint16_t group)
{
	return add_rule(b, &b->routes, &b->n_routes, prefix, depth, group);
}

void
of_tables_free(struct of_tables *t)
{
	if (t == NULL)
		return;
	v2p_table_put(t->v2p);
	for (unsigned i = 0; i < OF_MAX_GROUPS; i++) {
		of_resilient_free(t->tep_sets[i]);
		of_resilient_free(t->nh_groups[i]);
	}
	rte_free(t);
}

static struct rte_hash *
build_hash(const char *kind, uint32_t id, uint32_t key_len, uint32_t n)
{
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters params = {
		.name = name,
		.entries = RTE_MAX(n, 64u),
		.key_len = key_len,
		.hash_func = rte_hash_crc,
		.socket_id = SOCKET_ID_ANY,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct rte_hash *h;

	snprintf(name, sizeof(name), "of%s%u", kind, id);
	h = rte_hash_create(&params);
	if (h == NULL)
		of_set_error("cannot create the %s table: %s", kind, rte_strerror(rte_errno));
	return h;
}

static void
v2p_table_put(struct of_v2p_table *vt)
{
	if (vt == NULL || --vt->refs > 0)
		return;
	rte_hash_free(vt->hash);
	rte_free(vt->vals);
	rte_free(vt);
}

/* An empty V2P table for n entries: every allocation a table of that size makes. */
static struct of_v2p_table *
v2p_table_alloc(const char *kind, uint32_t id, uint32_t n)
{
	struct of_v2p_table *vt = rte_zmalloc("of_v2p", sizeof(*vt) + n * sizeof(vt->entries[0]), 0);

	if (vt == NULL)
		return NULL;
	vt->refs = 1;
	vt->n = n;
	vt->hash = build_hash(kind, id, sizeof(struct of_v2p_key), n);
	if (vt->hash != NULL)
		vt->vals = rte_zmalloc("of_v2p", ((size_t)rte_hash_max_key_id(vt->hash) + 1) * sizeof(*vt->vals), 0);
	if (vt->vals == NULL) {
		v2p_table_put(vt);
		return NULL;
	}
	return vt;
}

uint64_t
of_v2p_table_probe(uint32_t id, uint32_t n)
{
	size_t before = of_heap_used();
	struct of_v2p_table *vt = v2p_table_alloc("v2pprobe", id, n);
	uint64_t bytes = of_heap_used() - before;

	if (vt == NULL)
		return 0;
	v2p_table_put(vt);
	return bytes;
}

static struct of_v2p_table *
v2p_table_get(struct of_builder *b, uint32_t id, struct of_v2p_table *prev)
{
	size_t input = b->n_v2p * sizeof(*b->v2p);
	struct of_v2p_table *vt;

	if (prev != NULL && prev->n == b->n_v2p && same_bytes(prev->entries, b->v2p, input)) {
		prev->refs++;
		return prev;
	}
	vt = v2p_table_alloc("v2p", id, b->n_v2p);
	if (vt == NULL) {
		builder_fail(b, -ENOMEM, "out of EAL memory for the V2P entries (raise --memory-mb)");
		return NULL;
	}
	copy_bytes(vt->entries, b->v2p, input);
	for (uint32_t i = 0; i < b->n_v2p; i++) {
		int32_t pos = rte_hash_add_key(vt->hash, &b->v2p[i].key);

		if (pos < 0) {
			builder_fail(b, pos, "cannot add a V2P entry");
			goto fail;
		}
		vt->vals[pos] = b->v2p[i].val;
	}
	return vt;
fail:
	v2p_table_put(vt);
	return NULL;
}

/* A second port with the same (VNI, MAC) takes the key over, as a data update would. */
static void
build_guest_index(const struct of_builder *b, struct of_tables *t)
{
	for (unsigned i = 0; i < OF_GUEST_SLOTS; i++)
		t->guest_index[i].port = OF_NO_ID;
	for (uint16_t p = 0; p < OF_MAX_PORTS; p++) {
		const struct of_guest *g = &b->guests[p];
		uint64_t mac = of_mac_word(g->mac);
		uint32_t i = of_guest_slot_of(g->vni, mac);

		if (!g->valid)
			continue;
		while (t->guest_index[i].port != OF_NO_ID &&
		       (t->guest_index[i].mac != mac || t->guest_index[i].vni != g->vni))
			i = (i + 1) % OF_GUEST_SLOTS;
		t->guest_index[i].mac = mac;
		t->guest_index[i].vni = g->vni;
		t->guest_index[i].port = p;
	}
}

/* A member keeps its generation while it stays up and unchanged. */
static uint32_t
next_gen(struct of_dp *dp, int up, uint32_t prev_gen, int unchanged)
{
	if (!up)
		return 0;
	if (prev_gen != 0 && unchanged)
		return prev_gen;
	return ++dp->member_gen;
}

static int
build_members(struct of_builder *b, struct of_tables *t, const struct of_tables *prev)
{
	struct of_dp *dp = b->dp;

	for (unsigned id = 1; id < OF_MAX_TEPS; id++) {
		if (!b->teps[id].defined)
			continue;
		const struct of_tep *old = prev ? &prev->teps[id] : NULL;
		int same = old && memcmp(old->addr, b->teps[id].tep.addr, 16) == 0 &&
			   old->vni == b->teps[id].tep.vni;

		t->teps[id] = b->teps[id].tep;
		t->teps[id].gen = next_gen(dp, b->teps[id].up, old ? old->gen : 0, same);
	}
	for (unsigned id = 1; id < OF_MAX_NEXTHOPS; id++) {
		if (!b->nhs[id].defined)
			continue;
		const struct of_nexthop *old = prev ? &prev->nhs[id] : NULL;
		int same = old && old->uplink == b->nhs[id].nh.uplink &&
			   memcmp(old->mac, b->nhs[id].nh.mac, 6) == 0;

		t->nhs[id] = b->nhs[id].nh;
		t->nhs[id].gen = next_gen(dp, b->nhs[id].up, old ? old->gen : 0, same);
	}
	return 0;
}

static struct of_resilient *
build_group(struct of_builder *b, const struct of_member_list *list,
	    const struct of_resilient *prev, int is_tep, const struct of_tables *t)
{
	uint16_t live[OF_RES_MAX_MEMBERS];
	uint16_t n_live = 0;

	for (uint16_t i = 0; i < list->n; i++) {
		uint16_t id = list->ids[i];
		uint32_t gen = is_tep ? t->teps[id].gen : t->nhs[id].gen;
		int defined = is_tep ? b->teps[id].defined : b->nhs[id].defined;

		if (!defined) {
			builder_fail(b, -EINVAL, is_tep ? "TEP set names an undefined TEP"
							: "nexthop group names an undefined nexthop");
			return NULL;
		}
		if (gen != 0)
			live[n_live++] = id;
	}
	if (list->restored != NULL)
		prev = list->restored;
	struct of_resilient *r = of_resilient_build(b->dp->cfg.n_buckets, prev, live, n_live);
	if (r == NULL)
		builder_fail(b, -errno, "cannot build a resilient bucket table");
	return r;
}

static int
addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Strict underlay's sources: the address of every TEP, up or down (a switch taken out of use
 * still answers its flows' last packets), sorted and each once, for a binary search. */
static void
build_tep_addrs(const struct of_builder *b, struct of_tables *t)
{
	uint16_t n = 0, kept = 0;

	for (unsigned id = 1; id < OF_MAX_TEPS; id++)
		if (b->teps[id].defined)
			memcpy(t->tep_addrs[n++], b->teps[id].tep.addr, 16);
	qsort(t->tep_addrs, n, 16, addr_cmp);
	for (uint16_t i = 0; i < n; i++)
		if (kept == 0 || memcmp(t->tep_addrs[kept - 1], t->tep_addrs[i], 16) != 0)
			memmove(t->tep_addrs[kept++], t->tep_addrs[i], 16);
	t->n_tep_addrs = kept;
}

static struct of_tables *
build_tables(struct of_builder *b, const struct of_tables *prev)
{
	struct of_tables *t = rte_zmalloc("of_tables", sizeof(*t), RTE_CACHE_LINE_SIZE);

	if (t == NULL) {
		builder_fail(b, -ENOMEM, "out of memory for tables");
		return NULL;
	}
	t->id = ++tables_ids;
	memcpy(t->guests, b->guests, sizeof(t->guests));
	build_guest_index(b, t);
	build_members(b, t, prev);
	build_tep_addrs(b, t);

	for (unsigned g = 0; g < OF_MAX_GROUPS; g++) {
		if (b->tep_sets[g].defined) {
			t->tep_sets[g] = build_group(b, &b->tep_sets[g], prev ? prev->tep_sets[g] : NULL, 1, t);
			if (t->tep_sets[g] == NULL)
				goto fail;
		}
		if (b->nh_groups[g].defined) {
			t->nh_groups[g] = build_group(b, &b->nh_groups[g], prev ? prev->nh_groups[g] : NULL, 0, t);
			if (t->nh_groups[g] == NULL)
				goto fail;
		}
	}
	for (uint32_t i = 0; i < b->n_v2b; i++)
		if (t->tep_sets[b->v2b[i].target] == NULL) {
			builder_fail(b, -EINVAL, "V2B entry names an undefined TEP set");
			goto fail;
		}
	for (uint32_t i = 0; i < b->n_routes; i++)
		if (t->nh_groups[b->routes[i].target] == NULL) {
			builder_fail(b, -EINVAL, "route names an undefined nexthop group");
			goto fail;
		}

	t->v2b = of_prefix_bank_get(&b->dp->v2b_bank, "V2B", prev ? prev->v2b : NULL, b->v2b, b->n_v2b, 1);
	t->routes = of_prefix_bank_get(&b->dp->route_bank, "route", prev ? prev->routes : NULL, b->routes,
				       b->n_routes, 0);
	t->v2p = v2p_table_get(b, t->id, prev ? prev->v2p : NULL);
	if (t->v2b == NULL || t->routes == NULL || t->v2p == NULL) {
		if (b->error == 0)
			b->error = -ENOMEM;	/* the message is set already */
		goto fail;
	}
	/* TEP id 0 stands for "no TEP" (V2P flows) and is always live: V2P flows follow an
	 * edit of the V2P entries through the route epoch, like every other flow. */
	t->teps[0].gen = prev != NULL ? prev->teps[0].gen : ++b->dp->member_gen;
	/* Shared lookup tables mean unchanged inputs: member changes alone keep the epoch. */
	if (prev == NULL)
		t->route_epoch = 1;
	else if (prev->v2b == t->v2b && prev->routes == t->routes && prev->v2p == t->v2p)
		t->route_epoch = prev->route_epoch;
	else
		t->route_epoch = prev->route_epoch + 1;
	return t;
fail:
	of_tables_free(t);
	return NULL;
}

/*
 * Refuse, before anything is built, a commit that cannot fit: more prefixes than the
 * prefix tables hold, or more EAL memory than the largest free block for the snapshot and
 * a new V2P table (the old one is freed only after the new one is published).
 */
static int
check_room(struct of_builder *b, const struct of_tables *prev)
{
	struct of_dp *dp = b->dp;
	int v2p_changed = prev == NULL || prev->v2p->n != b->n_v2p ||
			  !same_bytes(prev->v2p->entries, b->v2p, b->n_v2p * sizeof(*b->v2p));
	uint64_t need = dp->snapshot_bytes + (v2p_changed ? of_memory_v2p_bytes(dp, b->n_v2p) : 0);
	uint64_t room = of_heap_room();

	if (b->n_v2b > dp->v2b_bank.capacity || b->n_routes > dp->route_bank.capacity) {
		int v2b = b->n_v2b > dp->v2b_bank.capacity;

		of_set_error("%u %s prefixes, more than --prefix-capacity %u holds", v2b ? b->n_v2b : b->n_routes,
			     v2b ? "V2B" : "route", dp->v2b_bank.capacity);
		b->error = -ENOSPC;
		return b->error;
	}
	/* The first commit is measured to learn snapshot_bytes: it cannot be judged by it. */
	if (dp->snapshot_bytes == 0 || need <= room)
		return 0;
	of_set_error("the tables need %.1f MB of EAL memory and the largest free block is %.1f MB: %u V2P entries "
		     "would fit, this commit has %u (raise --memory-mb)", (double)need / 1048576, (double)room / 1048576,
		     of_memory_v2p_fit(dp), b->n_v2p);
	b->error = -ENOSPC;
	return b->error;
}

int
of_builder_commit(struct of_builder *b)
{
	struct of_dp *dp = b->dp;
	struct of_tables *old = dp->tables;
	struct of_tables *t = NULL;
	int rc = b->error;

	if (rc == 0)
		rc = check_room(b, old);
	if (rc == 0)
		t = build_tables(b, old);
	if (t == NULL) {
		rc = b->error;
		of_builder_free(b);
		return rc;
	}
	__atomic_store_n(&dp->tables, t, __ATOMIC_RELEASE);
	/* Once every worker has passed a quiescent state, none can use old. */
	rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
	of_tables_free(old);
	dp->table_swaps++;
	of_builder_free(b);
	return 0;
}
