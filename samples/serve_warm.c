/* serve_warm: a handler with a slow initialisation (a sieve of Eratosthenes up to 24 million
 * and the table of the primes below it: ~90 ms natively here), then one request: "?n=K" answers
 * the K-th prime and how many primes lie below the limit. Under sandbox-serve --warm the
 * initialisation runs once, before the snapshot; as a plain CGI program it runs per request.
 * It reseeds nothing (it uses no randomness); see docs/serve.md for handlers that do. */
#include <stdint.h>

#include "serve_req.h"

#define LIMIT 24000000u

static uint8_t composite[LIMIT];
static uint32_t *primes;
static size_t nprimes;

static void init(void)
{
	for (uint32_t i = 2; (uint64_t)i * i < LIMIT; i++)
		if (!composite[i])
			for (uint32_t j = i * i; j < LIMIT; j += i)
				composite[j] = 1;
	primes = malloc(sizeof(*primes) * (LIMIT / 10));
	for (uint32_t i = 2; i < LIMIT && primes; i++)
		if (!composite[i])
			primes[nprimes++] = i;
}

int main(void)
{
	init();
	struct req q;
	if (req_read(&q) < 0 || !primes)
		return 1;
	char n[24];
	req_param(&q, "n", n, sizeof(n));
	size_t k = strtoul(n, NULL, 10);
	if (k < 1 || k > nprimes)
		k = 1;
	printf("Content-Type: text/plain\n\nprime %zu = %u; %zu primes below %u\n", k,
	       primes[k - 1], nprimes, LIMIT);
	return 0;
}
