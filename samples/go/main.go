// gowork: a static Go program as the Go runtime runs it (threads at start-up, the netpoller's
// epoll and eventfd or pipe, timers, GC), for tests/monitor/test_go.c and bench/run.py. Output
// on stdout is the same natively and sandboxed; a failed check prints "WRONG: ..." and exits 1.
//
//	gowork check [FILE]  timers, goroutines and channels, mutexes, GC, encoding/json, nil
//	                     dereferences recovered in goroutines, and os.ReadFile of FILE
//	gowork start         prints "started" (start-up time)
//	gowork heavy N       N messages through a pipeline of 16 goroutine stages with
//	                     allocations; "goheavy N NS" (ns per message) on stderr
//	gowork spawn PATH    os/exec of PATH (this program) from several goroutines at once,
//	                     a missing program and an exit status: fork from a threaded process
//	gowork echo ARGS     prints ARGS; gowork exit N: exits with N (what spawn runs)
//	gowork net           net/http's server and client over 127.0.0.1, and a TCP echo on a
//	                     dual-stack listener reached by v4 and v6 clients from goroutines
//	gowork beat N [HOLD] N beats 1 ms apart through goroutines and a ticker, the last held
//	                     until the file HOLD exists; "checksum C" (tests/monitor/migrate.sh go)
//	gowork cgi           a CGI handler: a header, then timers, channels, GC and JSON,
//	                     and "go cgi: QUERY_STRING" (tests/serve/serve.sh threads)
//	gowork hello         a CGI or --warm handler that answers "hello from go" (bench/serve.py;
//	                     the mode without arguments when GATEWAY_INTERFACE is set)
//	gowork warm          a --warm handler: builds a table and starts a worker pool and a
//	                     ticker before its first read of stdin (the snapshot point), then
//	                     per request "go warm: QUERY_STRING body=BODY runs=1 ..." (serve.sh)
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var failed bool

func wrong(format string, a ...interface{}) {
	fmt.Printf("WRONG: "+format+"\n", a...)
	failed = true
}

func timers() {
	t0 := time.Now()
	time.Sleep(20 * time.Millisecond)
	if d := time.Since(t0); d < 20*time.Millisecond {
		wrong("time.Sleep(20ms) returned after %v", d)
	}
	t := time.NewTimer(10 * time.Millisecond)
	<-t.C
	tick := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 3; i++ {
		<-tick.C
	}
	tick.Stop()
	never := make(chan int)
	select {
	case <-never:
		wrong("a channel nobody sends on")
	case <-time.After(15 * time.Millisecond):
	}
	// A timer reset and stopped before it fires never fires.
	s := time.AfterFunc(time.Hour, func() { wrong("a stopped timer fired") })
	s.Reset(time.Hour)
	s.Stop()
	// Many goroutines sleeping at once: the timer heap across Ps.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i%5) * time.Millisecond)
		}(i)
	}
	wg.Wait()
	fmt.Println("timers: sleep, timer, ticker, after, stop, 50 sleepers")
}

func channels() {
	ch := make(chan int)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := 0
			for j := 0; j < 100000; j++ {
				s += j % (i + 1)
			}
			ch <- s
		}(i)
	}
	go func() { wg.Wait(); close(ch) }()
	sum := 0
	for v := range ch {
		sum += v
	}
	var mu sync.Mutex
	n := 0
	var wg2 sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for j := 0; j < 10000; j++ {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	wg2.Wait()
	fmt.Println("channels: sum", sum, "mutex count", n)
}

type rec struct {
	Name string            `json:"name"`
	N    int               `json:"n"`
	Tags map[string]string `json:"tags,omitempty"`
}

