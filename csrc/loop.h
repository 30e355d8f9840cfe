/* The worker loop (loop.c): launched on each worker lcore by of_dp_start, until of_dp_stop. */
#ifndef OF_LOOP_H
#define OF_LOOP_H

int of_worker_main(void *arg);	/* arg: the lcore's struct of_lcore */

#endif
