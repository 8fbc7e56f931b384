/* sandbox-serve's counters and their Prometheus text exposition (GET /-/metrics). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "serve.h"

static const double lat_le[SERVE_LAT_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
						 0.1,	 0.25,	0.5,   1,     2.5,  5,	   10};
static const double page_le[SERVE_PAGE_BUCKETS] = {1,	 4,    16,    64,    256,
						   1024, 4096, 16384, 65536, 262144};

void serve_metrics_init(struct serve_metrics *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
}

void serve_metrics_destroy(struct serve_metrics *m)
{
	pthread_mutex_destroy(&m->mu);
}

void serve_metrics_request(struct serve_metrics *m, int status, double seconds)
{
	pthread_mutex_lock(&m->mu);
	if (status >= 100 && status < 600)
		m->by_status[status]++;
	int b = 0;
	while (b < SERVE_LAT_BUCKETS && seconds > lat_le[b])
		b++;
	m->lat_bucket[b]++;
	m->lat_sum_s += seconds;
	m->lat_count++;
	pthread_mutex_unlock(&m->mu);
}

void serve_metrics_run(struct serve_metrics *m, const struct serve_run_cost *c)
{
	pthread_mutex_lock(&m->mu);
	m->runs++;
	m->resets++;
	m->reset_pages += c->reset_pages;
	int b = 0;
	while (b < SERVE_PAGE_BUCKETS && (double)c->reset_pages > page_le[b])
		b++;
	m->page_bucket[b]++;
	m->reset_us += c->reset_us;
	m->run_us += c->run_us;
	m->copy_in_us += c->copy_in_us;
	m->copy_out_us += c->copy_out_us;
	m->copy_in_bytes += c->in_bytes;
	m->copy_out_bytes += c->out_bytes;
	m->exits += c->exits;
	m->slow_resets += c->slow != 0;
	pthread_mutex_unlock(&m->mu);
}

void serve_metrics_count(struct serve_metrics *m, uint64_t *counter)
{
	pthread_mutex_lock(&m->mu);
	(*counter)++;
	pthread_mutex_unlock(&m->mu);
}

static void histogram(FILE *o, const char *name, const char *help, const double *le, int n,
		      const uint64_t *bucket, double sum, uint64_t count)
{
	fprintf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (int i = 0; i < n; i++) {
		cum += bucket[i];
		fprintf(o, "%s_bucket{le=\"%g\"} %llu\n", name, le[i], (unsigned long long)cum);
	}
	cum += bucket[n];
	fprintf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
		(unsigned long long)cum, name, sum, name, (unsigned long long)count);
}

#define COUNT(field) offsetof(struct serve_metrics, field), 0
#define SECONDS(field) offsetof(struct serve_metrics, field), 1
/* The counters: a uint64_t count, or a double of microseconds shown in seconds. */
static const struct {
	const char *name, *help;
	size_t off;
	int us;
} counters[] = {
    {"runs_total", "Runs of the handler (engine sbx_exec_one calls).", COUNT(runs)},
    {"resets_total", "Resets to the snapshot before a run.", COUNT(resets)},
    {"slow_resets_total", "Resets that needed the vCPU stopped (crash, timeout, page tables).",
     COUNT(slow_resets)},
    {"reset_seconds_total", "Time spent resetting.", SECONDS(reset_us)},
    {"run_seconds_total", "Time in sbx_exec_one (reset included).", SECONDS(run_us)},
    {"vm_exits_total", "VM exits during runs.", COUNT(exits)},
    {"copy_in_seconds_total", "Time writing request bodies (and warm framing) for the guest.",
     SECONDS(copy_in_us)},
    {"copy_out_seconds_total", "Time reading the guest's output.", SECONDS(copy_out_us)},
    {"copy_in_bytes_total", "Bytes given to the guest on stdin.", COUNT(copy_in_bytes)},
    {"copy_out_bytes_total", "Bytes the guest wrote to stdout.", COUNT(copy_out_bytes)},
    {"crashes_total", "Runs that ended in a fault or signal (502).", COUNT(crashes)},
    {"timeouts_total", "Runs over --timeout (504).", COUNT(timeouts)},
    {"bad_output_total", "Runs whose output was not a CGI response or over the cap (502).",
     COUNT(bad_output)},
    {"rejected_total", "Requests refused with a full queue (503).", COUNT(rejected)},
    {"engine_errors_total", "Instances that failed and were rebuilt.", COUNT(engine_errors)},
    {"header_timeouts_total",
     "Connections closed with no complete request head within --header-timeout.",
     COUNT(slow_heads)},
    {"reloads_total", "Successful SIGHUP reloads.", COUNT(reloads)},
};

/* The pool's gauges. */
static const struct {
	const char *name, *help;
	size_t off;
} gauges[] = {
    {"instances", "Instances (VMs) in the pool.", offsetof(struct serve_gauges, instances)},
    {"instances_busy", "Instances running a request now.", offsetof(struct serve_gauges, busy)},
    {"queue_depth", "Requests waiting for an instance.",
     offsetof(struct serve_gauges, queue_depth)},
    {"queue_capacity", "--queue.", offsetof(struct serve_gauges, queue_cap)},
};

/* One sample with its HELP and TYPE lines; every name is sandbox_serve_ and the table's. */
static void sample(FILE *o, const char *type, const char *name, const char *help, double v)
{
	fprintf(o,
		"# HELP sandbox_serve_%s %s\n# TYPE sandbox_serve_%s %s\nsandbox_serve_%s %.17g\n",
		name, help, name, type, name, v);
}

int serve_metrics_write(struct serve_metrics *m, const struct serve_gauges *g, FILE *o)
{
	struct serve_metrics s;
	pthread_mutex_lock(&m->mu);
	memcpy(&s, m, sizeof(s));
	pthread_mutex_unlock(&m->mu);

	fprintf(o, "# HELP sandbox_serve_requests_total HTTP requests answered, by status code.\n"
		   "# TYPE sandbox_serve_requests_total counter\n");
	for (int c = 100; c < 600; c++)
		if (s.by_status[c])
			fprintf(o, "sandbox_serve_requests_total{code=\"%d\"} %llu\n", c,
				(unsigned long long)s.by_status[c]);
	histogram(o, "sandbox_serve_request_duration_seconds",
		  "Time from the request line to the response, per request.", lat_le,
		  SERVE_LAT_BUCKETS, s.lat_bucket, s.lat_sum_s, s.lat_count);
	histogram(o, "sandbox_serve_reset_dirty_pages", "Pages put back per reset.", page_le,
		  SERVE_PAGE_BUCKETS, s.page_bucket, (double)s.reset_pages, s.resets);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		const char *at = (const char *)&s + counters[i].off;
		double v =
		    counters[i].us ? *(const double *)at / 1e6 : (double)*(const uint64_t *)at;
		sample(o, "counter", counters[i].name, counters[i].help, v);
	}
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
		sample(o, "gauge", gauges[i].name, gauges[i].help,
		       *(const unsigned *)((const char *)g + gauges[i].off));
	return ferror(o) ? -EIO : 0;
}
