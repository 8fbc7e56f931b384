/* sandbox-serve's metrics: counters and histograms in the Prometheus text format. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static char *render(struct serve_metrics *m, const struct serve_gauges *g)
{
	char *text = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&text, &len);
	cr_assert_not_null(o);
	cr_assert_eq(serve_metrics_write(m, g, o), 0);
	fclose(o);
	return text;
}

Test(metrics, requests_latency_resets_gauges)
{
	struct serve_metrics m;
	serve_metrics_init(&m);
	serve_metrics_request(&m, 200, 0.0004);
	serve_metrics_request(&m, 200, 0.003);
	serve_metrics_request(&m, 502, 20.0);
	struct serve_run_cost c = {.reset_pages = 10, .exits = 3, .slow = 1, .reset_us = 50};
	serve_metrics_run(&m, &c);
	c.reset_pages = 5000;
	serve_metrics_run(&m, &c);
	serve_metrics_count(&m, &m.rejected);
	struct serve_gauges g = {.instances = 2, .busy = 1, .queue_depth = 3, .queue_cap = 8};
	char *t = render(&m, &g);
	const char *want[] = {
	    "sandbox_serve_requests_total{code=\"200\"} 2\n",
	    "sandbox_serve_requests_total{code=\"502\"} 1\n",
	    "sandbox_serve_request_duration_seconds_bucket{le=\"0.0005\"} 1\n",
	    "sandbox_serve_request_duration_seconds_bucket{le=\"0.005\"} 2\n",
	    "sandbox_serve_request_duration_seconds_bucket{le=\"10\"} 2\n",
	    "sandbox_serve_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
	    "sandbox_serve_request_duration_seconds_count 3\n",
	    "sandbox_serve_resets_total 2\n",
	    "sandbox_serve_reset_dirty_pages_bucket{le=\"16\"} 1\n",
	    "sandbox_serve_reset_dirty_pages_bucket{le=\"4096\"} 1\n",
	    "sandbox_serve_reset_dirty_pages_bucket{le=\"16384\"} 2\n",
	    "sandbox_serve_reset_dirty_pages_sum 5010\n",
	    "sandbox_serve_vm_exits_total 6\n",
	    "sandbox_serve_slow_resets_total 2\n",
	    "sandbox_serve_rejected_total 1\n",
	    "sandbox_serve_instances 2\n",
	    "sandbox_serve_instances_busy 1\n",
	    "sandbox_serve_queue_depth 3\n",
	    "# TYPE sandbox_serve_request_duration_seconds histogram\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert(strstr(t, want[i]), "missing: %s", want[i]);
	cr_assert_null(strstr(t, "code=\"404\""), "codes never seen are not listed");
	free(t);
	serve_metrics_destroy(&m);
}