func gcAndJSON() {
	var keep [][]byte
	for i := 0; i < 2000; i++ {
		b := make([]byte, 64<<10)
		b[0] = byte(i)
		if i%100 == 0 {
			keep = append(keep, b)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.NumGC == 0 {
		wrong("no GC cycle ran")
	}
	var m []rec
	for i := 0; i < 1000; i++ {
		m = append(m, rec{Name: "r" + strconv.Itoa(i), N: i, Tags: map[string]string{"k": "v"}})
	}
	b, err := json.Marshal(m)
	if err != nil {
		wrong("json.Marshal: %v", err)
	}
	var back []rec
	if err := json.Unmarshal(b, &back); err != nil {
		wrong("json.Unmarshal: %v", err)
	}
	fmt.Println("gc: kept", len(keep), "json:", len(b), "bytes,", len(back), "records, last", back[999].Name)
}

type node struct{ next *node }

// deref dereferences p; a nil p is a SIGSEGV the runtime turns into a panic, recovered here.
func deref(p *node) (err error) {
	defer func() {
		if e := recover(); e != nil {
			err = fmt.Errorf("%v", e)
		}
	}()
	_ = p.next
	return nil
}

// Nil dereferences in main and in goroutines on other threads, several at once: each a fault
// the runtime's SIGSEGV handler catches on the thread that made it.
func recovered() {
	n := 0
	if deref(nil) != nil {
		n++
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if err := deref(nil); err != nil {
					mu.Lock()
					n++
					mu.Unlock()
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	fmt.Println("recovered:", n, "nil dereferences")
}

// A goroutine in a loop with no calls has no point where it yields: the garbage collector's
// stop-the-world gets it only by preempting it with a signal (SIGURG) that interrupts its code.
func preempt() {
	var stop, spinning int32
	go func() {
		atomic.StoreInt32(&spinning, 1)
		for atomic.LoadInt32(&stop) == 0 {
		}
	}()
	for atomic.LoadInt32(&spinning) == 0 {
		runtime.Gosched()
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	atomic.StoreInt32(&stop, 1)
	fmt.Println("preempt: 3 GCs stopped a goroutine spinning without calls")
}

func heavy(n int) {
	const stages = 16
	in := make(chan []int, 1)
	cur := in
	for s := 0; s < stages; s++ {
		next := make(chan []int, 1)
		go func(from <-chan []int, to chan<- []int) {
			for v := range from {
				w := make([]int, len(v)+1) // an allocation per hop: work for the GC
				copy(w, v)
				w[len(v)] = len(v)
				to <- w
			}
			close(to)
		}(cur, next)
		cur = next
	}
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			in <- []int{i}
		}
		close(in)
	}()
	sum := 0
	for v := range cur {
		sum += v[0] + len(v)
	}
	d := time.Since(t0)
	fmt.Println("heavy:", n, "messages, checksum", sum)
	fmt.Fprintf(os.Stderr, "goheavy %d %d\n", n, d.Nanoseconds()/int64(n))
}

// spawn runs PATH as os/exec does (clone with CLONE_VM|CLONE_VFORK, then execve in the child),
// while the runtime's other threads go on, and from goroutines on several threads at once.
func spawn(path string) {
	out, err := exec.Command(path, "echo", "one").Output()
	fmt.Printf("spawn: %q %v\n", out, err)
	var wg sync.WaitGroup
	res := make([]string, 4)
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o, err := exec.Command(path, "echo", "goroutine", strconv.Itoa(i)).Output()
			res[i] = fmt.Sprintf("%q %v", o, err)
		}(i)
	}
	wg.Wait()
	for i, r := range res {
		fmt.Println("goroutine", i, r)
	}
	// The child's failed execve comes back through its pipe.
	_, err = exec.Command("/nonexistent/prog").Output()
	fmt.Println("missing:", err)
	err = exec.Command(path, "exit", "3").Run()
	fmt.Println("exit:", err)
	cmd := exec.Command(path, "echo", "stdin")
	cmd.Stdin = strings.NewReader("ignored")
	o, err := cmd.CombinedOutput()
	fmt.Printf("combined: %q %v\n", o, err)
}

// reexec replaces the program with PATH (syscall.Exec, as a re-executing tool or a shim does)
// from a goroutine on a thread of its own, while the runtime's other threads and goroutines
// run: first a missing program, whose error comes back with every thread still there.
func reexec(path string) {
	for i := 0; i < 4; i++ {
		go func() {
			for {
				runtime.Gosched()
			}
		}()
	}
	go time.Sleep(time.Hour)
	done := make(chan error)
	go func() {
		done <- syscall.Exec("/nonexistent/prog", []string{"x"}, os.Environ())
	}()
	fmt.Println("missing:", <-done)
	go func() {
		runtime.LockOSThread()
		done <- syscall.Exec(path, []string{path, "echo", "reexec", "done"}, os.Environ())
	}()
	fmt.Println("exec:", <-done)
	os.Exit(1)
}

func beat(n int, hold string) {
	in := make(chan int)
	mid := make(chan int)
	out := make(chan int)
	go func() {
		for v := range in {
			mid <- v * 3
		}
		close(mid)
	}()
	go func() {
		for v := range mid {
			out <- v + 1
		}
		close(out)
	}()
	sum := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 1; i <= n; i++ {
		<-tick.C
		for hold != "" && i == n-1 {
			if _, err := os.Stat(hold); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		in <- i
		sum += <-out
		fmt.Println(i)
	}
	close(in)
	runtime.GC()
	fmt.Println("checksum", sum)
}

// netCheck: what Go's test suites do with the loopback (httptest's server is a listener on
// 127.0.0.1:0), through the runtime's netpoller.
func netCheck() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		wrong("net.Listen: %v", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "served %s from %s", r.URL.Path, strings.Split(r.RemoteAddr, ":")[0])
	})
	go http.Serve(l, mux)
	for _, path := range []string{"/a", "/b"} {
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			wrong("http.Get: %v", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(b))
	}
	// A dual-stack listener ("tcp" on ":0"), clients of both families at once.
	d, err := net.Listen("tcp", ":0")
	if err != nil {
		wrong("net.Listen dual: %v", err)
		return
	}
	go func() {
		for {
			c, err := d.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte(strings.ToUpper(line)))
				c.Close()
			}(c)
		}
	}()
	port := d.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	got := make([]string, 4)
	for i, host := range []string{"127.0.0.1", "[::1]", "localhost", "127.0.0.1"} {
		wg.Add(1)
		go func(i int, host string) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", host, port), 10*time.Second)
			if err != nil {
				got[i] = "dial: " + err.Error()
				return
			}
			fmt.Fprintf(c, "echo %d\n", i)
			line, _ := bufio.NewReader(c).ReadString('\n')
			got[i] = strings.TrimSpace(line)
			c.Close()
		}(i, host)
	}
	wg.Wait()
	fmt.Println(strings.Join(got, ", "))
	if _, err := net.DialTimeout("tcp", "192.0.2.1:80", time.Second); err == nil {
		fmt.Println("reached 192.0.2.1")
	}
}

