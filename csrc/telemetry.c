/*
 * DPDK telemetry for the data plane's named counters, so the tools operators
 * already use (dpdk-telemetry.py, exporters built on the telemetry socket)
 * see opte-fast beside the ethdev statistics:
 *   /opte_fast/counters   every counter of counters.def, summed over lcores
 *   /opte_fast/flows      active flows and table swaps
 * Callbacks run on DPDK's telemetry thread; the lock keeps them off a data
 * plane that is being destroyed (control side only, never the packet path),
 * and they answer only while the workers run, when the lcore state is fixed.
 */
#include <pthread.h>

#include <rte_telemetry.h>

#include "compat.h"
#include "counters.h"
#include "dp.h"
#include "inspect.h"
#include "telemetry.h"

static pthread_mutex_t telemetry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct of_dp *telemetry_dp;
static int registered;

static int
counters_cb(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	uint64_t values[OF_N_COUNTERS];

	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp != NULL && telemetry_dp->running) {
		of_dp_counters(telemetry_dp, values);
		for (unsigned i = 0; i < OF_N_COUNTERS; i++)
			of_tel_dict_add_u64(d, of_counter_names[i], values[i]);
	}
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

static int
flows_cb(const char *cmd __rte_unused, const char *params __rte_unused, struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp != NULL && telemetry_dp->running) {
		of_tel_dict_add_u64(d, "active_flows", of_dp_flow_count(telemetry_dp));
		of_tel_dict_add_u64(d, "table_swaps", of_dp_table_swaps(telemetry_dp));
	}
	pthread_mutex_unlock(&telemetry_lock);
	return 0;
}

void
of_telemetry_attach(struct of_dp *dp)
{
	pthread_mutex_lock(&telemetry_lock);
	telemetry_dp = dp;
	/* Commands register once per process and serve whichever data plane is current. */
	if (!registered) {
		rte_telemetry_register_cmd("/opte_fast/counters", counters_cb,
					   "opte-fast counters and drop reasons, summed over lcores. No parameters");
		rte_telemetry_register_cmd("/opte_fast/flows", flows_cb,
					   "opte-fast active flows and table swaps. No parameters");
		registered = 1;
	}
	pthread_mutex_unlock(&telemetry_lock);
}

void
of_telemetry_detach(struct of_dp *dp)
{
	pthread_mutex_lock(&telemetry_lock);
	if (telemetry_dp == dp)
		telemetry_dp = NULL;
	pthread_mutex_unlock(&telemetry_lock);
}
