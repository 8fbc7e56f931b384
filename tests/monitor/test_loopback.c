/* The sandbox's loopback (monitor/calls/inet.c): samples/loopback.c's subcommands give the
 * stdout of the same binary run natively, for glibc and musl (a server and a client in two
 * processes or threads, over TCP on v4, v6 and a dual-stack listener, and UDP); what lies
 * outside the loopback is unreachable and audited; Python's own servers and clients run. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_util.h"

static void same_as_native(const char *args)
{
	e2e_sample_expect("loopback", "", args, 0, NULL);
}

/* Generous: only a hang reaches it. */
TestSuite(loopback, .timeout = 600);

Test(loopback, tcp_over_v4_between_two_processes)
{
	same_as_native("tcp4");
}

Test(loopback, tcp_over_v6_between_two_processes)
{
	same_as_native("tcp6");
}

/* A listener on [::] reached by a v4 client: each side sees the other as Linux shows it. */
Test(loopback, a_dual_stack_listener_takes_a_v4_client)
{
	same_as_native("dual");
}

Test(loopback, udp_messages_keep_their_bounds_and_senders)
{
	same_as_native("udp");
}

Test(loopback, a_nonblocking_connect_polls_and_reads_as_natively)
{
	same_as_native("nonblock");
}

Test(loopback, options_read_back_and_an_unbound_socket_is_named_as_natively)
{
	same_as_native("opts");
}

Test(loopback, a_taken_port_a_closed_port_and_a_wrong_family_are_refused_as_natively)
{
	same_as_native("refused");
}

Test(loopback, threads_serve_and_connect_at_once)
{
	same_as_native("threads");
}

/* Nothing outside the loopback: ENETUNREACH as with only `lo` up, and each refusal is in
 * the audit log as a denial. */
Test(loopback, the_network_outside_is_unreachable_and_audited)
{
	e2e_need_kvm();
	char bin[4096], dir[] = "/tmp/sbx-loopback-XXXXXX", cmd[9000];
	cr_assert(e2e_sample_binary("loopback", "glibc", bin, sizeof(bin)));
	e2e_scratch(dir, "true");
	snprintf(cmd, sizeof(cmd), "%s --audit %s/audit %s offnet; echo status=$?; cat %s/audit",
		 SANDBOX, dir, bin, dir);
	char *out = e2e_expect_output(
	    cmd, 0, "offnet: connect to 192.0.2.1: ENETUNREACH",
	    "offnet: connect to 2001:db8::1: ENETUNREACH",
	    "offnet: sendto 198.51.100.1: ENETUNREACH",
	    "offnet: bind to 198.51.100.1: EADDRNOTAVAIL", "offnet: a raw socket: EACCES",
	    "offnet: a netlink socket: EACCES", "status=0", "\"guest_path\":\"192.0.2.1 port 80\"",
	    "\"rule\":\"no network: only the sandbox's loopback\"", "\"decision\":\"deny\"", NULL);
	free(out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Python's own: an HTTP server in a thread and urllib against it, and asyncio's streams over
 * a server and a client in one loop. */
Test(loopback, python_servers_and_clients)
{
	e2e_need_kvm();
	if (access("/usr/bin/python3", X_OK) != 0)
		cr_skip_test("/usr/bin/python3 is not installed");
	char *out = e2e_expect_output(
	    SANDBOX
	    " --ro /usr --ro /lib --ro /lib64 /usr/bin/python3 -c '"
	    "import http.server, threading, urllib.request, asyncio\n"
	    "class H(http.server.BaseHTTPRequestHandler):\n"
	    "    def do_GET(self):\n"
	    "        b = (\"hello \" + self.path).encode()\n"
	    "        self.send_response(200); self.send_header(\"Content-Length\", "
	    "str(len(b))); self.end_headers(); self.wfile.write(b)\n"
	    "    def log_message(self, *a): pass\n"
	    "s = http.server.ThreadingHTTPServer((\"127.0.0.1\", 0), H)\n"
	    "threading.Thread(target=s.serve_forever, daemon=True).start()\n"
	    "for p in (\"/a\", \"/b\"):\n"
	    "    r = urllib.request.urlopen(\"http://127.0.0.1:%d%s\" % (s.server_port, p))\n"
	    "    print(r.status, r.read().decode())\n"
	    "async def main():\n"
	    "    async def echo(r, w):\n"
	    "        w.write((await r.readline()).upper()); await w.drain(); w.close()\n"
	    "    srv = await asyncio.start_server(echo, \"::1\", 0)\n"
	    "    port = srv.sockets[0].getsockname()[1]\n"
	    "    r, w = await asyncio.open_connection(\"::1\", port)\n"
	    "    w.write(b\"streams\\n\"); print((await r.readline()).decode().strip())\n"
	    "asyncio.run(main())'",
	    0, "200 hello /a", "200 hello /b", "STREAMS", NULL);
	free(out);
}