func main() {
	cmd := ""
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	} else if os.Getenv("GATEWAY_INTERFACE") != "" {
		cmd = "hello" // a CGI server that passes no arguments (bench/serve.py's native one)
	}
	switch cmd {
	case "start":
		fmt.Println("started")
	case "hello":
		// The lightest handler, the same in CGI and --warm mode: stdin read (the body, or
		// warm mode's framed request and its snapshot point), one answer.
		io.ReadAll(os.Stdin)
		fmt.Print("Content-Type: text/plain\r\n\r\nhello from go\n")
	case "check":
		timers()
		channels()
		gcAndJSON()
		recovered()
		preempt()
		if len(os.Args) > 2 {
			d, err := os.ReadFile(os.Args[2])
			if err != nil {
				wrong("os.ReadFile: %v", err)
			}
			fmt.Println("readfile:", len(d), "bytes")
		}
	case "heavy":
		n := 100000
		if len(os.Args) > 2 {
			n, _ = strconv.Atoi(os.Args[2])
		}
		heavy(n)
	case "spawn":
		if len(os.Args) < 3 {
			fmt.Fprintln(os.Stderr, "usage: gowork spawn PATH")
			os.Exit(2)
		}
		spawn(os.Args[2])
	case "reexec":
		if len(os.Args) < 3 {
			fmt.Fprintln(os.Stderr, "usage: gowork reexec PATH")
			os.Exit(2)
		}
		reexec(os.Args[2])
	case "beat":
		// A heartbeat on goroutines and timers (tests/monitor/migrate.sh go): N beats 1 ms
		// apart through a pipeline of goroutines, the last held until the file HOLD exists.
		n, hold := 1000, ""
		if len(os.Args) > 2 {
			n, _ = strconv.Atoi(os.Args[2])
		}
		if len(os.Args) > 3 {
			hold = os.Args[3]
		}
		beat(n, hold)
	case "cgi":
		// A CGI handler (sandbox-serve): the same checks, each request on its own threads.
		fmt.Print("Content-Type: text/plain\r\n\r\n")
		timers()
		channels()
		gcAndJSON()
		fmt.Println("go cgi:", os.Getenv("QUERY_STRING"), "threads:", runtime.GOMAXPROCS(0) > 0)
	case "warm":
		warm()
	case "net":
		netCheck()
	case "echo":
		fmt.Println(strings.Join(os.Args[2:], " "))
	case "exit":
		n := 0
		if len(os.Args) > 2 {
			n, _ = strconv.Atoi(os.Args[2])
		}
		os.Exit(n)
	default:
		fmt.Fprintln(os.Stderr, "usage: gowork check [FILE] | start | heavy N | spawn PATH")
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// warm: a sandbox-serve --warm handler (docs/serve.md). Its initialisation (a table, a pool of
// goroutines waiting on a channel, a ticker) is in the snapshot taken at its first read of
// stdin, with every thread the runtime started; each request then comes framed on stdin.
var warmRuns int

func warm() {
	table := make(map[int]int, 1<<14)
	for i := 0; i < 1<<14; i++ {
		table[i] = i * i
	}
	jobs := make(chan string)
	results := make(chan string)
	for w := 0; w < 4; w++ {
		go func(w int) {
			for j := range jobs {
				results <- fmt.Sprintf("%d:%s", w, strings.ToUpper(j))
			}
		}(w)
	}
	var ticks atomic.Int64
	go func() {
		for range time.NewTicker(time.Millisecond).C {
			ticks.Add(1)
		}
	}()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	in, err := io.ReadAll(os.Stdin) // the snapshot point
	if err != nil {
		wrong("reading stdin: %v", err)
	}
	warmRuns++
	head, body, _ := strings.Cut(string(in), "\n\n")
	for _, l := range strings.Split(head, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			os.Setenv(k, v)
		}
	}
	fmt.Print("Content-Type: text/plain\r\n\r\n")
	go func() { jobs <- body }()
	got := <-results
	t0 := ticks.Load()
	time.Sleep(10 * time.Millisecond)
	channels()
	gcAndJSON()
	fmt.Printf("go warm: %s body=%s runs=%d table=%d job=%v ticking=%v\n",
		os.Getenv("QUERY_STRING"), body, warmRuns, table[1<<13],
		strings.HasSuffix(got, ":"+strings.ToUpper(body)), ticks.Load() > t0)
	if failed {
		os.Exit(1)
	}
}
